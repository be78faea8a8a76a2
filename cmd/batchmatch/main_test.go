package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// genSample writes a small population with the real generator.
func genSample(t *testing.T, dir string, n string) string {
	t.Helper()
	p := filepath.Join(dir, "profiles")
	if err := run(context.Background(), []string{"gen", "--out", p, "--n", n, "--shards", "2", "--as-of", "2026-11-24", "--log-format", "json"}, &bytes.Buffer{}, &bytes.Buffer{}); err != nil {
		t.Fatalf("gen: %v", err)
	}
	return p
}

func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	profiles := genSample(t, dir, "300")
	bad := filepath.Join(dir, "bad")
	os.MkdirAll(bad, 0o755)
	os.WriteFile(filepath.Join(bad, "x.parquet"), []byte("not parquet"), 0o644)
	out := filepath.Join(dir, "out")
	runArgs := func(extra ...string) []string {
		return append([]string{"run", "--profiles", profiles, "--out", out, "--as-of", "2026-11-24", "--log-format", "json"}, extra...)
	}
	for _, tc := range []struct {
		name string
		args []string
		code int
		say  string
	}{
		{"no command", nil, exitUsage, "no command"},
		{"unknown command", []string{"frobnicate"}, exitUsage, "unknown command"},
		{"help", []string{"--help"}, exitOK, ""},
		{"run help", []string{"run", "--help"}, exitOK, ""},
		{"version", []string{"version"}, exitOK, ""},
		{"unknown flag", []string{"run", "--nope"}, exitUsage, "unknown flag"},
		{"missing profiles", []string{"run", "--out", out}, exitUsage, "--profiles"},
		{"missing out", []string{"run", "--profiles", profiles}, exitUsage, "--out"},
		{"k zero", runArgs("--k", "0"), exitUsage, "--k"},
		{"three weights", runArgs("--weights", "1,2,3"), exitUsage, "four numbers"},
		{"negative weight", runArgs("--weights", "1,-1,0,0"), exitUsage, "non-negative"},
		{"only biomarker weight", runArgs("--weights", "0,0,1,0"), exitUsage, "must be positive"},
		{"bad date", runArgs("--as-of", "24/11/2026"), exitUsage, "YYYY-MM-DD"},
		{"bad log format", runArgs("--log-format", "xml"), exitUsage, "--log-format"},
		{"input missing", []string{"run", "--profiles", filepath.Join(dir, "nope"), "--out", out}, exitNoInput, "does not exist"},
		{"suppress list missing", runArgs("--suppress", filepath.Join(dir, "nope.parquet")), exitNoInput, "nope.parquet"},
		{"bad data", []string{"run", "--profiles", bad, "--out", out, "--log-format", "json"}, exitDataErr, "x.parquet"},
		{"validate", []string{"validate", "--profiles", profiles, "--as-of", "2026-11-24", "--log-format", "json"}, exitOK, ""},
		{"success", runArgs(), exitOK, ""},
		{"same run again", runArgs(), exitOK, ""},
		{"already published by another run", runArgs("--k", "5"), exitCantCreat, "--overwrite"},
		{"overwrite", runArgs("--overwrite"), exitOK, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), tc.args, &stdout, &stderr)
			if got := exitCode(err, false, false); got != tc.code {
				t.Fatalf("exit %d (%v), want %d", got, err, tc.code)
			}
			if tc.say != "" && (err == nil || !strings.Contains(err.Error(), tc.say)) {
				t.Fatalf("error %v does not say %q", err, tc.say)
			}
		})
	}
	if got := exitCode(context.Canceled, true, true); got != exitTerminated {
		t.Errorf("SIGTERM: exit %d", got)
	}
	if got := exitCode(context.Canceled, false, true); got != exitInterrupted {
		t.Errorf("SIGINT: exit %d", got)
	}
	if got := exitCode(errors.New("boom"), false, false); got != exitSoftware {
		t.Errorf("an error of no kind: exit %d, want %d (a bug)", got, exitSoftware)
	}
}

// TestBinary runs the real binary: a run succeeds and prints its summary;
// SIGTERM in the middle of a long run exits 143 and publishes nothing.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir := t.TempDir()
	bin := buildBinary(t)
	small := genSample(t, dir, "500")
	out := filepath.Join(dir, "out")
	cmd := exec.Command(bin, "run", "--profiles", small, "--out", out, "--as-of", "2026-11-24", "--log-format", "json")
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if !strings.Contains(string(stdout), "published "+filepath.Join(out, "dt=2026-11-24")) {
		t.Fatalf("summary does not say where the output is:\n%s", stdout)
	}

	big := filepath.Join(dir, "big")
	if err := exec.Command(bin, "gen", "--out", big, "--n", "60000", "--shards", "2", "--as-of", "2026-11-24").Run(); err != nil {
		t.Fatal(err)
	}
	out2 := filepath.Join(dir, "out2")
	cmd = exec.Command(bin, "run", "--profiles", big, "--out", out2, "--as-of", "2026-11-24", "--log-format", "json")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// wait until scoring has started, then terminate
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(stderr.String(), `"stage":"score_topk"`) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	start := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitTerminated {
		t.Fatalf("after SIGTERM: %v, want exit %d\n%s", err, exitTerminated, stderr.String())
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v to stop after SIGTERM", d)
	}
	entries, _ := os.ReadDir(out2)
	for _, e := range entries {
		if e.Name() != ".lock" {
			t.Errorf("terminated run left %s behind", e.Name())
		}
	}
}
