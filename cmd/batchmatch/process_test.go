package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/osmosis/batchmatch/pipeline/publish"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// buildBinary builds the real binary once per test process.
func buildBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "batchmatch-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "batchmatch")
		if out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput(); err != nil {
			buildErr = errors.New(string(out))
		}
	})
	if buildErr != nil {
		t.Fatalf("build: %v", buildErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

func exitOf(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// runBin runs the binary and returns its exit code and stderr.
func runBin(t *testing.T, bin string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	return exitOf(err), stderr.String()
}

// tables reads the three tables of a published partition directory.
func tables(t *testing.T, part string) map[string][]byte {
	t.Helper()
	return readTables(t, func(rel string) ([]byte, error) { return os.ReadFile(filepath.Join(part, rel)) })
}

// readTables reads the three tables through read (a path relative to the
// partition) as a reader should: the files _SUCCESS lists.
func readTables(t *testing.T, read func(rel string) ([]byte, error)) map[string][]byte {
	t.Helper()
	body, err := read("_SUCCESS")
	if err != nil {
		t.Fatalf("reading _SUCCESS: %v", err)
	}
	listed := map[string]string{}
	for _, f := range publish.ParseSuccess(body).Files {
		if tb, _, ok := strings.Cut(f, "/"); ok {
			listed[tb] = f
		}
	}
	out := map[string][]byte{}
	for _, tb := range []string{"matches", "soulmates", "rejects"} {
		b, err := read(listed[tb])
		if err != nil {
			t.Fatalf("reading %s: %v", tb, err)
		}
		out[tb] = b
	}
	return out
}

// TestKill9 kills the job at points spread over a whole run and re-runs it:
// the result always equals an uninterrupted run and no staging area survives.
func TestKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("process-level")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	profiles := genSample(t, dir, "6000")
	args := func(out string) []string {
		return []string{"run", "--profiles", profiles, "--out", out, "--as-of", "2026-11-24", "--log-format", "json", "--max-reject-ratio", "1"}
	}
	ref := filepath.Join(dir, "ref")
	start := time.Now()
	if code, stderr := runBin(t, bin, args(ref)...); code != 0 {
		t.Fatalf("reference run: exit %d\n%s", code, stderr)
	}
	full := time.Since(start)
	want := tables(t, filepath.Join(ref, "dt=2026-11-24"))
	for k := 0; k <= 6; k++ {
		out := filepath.Join(dir, "out")
		os.RemoveAll(out)
		cmd := exec.Command(bin, args(out)...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(full * time.Duration(k) / 6)
		cmd.Process.Kill()
		cmd.Wait()
		// whatever was left behind, a re-run gives the uninterrupted result
		code, stderr := runBin(t, bin, args(out)...)
		part := filepath.Join(out, "dt=2026-11-24")
		switch code {
		case 0:
		case exitCantCreat: // killed after it had published completely
			if _, err := os.Stat(filepath.Join(part, "_SUCCESS")); err != nil {
				t.Fatalf("kill at %d/6: re-run refused but nothing complete was published\n%s", k, stderr)
			}
		default:
			t.Fatalf("kill at %d/6: re-run exit %d\n%s", k, code, stderr)
		}
		got := tables(t, part)
		for tb := range want {
			if !bytes.Equal(got[tb], want[tb]) {
				t.Errorf("kill at %d/6: %s differs from the uninterrupted run", k, tb)
			}
		}
		if _, err := os.Stat(filepath.Join(out, "_temporary")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("kill at %d/6: staging area survived the re-run", k)
		}
	}
}

// TestConcurrentRuns: two runs on one output; one wins, the other exits 75
// naming the holder.
func TestConcurrentRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("process-level")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	profiles := genSample(t, dir, "12000")
	out := filepath.Join(dir, "out")
	args := []string{"run", "--profiles", profiles, "--out", out, "--as-of", "2026-11-24", "--log-format", "json", "--max-reject-ratio", "1"}
	first := exec.Command(bin, args...)
	var firstErr bytes.Buffer
	first.Stderr = &firstErr
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(firstErr.String(), `"stage":"read_profiles"`) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	code, stderr := runBin(t, bin, args...)
	if code != exitTempFail || !strings.Contains(stderr, "held by pid") {
		t.Errorf("second run: exit %d, want %d naming the holder\n%s", code, exitTempFail, stderr)
	}
	if err := first.Wait(); err != nil {
		t.Fatalf("first run: %v\n%s", err, firstErr.String())
	}
	if _, err := os.Stat(filepath.Join(out, "dt=2026-11-24", "_SUCCESS")); err != nil {
		t.Fatal("the winner did not publish")
	}
}

// TestWriteFailure fills the "disk" with a file-size limit: writes fail with
// EFBIG (Go ignores SIGXFSZ), the run exits 74 and publishes nothing.
func TestWriteFailure(t *testing.T) {
	if testing.Short() {
		t.Skip("process-level")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	profiles := genSample(t, dir, "3000")
	out := filepath.Join(dir, "out")
	cmd := exec.Command("sh", "-c", `ulimit -f 64 && exec "$0" "$@"`, bin,
		"run", "--profiles", profiles, "--out", out, "--as-of", "2026-11-24", "--log-format", "json", "--max-reject-ratio", "1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	code := exitOf(cmd.Run())
	if code != exitIOErr || !strings.Contains(stderr.String(), "file too large") {
		t.Fatalf("exit %d, want %d with the write error\n%s", code, exitIOErr, stderr.String())
	}
	entries, _ := os.ReadDir(out)
	for _, e := range entries {
		if e.Name() != ".lock" {
			t.Errorf("failed run left %s behind", e.Name())
		}
	}
}

// TestOutputIndependentOfCPU: the same input gives byte-identical tables
// whether the kernels use their SIMD paths or the generic code
// (GODEBUG=cpu.all=off), so a run's bytes do not depend on the node.
func TestOutputIndependentOfCPU(t *testing.T) {
	if testing.Short() {
		t.Skip("process-level")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	profiles := genSample(t, dir, "3000")
	// Each GODEBUG turns off the next fast path; `version` says which ran.
	paths := []struct{ godebug, impl string }{{"", ""}, {"cpu.avx512f=off", "avx2+fma"}, {"cpu.all=off", "generic"}}
	var got []map[string][]byte
	var impls []string
	for _, p := range paths {
		cmd := exec.Command(bin, "version")
		cmd.Env = append(os.Environ(), "GODEBUG="+p.godebug)
		v, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		impl := ""
		if _, after, ok := strings.Cut(string(v), "dot kernel "); ok {
			impl, _, _ = strings.Cut(after, ")")
		}
		if p.impl != "" && impl != p.impl && !(p.impl == "avx2+fma" && impl == "generic") {
			t.Fatalf("GODEBUG=%s: version says kernels %q, want %q:\n%s", p.godebug, impl, p.impl, v)
		}
		impls = append(impls, impl)
		out := filepath.Join(dir, "out"+p.godebug)
		cmd = exec.Command(bin, "run", "--profiles", profiles, "--out", out, "--as-of", "2026-11-24", "--log-format", "json", "--max-reject-ratio", "1")
		cmd.Env = append(os.Environ(), "GODEBUG="+p.godebug)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("GODEBUG=%s: %v\n%s", p.godebug, err, b)
		}
		got = append(got, tables(t, filepath.Join(out, "dt=2026-11-24")))
	}
	t.Logf("kernels: %v", impls)
	for k := 1; k < len(got); k++ {
		for tb := range got[0] {
			if !bytes.Equal(got[0][tb], got[k][tb]) {
				t.Errorf("%s differs between the %s and the %s kernels", tb, impls[0], impls[k])
			}
		}
	}
}
