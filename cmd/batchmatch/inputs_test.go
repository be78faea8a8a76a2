package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/osmosis/batchmatch/pipeline/publish"
)

// TestInputLayoutsProcess runs the binary on input layouts that used to be
// read wrong or hang: shards behind links are read (not skipped), a FIFO is
// refused at once with exit 66 naming it instead of blocking the run (and
// its lock) forever.
func TestInputLayoutsProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("process-level")
	}
	bin := buildBinary(t)
	base := t.TempDir()
	good := genSample(t, base, "400") // two shards
	shards, _ := filepath.Glob(filepath.Join(good, "*.parquet"))
	if len(shards) != 2 {
		t.Fatalf("sample has %d shards", len(shards))
	}
	runFor := func(t *testing.T, args ...string) (int, string, time.Duration) {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"run", "--as-of", "2026-11-24", "--log-format", "json"}, args...)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		start := time.Now()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			return exitOf(err), stderr.String(), time.Since(start)
		case <-time.After(60 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Fatalf("the run blocked; stderr:\n%s", stderr.String())
		}
		return 0, "", 0
	}
	manifestRows := func(t *testing.T, out string) int64 {
		t.Helper()
		b, err := os.ReadFile(publish.ManifestPath(filepath.Join(out, "dt=2026-11-24")))
		if err != nil {
			t.Fatal(err)
		}
		var m struct {
			Counts struct {
				RowsRead int64 `json:"rows_read"`
			} `json:"counts"`
		}
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		return m.Counts.RowsRead
	}

	t.Run("shard and folder behind links", func(t *testing.T) {
		dir := t.TempDir()
		in := filepath.Join(dir, "in")
		os.MkdirAll(filepath.Join(dir, "elsewhere"), 0o755)
		os.MkdirAll(in, 0o755)
		os.Symlink(shards[0], filepath.Join(in, "a.parquet"))
		os.Link(shards[1], filepath.Join(dir, "elsewhere", "b.parquet"))
		os.Symlink(filepath.Join(dir, "elsewhere"), filepath.Join(in, "more"))
		out := filepath.Join(dir, "out")
		if code, stderr, _ := runFor(t, "--profiles", in, "--out", out); code != 0 {
			t.Fatalf("exit %d\n%s", code, stderr)
		}
		if n := manifestRows(t, out); n != 400 {
			t.Fatalf("read %d rows through links, want 400", n)
		}
	})
	for _, c := range []struct {
		name string
		args func(dir, fifo string) []string
	}{
		{"FIFO as --profiles", func(dir, fifo string) []string { return []string{"--profiles", fifo} }},
		{"FIFO in the profiles folder", func(dir, fifo string) []string {
			in := filepath.Join(dir, "in")
			os.MkdirAll(in, 0o755)
			os.Symlink(shards[0], filepath.Join(in, "a.parquet"))
			os.Rename(fifo, filepath.Join(in, "pipe.parquet"))
			return []string{"--profiles", in}
		}},
		{"FIFO as --suppress", func(dir, fifo string) []string { return []string{"--profiles", good, "--suppress", fifo} }},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			fifo := filepath.Join(dir, "pipe.parquet")
			if err := syscall.Mkfifo(fifo, 0o644); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(dir, "out")
			code, stderr, _ := runFor(t, append(c.args(dir, fifo), "--out", out)...)
			if code != exitNoInput || !strings.Contains(stderr, "pipe.parquet") || !strings.Contains(stderr, "not a regular file") {
				t.Fatalf("exit %d, want %d naming the FIFO\n%s", code, exitNoInput, stderr)
			}
			assertNothingPublished(t, out)
		})
	}
}
