//go:build linux

// Package slurm tests the nightly run on a real Slurm: slurmctld, slurmd
// and munged started on this machine by slurm-local.sh, the night submitted
// by submit-night.sh as an array of shard tasks (batchmatch-night.sbatch).
// It needs root and the Debian packages slurm-wlm and munge; `make
// test-slurm` runs it (BATCHMATCH_SLURM_TEST=1, BATCHMATCH_BIN=the binary).
package slurm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

const (
	asOf   = "2026-11-24" // not today: the date comes from the submission, never the clock
	shards = 4
)

// cluster is a running one-machine Slurm.
type cluster struct {
	t    *testing.T
	dir  string // slurm-local.sh's state, logs and configuration
	conf string
}

// command runs name with SLURM_CONF set, bounded by timeout, and returns
// its combined output.
func (c *cluster) command(timeout time.Duration, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "SLURM_CONF="+c.conf, "PATH="+os.Getenv("PATH")+":/usr/sbin")
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		err = fmt.Errorf("%s %v: timed out after %v", name, args, timeout)
	}
	return string(out), err
}

func (c *cluster) must(name string, args ...string) string {
	c.t.Helper()
	out, err := c.command(30*time.Second, name, args...)
	if err != nil {
		c.t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(out)
}

// startCluster starts the daemons; they are stopped when the test ends,
// after printing their logs if it failed.
func startCluster(t *testing.T) *cluster {
	t.Helper()
	c := &cluster{t: t, dir: t.TempDir()}
	c.conf = filepath.Join(c.dir, "slurm.conf")
	script, _ := filepath.Abs("slurm-local.sh")
	start := time.Now()
	out, err := c.command(2*time.Minute, script, "start", c.dir)
	t.Cleanup(func() {
		if t.Failed() {
			logs, _ := c.command(30*time.Second, script, "logs", c.dir)
			t.Logf("daemon logs:\n%s", logs)
		}
		if out, err := c.command(2*time.Minute, script, "stop", c.dir); err != nil {
			t.Errorf("stopping the cluster: %v\n%s", err, out)
		}
	})
	if err != nil {
		t.Fatalf("starting the cluster: %v\n%s", err, out)
	}
	t.Logf("cluster up in %.1f s", time.Since(start).Seconds())
	return c
}

// task is one array task as scontrol shows it.
type task struct {
	state    string // PENDING, RUNNING, COMPLETED, CANCELLED, FAILED, ...
	exit     string // ExitCode=code:signal
	restarts int
}

// one task per line of `scontrol show job -o` (pending tasks not yet
// split off show as one line "ArrayTaskId=2-3", which does not match)
var taskLine = regexp.MustCompile(`ArrayTaskId=(\d+) .*\bJobState=(\w+) .*\bRestarts=(\d+) .*\bExitCode=(\d+:\d+)`)

// tasks returns the array's tasks by index.
func (c *cluster) tasks(job string) map[int]task {
	c.t.Helper()
	out := c.must("scontrol", "show", "job", "-o", job)
	ts := map[int]task{}
	for _, l := range strings.Split(out, "\n") {
		m := taskLine.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		i, _ := strconv.Atoi(m[1])
		r, _ := strconv.Atoi(m[3])
		ts[i] = task{state: m[2], restarts: r, exit: m[4]}
	}
	return ts
}

// waitFor polls cond every 100 ms until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// night is one submitted night: its output, logs and array job.
type night struct {
	c         *cluster
	out, logs string
	job       string
	submitted time.Time
}

func (c *cluster) submit(bin, profiles, dir string) *night {
	c.t.Helper()
	n := &night{c: c, out: filepath.Join(dir, "out"), logs: filepath.Join(dir, "logs")}
	script, _ := filepath.Abs("submit-night.sh")
	n.submitted = time.Now()
	// 1 CPU per task on this 2-CPU machine: two shards at a time
	n.job = c.must(script, "--profiles", profiles, "--out", n.out, "--shards", strconv.Itoa(shards),
		"--as-of", asOf, "--bin", bin, "--log-dir", n.logs, "--args", "--max-reject-ratio=1",
		"--", "--cpus-per-task=1", "--mem=1G")
	if _, err := strconv.Atoi(n.job); err != nil {
		c.t.Fatalf("submit-night.sh printed %q, not a job id", n.job)
	}
	c.t.Cleanup(func() {
		if c.t.Failed() {
			for i := range shards {
				b, _ := os.ReadFile(n.logFile(i))
				c.t.Logf("task %d log:\n%s", i, b)
			}
			out, _ := c.command(30*time.Second, "scontrol", "show", "job", n.job)
			c.t.Logf("scontrol show job %s:\n%s", n.job, out)
		}
	})
	return n
}

func (n *night) logFile(i int) string {
	return filepath.Join(n.logs, fmt.Sprintf("batchmatch-night-%s_%d.log", n.job, i))
}

func (n *night) partition() string { return filepath.Join(n.out, "dt="+asOf) }

// waitDone waits until no task of the night is pending or running.
func (n *night) waitDone(timeout time.Duration) map[int]task {
	n.c.t.Helper()
	var ts map[int]task
	waitFor(n.c.t, timeout, "the array to finish", func() bool {
		ts = n.c.tasks(n.job)
		for _, tk := range ts {
			if tk.state == "PENDING" || tk.state == "RUNNING" || tk.state == "COMPLETING" || tk.state == "REQUEUED" {
				return false
			}
		}
		return len(ts) == shards
	})
	return ts
}

// check asserts the published night: tables byte-identical to the
// single-process run, no part or staging left, and every task's log ending
// its night with one of its outcomes (published; left it to another shard;
// found it published by its run), at least one having published.
func (n *night) check(want map[string][]byte) {
	t := n.c.t
	t.Helper()
	for tb, w := range want {
		got, err := os.ReadFile(tablePath(n.partition(), tb))
		if err != nil {
			t.Fatalf("the night published no %s: %v", tb, err)
		}
		if !bytes.Equal(got, w) {
			t.Errorf("%s published on Slurm differs from the single-process run", tb)
		}
	}
	if _, err := os.Stat(filepath.Join(n.out, "_temporary")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("parts or staging left behind (stat: %v)", err)
	}
	committed := 0
	for i := range shards {
		b, err := os.ReadFile(n.logFile(i))
		if err != nil {
			t.Fatal(err)
		}
		l := string(b)
		switch {
		case strings.Contains(l, `"msg":"night: every shard has a part: committing"`) && strings.Contains(l, `"msg":"run published"`):
			committed++
		case strings.Contains(l, `"msg":"night: part written; the shard that completes the set publishes"`),
			strings.Contains(l, `"msg":"night: the night is already published by this run"`),
			strings.Contains(l, `"msg":"already published by this run: nothing to commit"`):
		default:
			t.Errorf("task %d neither published nor left it to another shard:\n%s", i, l)
		}
		if !strings.Contains(l, `"as_of":"`+asOf+`","from":"BATCHMATCH_AS_OF"`) {
			t.Errorf("task %d did not take its as-of date from the submission", i)
		}
	}
	if committed == 0 {
		t.Error("no task published the night")
	}
}

// reference generates the population and publishes it with one process.
func reference(t *testing.T, bin, dir string) (string, map[string][]byte) {
	t.Helper()
	profiles := filepath.Join(dir, "profiles")
	for _, args := range [][]string{
		{"gen", "--out", profiles, "--n", "4000", "--shards", "4", "--seed", "7", "--as-of", asOf, "--log-format", "json"},
		{"run", "--profiles", profiles, "--out", filepath.Join(dir, "ref"), "--as-of", asOf, "--max-reject-ratio", "1", "--log-format", "json"},
	} {
		if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", args[0], err, out)
		}
	}
	want := map[string][]byte{}
	for _, tb := range []string{"matches", "soulmates", "rejects"} {
		b, err := os.ReadFile(tablePath(filepath.Join(dir, "ref", "dt="+asOf), tb))
		if err != nil {
			t.Fatal(err)
		}
		want[tb] = b
	}
	return profiles, want
}

func TestSlurmNight(t *testing.T) {
	if os.Getenv("BATCHMATCH_SLURM_TEST") != "1" {
		t.Skip("needs root and slurm-wlm, munge: make test-slurm")
	}
	if os.Geteuid() != 0 {
		t.Fatal("the one-machine cluster runs as root")
	}
	bin := os.Getenv("BATCHMATCH_BIN")
	if !filepath.IsAbs(bin) {
		t.Fatalf("BATCHMATCH_BIN=%q: an absolute path to the batchmatch binary", bin)
	}
	begin := time.Now()
	dir := t.TempDir()
	profiles, want := reference(t, bin, dir)
	c := startCluster(t)

	// The night as the scheduler runs it: an array of shard tasks, the
	// one completing the set publishes, the others exit 0.
	t.Run("array", func(t *testing.T) {
		c.t = t
		n := c.submit(bin, profiles, filepath.Join(dir, "array"))
		ts := n.waitDone(3 * time.Minute)
		elapsed := time.Since(n.submitted)
		for i, tk := range ts {
			if tk.state != "COMPLETED" || tk.exit != "0:0" {
				t.Errorf("task %d: %s, exit %s; want COMPLETED 0:0", i, tk.state, tk.exit)
			}
		}
		n.check(want)
		t.Logf("%d shard tasks on Slurm, submission to published night: %.1f s", shards, elapsed.Seconds())
	})

	// One task interrupted mid-run while the others finish: cancelled by
	// scancel during its scoring (SIGCONT, SIGTERM), or killed (SIGKILL) as
	// it begins writing its part. Its process is stopped (SIGSTOP) the
	// moment it logs that stage, so the interruption lands there whatever
	// the machine's speed. Nothing is published until the task is requeued;
	// the requeued task completes the set and publishes the same tables.
	for _, k := range []struct {
		name, stage string
		victim      int
		kill        func(n *night, pid int) error
		state       string
	}{
		{"scancel during scoring", "score_topk", 1, func(n *night, pid int) error {
			_, err := n.c.command(30*time.Second, "scancel", fmt.Sprintf("%s_%d", n.job, 1))
			return err
		}, "CANCELLED"},
		{"kill -9 as it begins writing its part", "write_part", 2, func(n *night, pid int) error {
			return syscall.Kill(pid, syscall.SIGKILL)
		}, "FAILED"},
	} {
		t.Run(k.name, func(t *testing.T) {
			c.t = t
			// the victim's log is watched before it exists, so that its
			// process is stopped the moment it logs the stage
			watch := newLogWatch(t, filepath.Join(dir, k.name, "logs"))
			n := c.submit(bin, profiles, filepath.Join(dir, k.name))
			pid, last := watch.stopAt(n.job, k.victim, k.stage, time.Minute)
			t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) }) // if still frozen
			t.Logf("task %d (pid %d) stopped mid-run; its last log line: %s", k.victim, pid, last)

			waitFor(t, 3*time.Minute, "the other tasks to finish", func() bool {
				ts := c.tasks(n.job)
				for i, tk := range ts {
					if i != k.victim && tk.state != "COMPLETED" {
						return false
					}
				}
				return len(ts) == shards
			})
			if _, err := os.Stat(n.partition()); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("published with task %d's part missing (stat: %v)", k.victim, err)
			}
			if err := k.kill(n, pid); err != nil {
				t.Fatal(err)
			}
			id := fmt.Sprintf("%s_%d", n.job, k.victim)
			waitFor(t, time.Minute, "task "+id+" to end", func() bool { return c.tasks(n.job)[k.victim].state == k.state })
			t.Logf("task %d: %s, exit %s; left behind in its shard's directory: %v", k.victim, k.state,
				c.tasks(n.job)[k.victim].exit, leftovers(n.out, k.victim))
			if _, err := os.Stat(n.partition()); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("published after task %d was interrupted (stat: %v)", k.victim, err)
			}
			c.must("scontrol", "requeue", id)
			// a requeued job becomes eligible only after about two minutes;
			// let it start now
			c.must("scontrol", "update", "JobId="+id, "StartTime=now")
			ts := n.waitDone(3 * time.Minute)
			if tk := ts[k.victim]; tk.state != "COMPLETED" || tk.restarts != 1 || tk.exit != "0:0" {
				t.Errorf("requeued task %d: %s, %d restarts, exit %s; want COMPLETED after 1 restart, exit 0:0", k.victim, tk.state, tk.restarts, tk.exit)
			}
			n.check(want)
			if b, _ := os.ReadFile(n.logFile(k.victim)); !strings.Contains(string(b), `"msg":"run published"`) {
				t.Errorf("the requeued task %d, the last to finish, did not publish", k.victim)
			}
		})
	}
	t.Logf("whole Slurm test: %.1f s", time.Since(begin).Seconds())
}

// logWatch stops a task's process as soon as its log shows a stage
// starting, through inotify on the log directory.
type logWatch struct {
	t   *testing.T
	dir string
	fd  int
}

func newLogWatch(t *testing.T, dir string) *logWatch {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if _, err := unix.InotifyAddWatch(fd, dir, unix.IN_MODIFY|unix.IN_CREATE); err != nil {
		t.Fatal(err)
	}
	return &logWatch{t: t, dir: dir, fd: fd}
}

// stopAt waits until task i of job logs that stage started, stops its
// batchmatch process (SIGSTOP) and returns its pid and last log line.
func (w *logWatch) stopAt(job string, i int, stage string, timeout time.Duration) (int, string) {
	w.t.Helper()
	name := fmt.Sprintf("batchmatch-night-%s_%d.log", job, i)
	want := []byte(`"msg":"stage started"`)
	stageKey := []byte(`"stage":"` + stage + `"`)
	deadline := time.Now().Add(timeout)
	pid := 0
	buf := make([]byte, 64<<10)
	for time.Now().Before(deadline) {
		fds := []unix.PollFd{{Fd: int32(w.fd), Events: unix.POLLIN}}
		if _, err := unix.Poll(fds, 100); err != nil && !errors.Is(err, unix.EINTR) {
			w.t.Fatal(err)
		}
		for {
			if _, err := unix.Read(w.fd, buf); err != nil {
				break // drained (EAGAIN)
			}
		}
		b, err := os.ReadFile(filepath.Join(w.dir, name))
		if err != nil {
			continue
		}
		if pid == 0 {
			pid = findTask(job, i)
		}
		for _, l := range bytes.Split(b, []byte("\n")) {
			if bytes.Contains(l, want) && bytes.Contains(l, stageKey) {
				if pid == 0 {
					pid = findTask(job, i)
				}
				if pid == 0 {
					w.t.Fatalf("task %d logged %s but its process is gone", i, stage)
				}
				if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
					w.t.Fatalf("stopping task %d (pid %d): %v: it finished before it could be stopped", i, pid, err)
				}
				lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
				return pid, string(lines[len(lines)-1])
			}
		}
	}
	w.t.Fatalf("task %d never logged the start of %s in %v", i, stage, timeout)
	return 0, ""
}

// findTask returns the pid of the batchmatch process of task i of the
// array job (first attempt), or 0.
func findTask(job string, i int) int {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); strings.TrimSpace(string(comm)) != "batchmatch" {
			continue
		}
		env, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		vars := bytes.Split(env, []byte{0})
		has := func(kv string) bool {
			for _, v := range vars {
				if string(v) == kv {
					return true
				}
			}
			return false
		}
		if has("SLURM_ARRAY_JOB_ID="+job) && has(fmt.Sprintf("SLURM_ARRAY_TASK_ID=%d", i)) {
			return pid
		}
	}
	return 0
}

// leftovers lists, for the log, what an interrupted shard left under the
// output's temporary area (complete part attempts and .tmp ones).
func leftovers(out string, i int) []string {
	var l []string
	m, _ := filepath.Glob(filepath.Join(out, "_temporary", "shards", "*", "*", strconv.Itoa(i), "*"))
	for _, p := range m {
		l = append(l, filepath.Base(p))
	}
	return l
}

// tablePath is the file of table in the published partition dir: the one
// its _SUCCESS lists (file names carry the publishing attempt's id).
func tablePath(dir, table string) string {
	body, _ := os.ReadFile(filepath.Join(dir, "_SUCCESS"))
	for _, line := range strings.Split(string(body), "\n") {
		if f, ok := strings.CutPrefix(line, "file "); ok {
			f, _, _ = strings.Cut(f, " ") // "file <path> <size>"
			if strings.HasPrefix(f, table+"/") {
				return filepath.Join(dir, filepath.FromSlash(f))
			}
		}
	}
	return filepath.Join(dir, table, "part-00000.parquet")
}
