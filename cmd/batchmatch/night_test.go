package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/osmosis/batchmatch/pipeline/failure"
)

// TestNightAsOf: the night's date comes from the schedule, in a fixed order
// of sources, and never from the clock.
func TestNightAsOf(t *testing.T) {
	// the Job a CronJob creates for 2026-11-24T01:00Z is <name>-29924700
	// (date -ud 2026-11-24T01:00:00Z +%s, divided by 60)
	minutes := time.Date(2026, 11, 24, 1, 0, 0, 0, time.UTC).Unix() / 60
	cron := fmt.Sprintf("batchmatch-night-%d", minutes)
	if cron != "batchmatch-night-29924700" {
		t.Fatalf("scheduled minutes: %s", cron)
	}
	for _, c := range []struct {
		env        map[string]string
		want, from string // want "" = a usage error
	}{
		{map[string]string{envJobName: cron}, "2026-11-24", envJobName},
		// a day's last scheduled minute is still that day (UTC)
		{map[string]string{envJobName: fmt.Sprintf("x-%d", time.Date(2026, 11, 24, 23, 59, 0, 0, time.UTC).Unix()/60)}, "2026-11-24", envJobName},
		{map[string]string{envJobName: "batchmatch-night-rerun-2026-11-23"}, "2026-11-23", envJobName},
		{map[string]string{envJobName: "batchmatch-night-2"}, "", ""},                // not a scheduled time
		{map[string]string{envJobName: "batchmatch-night-manual"}, "", ""},           // no suffix at all
		{map[string]string{envJobName: "batchmatch-night-rerun-2026-13-40"}, "", ""}, // not a date
		// a date without dashes is no minute count (20261124 min = 2008-07-10)
		{map[string]string{envJobName: "batchmatch-night-rerun-20261124"}, "", ""},
		// a minute count before 2020 is no CronJob's of this job
		{map[string]string{envJobName: fmt.Sprintf("batchmatch-night-%d", time.Date(2019, 12, 31, 1, 0, 0, 0, time.UTC).Unix()/60)}, "", ""},
		{map[string]string{envJobName: fmt.Sprintf("batchmatch-night-%d", time.Date(2020, 1, 1, 1, 0, 0, 0, time.UTC).Unix()/60)}, "2020-01-01", envJobName},
		{map[string]string{envScheduledTime: "2026-11-24T01:00:00Z"}, "2026-11-24", envScheduledTime},
		// the CronJob writes the timestamp in its own time zone: that day
		{map[string]string{envScheduledTime: "2026-11-24T00:30:00+01:00"}, "2026-11-24", envScheduledTime},
		{map[string]string{envScheduledTime: "yesterday"}, "", ""},
		{map[string]string{envAsOf: "2026-11-20", envScheduledTime: "2026-11-24T01:00:00Z", envJobName: cron}, "2026-11-20", envAsOf},
		{map[string]string{envScheduledTime: "2026-11-22T01:00:00Z", envJobName: cron}, "2026-11-22", envScheduledTime},
		{map[string]string{envAsOf: "24/11/2026"}, "", ""},
		{map[string]string{}, "", ""}, // no schedule: refuse rather than read the clock
	} {
		got, from, err := nightAsOf(func(k string) string { return c.env[k] })
		if c.want == "" {
			if !errors.Is(err, failure.Usage) {
				t.Errorf("%v: %q from %s, %v; want a usage error", c.env, got, from, err)
			}
			if err != nil && c.env[envJobName] != "" && len(c.env) == 1 && (!strings.Contains(err.Error(), "-YYYY-MM-DD") || !strings.Contains(err.Error(), "minute")) {
				t.Errorf("%v: %v; the message does not say which forms are accepted", c.env, err)
			}
			continue
		}
		if err != nil || got != c.want || from != c.from {
			t.Errorf("%v: %q from %s, %v; want %q from %s", c.env, got, from, err, c.want, c.from)
		}
	}
}

// TestNightProcesses runs the night's shards as a scheduler would, each a
// `batchmatch night` process with its index and Job name in the
// environment and no --as-of: the shards that do not complete the set exit
// 0 without publishing or locking; the one that does publishes tables
// byte-identical to a single-process run under the scheduled date (not
// today's); a shard that finds the lock held waits for it; a retry after
// the night was published exits 0 and changes nothing; a night without a
// schedule exits 64 before doing anything.
func TestNightProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("process-level")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	profiles := genSample(t, dir, "3000")
	ref := filepath.Join(dir, "ref")
	if code, stderr := runBin(t, bin, "run", "--profiles", profiles, "--out", ref, "--as-of", "2026-11-24",
		"--log-format", "json", "--max-reject-ratio", "1"); code != 0 {
		t.Fatalf("single-process run: exit %d\n%s", code, stderr)
	}
	want := tables(t, filepath.Join(ref, "dt=2026-11-24"))

	const n = 3
	out := filepath.Join(dir, "night")
	part := filepath.Join(out, "dt=2026-11-24")
	job := fmt.Sprintf("batchmatch-night-%d", time.Date(2026, 11, 24, 1, 0, 0, 0, time.UTC).Unix()/60)
	night := func(i int, env ...string) *exec.Cmd {
		cmd := exec.Command(bin, "night", "--profiles", profiles, "--out", out, "--shard-count", fmt.Sprint(n),
			"--log-format", "json", "--max-reject-ratio", "1")
		cmd.Env = append(os.Environ(), fmt.Sprintf("JOB_COMPLETION_INDEX=%d", i), envJobName+"="+job)
		cmd.Env = append(cmd.Env, env...)
		return cmd
	}
	run := func(cmd *exec.Cmd) (int, string) {
		t.Helper()
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		return exitOf(cmd.Run()), stderr.String()
	}

	// no schedule and no --as-of: refused before reading anything
	cmd := night(0)
	cmd.Env = append(os.Environ(), "JOB_COMPLETION_INDEX=0")
	if code, stderr := run(cmd); code != exitUsage || !strings.Contains(stderr, "never uses the clock") {
		t.Fatalf("night without a schedule: exit %d, want %d\n%s", code, exitUsage, stderr)
	}
	if fileExists(out) {
		t.Fatal("night without a schedule wrote something")
	}

	for _, i := range []int{2, 0} {
		code, stderr := run(night(i))
		if code != 0 || !strings.Contains(stderr, "the shard that completes the set publishes") {
			t.Fatalf("shard %d (set incomplete): exit %d\n%s", i, code, stderr)
		}
		if strings.Contains(stderr, "committing") || fileExists(part) || fileExists(filepath.Join(out, ".lock")) {
			t.Fatalf("shard %d committed, locked or published with the set incomplete\n%s", i, stderr)
		}
	}

	// The last shard finds the lock held (as when two shards finish
	// together and the other is committing): it waits, then publishes.
	lock, err := os.OpenFile(filepath.Join(out, ".lock"), os.O_CREATE|os.O_RDWR, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	last := night(1)
	var stderr syncBuffer
	last.Stderr = &stderr
	if err := last.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(stderr.String(), "another commit holds the output lock") {
		if time.Now().After(deadline) {
			last.Process.Kill()
			t.Fatalf("the last shard never reported the held lock\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if fileExists(part) {
		t.Fatal("published while the lock was held")
	}
	lock.Close() // releases the flock
	if code := exitOf(last.Wait()); code != 0 {
		t.Fatalf("last shard: exit %d\n%s", code, stderr.String())
	}
	got := tables(t, part)
	for tb := range want {
		if !bytes.Equal(got[tb], want[tb]) {
			t.Errorf("%s of the night differs from the single-process run", tb)
		}
	}
	if fileExists(filepath.Join(out, "_temporary")) {
		t.Error("parts left behind after the night was published")
	}
	if !strings.Contains(stderr.String(), `"from":"BATCHMATCH_JOB_NAME"`) {
		t.Errorf("as-of not taken from the Job name\n%s", stderr.String())
	}

	// A pod of the night retried after the night was published (lost after
	// its commit): it exits 0 and the published tables stay as they were.
	if code, stderr := run(night(1)); code != 0 {
		t.Fatalf("shard retried after the publish: exit %d\n%s", code, stderr)
	}
	if got := tables(t, part); !bytes.Equal(got["matches"], want["matches"]) || !bytes.Equal(got["soulmates"], want["soulmates"]) {
		t.Error("a retry after the publish changed the published tables")
	}
}

// TestNightInputsChanged: the inputs are delivered again while a night's
// shards run (shard 0 ran on the first delivery, shard 1 on the second).
// Every shard has finished, but no complete set of parts is of one run:
// the last shard fails the night with 65 saying so (before, every shard
// exited 0, nothing was published and commit said 75 for good); a shard
// that finishes while another has no part yet exits 0 as before. The
// night run again (another Job) publishes the current inputs: the parts
// the failed run left do not make it fail or wait.
func TestNightInputsChanged(t *testing.T) {
	if testing.Short() {
		t.Skip("process-level")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	profiles := filepath.Join(dir, "profiles")
	deliver := func(seed string) {
		t.Helper()
		os.RemoveAll(profiles)
		if code, stderr := runBin(t, bin, "gen", "--out", profiles, "--n", "600", "--shards", "2", "--seed", seed, "--as-of", "2026-11-24"); code != 0 {
			t.Fatalf("gen: %d\n%s", code, stderr)
		}
	}
	out := filepath.Join(dir, "out")
	night := func(i int, job string) (int, string) {
		t.Helper()
		cmd := exec.Command(bin, "night", "--profiles", profiles, "--out", out, "--shard-count", "2", "--log-format", "json", "--max-reject-ratio", "1")
		cmd.Env = append(os.Environ(), fmt.Sprintf("JOB_COMPLETION_INDEX=%d", i), envJobName+"="+job)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		return exitOf(cmd.Run()), stderr.String()
	}
	deliver("1")
	if code, stderr := night(0, "batchmatch-night-29924700"); code != 0 || !strings.Contains(stderr, "the shard that completes the set publishes") {
		t.Fatalf("shard 0, shard 1 still running: exit %d, want 0\n%s", code, stderr)
	}
	deliver("2") // re-delivered mid-night
	code, stderr := night(1, "batchmatch-night-29924700")
	if code != exitDataErr || !strings.Contains(stderr, "the inputs changed during the night") || !strings.Contains(stderr, "re-run the night") {
		t.Fatalf("the last shard of a night over two deliveries: exit %d, want %d saying the inputs changed\n%s", code, exitDataErr, stderr)
	}
	if fileExists(filepath.Join(out, "dt=2026-11-24")) {
		t.Fatal("a mixed night published")
	}
	ref := filepath.Join(dir, "ref")
	if code, stderr := runBin(t, bin, "run", "--profiles", profiles, "--out", ref, "--as-of", "2026-11-24", "--log-format", "json", "--max-reject-ratio", "1"); code != 0 {
		t.Fatalf("reference: exit %d\n%s", code, stderr)
	}
	// The night run again, by hand: another Job.
	if code, stderr := night(0, "batchmatch-night-rerun-2026-11-24"); code != 0 {
		t.Fatalf("the night run again, shard 0: exit %d\n%s", code, stderr)
	}
	if code, stderr := night(1, "batchmatch-night-rerun-2026-11-24"); code != 0 {
		t.Fatalf("the night run again, shard 1: exit %d\n%s", code, stderr)
	}
	want, got := tables(t, filepath.Join(ref, "dt=2026-11-24")), tables(t, filepath.Join(out, "dt=2026-11-24"))
	for tb := range want {
		if !bytes.Equal(got[tb], want[tb]) {
			t.Errorf("%s of the night run again differs from a run over the current inputs", tb)
		}
	}
}

// TestNightLockThenPublished: a shard that waited for the lock and then
// finds the night published by the lock's holder succeeds.
func TestNightLockThenPublished(t *testing.T) {
	if testing.Short() {
		t.Skip("process-level")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	profiles := genSample(t, dir, "1000")
	out := filepath.Join(dir, "night")
	common := []string{"--profiles", profiles, "--out", out, "--shard-count", "2", "--as-of", "2026-11-24",
		"--log-format", "json", "--max-reject-ratio", "1"}
	if code, stderr := runBin(t, bin, append([]string{"run", "--shard-index", "0"}, common...)...); code != 0 {
		t.Fatalf("shard 0: exit %d\n%s", code, stderr)
	}
	// the holder of the lock: a commit of the same night by another shard
	ref := filepath.Join(dir, "ref")
	if code, stderr := runBin(t, bin, "run", "--profiles", profiles, "--out", ref, "--as-of", "2026-11-24",
		"--log-format", "json", "--max-reject-ratio", "1"); code != 0 {
		t.Fatalf("reference: exit %d\n%s", code, stderr)
	}
	lock, err := os.OpenFile(filepath.Join(out, ".lock"), os.O_CREATE|os.O_RDWR, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, append([]string{"night", "--shard-index", "1"}, common...)...)
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(stderr.String(), "another commit holds the output lock") {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("never waited for the lock\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// the holder publishes the night, then releases the lock
	if err := os.Rename(filepath.Join(ref, "dt=2026-11-24"), filepath.Join(out, "dt=2026-11-24")); err != nil {
		t.Fatal(err)
	}
	lock.Close()
	if code := exitOf(cmd.Wait()); code != 0 {
		t.Fatalf("night after the holder published: exit %d, want 0\n%s", code, stderr.String())
	}
}

// syncBuffer is a bytes.Buffer that a child process's output can be written
// to while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
