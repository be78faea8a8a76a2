package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/osmosis/batchmatch/pipeline/store"
	"github.com/osmosis/batchmatch/pipeline/store/storetest"
)

// faultyPlan fails about one request in five: 503s, bodies cut short with
// the connection dropped, slow answers.
func faultyPlan() func(int64, *http.Request) storetest.Fault {
	cut := storetest.FirstGetOnly(storetest.Truncate)
	var mu sync.Mutex
	return func(n int64, r *http.Request) storetest.Fault {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case n%7 == 0:
			return storetest.Err503
		case n%11 == 0:
			return storetest.Slow
		case n%5 == 0:
			return cut(n, r)
		}
		return storetest.Pass
	}
}

// remoteTables reads the three tables of a published remote partition the
// way a reader must: through the files its _SUCCESS lists (their names
// carry the publishing attempt).
func remoteTables(t *testing.T, st *store.Store, part string) map[string][]byte {
	t.Helper()
	ctx := context.Background()
	return readTables(t, func(rel string) ([]byte, error) { return st.ReadFile(ctx, store.Join(part, rel)) })
}

// TestObjectStorage: the job reads its profiles from and publishes to an
// S3 server (in-process, gofakes3) that answers about one request in five
// with a 503, a body cut short or a delay; a whole run and a sharded run
// (one shard killed mid-run and re-run, then commit) publish tables
// byte-identical to a local run, with _SUCCESS, and leave no parts behind.
// The same run again succeeds without publishing (0), another run without
// --overwrite is refused (73), a missing input is 66, and a server that
// never answers well is 74 naming the object.
func TestObjectStorage(t *testing.T) {
	if testing.Short() {
		t.Skip("process-level")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	profiles := genSample(t, dir, "3000")
	fake := storetest.NewFakeS3(t, "bm")
	fake.Delay = 30 * time.Millisecond
	st := store.New(nil)
	defer st.Close()
	ctx := context.Background()
	files, _ := filepath.Glob(filepath.Join(profiles, "*.parquet"))
	for _, f := range files {
		if err := st.Upload(ctx, store.Join(fake.URL, "in", "profiles", filepath.Base(f)), f, false); err != nil {
			t.Fatal(err)
		}
	}
	common := []string{"--as-of", "2026-11-24", "--log-format", "json", "--max-reject-ratio", "1"}
	ref := filepath.Join(dir, "ref")
	if code, stderr := runBin(t, bin, append([]string{"run", "--profiles", profiles, "--out", ref}, common...)...); code != 0 {
		t.Fatalf("local run: exit %d\n%s", code, stderr)
	}
	want := tables(t, filepath.Join(ref, "dt=2026-11-24"))
	in := store.Join(fake.URL, "in", "profiles")
	spool := t.TempDir()
	remoteArgs := func(out string, extra ...string) []string {
		return append(append([]string{"run", "--profiles", in, "--out", out, "--spool-dir", spool}, common...), extra...)
	}
	same := func(what string, got map[string][]byte) {
		t.Helper()
		for tb := range want {
			if !bytes.Equal(got[tb], want[tb]) {
				t.Errorf("%s: %s differs from the local run", what, tb)
			}
		}
	}

	t.Run("whole run", func(t *testing.T) {
		out := store.Join(fake.URL, "whole")
		fake.SetPlan(faultyPlan())
		code, stderr := runBin(t, bin, remoteArgs(out)...)
		if code != 0 {
			t.Fatalf("remote run: exit %d\n%s", code, stderr)
		}
		t.Logf("remote run: %d retries logged, %d requests", strings.Count(stderr, "retrying"), fake.Requests())
		if !strings.Contains(stderr, "retrying") {
			t.Errorf("no retry logged: were the faults injected? %d requests", fake.Requests())
		}
		fake.SetPlan(nil)
		part := store.Join(out, "dt=2026-11-24")
		same("whole run", remoteTables(t, st, part))
		if ok, err := st.Exists(ctx, store.Join(part, "_SUCCESS")); !ok || err != nil {
			t.Fatalf("_SUCCESS: %v, %v", ok, err)
		}
		var m struct {
			Config struct {
				RemoteOut string `json:"remote_out"`
			} `json:"config"`
		}
		succ, _ := st.ReadFile(ctx, store.Join(part, "_SUCCESS"))
		manifest := "manifest.json"
		for _, line := range strings.Split(string(succ), "\n") {
			if m, ok := strings.CutPrefix(line, "manifest "); ok {
				manifest = m // named after the publishing attempt
			}
		}
		raw, err := st.ReadFile(ctx, store.Join(part, manifest))
		if err != nil || json.Unmarshal(raw, &m) != nil || m.Config.RemoteOut != out {
			t.Errorf("manifest remote_out = %q, want %q (%v)", m.Config.RemoteOut, out, err)
		}
		// the report reads a remote partition as it reads a local one
		cmd := exec.Command(bin, "report", part)
		var html, rerr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &html, &rerr
		if err := cmd.Run(); err != nil || !bytes.Contains(html.Bytes(), []byte("<svg")) {
			t.Errorf("report of the remote partition: %v, %d bytes of HTML\n%s", err, html.Len(), rerr.String())
		}
		if code, stderr := runBin(t, bin, remoteArgs(out)...); code != 0 {
			t.Errorf("the same run again: exit %d, want 0 (already published by the same run)\n%s", code, stderr)
		}
		if code, stderr := runBin(t, bin, remoteArgs(out, "--k", "5")...); code != exitCantCreat {
			t.Errorf("another run without --overwrite: exit %d, want %d\n%s", code, exitCantCreat, stderr)
		}
		if code, stderr := runBin(t, bin, remoteArgs(out, "--overwrite")...); code != 0 {
			t.Errorf("run with --overwrite: exit %d\n%s", code, stderr)
		}
		same("overwritten run", remoteTables(t, st, part))
		if ents, _ := os.ReadDir(spool); len(ents) != 0 {
			t.Errorf("spool directory not cleaned: %d entries", len(ents))
		}
	})

	t.Run("sharded run", func(t *testing.T) {
		out := store.Join(fake.URL, "sharded")
		fake.SetPlan(faultyPlan())
		shard := func(i int) *exec.Cmd {
			cmd := exec.Command(bin, remoteArgs(out, "--shard-count", "2")...)
			cmd.Env = append(os.Environ(), fmt.Sprintf("JOB_COMPLETION_INDEX=%d", i))
			return cmd
		}
		commit := []string{"commit", "--out", out, "--as-of", "2026-11-24", "--log-format", "json", "--spool-dir", spool}
		if code, stderr := runBin(t, bin, commit...); code != exitTempFail || !strings.Contains(stderr, "sharded/_temporary/shards") {
			t.Fatalf("commit before any part: exit %d, want %d naming the parts' location\n%s", code, exitTempFail, stderr)
		}
		// index 1 is lost mid-run, then retried
		cmd := shard(1)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond)
		cmd.Process.Kill()
		cmd.Wait()
		for i := range 2 {
			var stderr bytes.Buffer
			cmd := shard(i)
			cmd.Stderr = &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("shard %d: %v\n%s", i, err, stderr.String())
			}
		}
		if code, stderr := runBin(t, bin, commit...); code != 0 {
			t.Fatalf("commit: exit %d\n%s", code, stderr)
		}
		fake.SetPlan(nil)
		same("sharded run", remoteTables(t, st, store.Join(out, "dt=2026-11-24")))
		keys, err := st.List(ctx, out)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			if strings.HasPrefix(k, "_temporary/") {
				t.Errorf("left behind after commit: %s", k)
			}
		}
		if !slices.Contains(keys, "dt=2026-11-24/_SUCCESS") {
			t.Errorf("no _SUCCESS among %q", keys)
		}
	})

	t.Run("errors", func(t *testing.T) {
		fake.SetPlan(nil)
		missing := []string{"run", "--profiles", store.Join(fake.URL, "nothing-here"), "--out", store.Join(fake.URL, "e1"), "--spool-dir", spool}
		if code, stderr := runBin(t, bin, append(missing, common...)...); code != exitNoInput {
			t.Errorf("missing remote input: exit %d, want %d\n%s", code, exitNoInput, stderr)
		}
		fake.SetPlan(func(_ int64, r *http.Request) storetest.Fault {
			if r.Method == http.MethodGet && !r.URL.Query().Has("list-type") {
				return storetest.Err503 // listing works, every read fails
			}
			return storetest.Pass
		})
		code, stderr := runBin(t, bin, remoteArgs(store.Join(fake.URL, "e2"))...)
		if code != exitIOErr || !strings.Contains(stderr, "s3://bm/") {
			t.Errorf("unavailable store: exit %d, want %d naming the object\n%s", code, exitIOErr, stderr)
		}
		fake.SetPlan(nil)
		if ok, _ := st.Exists(ctx, store.Join(fake.URL, "e2", "dt=2026-11-24", "_SUCCESS")); ok {
			t.Error("a failed run published _SUCCESS")
		}
	})
}
