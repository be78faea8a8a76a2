package pipeline

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
	cfg := baseConfig(dir)
	cfg.ProgressEvery, cfg.NoBlocking, cfg.MemoryLimit = 20*time.Millisecond, true, 8<<30
	res, err := Run(context.Background(), cfg, slog.New(slog.NewJSONHandler(logs, nil)))
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
	cfg.Out, cfg.ProgressBar = filepath.Join(dir, "out-bar"), bar
	if _, err := Run(context.Background(), cfg, discard); err != nil {
		t.Fatal(err)
	}
	if s := bar.String(); !strings.Contains(s, "\rscoring [") && !strings.Contains(s, "scoring [#") {
		t.Errorf("no progress bar drawn: %q", s)
	}
}

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{"4GiB": 4 << 30, "512MiB": 512 << 20, "3G": 3 << 30, "1000000": 1e6, "2.5GB": 2.5e9} {
		if got, err := ParseBytes(in); err != nil || got != want {
			t.Errorf("%q: %d, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "lots", "-1G", "0"} {
		if _, err := ParseBytes(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
