package store_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/osmosis/batchmatch/pipeline/store"
	"github.com/osmosis/batchmatch/pipeline/store/storetest"
)

// TestSDKWritesNothingToStderr: the AWS SDK writes nothing of its own to
// stderr (its default logger prints plain "SDK … WARN Response has no
// supported checksum" lines there on ranged GETs): its lines go to the
// store's logger, here JSON, and that warning is off.
func TestSDKWritesNothingToStderr(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	saved := os.Stderr
	os.Stderr = w // the SDK's default logger takes os.Stderr when a bucket is opened
	stray := make(chan []byte)
	go func() { b, _ := io.ReadAll(r); stray <- b }()
	var logs bytes.Buffer
	func() {
		defer func() { os.Stderr = saved }()
		fake := storetest.NewFakeS3(t, "bm")
		s := store.New(slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
		defer s.Close()
		ctx := context.Background()
		data := bytes.Repeat([]byte("batchmatch"), 10_000)
		local := filepath.Join(t.TempDir(), "x")
		if err := os.WriteFile(local, data, 0o600); err != nil {
			t.Fatal(err)
		}
		obj := store.Join(fake.URL, "sdk", "obj")
		if err := s.Upload(ctx, obj, local, false); err != nil {
			t.Fatal(err)
		}
		rd, err := s.Open(ctx, obj)
		if err != nil {
			t.Fatal(err)
		}
		p := make([]byte, 100)
		for _, off := range []int64{0, 5000, int64(len(data)) - 100} { // ranged GETs
			if _, err := rd.ReadAt(p, off); err != nil {
				t.Fatal(err)
			}
		}
		if got, err := s.ReadFile(ctx, obj); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("ReadFile: %d bytes, %v", len(got), err)
		}
		// An object another tool wrote without a checksum: a whole GET of it
		// is what makes the SDK warn.
		u, err := url.Parse(fake.URL)
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodPut, u.Query().Get("endpoint")+"/bm/sdk/raw", bytes.NewReader(data))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("plain PUT: %s", resp.Status)
		}
		if got, err := s.ReadFile(ctx, store.Join(fake.URL, "sdk", "raw")); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("ReadFile: %d bytes, %v", len(got), err)
		}
	}()
	w.Close()
	if b := <-stray; len(b) > 0 {
		t.Errorf("written to stderr past the store's logger:\n%s", b)
	}
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if line != "" && !json.Valid([]byte(line)) {
			t.Errorf("not a JSON line: %s", line)
		}
	}
	if strings.Contains(logs.String(), "no supported checksum") {
		t.Errorf("the checksum warning is logged on ranged reads:\n%s", logs.String())
	}
}
