package store_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/osmosis/batchmatch/pipeline/store"
	"github.com/osmosis/batchmatch/pipeline/store/storetest"
)

func fastRetry(s *store.Store) *store.Store {
	s.Retry = store.Retry{Attempts: 5, Base: time.Millisecond, Max: 4 * time.Millisecond}
	return s
}

func randBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 7))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// checkReader reads ranges of the object around both ends and at random
// and compares them with data.
func checkReader(t *testing.T, r *store.Reader, data []byte) {
	t.Helper()
	if r.Size() != int64(len(data)) {
		t.Fatalf("Size %d, want %d", r.Size(), len(data))
	}
	n := int64(len(data))
	cases := [][2]int64{{0, 0}, {0, 1}, {0, n}, {n - 1, 1}, {n - 8, 8}, {n - 8, 100}, {n, 10}, {n + 5, 1}, {1, n - 2}}
	rg := rand.New(rand.NewPCG(3, 3))
	for range 20 {
		off := rg.Int64N(n)
		cases = append(cases, [2]int64{off, rg.Int64N(n-off) + 1})
	}
	for _, c := range cases {
		off, ln := c[0], c[1]
		p := make([]byte, ln)
		got, err := r.ReadAt(p, off)
		end := min(off+ln, n)
		want := int(max(end-off, 0))
		if got != want {
			t.Fatalf("ReadAt(%d bytes at %d): %d bytes, want %d (err %v)", ln, off, got, want, err)
		}
		if want < int(ln) && err != io.EOF {
			t.Fatalf("ReadAt(%d bytes at %d) past the end: err %v, want io.EOF", ln, off, err)
		}
		if want == int(ln) && err != nil {
			t.Fatalf("ReadAt(%d bytes at %d): %v", ln, off, err)
		}
		if want > 0 && !bytes.Equal(p[:got], data[off:end]) {
			t.Fatalf("ReadAt(%d bytes at %d): wrong bytes", ln, off)
		}
	}
	// Seek + Read sees the same bytes.
	if _, err := r.Seek(-10, io.SeekEnd); err != nil {
		t.Fatal(err)
	}
	tail, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(tail, data[n-10:]) {
		t.Fatalf("Seek(-10, end)+ReadAll: %d bytes, %v", len(tail), err)
	}
}

// TestBackends: the same operations on mem://, file://, S3 (gofakes3) and
// GCS (fake-gcs-server) give the same results, conditional create included.
func TestBackends(t *testing.T) {
	fake := storetest.NewFakeS3(t, "bm")
	gcs := storetest.NewFakeGCS(t, "bm-gcs")
	dir := t.TempDir()
	roots := []struct{ name, root string }{
		{"mem", "mem://test-backends/run"},
		{"file", "file://" + dir + "/run"},
		{"s3", store.Join(fake.URL, "run")},
		{"gs", store.Join(gcs, "run")},
	}
	data := randBytes(300_000, 1)
	for _, b := range roots {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			s := fastRetry(store.New(nil))
			defer s.Close()
			obj := store.Join(b.root, "dt=2026-11-30", "matches", "part-0.parquet")
			local := filepath.Join(t.TempDir(), "x")
			if err := os.WriteFile(local, data, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := s.Upload(ctx, obj, local, false); err != nil {
				t.Fatal(err)
			}
			if err := s.WriteFile(ctx, store.Join(b.root, "dt=2026-11-30", "_SUCCESS"), []byte("a\n"), true); err != nil {
				t.Fatal(err)
			}
			if err := s.WriteFile(ctx, store.Join(b.root, "_temporary", "x"), []byte("tmp"), false); err != nil {
				t.Fatal(err)
			}
			// Conditional create: the second writer loses, the first's bytes stay.
			err := s.WriteFile(ctx, store.Join(b.root, "dt=2026-11-30", "_SUCCESS"), []byte("b\n"), true)
			if !errors.Is(err, store.ErrExists) {
				t.Fatalf("second conditional create: %v, want ErrExists", err)
			}
			if got, err := s.ReadFile(ctx, store.Join(b.root, "dt=2026-11-30", "_SUCCESS")); err != nil || string(got) != "a\n" {
				t.Fatalf("_SUCCESS after the lost race: %q, %v", got, err)
			}
			keys, err := s.List(ctx, b.root)
			if err != nil {
				t.Fatal(err)
			}
			want := []string{"_temporary/x", "dt=2026-11-30/_SUCCESS", "dt=2026-11-30/matches/part-0.parquet"}
			if !slices.Equal(keys, want) {
				t.Fatalf("List = %q, want %q", keys, want)
			}
			r, err := s.Open(ctx, obj)
			if err != nil {
				t.Fatal(err)
			}
			checkReader(t, r, data)
			var buf bytes.Buffer
			if n, err := s.Download(ctx, obj, &buf); err != nil || n != int64(len(data)) {
				t.Fatalf("Download: %d, %v", n, err)
			}
			equal(t, "Download", buf.Bytes(), data)
			if ok, err := s.Exists(ctx, obj); !ok || err != nil {
				t.Fatalf("Exists = %v, %v", ok, err)
			}
			if _, err := s.Open(ctx, store.Join(b.root, "missing")); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("Open(missing): %v, want ErrNotExist", err)
			}
			if err := s.DeleteAll(ctx, store.Join(b.root, "dt=2026-11-30")); err != nil {
				t.Fatal(err)
			}
			if keys, _ := s.List(ctx, b.root); !slices.Equal(keys, []string{"_temporary/x"}) {
				t.Fatalf("after DeleteAll: %q", keys)
			}
			if s.Retries() != 0 {
				t.Fatalf("%d retries without faults", s.Retries())
			}
		})
	}
}

func equal(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: the %d bytes read differ from the %d written", what, len(got), len(want))
	}
}

// TestFaults: reads and writes against an S3 server that fails requests
// still return exactly the bytes written, by retrying.
func TestFaults(t *testing.T) {
	fake := storetest.NewFakeS3(t, "bm")
	fake.Delay = 20 * time.Millisecond
	data := randBytes(1<<20, 2)
	local := filepath.Join(t.TempDir(), "x")
	if err := os.WriteFile(local, data, 0o600); err != nil {
		t.Fatal(err)
	}
	every := func(k int64, f storetest.Fault) func(int64, *http.Request) storetest.Fault {
		return func(n int64, _ *http.Request) storetest.Fault {
			if n%k == 0 {
				return f
			}
			return storetest.Pass
		}
	}
	for _, tc := range []struct {
		name string
		plan func(int64, *http.Request) storetest.Fault
	}{
		{"503 every 2nd request", every(2, storetest.Err503)},
		{"503 every 3rd request", every(3, storetest.Err503)},
		{"bodies cut short", storetest.FirstGetOnly(storetest.Truncate)},
		{"slow responses", every(2, storetest.Slow)},
		{"503 on first reads", storetest.FirstGetOnly(storetest.Err503)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			s := fastRetry(store.New(nil))
			defer s.Close()
			obj := store.Join(fake.URL, strings.ReplaceAll(tc.name, " ", "-"), "obj")
			fake.SetPlan(tc.plan)
			if err := s.Upload(ctx, obj, local, false); err != nil {
				t.Fatal(err)
			}
			r, err := s.Open(ctx, obj)
			if err != nil {
				t.Fatal(err)
			}
			checkReader(t, r, data)
			var buf bytes.Buffer
			if _, err := s.Download(ctx, obj, &buf); err != nil {
				t.Fatal(err)
			}
			equal(t, "Download", buf.Bytes(), data)
			got, err := s.ReadFile(ctx, obj)
			if err != nil {
				t.Fatal(err)
			}
			equal(t, "ReadFile", got, data)
			if tc.name != "slow responses" && s.Retries() == 0 {
				t.Fatalf("no retries: the faults were not injected")
			}
			fake.SetPlan(nil)
		})
	}
}

// TestFaultsBounded: a server that always fails gets exactly Attempts
// requests per operation, and the error names the object; a missing object
// is not retried.
func TestFaultsBounded(t *testing.T) {
	fake := storetest.NewFakeS3(t, "bm")
	ctx := context.Background()
	s := fastRetry(store.New(nil))
	defer s.Close()
	obj := store.Join(fake.URL, "always", "obj")
	if err := s.WriteFile(ctx, obj, []byte("x"), false); err != nil {
		t.Fatal(err)
	}
	fake.SetPlan(func(int64, *http.Request) storetest.Fault { return storetest.Err503 })
	_, err := s.ReadFile(ctx, obj)
	if err == nil || !strings.Contains(err.Error(), "always/obj") {
		t.Fatalf("ReadFile against a failing server: %v, want an error naming the object", err)
	}
	if got := fake.Requests(); got != int64(s.Retry.Attempts) {
		t.Fatalf("%d requests, want %d (Retry.Attempts)", got, s.Retry.Attempts)
	}
	fake.SetPlan(nil)
	_, err = s.ReadFile(ctx, store.Join(fake.URL, "missing"))
	if !errors.Is(err, os.ErrNotExist) || fake.Requests() != 1 {
		t.Fatalf("missing object: %v after %d requests, want ErrNotExist after 1", err, fake.Requests())
	}
}

// TestCancel: a stalled server does not hold an operation past its context.
func TestCancel(t *testing.T) {
	fake := storetest.NewFakeS3(t, "bm")
	s := fastRetry(store.New(nil))
	defer s.Close()
	obj := store.Join(fake.URL, "obj")
	if err := s.WriteFile(context.Background(), obj, []byte("x"), false); err != nil {
		t.Fatal(err)
	}
	fake.SetPlan(func(int64, *http.Request) storetest.Fault { return storetest.Stall })
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := s.ReadFile(ctx, obj)
	if err == nil {
		t.Fatal("ReadFile against a stalled server succeeded")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("ReadFile returned after %v, long after its context ended", d)
	}
	if fake.Requests() != 1 {
		t.Fatalf("%d requests after the context ended, want 1", fake.Requests())
	}
}

func TestJoin(t *testing.T) {
	for _, c := range []struct{ loc, want string }{
		{"s3://b?region=x", "s3://b/a/b?region=x"},
		{"s3://b/p/?region=x", "s3://b/p/a/b?region=x"},
		{"file:///tmp/x", "file:///tmp/x/a/b"},
	} {
		if got := store.Join(c.loc, "a", "/b/"); got != c.want {
			t.Errorf("Join(%q) = %q, want %q", c.loc, got, c.want)
		}
	}
	for loc, want := range map[string]bool{"s3://b/k": true, "gs://b": true, "mem://x": true, "file:///x": true, "/tmp/x": false, "http://x": false, "x": false} {
		if store.IsURL(loc) != want {
			t.Errorf("IsURL(%q) = %v", loc, !want)
		}
	}
}

// logBuffer is a logger whose output the test can read.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// TestStalled: a server that accepts every request and never answers. Each
// operation gives up after Retry.Attempts attempts, each abandoned after
// Retry.Idle without progress, logs every retry, and fails with
// ErrUnavailable naming the object and saying it stalled. Without the
// deadline, every one of these calls blocks until the server goes away.
func TestStalled(t *testing.T) {
	fake := storetest.NewFakeS3(t, "bm")
	local := filepath.Join(t.TempDir(), "x")
	if err := os.WriteFile(local, randBytes(1<<16, 4), 0o600); err != nil {
		t.Fatal(err)
	}
	obj := store.Join(fake.URL, "stalled", "_SUCCESS")
	setup := store.New(nil)
	defer setup.Close()
	if err := setup.Upload(context.Background(), obj, local, false); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		op   func(ctx context.Context, s *store.Store) error
	}{
		{"read", func(ctx context.Context, s *store.Store) error { _, err := s.ReadFile(ctx, obj); return err }},
		{"stat", func(ctx context.Context, s *store.Store) error { _, err := s.Exists(ctx, obj); return err }},
		{"list", func(ctx context.Context, s *store.Store) error {
			_, err := s.List(ctx, store.Join(fake.URL, "stalled"))
			return err
		}},
		{"download", func(ctx context.Context, s *store.Store) error {
			_, err := s.Download(ctx, obj, io.Discard)
			return err
		}},
		{"upload", func(ctx context.Context, s *store.Store) error { return s.Upload(ctx, obj, local, false) }},
		{"conditional create", func(ctx context.Context, s *store.Store) error {
			return s.WriteFile(ctx, store.Join(fake.URL, "stalled", "new"), []byte("x"), true)
		}},
		{"delete", func(ctx context.Context, s *store.Store) error { return s.Delete(ctx, obj) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs logBuffer
			s := store.New(slog.New(slog.NewTextHandler(&logs, nil)))
			defer s.Close()
			s.Retry = store.Retry{Attempts: 3, Base: time.Millisecond, Max: 2 * time.Millisecond, Idle: 100 * time.Millisecond}
			fake.SetPlan(func(int64, *http.Request) storetest.Fault { return storetest.Stall })
			defer fake.SetPlan(nil)
			err := tc.op(context.Background(), s)
			if !errors.Is(err, store.ErrUnavailable) || !errors.Is(err, store.ErrStalled) || !strings.Contains(err.Error(), "s3://bm/stalled") {
				t.Fatalf("against a server that never answers: %v, want ErrUnavailable (stalled) naming the object", err)
			}
			if errors.Is(err, context.Canceled) {
				t.Errorf("the deadline's cancellation leaks into the error (a caller takes it for an interrupted run): %v", err)
			}
			if got := fake.Requests(); got != 3 {
				t.Errorf("%d requests, want 3 (Retry.Attempts)", got)
			}
			if got := strings.Count(logs.String(), "retrying"); got != 2 {
				t.Errorf("%d retries logged, want 2:\n%s", got, logs.String())
			}
		})
	}
}

// TestStalledBody: answers that stop in the middle of the body (headers and
// half the bytes, then silence) are abandoned after Retry.Idle and resumed
// where they stopped: every read returns exactly the bytes written.
func TestStalledBody(t *testing.T) {
	fake := storetest.NewFakeS3(t, "bm")
	data := randBytes(1<<20, 5)
	s := store.New(nil)
	defer s.Close()
	s.Retry = store.Retry{Attempts: 4, Base: time.Millisecond, Max: 2 * time.Millisecond, Idle: 100 * time.Millisecond}
	ctx := context.Background()
	obj := store.Join(fake.URL, "stall-body", "obj")
	if err := s.WriteFile(ctx, obj, data, false); err != nil {
		t.Fatal(err)
	}
	fake.SetPlan(storetest.FirstGetOnly(storetest.StallBody))
	defer fake.SetPlan(nil)
	var buf bytes.Buffer
	if _, err := s.Download(ctx, obj, &buf); err != nil {
		t.Fatal(err)
	}
	equal(t, "Download", buf.Bytes(), data)
	r, err := s.Open(ctx, obj)
	if err != nil {
		t.Fatal(err)
	}
	p := make([]byte, 300_000)
	if _, err := r.ReadAt(p, 1000); err != nil {
		t.Fatal(err)
	}
	equal(t, "ReadAt", p, data[1000:301_000])
	if s.Retries() == 0 {
		t.Fatal("no retries: the stalls were not injected")
	}
}

// TestPermanentErrors: refusals that no retry can fix are not retried (one
// request) and are marked for the exit code: access denied is ErrDenied;
// unknown credentials, an untrusted TLS certificate, and any answer that
// refuses the request as made (S3 301 PermanentRedirect, 400
// InvalidRequest, 501 NotImplemented: only 408, 429 and 5xx but 501 are
// worth a retry) are ErrConfig.
func TestPermanentErrors(t *testing.T) {
	fake := storetest.NewFakeS3(t, "bm")
	ctx := context.Background()
	obj := store.Join(fake.URL, "perm", "obj")
	{
		s := store.New(nil)
		if err := s.WriteFile(ctx, obj, []byte("x"), false); err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
	for _, tc := range []struct {
		name  string
		fault storetest.Fault
		want  error
	}{
		{"access denied", storetest.Deny, store.ErrDenied},
		{"unknown access key", storetest.BadKey, store.ErrConfig},
		{"wrong region", storetest.Redirect, store.ErrConfig},
		{"bad request", storetest.BadRequest, store.ErrConfig},
		{"not implemented", storetest.NotImplemented, store.ErrConfig},
	} {
		for _, op := range []struct {
			name string
			do   func(s *store.Store) error
		}{
			{"read", func(s *store.Store) error { _, err := s.ReadFile(ctx, obj); return err }},
			{"stat", func(s *store.Store) error { _, err := s.Exists(ctx, obj); return err }},
			{"list", func(s *store.Store) error { _, err := s.List(ctx, store.Join(fake.URL, "perm")); return err }},
			{"write", func(s *store.Store) error { return s.WriteFile(ctx, obj, []byte("y"), false) }},
		} {
			t.Run(tc.name+"/"+op.name, func(t *testing.T) {
				s := fastRetry(store.New(nil))
				defer s.Close()
				fake.SetPlan(func(int64, *http.Request) storetest.Fault { return tc.fault })
				defer fake.SetPlan(nil)
				err := op.do(s)
				want := tc.want
				if op.name == "stat" && tc.fault == storetest.BadKey {
					want = store.ErrDenied // a HEAD answer has no body: a 403 says no more
				}
				if !errors.Is(err, want) {
					t.Fatalf("%v, want %v", err, want)
				}
				if fake.Requests() != 1 || s.Retries() != 0 {
					t.Fatalf("%d requests, %d retries: a permanent error was retried", fake.Requests(), s.Retries())
				}
			})
		}
	}
	t.Run("untrusted certificate", func(t *testing.T) {
		tlsFake := storetest.NewFakeS3TLS(t, "bm")
		s := fastRetry(store.New(nil))
		defer s.Close()
		_, err := s.ReadFile(ctx, store.Join(tlsFake.URL, "obj"))
		if !errors.Is(err, store.ErrConfig) || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("%v, want ErrConfig about the certificate", err)
		}
		if s.Retries() != 0 {
			t.Fatalf("%d retries of a certificate error", s.Retries())
		}
	})
}

// TestFileModes: objects written through file:// URLs are private like a
// local --out: files 0640, directories 0750, whatever the umask allows more.
func TestFileModes(t *testing.T) {
	dir := t.TempDir()
	s := store.New(nil)
	defer s.Close()
	ctx := context.Background()
	local := filepath.Join(t.TempDir(), "x")
	if err := os.WriteFile(local, []byte("data"), 0o600); err != nil {
		t.Fatal(err)
	}
	root := "file://" + dir
	if err := s.Upload(ctx, store.Join(root, "out", "dt=2026-11-30", "matches", "part.parquet"), local, false); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteFile(ctx, store.Join(root, "out", "dt=2026-11-30", "_SUCCESS"), []byte("x"), true); err != nil {
		t.Fatal(err)
	}
	for rel, want := range map[string]os.FileMode{
		"out":                                    0o750 | os.ModeDir,
		"out/dt=2026-11-30":                      0o750 | os.ModeDir,
		"out/dt=2026-11-30/matches":              0o750 | os.ModeDir,
		"out/dt=2026-11-30/matches/part.parquet": 0o640,
		"out/dt=2026-11-30/_SUCCESS":             0o640,
	} {
		fi, err := os.Stat(filepath.Join(dir, rel))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", rel, fi.Mode(), want)
		}
	}
}

// TestReaderPinsTheVersion: an object replaced (same size) after Open is
// never read as a mix of versions: the next range fails with ErrChanged
// (not retried) on every backend.
func TestReaderPinsTheVersion(t *testing.T) {
	fake := storetest.NewFakeS3(t, "bm-pin")
	gcs := storetest.NewFakeGCS(t, "bm-pin-gcs")
	dir := t.TempDir()
	for _, b := range []struct{ name, root string }{
		{"mem", "mem://test-pin/run"},
		{"file", "file://" + dir + "/run"},
		{"s3", store.Join(fake.URL, "run")},
		{"gs", store.Join(gcs, "run")},
	} {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			s := fastRetry(store.New(nil))
			defer s.Close()
			obj := store.Join(b.root, "profiles", "a.parquet")
			v1, v2 := randBytes(50_000, 1), randBytes(50_000, 2)
			if err := s.WriteFile(ctx, obj, v1, false); err != nil {
				t.Fatal(err)
			}
			r, err := s.Open(ctx, obj)
			if err != nil {
				t.Fatal(err)
			}
			p := make([]byte, 100)
			if _, err := r.ReadAt(p, 0); err != nil || !bytes.Equal(p, v1[:100]) {
				t.Fatalf("first read: %v", err)
			}
			time.Sleep(10 * time.Millisecond) // a later modification time, even on coarse clocks of the fakes
			if err := s.WriteFile(ctx, obj, v2, false); err != nil {
				t.Fatal(err)
			}
			n, err := r.ReadAt(p, 1000)
			if !errors.Is(err, store.ErrChanged) {
				t.Fatalf("read after the object was replaced: %d bytes, %v; want ErrChanged", n, err)
			}
			if s.Retries() != 0 {
				t.Fatalf("%d retries of a changed object", s.Retries())
			}
		})
	}
}

// TestParent: the location holding a partition keeps the URL's query (an
// endpoint, a region) and never climbs above the bucket.
func TestParent(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"s3://bm/out/dt=2026-11-24", "s3://bm/out"},
		{"s3://bm/out/dt=2026-11-24/", "s3://bm/out"},
		{"s3://bm/out/dt=2026-11-24?endpoint=http://127.0.0.1:9000&region=x", "s3://bm/out?endpoint=http://127.0.0.1:9000&region=x"},
		{"gs://b/dt=2026-11-24", "gs://b"},
		{"mem://b/a/b/c", "mem://b/a/b"},
		{"file:///tmp/out/dt=2026-11-24", "file:///tmp/out"},
	} {
		if got := store.Parent(c.in); got != c.want {
			t.Errorf("Parent(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
