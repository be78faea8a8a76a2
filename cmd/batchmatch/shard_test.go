package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/osmosis/batchmatch/pipeline/match"
)

// TestShardedRunProcesses: a run spread over shard processes that get their
// index from the environment, as Kubernetes Indexed Job pods do. Shards are
// killed mid-run and re-run, one index runs twice to completion, commit is
// refused (75) while a part is missing, killed mid-way and re-run; the
// published tables are byte-identical to a single-machine run, no part is
// left behind, and committing again changes nothing (0: already published).
func TestShardedRunProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("process-level")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	profiles := genSample(t, dir, "6000")
	common := []string{"--profiles", profiles, "--as-of", "2026-11-24", "--log-format", "json", "--max-reject-ratio", "1"}
	ref := filepath.Join(dir, "ref")
	start := time.Now()
	if code, stderr := runBin(t, bin, append([]string{"run", "--out", ref}, common...)...); code != 0 {
		t.Fatalf("single-machine run: exit %d\n%s", code, stderr)
	}
	full := time.Since(start)
	want := tables(t, filepath.Join(ref, "dt=2026-11-24"))

	const n = 4
	out := filepath.Join(dir, "sharded")
	shard := func(i int) *exec.Cmd {
		cmd := exec.Command(bin, append([]string{"run", "--out", out, "--shard-count", fmt.Sprint(n)}, common...)...)
		cmd.Env = append(os.Environ(), fmt.Sprintf("JOB_COMPLETION_INDEX=%d", i))
		return cmd
	}
	run := func(cmd *exec.Cmd) {
		t.Helper()
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("%v: %v\n%s", cmd.Args, err, stderr.String())
		}
	}
	commit := []string{"commit", "--out", out, "--as-of", "2026-11-24", "--log-format", "json"}
	// shards 1 and 3 are killed at different points of their runs (lost pods)
	for _, k := range []struct{ index, at int }{{1, 1}, {3, 3}} {
		cmd := shard(k.index)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(full * time.Duration(k.at) / 5)
		cmd.Process.Kill()
		cmd.Wait()
	}
	run(shard(0))
	run(shard(2))
	if code, stderr := runBin(t, bin, commit...); code != exitTempFail || !bytes.Contains([]byte(stderr), []byte("not ready")) {
		t.Fatalf("commit with parts missing: exit %d, want %d\n%s", code, exitTempFail, stderr)
	}
	run(shard(1))
	run(shard(3))
	run(shard(3)) // a retry of an index that had already completed
	// a commit killed part-way, then run again
	cmd := exec.Command(bin, commit...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(full / 3)
	cmd.Process.Kill()
	cmd.Wait()
	code, stderr := runBin(t, bin, commit...)
	part := filepath.Join(out, "dt=2026-11-24")
	if code != 0 && !(code == exitCantCreat && fileExists(filepath.Join(part, "_SUCCESS"))) {
		t.Fatalf("commit: exit %d\n%s", code, stderr)
	}
	got := tables(t, part)
	for tb := range want {
		if !bytes.Equal(got[tb], want[tb]) {
			t.Errorf("%s of the sharded run differs from the single-machine run", tb)
		}
	}
	if _, err := os.Stat(filepath.Join(out, "_temporary")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("parts or staging left behind after commit (stat: %v)", err)
	}
	if code, stderr := runBin(t, bin, commit...); code != 0 {
		t.Errorf("second commit: exit %d, want 0 (already published by this run)\n%s", code, stderr)
	}
	if again := tables(t, part); !bytes.Equal(again["matches"], want["matches"]) {
		t.Error("a second commit changed the published tables")
	}
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func TestResolveShard(t *testing.T) {
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	for _, c := range []struct {
		index, count int
		env          func(string) string
		want         match.ShardSpec
		err          bool
	}{
		{-1, 0, env(), match.ShardSpec{}, false},
		{2, 5, env(), match.ShardSpec{Index: 2, Count: 5}, false},
		{-1, 4, env("JOB_COMPLETION_INDEX", "3"), match.ShardSpec{Index: 3, Count: 4}, false},
		{-1, 0, env("AWS_BATCH_JOB_ARRAY_INDEX", "1", "AWS_BATCH_JOB_ARRAY_SIZE", "6"), match.ShardSpec{Index: 1, Count: 6}, false},
		{-1, 0, env("CLOUD_RUN_TASK_INDEX", "0", "CLOUD_RUN_TASK_COUNT", "2"), match.ShardSpec{Index: 0, Count: 2}, false},
		{1, 3, env("JOB_COMPLETION_INDEX", "2"), match.ShardSpec{Index: 1, Count: 3}, false}, // flags win
		{-1, 0, env("JOB_COMPLETION_INDEX", "3"), match.ShardSpec{}, true},                   // Kubernetes gives no count
		{-1, 4, env("JOB_COMPLETION_INDEX", "x"), match.ShardSpec{}, true},
		{4, 4, env(), match.ShardSpec{}, true},
		{-1, 3, env(), match.ShardSpec{}, true},
	} {
		got, err := ResolveShard(c.index, c.count, c.env)
		if (err != nil) != c.err || got != c.want {
			t.Errorf("ResolveShard(%d, %d): %v, %v; want %v (error %v)", c.index, c.count, got, err, c.want, c.err)
		}
	}
}
