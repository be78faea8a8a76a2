package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/osmosis/batchmatch/pipeline/store"
	"github.com/osmosis/batchmatch/pipeline/store/storetest"
)

// runProc runs the binary with extra environment variables and returns its
// exit code (-1 when a signal ended it), stderr, and the signal.
func runProc(t *testing.T, bin string, env []string, args ...string) (int, string, syscall.Signal) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var sig syscall.Signal
	if cmd.ProcessState != nil {
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			sig = ws.Signal()
		}
	}
	return exitOf(err), stderr.String(), sig
}

// pubState is a published partition as a reader sees it: _SUCCESS, then
// the files it lists.
type pubState struct {
	ok      bool // _SUCCESS exists
	runID   string
	files   []string
	matches []byte
}

// parsePub reads a _SUCCESS body and the files it lists through read; a
// listed file that is missing fails the test.
func parsePub(t *testing.T, body []byte, read func(rel string) ([]byte, error)) pubState {
	t.Helper()
	s := pubState{ok: true}
	for _, line := range strings.Split(string(body), "\n") {
		k, v, _ := strings.Cut(line, " ")
		switch k {
		case "run_id":
			s.runID = v
		case "file":
			name, _, _ := strings.Cut(v, " ") // "file <path> <size>"
			s.files = append(s.files, name)
		}
	}
	files := s.files
	if len(files) == 0 {
		// A _SUCCESS of batchmatch before the file lists: the fixed names.
		files = []string{"matches/part-00000.parquet", "soulmates/part-00000.parquet", "rejects/part-00000.parquet"}
	}
	for _, f := range files {
		b, err := read(f)
		if err != nil {
			t.Fatalf("_SUCCESS of run %s lists %s, which is gone: %v", s.runID, f, err)
		}
		if strings.HasPrefix(f, "matches/") {
			s.matches = b
		}
	}
	return s
}

func localPub(t *testing.T, part string) pubState {
	t.Helper()
	body, err := os.ReadFile(filepath.Join(part, "_SUCCESS"))
	if errors.Is(err, os.ErrNotExist) {
		return pubState{}
	}
	if err != nil {
		t.Fatal(err)
	}
	return parsePub(t, body, func(rel string) ([]byte, error) { return os.ReadFile(filepath.Join(part, rel)) })
}

func remotePub(t *testing.T, st *store.Store, part string) pubState {
	t.Helper()
	ctx := context.Background()
	body, err := st.ReadFile(ctx, store.Join(part, "_SUCCESS"))
	if errors.Is(err, os.ErrNotExist) {
		return pubState{}
	}
	if err != nil {
		t.Fatal(err)
	}
	return parsePub(t, body, func(rel string) ([]byte, error) { return st.ReadFile(ctx, store.Join(part, rel)) })
}

// which says whether s is the reference old or new publish ("" when it is
// neither: a mix, or nothing).
func which(s pubState, old, neu pubState) string {
	switch {
	case !s.ok:
		return ""
	case s.runID == old.runID && bytes.Equal(s.matches, old.matches):
		return "old"
	case s.runID == neu.runID && bytes.Equal(s.matches, neu.matches):
		return "new"
	}
	return ""
}

// overwriteFixture is a population, a bad input, and the reference
// publishes of an old (--k 5) and a new (--k 10) run over it.
type overwriteFixture struct {
	bin, dir, profiles, bad string
	old, neu                pubState
}

func newOverwriteFixture(t *testing.T) *overwriteFixture {
	t.Helper()
	f := &overwriteFixture{bin: buildBinary(t), dir: t.TempDir()}
	f.profiles = genSample(t, f.dir, "1500")
	f.bad = filepath.Join(f.dir, "bad")
	os.MkdirAll(f.bad, 0o755)
	os.WriteFile(filepath.Join(f.bad, "x.parquet"), []byte("not parquet"), 0o644)
	for _, r := range []struct {
		k  string
		to *pubState
	}{{"5", &f.old}, {"10", &f.neu}} {
		out := filepath.Join(f.dir, "ref-k"+r.k)
		if code, stderr, _ := runProc(t, f.bin, nil, f.args(out, "--k", r.k)...); code != 0 {
			t.Fatalf("reference run: exit %d\n%s", code, stderr)
		}
		*r.to = localPub(t, filepath.Join(out, "dt=2026-11-24"))
	}
	return f
}

func (f *overwriteFixture) args(out string, extra ...string) []string {
	return append([]string{"run", "--profiles", f.profiles, "--out", out, "--as-of", "2026-11-24",
		"--log-format", "json", "--max-reject-ratio", "1"}, extra...)
}

// TestOverwriteCrashPoints kills (SIGKILL, from inside, at a named step:
// $BATCHMATCH_TEST_CRASH_AT) a run with --overwrite at every step between
// the staging of its tables and the end of its cleanup, on a file system
// with RENAME_EXCHANGE and as on one without ($BATCHMATCH_TEST_NO_EXCHANGE),
// and a first publish. After the kill a complete partition is published,
// the old one or the new one (without RENAME_EXCHANGE a kill between its
// two renames leaves the old one in the staging area: none is published
// until the next run); the next run, although it fails on its input, puts
// back what needs putting back; the retry publishes the new partition and
// leaves no staging area.
func TestOverwriteCrashPoints(t *testing.T) {
	if testing.Short() {
		t.Skip("process-level")
	}
	f := newOverwriteFixture(t)
	for _, mode := range []struct {
		name  string
		env   []string
		first bool
		steps []string
	}{
		{"first publish", nil, true, []string{"tables", "staged", "renamed", "published"}},
		{"exchange", nil, false, []string{"tables", "staged", "exchanged", "published", "removing"}},
		{"renames", []string{"BATCHMATCH_TEST_NO_EXCHANGE=1"}, false, []string{"tables", "staged", "aside", "renamed", "published", "removing"}},
	} {
		for _, step := range mode.steps {
			t.Run(mode.name+"/"+step, func(t *testing.T) {
				out := filepath.Join(t.TempDir(), "out")
				part := filepath.Join(out, "dt=2026-11-24")
				if !mode.first {
					if code, stderr, _ := runProc(t, f.bin, nil, f.args(out, "--k", "5")...); code != 0 {
						t.Fatalf("old publish: exit %d\n%s", code, stderr)
					}
				}
				env := append([]string{"BATCHMATCH_TEST_CRASH_AT=" + step}, mode.env...)
				code, stderr, sig := runProc(t, f.bin, env, f.args(out, "--overwrite")...)
				if sig != syscall.SIGKILL {
					t.Fatalf("the run was not killed at %s: exit %d\n%s", step, code, stderr)
				}
				got := which(localPub(t, part), f.old, f.neu)
				mayWait := mode.first && (step == "tables" || step == "staged") || step == "aside"
				if got == "" && !mayWait {
					t.Fatalf("killed at %s: no complete partition published", step)
				}
				// The next run fails on its input, after recovering.
				code, stderr, _ = runProc(t, f.bin, nil, "run", "--profiles", f.bad, "--out", out, "--as-of", "2026-11-24", "--log-format", "json", "--overwrite")
				if code != exitDataErr {
					t.Fatalf("the next run: exit %d, want %d\n%s", code, exitDataErr, stderr)
				}
				got = which(localPub(t, part), f.old, f.neu)
				if got == "" && !(mode.first && (step == "tables" || step == "staged")) {
					t.Fatalf("killed at %s, then a next run: no complete partition published", step)
				}
				if _, err := os.Stat(filepath.Join(out, "_temporary")); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("the next run left the staging area (stat: %v)", err)
				}
				// The scheduler's retry.
				if code, stderr, _ := runProc(t, f.bin, mode.env, f.args(out, "--overwrite")...); code != 0 {
					t.Fatalf("retry: exit %d\n%s", code, stderr)
				}
				if s := localPub(t, part); which(s, f.old, f.neu) != "new" || len(s.files) < 4 {
					t.Fatalf("the retry did not publish the new partition, _SUCCESS listing its files (%q)", s.files)
				}
				if ents, _ := os.ReadDir(out); len(ents) != 2 {
					t.Errorf("after the retry OUT holds %v, want .lock and the partition", ents)
				}
			})
		}
	}
}

// TestOverwriteCrashPointsRemote is TestOverwriteCrashPoints for an
// object-store --out (an in-process S3 server): killed before _SUCCESS is
// replaced, after, and while the old publish's objects are deleted, and
// inside its spool, the partition always has a _SUCCESS whose files all
// exist, the old publish's or the new one's. The next remote run removes
// the killed run's spool directory (nobody holds its lock), and the retry
// leaves exactly the files its _SUCCESS lists.
func TestOverwriteCrashPointsRemote(t *testing.T) {
	if testing.Short() {
		t.Skip("process-level")
	}
	f := newOverwriteFixture(t)
	fake := storetest.NewFakeS3(t, "bm")
	st := store.New(nil)
	defer st.Close()
	ctx := context.Background()
	for _, step := range []string{"tables", "staged", "renamed", "remote-uploaded", "remote-success", "remote-removing"} {
		t.Run(step, func(t *testing.T) {
			out := store.Join(fake.URL, "crash-"+step)
			part := store.Join(out, "dt=2026-11-24")
			spool := t.TempDir()
			args := func(extra ...string) []string {
				return append(f.args(out, "--spool-dir", spool), extra...)
			}
			if code, stderr, _ := runProc(t, f.bin, nil, args("--k", "5")...); code != 0 {
				t.Fatalf("old publish: exit %d\n%s", code, stderr)
			}
			code, stderr, sig := runProc(t, f.bin, []string{"BATCHMATCH_TEST_CRASH_AT=" + step}, args("--overwrite")...)
			if sig != syscall.SIGKILL {
				t.Fatalf("the run was not killed at %s: exit %d\n%s", step, code, stderr)
			}
			if which(remotePub(t, st, part), f.old, f.neu) == "" {
				t.Fatalf("killed at %s: the published partition is not complete", step)
			}
			if ents, _ := filepath.Glob(filepath.Join(spool, "batchmatch-spool-*")); len(ents) == 0 {
				t.Fatal("the killed run left no spool: was it killed in the spool phase?")
			}
			// The next run (it fails on its input) removes the dead spool.
			code, stderr, _ = runProc(t, f.bin, nil, "run", "--profiles", f.bad, "--out", out, "--as-of", "2026-11-24",
				"--log-format", "json", "--spool-dir", spool)
			if code != exitDataErr {
				t.Fatalf("the next run: exit %d\n%s", code, stderr)
			}
			if ents, _ := os.ReadDir(spool); len(ents) != 0 {
				t.Errorf("the spool of the killed run survived the next run: %v", ents)
			}
			if code, stderr, _ := runProc(t, f.bin, nil, args("--overwrite")...); code != 0 {
				t.Fatalf("retry: exit %d\n%s", code, stderr)
			}
			s := remotePub(t, st, part)
			if which(s, f.old, f.neu) != "new" {
				t.Fatal("the retry did not publish the new partition")
			}
			keys, err := st.List(ctx, part)
			if err != nil {
				t.Fatal(err)
			}
			want := append([]string{"_SUCCESS"}, s.files...)
			slices.Sort(want)
			if !slices.Equal(keys, want) {
				t.Errorf("after the retry the partition holds %q, want exactly %q", keys, want)
			}
		})
	}
}

// TestOverwriteInodeBudget runs --overwrite on a tmpfs whose inode budget
// runs out at each file the publish creates in turn (the failure the
// issue met: _SUCCESS.tmp on a tmpfs without inodes). Every failed run
// exits 74 and leaves the old partition or the new one published, the
// next run (which fails on its input) keeps it, and the retry on a
// roomier file system publishes. Needs root (mount); skipped otherwise.
func TestOverwriteInodeBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("process-level")
	}
	f := newOverwriteFixture(t)
	mnt := t.TempDir()
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, "size=64m,nr_inodes=10000,mode=0755"); err != nil {
		t.Skipf("cannot mount a tmpfs (%v): needs root", err)
	}
	t.Cleanup(func() { unix.Unmount(mnt, unix.MNT_DETACH) })
	budget := func(n uint64) {
		t.Helper()
		if err := unix.Mount("tmpfs", mnt, "tmpfs", unix.MS_REMOUNT, fmt.Sprintf("size=64m,nr_inodes=%d,mode=0755", n)); err != nil {
			t.Fatal(err)
		}
	}
	used := func() uint64 {
		var s unix.Statfs_t
		if err := unix.Statfs(mnt, &s); err != nil {
			t.Fatal(err)
		}
		return s.Files - s.Ffree
	}
	failures := 0
	for k := uint64(0); k < 60; k++ {
		budget(10000)
		out := filepath.Join(mnt, "out")
		os.RemoveAll(out)
		part := filepath.Join(out, "dt=2026-11-24")
		if code, stderr, _ := runProc(t, f.bin, nil, f.args(out, "--k", "5", "--report")...); code != 0 {
			t.Fatalf("old publish: exit %d\n%s", code, stderr)
		}
		budget(used() + k)
		code, stderr, _ := runProc(t, f.bin, nil, f.args(out, "--overwrite", "--report")...)
		got := which(localPub(t, part), f.old, f.neu)
		if code == 0 {
			if got != "new" {
				t.Fatalf("%d spare inodes: exit 0, but the new partition is not published", k)
			}
			if failures == 0 {
				t.Fatal("no run failed for want of inodes")
			}
			return
		}
		failures++
		if code != exitIOErr || !strings.Contains(stderr, "no space left on device") {
			t.Fatalf("%d spare inodes: exit %d, want %d (no space)\n%s", k, code, exitIOErr, stderr)
		}
		if got == "" {
			t.Fatalf("%d spare inodes: no complete partition after the failed run\n%s", k, stderr)
		}
		code, stderr, _ = runProc(t, f.bin, nil, "run", "--profiles", f.bad, "--out", out, "--as-of", "2026-11-24", "--log-format", "json", "--overwrite")
		if code != exitDataErr && code != exitIOErr {
			t.Fatalf("%d spare inodes, the next run: exit %d\n%s", k, code, stderr)
		}
		if which(localPub(t, part), f.old, f.neu) == "" {
			t.Fatalf("%d spare inodes: no complete partition after the next run", k)
		}
		budget(10000)
		if code, stderr, _ := runProc(t, f.bin, nil, f.args(out, "--overwrite", "--report")...); code != 0 || which(localPub(t, part), f.old, f.neu) != "new" {
			t.Fatalf("%d spare inodes, the retry: exit %d\n%s", k, code, stderr)
		}
	}
	t.Fatal("the overwrite never succeeded")
}

// TestSymlinksInsideOut plants links inside OUT where the job keeps its
// lock, its staging area, its partition and what it removes. Where the job
// would have to follow one it refuses (exit 77) naming the link; where a
// link is something to remove, the link goes and its target stays.
func TestSymlinksInsideOut(t *testing.T) {
	if testing.Short() {
		t.Skip("process-level")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	profiles := genSample(t, dir, "300")
	args := func(out string, extra ...string) []string {
		return append([]string{"run", "--profiles", profiles, "--out", out, "--as-of", "2026-11-24", "--log-format", "json", "--max-reject-ratio", "1"}, extra...)
	}
	for _, tc := range []struct {
		name  string
		plant func(out, victim string) // victim is a directory holding keep.txt
		extra []string
		code  int
	}{
		{"staging area is a link", func(out, victim string) { os.Symlink(victim, filepath.Join(out, "_temporary")) }, nil, exitNoPerm},
		{"lock is a link", func(out, victim string) { os.Symlink(filepath.Join(victim, "keep.txt"), filepath.Join(out, ".lock")) }, nil, exitNoPerm},
		{"partition is a link", func(out, victim string) { os.Symlink(victim, filepath.Join(out, "dt=2026-11-24")) }, []string{"--overwrite"}, exitNoPerm},
		{"dead attempt is a link", func(out, victim string) {
			os.MkdirAll(filepath.Join(out, "_temporary"), 0o750)
			os.Symlink(victim, filepath.Join(out, "_temporary", "20261124T000000Z-1-deadbeef"))
		}, nil, 0},
		{"link inside a dead attempt", func(out, victim string) {
			os.MkdirAll(filepath.Join(out, "_temporary", "20261124T000000Z-1-deadbeef", "dt=2026-11-24"), 0o750)
			os.Symlink(victim, filepath.Join(out, "_temporary", "20261124T000000Z-1-deadbeef", "dt=2026-11-24", "matches"))
		}, nil, 0},
		{"shard parts are a link", func(out, victim string) {
			os.MkdirAll(filepath.Join(out, "_temporary"), 0o750)
			os.Symlink(victim, filepath.Join(out, "_temporary", "shards"))
		}, nil, 0},
		{"link inside the shard parts", func(out, victim string) {
			d := filepath.Join(out, "_temporary", "shards", "dt=2026-11-23", "2", "0")
			os.MkdirAll(d, 0o750)
			os.Symlink(victim, filepath.Join(d, "20261124T000000Z-1-deadbeef.tmp"))
		}, nil, 0},
		{"link inside the replaced partition", func(out, victim string) {
			if code, stderr := runBin(t, bin, args(out, "--k", "5")...); code != 0 {
				t.Fatalf("old publish: exit %d\n%s", code, stderr)
			}
			os.Symlink(victim, filepath.Join(out, "dt=2026-11-24", "matches", "evil"))
		}, []string{"--overwrite"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			out, victim := filepath.Join(base, "out"), filepath.Join(base, "victim")
			os.MkdirAll(out, 0o750)
			os.MkdirAll(victim, 0o750)
			os.WriteFile(filepath.Join(victim, "keep.txt"), []byte("precious"), 0o640)
			tc.plant(out, victim)
			code, stderr := runBin(t, bin, args(out, tc.extra...)...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\n%s", code, tc.code, stderr)
			}
			if tc.code == exitNoPerm && !strings.Contains(stderr, "symbolic link") {
				t.Errorf("the refusal does not name the link:\n%s", stderr)
			}
			if b, err := os.ReadFile(filepath.Join(victim, "keep.txt")); err != nil || string(b) != "precious" {
				t.Fatalf("the link's target was touched: %q, %v", b, err)
			}
			if tc.code == 0 && !fileExists(filepath.Join(out, "dt=2026-11-24", "_SUCCESS")) {
				t.Fatal("nothing published")
			}
		})
	}
}

// TestStaleShardParts: shards ran, the inputs were delivered again, and
// the shards ran again. Commit publishes the complete set of the current
// inputs (not the earliest part of each index); while every shard has a
// part but the new set is incomplete it says that the inputs changed
// (65: run the shards again) instead of taking the stale one or waiting
// for good.
func TestStaleShardParts(t *testing.T) {
	if testing.Short() {
		t.Skip("process-level")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	profiles := filepath.Join(dir, "profiles")
	gen := func(seed string) {
		os.RemoveAll(profiles)
		if code, stderr := runBin(t, bin, "gen", "--out", profiles, "--n", "1500", "--shards", "2", "--seed", seed, "--as-of", "2026-11-24"); code != 0 {
			t.Fatalf("gen: %d\n%s", code, stderr)
		}
	}
	common := []string{"--profiles", profiles, "--as-of", "2026-11-24", "--log-format", "json", "--max-reject-ratio", "1"}
	out := filepath.Join(dir, "out")
	shard := func(i int) {
		t.Helper()
		args := append([]string{"run", "--out", out, "--shard-count", "2", "--shard-index", fmt.Sprint(i)}, common...)
		if code, stderr := runBin(t, bin, args...); code != 0 {
			t.Fatalf("shard %d: exit %d\n%s", i, code, stderr)
		}
	}
	commit := []string{"commit", "--out", out, "--as-of", "2026-11-24", "--log-format", "json"}
	gen("1")
	shard(0)
	shard(1)
	gen("2") // the inputs are delivered again
	ref := filepath.Join(dir, "ref")
	if code, stderr := runBin(t, bin, append([]string{"run", "--out", ref}, common...)...); code != 0 {
		t.Fatalf("reference: exit %d\n%s", code, stderr)
	}
	shard(1)
	code, stderr := runBin(t, bin, commit...)
	if code != exitDataErr || !strings.Contains(stderr, "the inputs changed while the shards ran") {
		t.Fatalf("commit with the new set incomplete: exit %d, want %d saying so\n%s", code, exitDataErr, stderr)
	}
	shard(0)
	if code, stderr := runBin(t, bin, commit...); code != 0 {
		t.Fatalf("commit: exit %d\n%s", code, stderr)
	}
	want := tables(t, filepath.Join(ref, "dt=2026-11-24"))
	got := tables(t, filepath.Join(out, "dt=2026-11-24"))
	for tb := range want {
		if !bytes.Equal(got[tb], want[tb]) {
			t.Errorf("%s differs from a whole run over the current inputs", tb)
		}
	}
	if _, err := os.Stat(filepath.Join(out, "_temporary")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("parts left after commit (stat: %v)", err)
	}
}

// TestLeftovers: what killed processes leave is removed by the next run
// that can prove them dead, and only then. A commit killed after _SUCCESS
// leaves its parts: a run for another date removes them (the published
// manifest names them), and committing again succeeds (0) without
// publishing. A shard killed while writing leaves <attempt>.tmp: the next
// run removes it, but not the .tmp of a shard that is alive (its lock is
// held).
func TestLeftovers(t *testing.T) {
	if testing.Short() {
		t.Skip("process-level")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	profiles := genSample(t, dir, "1500")
	common := []string{"--profiles", profiles, "--log-format", "json", "--max-reject-ratio", "1"}
	out := filepath.Join(dir, "out")
	parts := filepath.Join(out, "_temporary", "shards", "dt=2026-11-24")
	for i := range 2 {
		args := append([]string{"run", "--out", out, "--as-of", "2026-11-24", "--shard-count", "2", "--shard-index", fmt.Sprint(i)}, common...)
		if code, stderr := runBin(t, bin, args...); code != 0 {
			t.Fatalf("shard %d: exit %d\n%s", i, code, stderr)
		}
	}
	commit := []string{"commit", "--out", out, "--as-of", "2026-11-24", "--log-format", "json"}
	if code, stderr, sig := runProc(t, bin, []string{"BATCHMATCH_TEST_CRASH_AT=committed"}, commit...); sig != syscall.SIGKILL {
		t.Fatalf("commit not killed after publishing: exit %d\n%s", code, stderr)
	}
	published := localPub(t, filepath.Join(out, "dt=2026-11-24"))
	if !published.ok || !fileExists(parts) {
		t.Fatal("the killed commit should have published and left its parts")
	}
	// A shard of another date killed while writing its part, and one alive.
	killed := append([]string{"run", "--out", out, "--as-of", "2026-11-23", "--shard-count", "2", "--shard-index", "0"}, common...)
	if code, stderr, sig := runProc(t, bin, []string{"BATCHMATCH_TEST_CRASH_AT=shard-written"}, killed...); sig != syscall.SIGKILL {
		t.Fatalf("shard not killed: exit %d\n%s", code, stderr)
	}
	idx := filepath.Join(out, "_temporary", "shards", "dt=2026-11-23", "2", "0")
	dead, _ := filepath.Glob(filepath.Join(idx, "*.tmp"))
	if len(dead) != 1 {
		t.Fatalf("the killed shard left %v", dead)
	}
	alive := filepath.Join(filepath.Dir(idx), "1", "20261124T000000Z-1-aaaaaaaa")
	os.MkdirAll(alive+".tmp", 0o750)
	lk, err := os.OpenFile(alive+".lock", os.O_CREATE|os.O_RDWR, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	defer lk.Close()
	if err := unix.Flock(int(lk.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	// A whole run of a third date proves both leftovers dead.
	if code, stderr := runBin(t, bin, append([]string{"run", "--out", out, "--as-of", "2026-11-25"}, common...)...); code != 0 {
		t.Fatalf("run: exit %d\n%s", code, stderr)
	}
	if fileExists(parts) {
		t.Error("the parts the published partition consumed survived the next run")
	}
	if fileExists(dead[0]) || fileExists(strings.TrimSuffix(dead[0], ".tmp")+".lock") {
		t.Error("the part of the killed shard survived the next run")
	}
	if !fileExists(alive + ".tmp") {
		t.Error("the next run removed the part of a shard that is alive")
	}
	// Committing again: already published by this run.
	code, stderr := runBin(t, bin, commit...)
	if code != 0 {
		t.Fatalf("commit again: exit %d, want 0\n%s", code, stderr)
	}
	if again := localPub(t, filepath.Join(out, "dt=2026-11-24")); again.runID != published.runID || !bytes.Equal(again.matches, published.matches) {
		t.Error("committing again changed the partition")
	}
}

// TestRepeatedCommitAfterKill: a commit killed after _SUCCESS and before it
// removed its parts is retried by the scheduler: the retry succeeds (0)
// without publishing again and removes the parts; so does a retry with
// --overwrite (it publishes the same tables again).
func TestRepeatedCommitAfterKill(t *testing.T) {
	if testing.Short() {
		t.Skip("process-level")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	profiles := genSample(t, dir, "1500")
	for _, overwrite := range []bool{false, true} {
		t.Run(fmt.Sprintf("overwrite=%v", overwrite), func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			for i := range 2 {
				if code, stderr := runBin(t, bin, "run", "--profiles", profiles, "--out", out, "--as-of", "2026-11-24", "--max-reject-ratio", "1",
					"--log-format", "json", "--shard-count", "2", "--shard-index", fmt.Sprint(i)); code != 0 {
					t.Fatalf("shard %d: exit %d\n%s", i, code, stderr)
				}
			}
			commit := []string{"commit", "--out", out, "--as-of", "2026-11-24", "--log-format", "json"}
			if overwrite {
				commit = append(commit, "--overwrite")
			}
			if _, stderr, sig := runProc(t, bin, []string{"BATCHMATCH_TEST_CRASH_AT=committed"}, commit...); sig != syscall.SIGKILL {
				t.Fatalf("commit not killed\n%s", stderr)
			}
			first := localPub(t, filepath.Join(out, "dt=2026-11-24"))
			if code, stderr := runBin(t, bin, commit...); code != 0 {
				t.Fatalf("retry: exit %d\n%s", code, stderr)
			}
			again := localPub(t, filepath.Join(out, "dt=2026-11-24"))
			if again.runID != first.runID || !bytes.Equal(again.matches, first.matches) {
				t.Error("the retry changed the tables")
			}
			if _, err := os.Stat(filepath.Join(out, "_temporary")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("parts left after the retry (stat: %v)", err)
			}
		})
	}
}

// TestFileURLModes: output through a file:// URL is private like a local
// --out: files 0640, directories 0750.
func TestFileURLModes(t *testing.T) {
	if testing.Short() {
		t.Skip("process-level")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	profiles := genSample(t, dir, "300")
	out := filepath.Join(dir, "out")
	if code, stderr := runBin(t, bin, "run", "--profiles", profiles, "--out", "file://"+out, "--as-of", "2026-11-24",
		"--log-format", "json", "--max-reject-ratio", "1", "--spool-dir", t.TempDir()); code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	n := 0
	filepath.WalkDir(out, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, _ := d.Info()
		want := os.FileMode(0o640)
		if d.IsDir() {
			want = 0o750 | os.ModeDir
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode(), want)
		}
		n++
		return nil
	})
	if n < 8 {
		t.Fatalf("only %d entries under %s", n, out)
	}
}

// TestRemoteIdempotent: re-running a published object-storage night with
// the same inputs and settings (the same run id) succeeds without
// uploading anything; another run id is refused (73) unless --overwrite.
// The same holds for commit.
func TestRemoteIdempotent(t *testing.T) {
	if testing.Short() {
		t.Skip("process-level")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	profiles := genSample(t, dir, "1500")
	fake := storetest.NewFakeS3(t, "bm")
	spool := t.TempDir()
	countWrites := func(run func()) int {
		var n int
		fake.SetPlan(func(_ int64, r *http.Request) storetest.Fault {
			if r.Method == http.MethodPut || r.Method == http.MethodPost || r.Method == http.MethodDelete {
				n++
			}
			return storetest.Pass
		})
		run()
		fake.SetPlan(nil)
		return n
	}
	common := []string{"--profiles", profiles, "--as-of", "2026-11-24", "--log-format", "json", "--max-reject-ratio", "1", "--spool-dir", spool}
	t.Run("run", func(t *testing.T) {
		out := store.Join(fake.URL, "idem-run")
		args := append([]string{"run", "--out", out}, common...)
		if code, stderr := runBin(t, bin, args...); code != 0 {
			t.Fatalf("first run: exit %d\n%s", code, stderr)
		}
		if n := countWrites(func() {
			cmd := exec.Command(bin, args...)
			b, err := cmd.Output()
			if err != nil || !strings.Contains(string(b), "already published") {
				t.Fatalf("same run again: %v\n%s", err, b)
			}
		}); n != 0 {
			t.Errorf("the same run again wrote %d objects", n)
		}
		if code, stderr := runBin(t, bin, append(args, "--k", "5")...); code != exitCantCreat || !strings.Contains(stderr, "--overwrite") {
			t.Errorf("another run without --overwrite: exit %d, want %d\n%s", code, exitCantCreat, stderr)
		}
	})
	t.Run("commit", func(t *testing.T) {
		out := store.Join(fake.URL, "idem-commit")
		for i := range 2 {
			if code, stderr := runBin(t, bin, append([]string{"run", "--out", out, "--shard-count", "2", "--shard-index", fmt.Sprint(i)}, common...)...); code != 0 {
				t.Fatalf("shard %d: exit %d\n%s", i, code, stderr)
			}
		}
		commit := []string{"commit", "--out", out, "--as-of", "2026-11-24", "--log-format", "json", "--spool-dir", spool}
		if _, stderr, sig := runProc(t, bin, []string{"BATCHMATCH_TEST_CRASH_AT=remote-committed"}, commit...); sig != syscall.SIGKILL {
			t.Fatalf("commit not killed after publishing\n%s", stderr)
		}
		st := store.New(nil)
		defer st.Close()
		if keys, _ := st.List(context.Background(), store.Join(out, "_temporary")); len(keys) == 0 {
			t.Fatal("the killed commit should have left its parts")
		}
		var code int
		var stderr string
		if n := countWrites(func() { code, stderr = runBin(t, bin, commit...) }); code != 0 {
			t.Fatalf("commit again: exit %d, want 0\n%s", code, stderr)
		} else if keys, _ := st.List(context.Background(), out); slices.ContainsFunc(keys, func(k string) bool { return strings.HasPrefix(k, "_temporary/") }) {
			t.Errorf("the parts survived the repeated commit: %q", keys)
		} else if n == 0 {
			t.Error("the repeated commit did not remove the parts")
		}
		// Nothing to commit at all now: still 0.
		if code, stderr := runBin(t, bin, commit...); code != 0 {
			t.Fatalf("commit a third time: exit %d\n%s", code, stderr)
		}
	})
}

// TestExitCodeTable produces every exit code of README's table with a real
// failure of the binary (70, a bug, with one planted: no input may cause
// it), and checks the table lists exactly these codes.
func TestExitCodeTable(t *testing.T) {
	if testing.Short() {
		t.Skip("process-level")
	}
	bin := buildBinary(t)
	base, err := os.MkdirTemp("", "batchmatch-exit")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(base)
	os.Chmod(base, 0o755) // the permission cases run as nobody when the test is root
	os.Chmod(filepath.Dir(bin), 0o755)
	profiles := genSample(t, base, "400")
	filepath.WalkDir(base, func(p string, d os.DirEntry, err error) error {
		if err == nil {
			os.Chmod(p, map[bool]os.FileMode{true: 0o755, false: 0o644}[d.IsDir()])
		}
		return nil
	})
	many := filepath.Join(base, "many")
	if code, stderr := runBin(t, bin, "gen", "--out", many, "--n", "200", "--shards", "40", "--as-of", "2026-11-24"); code != 0 {
		t.Fatalf("gen: %s", stderr)
	}
	bad := filepath.Join(base, "bad")
	os.MkdirAll(bad, 0o755)
	os.WriteFile(filepath.Join(bad, "x.parquet"), []byte("not parquet"), 0o644)
	big := filepath.Join(base, "big")
	if code, stderr := runBin(t, bin, "gen", "--out", big, "--n", "40000", "--shards", "2", "--as-of", "2026-11-24"); code != 0 {
		t.Fatalf("gen: %s", stderr)
	}
	fake := storetest.NewFakeS3(t, "bm")
	tlsFake := storetest.NewFakeS3TLS(t, "bm")
	n := 0
	newOut := func() string {
		n++
		out := filepath.Join(base, fmt.Sprintf("out%d", n))
		return out
	}
	asNobody := os.Geteuid() == 0
	type step struct {
		args  []string
		env   []string
		shell string // run through sh -c with this prefix (ulimit)
		setup func() (cleanup func())
		user  bool // run as an unprivileged user
		plan  func(int64, *http.Request) storetest.Fault
		sig   os.Signal // sent once the run has started reading
	}
	runOn := func(in, out string, extra ...string) []string {
		return append([]string{"run", "--profiles", in, "--out", out, "--as-of", "2026-11-24", "--log-format", "json", "--max-reject-ratio", "1"}, extra...)
	}
	run := func(out string, extra ...string) []string { return runOn(profiles, out, extra...) }
	published := newOut()
	linked := newOut()
	foreign := newOut()
	os.MkdirAll(filepath.Join(foreign, "dt=2026-11-24"), 0o750)
	os.WriteFile(filepath.Join(foreign, "dt=2026-11-24", "notes.txt"), []byte("someone's"), 0o640)
	afile := filepath.Join(base, "afile")
	os.WriteFile(afile, []byte("a file"), 0o644)
	if code, stderr := runBin(t, bin, run(published)...); code != 0 {
		t.Fatalf("setup: %d\n%s", code, stderr)
	}
	remoteRun := func(out string, extra ...string) []string {
		return append(run(out, "--spool-dir", base), extra...)
	}
	var held *os.File
	cases := []struct {
		code int
		name string
		say  string
		step step
	}{
		{0, "published", "", step{args: run(newOut())}},
		{0, "already published by the same run", "", step{args: run(published)}},
		{exitCrash, "the Go runtime cannot start (address space limit)", "fatal error", step{args: run(newOut()), shell: "ulimit -v 200000; "}},
		{exitUsage, "unknown flag", "unknown flag", step{args: run(newOut(), "--frobnicate")}},
		{exitUsage, "bad partition name", "--partition", step{args: run(newOut(), "--partition", " ")}},
		{exitUsage, "an idle timeout that is no duration", "BATCHMATCH_STORE_IDLE_TIMEOUT", step{args: run(newOut()), env: []string{"BATCHMATCH_STORE_IDLE_TIMEOUT=banana"}}},
		{exitUsage, "inputs inside OUT", "is inside --out", step{args: runOn(published, filepath.Dir(published))}},
		{exitDataErr, "a shard that is not Parquet", "x.parquet", step{args: []string{"run", "--profiles", bad, "--out", newOut(), "--log-format", "json"}}},
		{exitNoInput, "input missing", "does not exist", step{args: []string{"run", "--profiles", filepath.Join(base, "nope"), "--out", newOut(), "--log-format", "json"}}},
		{exitSoftware, "a bug", "planted", step{args: run(newOut()), env: []string{"BATCHMATCH_TEST_PANIC=1"}}},
		{exitOSErr, "too many open files", "too many open files", step{args: []string{"run", "--profiles", many, "--out", newOut(), "--log-format", "json", "--max-reject-ratio", "1"}, shell: "ulimit -n 24; "}},
		{exitCantCreat, "published by another run", "--overwrite", step{args: run(published, "--k", "5")}},
		{exitCantCreat, "a foreign directory in the partition's place", "notes.txt", step{args: run(foreign)}},
		{exitIOErr, "disk full (file size limit)", "file too large", step{args: run(newOut()), shell: "ulimit -f 1; "}},
		{exitIOErr, "object store answers 503", "unavailable", step{args: remoteRun(store.Join(fake.URL, "e503")),
			plan: func(int64, *http.Request) storetest.Fault { return storetest.Err503 }}},
		{exitIOErr, "object store never answers", "stalled", step{args: remoteRun(store.Join(fake.URL, "stall")),
			env:  []string{"BATCHMATCH_STORE_IDLE_TIMEOUT=300ms"},
			plan: func(int64, *http.Request) storetest.Fault { return storetest.Stall }}},
		{exitTempFail, "output locked", "held by", step{args: run(published, "--overwrite"), setup: func() func() {
			held, _ = os.OpenFile(filepath.Join(published, ".lock"), os.O_RDWR, 0)
			unix.Flock(int(held.Fd()), unix.LOCK_EX)
			held.WriteAt([]byte("pid 1 on test, attempt holder\n"), 0)
			return func() { held.Close() }
		}}},
		{exitTempFail, "commit: no shard part yet", "no complete shard part", step{args: []string{"commit", "--out", newOut(), "--as-of", "2026-11-24", "--log-format", "json"}}},
		{exitNoPerm, "a shard the job may not read", "permission denied", step{user: true, args: func() []string {
			in := filepath.Join(base, "unreadable")
			os.MkdirAll(in, 0o755)
			b, _ := os.ReadFile(filepath.Join(profiles, "profiles-00000-of-00002.parquet"))
			os.WriteFile(filepath.Join(in, "a.parquet"), b, 0o000)
			out := newOut()
			os.MkdirAll(out, 0o750)
			if asNobody {
				os.Chown(out, 65534, 65534)
			}
			return []string{"run", "--profiles", in, "--out", out, "--as-of", "2026-11-24", "--log-format", "json"}
		}()}},
		{exitNoPerm, "an output the job may not write", "permission denied", step{user: true, args: func() []string {
			parent := filepath.Join(base, "readonly-parent")
			os.MkdirAll(parent, 0o555)
			os.Chmod(parent, 0o555)
			return run(filepath.Join(parent, "out"))
		}()}},
		{exitNoPerm, "a link inside OUT", "symbolic link", step{args: run(linked), setup: func() func() {
			os.MkdirAll(linked, 0o750)
			os.Symlink(filepath.Join(base, "victim"), filepath.Join(linked, ".lock"))
			return func() {}
		}}},
		{exitNoPerm, "object store denies access", "access denied", step{args: remoteRun(store.Join(fake.URL, "denied")),
			plan: func(int64, *http.Request) storetest.Fault { return storetest.Deny }}},
		{exitConfig, "untrusted TLS certificate", "certificate", step{args: remoteRun(store.Join(tlsFake.URL, "tls"))}},
		{exitConfig, "unknown access key", "InvalidAccessKeyId", step{args: remoteRun(store.Join(fake.URL, "badkey")),
			plan: func(int64, *http.Request) storetest.Fault { return storetest.BadKey }}},
		{exitConfig, "--out below a regular file (ENOTDIR)", "cannot be used as a directory", step{args: run(filepath.Join(afile, "out"))}},
		{exitConfig, "--out with a name too long (ENAMETOOLONG)", "cannot be used as a directory", step{args: run(filepath.Join(base, strings.Repeat("a", 300), "out"))}},
		{exitConfig, "--spool-dir missing", "--spool-dir", step{args: run(store.Join(fake.URL, "spool"), "--spool-dir", filepath.Join(base, "no-such-dir"))}},
		{exitConfig, "--out bucket missing", "no such bucket", step{args: remoteRun(store.Join(fake.URL, "nobucket")),
			plan: func(int64, *http.Request) storetest.Fault { return storetest.NoBucket }}},
		{exitNoInput, "--profiles bucket missing", "no such bucket", step{args: runOn(store.Join(fake.URL, "in"), newOut()),
			plan: func(int64, *http.Request) storetest.Fault { return storetest.NoBucket }}},
		{exitConfig, "S3 301 PermanentRedirect (another region)", "PermanentRedirect", step{args: remoteRun(store.Join(fake.URL, "region")),
			plan: func(int64, *http.Request) storetest.Fault { return storetest.Redirect }}},
		{exitConfig, "S3 400 InvalidRequest", "InvalidRequest", step{args: remoteRun(store.Join(fake.URL, "badreq")),
			plan: func(int64, *http.Request) storetest.Fault { return storetest.BadRequest }}},
		{exitConfig, "S3 501 NotImplemented", "NotImplemented", step{args: remoteRun(store.Join(fake.URL, "notimpl")),
			plan: func(int64, *http.Request) storetest.Fault { return storetest.NotImplemented }}},
		{exitInterrupted, "SIGINT", "", step{args: runOn(big, newOut()), sig: os.Interrupt}},
		{exitTerminated, "SIGTERM", "", step{args: runOn(big, newOut()), sig: syscall.SIGTERM}},
	}
	if mnt := t.TempDir(); unix.Mount("tmpfs", mnt, "tmpfs", unix.MS_RDONLY, "size=1m") == nil {
		t.Cleanup(func() { unix.Unmount(mnt, unix.MNT_DETACH) })
		cases = append(cases, struct {
			code int
			name string
			say  string
			step step
		}{exitNoPerm, "a read-only file system", "read-only file system", step{args: run(filepath.Join(mnt, "out"))}})
	} else {
		t.Log("no read-only file system case: cannot mount (not root)")
	}
	seen := map[int]bool{}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%d %s", tc.code, tc.name), func(t *testing.T) {
			s := tc.step
			if s.setup != nil {
				defer s.setup()()
			}
			fake.SetPlan(s.plan)
			defer fake.SetPlan(nil)
			var cmd *exec.Cmd
			if s.shell != "" {
				cmd = exec.Command("sh", append([]string{"-c", s.shell + `exec "$0" "$@"`, bin}, s.args...)...)
			} else {
				cmd = exec.Command(bin, s.args...)
			}
			cmd.Env = append(os.Environ(), s.env...)
			if s.user && asNobody {
				cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
			}
			var stderr syncBuffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			if s.sig != nil {
				deadline := time.Now().Add(60 * time.Second)
				for !strings.Contains(stderr.String(), `"stage":"read_profiles"`) && time.Now().Before(deadline) {
					time.Sleep(10 * time.Millisecond)
				}
				cmd.Process.Signal(s.sig)
			}
			code := exitOf(cmd.Wait())
			if code != tc.code {
				t.Fatalf("exit %d, want %d\n%s", code, tc.code, stderr.String())
			}
			if tc.say != "" && !strings.Contains(stderr.String(), tc.say) {
				t.Errorf("stderr does not say %q:\n%s", tc.say, stderr.String())
			}
			seen[tc.code] = true
		})
	}
	// README's table lists exactly the codes produced here.
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	table := map[int]bool{}
	in := false
	for _, line := range strings.Split(string(readme), "\n") {
		if strings.HasPrefix(line, "## Exit codes") {
			in = true
			continue
		}
		if in && strings.HasPrefix(line, "## ") {
			break
		}
		var a, b int
		if in && strings.HasPrefix(line, "| ") {
			if k, _ := fmt.Sscanf(line, "| %d / %d |", &a, &b); k == 2 {
				table[a], table[b] = true, true
			} else if k, _ := fmt.Sscanf(line, "| %d |", &a); k == 1 {
				table[a] = true
			}
		}
	}
	for c := range table {
		if !seen[c] {
			t.Errorf("README lists exit %d, which no case produced", c)
		}
	}
	for c := range seen {
		if !table[c] {
			t.Errorf("exit %d is not in README's table", c)
		}
	}
}

// TestInputsInsideOut: inputs delivered Hive-style into the partition the
// job publishes to (OUT/dt=DATE/profiles/) are refused (64, naming the
// input) before anything is written, locally and on object storage; a
// directory in the partition's place without _SUCCESS that holds anything
// batchmatch does not write is refused (73), never removed; on object
// storage a publish never deletes an object under the partition that
// batchmatch cannot have written. Before, the run read the inputs and then
// removed them as an unfinished partition (exit 0), and the night could
// not be run again.
func TestInputsInsideOut(t *testing.T) {
	if testing.Short() {
		t.Skip("process-level")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	profiles := genSample(t, dir, "300")
	args := func(in, out string, extra ...string) []string {
		return append([]string{"run", "--profiles", in, "--out", out, "--as-of", "2026-11-24", "--log-format", "json", "--max-reject-ratio", "1"}, extra...)
	}
	copyInputs := func(to string) {
		t.Helper()
		os.MkdirAll(to, 0o750)
		ents, _ := os.ReadDir(profiles)
		for _, e := range ents {
			b, _ := os.ReadFile(filepath.Join(profiles, e.Name()))
			os.WriteFile(filepath.Join(to, e.Name()), b, 0o640)
		}
	}
	t.Run("local inputs in the partition", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "data")
		in := filepath.Join(out, "dt=2026-11-24", "profiles")
		copyInputs(in)
		for _, extra := range [][]string{nil, {"--overwrite"}} {
			code, stderr := runBin(t, bin, args(in, out, extra...)...)
			if code != exitUsage || !strings.Contains(stderr, "is inside --out") {
				t.Fatalf("inputs inside OUT %v: exit %d, want %d naming them\n%s", extra, code, exitUsage, stderr)
			}
		}
		if ents, _ := os.ReadDir(in); len(ents) != 2 {
			t.Fatalf("the inputs were touched: %v", ents)
		}
		// the same through a link to OUT
		link := filepath.Join(t.TempDir(), "link")
		os.Symlink(out, link)
		if code, stderr := runBin(t, bin, args(in, link)...); code != exitUsage {
			t.Fatalf("inputs inside OUT reached through a link: exit %d, want %d\n%s", code, exitUsage, stderr)
		}
	})
	t.Run("foreign directory in the partition's place", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "out")
		notes := filepath.Join(out, "dt=2026-11-24", "notes.txt")
		os.MkdirAll(filepath.Dir(notes), 0o750)
		os.WriteFile(notes, []byte("someone's"), 0o640)
		for _, extra := range [][]string{nil, {"--overwrite"}} {
			code, stderr := runBin(t, bin, args(profiles, out, extra...)...)
			if code != exitCantCreat || !strings.Contains(stderr, "notes.txt") {
				t.Fatalf("a foreign directory in the partition's place %v: exit %d, want %d naming what is there\n%s", extra, code, exitCantCreat, stderr)
			}
		}
		if b, err := os.ReadFile(notes); err != nil || string(b) != "someone's" {
			t.Fatalf("the foreign file was touched: %q, %v", b, err)
		}
		// An unfinished partition of batchmatch's is still replaced.
		os.Remove(notes)
		os.MkdirAll(filepath.Join(out, "dt=2026-11-24", "matches"), 0o750)
		os.WriteFile(filepath.Join(out, "dt=2026-11-24", "matches", "part-00000.parquet"), []byte("half"), 0o640)
		if code, stderr := runBin(t, bin, args(profiles, out)...); code != 0 {
			t.Fatalf("over an unfinished partition of batchmatch's: exit %d\n%s", code, stderr)
		}
	})
	t.Run("object storage", func(t *testing.T) {
		fake := storetest.NewFakeS3(t, "bm")
		st := store.New(nil)
		defer st.Close()
		ctx := context.Background()
		out := store.Join(fake.URL, "data")
		in := store.Join(out, "dt=2026-11-24", "profiles")
		ents, _ := os.ReadDir(profiles)
		for _, e := range ents {
			if err := st.Upload(ctx, store.Join(in, e.Name()), filepath.Join(profiles, e.Name()), false); err != nil {
				t.Fatal(err)
			}
		}
		code, stderr := runBin(t, bin, args(in, out, "--spool-dir", t.TempDir())...)
		if code != exitUsage || !strings.Contains(stderr, "is inside --out") {
			t.Fatalf("inputs inside OUT on object storage: exit %d, want %d\n%s", code, exitUsage, stderr)
		}
		// Published twice (the second an overwrite): the objects under the
		// partition that batchmatch does not write stay.
		other := store.Join(fake.URL, "other")
		if err := st.WriteFile(ctx, store.Join(other, "dt=2026-11-24", "notes.txt"), []byte("someone's"), false); err != nil {
			t.Fatal(err)
		}
		for _, extra := range [][]string{{"--k", "5"}, {"--overwrite"}} {
			if code, stderr := runBin(t, bin, args(profiles, other, append(extra, "--spool-dir", t.TempDir())...)...); code != 0 {
				t.Fatalf("publish %v: exit %d\n%s", extra, code, stderr)
			}
		}
		if b, err := st.ReadFile(ctx, store.Join(other, "dt=2026-11-24", "notes.txt")); err != nil || string(b) != "someone's" {
			t.Fatalf("a publish deleted an object it never wrote: %q, %v", b, err)
		}
	})
}

// TestReplacedPartitionNameCrash: a run of --partition replaced killed
// once its partition was staged (complete, _SUCCESS included, never
// published) leaves nothing that recovery publishes: the operator's next
// run of other settings publishes (0), not 73 "published by another
// run". Before, the staged partition sat where earlier versions kept a
// replaced partition, and recovery published it.
func TestReplacedPartitionNameCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("process-level")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	profiles := genSample(t, dir, "300")
	out := filepath.Join(dir, "out")
	args := func(extra ...string) []string {
		return append([]string{"run", "--profiles", profiles, "--out", out, "--as-of", "2026-11-24", "--partition", "replaced",
			"--log-format", "json", "--max-reject-ratio", "1"}, extra...)
	}
	if _, stderr, sig := runProc(t, bin, []string{"BATCHMATCH_TEST_CRASH_AT=staged"}, args("--k", "3")...); sig != syscall.SIGKILL {
		t.Fatalf("the run was not killed\n%s", stderr)
	}
	code, stderr := runBin(t, bin, args("--k", "4")...)
	if code != 0 {
		t.Fatalf("the next run: exit %d, want 0\n%s", code, stderr)
	}
	if s := localPub(t, filepath.Join(out, "replaced")); !s.ok {
		t.Fatal("nothing published")
	}
}

// TestPartSymlinkToFIFO: a shard part's part.parquet replaced by a link to
// a FIFO (or by a FIFO) is never opened: it is not the regular file of the
// size part.json records, so the part is broken, removed (the link itself,
// never its target) and the shard counted as missing (75: run it again),
// at once; the next run on OUT takes the lock. Before, commit opened it by
// path and blocked for good in open(2), ignoring SIGTERM while holding the
// output lock, and every later run on OUT exited 75. (The deadline only
// detects the hang.)
func TestPartSymlinkToFIFO(t *testing.T) {
	if testing.Short() {
		t.Skip("process-level")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	profiles := genSample(t, dir, "300")
	for _, kind := range []string{"link to a FIFO", "FIFO"} {
		t.Run(kind, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			for i := range 2 {
				if code, stderr := runBin(t, bin, "run", "--profiles", profiles, "--out", out, "--as-of", "2026-11-24", "--shard-index", fmt.Sprint(i),
					"--shard-count", "2", "--log-format", "json", "--max-reject-ratio", "1"); code != 0 {
					t.Fatalf("shard %d: exit %d\n%s", i, code, stderr)
				}
			}
			parts, _ := filepath.Glob(filepath.Join(out, "_temporary", "shards", "dt=2026-11-24", "2", "1", "*", "part.parquet"))
			if len(parts) != 1 {
				t.Fatalf("parts: %q", parts)
			}
			os.Remove(parts[0])
			fifo := parts[0]
			if kind != "FIFO" {
				fifo = filepath.Join(dir, "fifo-"+strings.ReplaceAll(kind, " ", "-"))
				if err := os.Symlink(fifo, parts[0]); err != nil {
					t.Fatal(err)
				}
			}
			if err := unix.Mkfifo(fifo, 0o640); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(bin, "commit", "--out", out, "--as-of", "2026-11-24", "--log-format", "json")
			var stderr syncBuffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				if code := exitOf(err); code != exitTempFail || !strings.Contains(stderr.String(), "removing a broken shard part") {
					t.Fatalf("commit over a %s: exit %d, want %d after removing the broken part\n%s", kind, code, exitTempFail, stderr.String())
				}
				if kind != "FIFO" {
					if st, err := os.Lstat(fifo); err != nil || st.Mode()&os.ModeNamedPipe == 0 {
						t.Errorf("the link's target was touched: %v", err)
					}
				}
			case <-time.After(2 * time.Minute):
				cmd.Process.Kill()
				<-done
				t.Fatalf("commit blocked on a %s\n%s", kind, stderr.String())
			}
			if code, stderr := runBin(t, bin, "run", "--profiles", profiles, "--out", out, "--as-of", "2026-11-25", "--log-format", "json", "--max-reject-ratio", "1"); code != 0 {
				t.Fatalf("the next run on OUT: exit %d\n%s", code, stderr)
			}
		})
	}
}
