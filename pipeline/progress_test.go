package pipeline_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/osmosis/batchmatch/pipeline"
	"github.com/osmosis/batchmatch/pipeline/internal/runtest"
	"github.com/osmosis/batchmatch/pipeline/match"
	"github.com/osmosis/batchmatch/pipeline/synth"
)

// syncBuffer is a bytes.Buffer safe for the reporter goroutine.
type syncBuffer struct {
	mu chanMutex
	b  bytes.Buffer
}

type chanMutex chan struct{}

func (m chanMutex) lock()   { m <- struct{}{} }
func (m chanMutex) unlock() { <-m }

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.lock()
	defer s.mu.unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.lock()
	defer s.mu.unlock()
	return s.b.String()
}

// TestProgressAndMemory: a long enough run reports progress (log lines, or a
// bar on a terminal), and the manifest records the memory limit and peaks.
func TestProgressAndMemory(t *testing.T) {
	dir := t.TempDir()
	o := synth.Options{N: 6000, Shards: 2, Seed: 3, D: 64, Q: 32, AsOf: "2026-11-24", Out: filepath.Join(dir, "profiles")}
	if _, err := synth.Generate(context.Background(), o, 2); err != nil {
		t.Fatal(err)
	}
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	logs := &syncBuffer{mu: make(chanMutex, 1)}
	cfg := runtest.BaseConfig(dir)
	cfg.NoBlocking, cfg.MemoryLimit = true, 8<<30
	env := pipeline.Env{Log: slog.New(slog.NewJSONHandler(logs, nil)), ProgressEvery: 20 * time.Millisecond}
	res, err := pipeline.Run(context.Background(), cfg, env)
	if err != nil {
		t.Fatal(err)
	}
	tiles := (res.Manifest.Counts.Eligible + match.TileSize - 1) / match.TileSize
	if !strings.Contains(logs.String(), `"msg":"scoring progress"`) || !strings.Contains(logs.String(), fmt.Sprintf(`"tiles_total":%d`, tiles)) {
		t.Errorf("no progress lines in:\n%.2000s", logs.String())
	}
	mem := res.Manifest.Memory
	if mem.LimitBytes != 8<<30 || mem.PeakHeapBytes < 1<<20 || mem.PeakRSSBytes < int64(mem.PeakHeapBytes)/2 {
		t.Errorf("memory %+v", mem)
	}

	bar := &syncBuffer{mu: make(chanMutex, 1)}
	cfg.Out = filepath.Join(dir, "out-bar")
	if _, err := pipeline.Run(context.Background(), cfg, pipeline.Env{Log: runtest.Discard, ProgressEvery: 20 * time.Millisecond, ProgressBar: bar}); err != nil {
		t.Fatal(err)
	}
	if s := bar.String(); !strings.Contains(s, "\rscoring [") && !strings.Contains(s, "scoring [#") {
		t.Errorf("no progress bar drawn: %q", s)
	}
}
