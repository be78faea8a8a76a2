package publish

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"

	"github.com/osmosis/batchmatch/pipeline/failure"
	"github.com/osmosis/batchmatch/pipeline/store"
	"github.com/osmosis/batchmatch/pipeline/store/storetest"
)

// Attempt ids of the publishers in these tests.
const (
	a1 = "20261130T010000Z-1-000000a1"
	a2 = "20261130T010000Z-2-000000a2"
	b1 = "20261130T020000Z-3-000000b1"
	w  = "20261130T015900Z-4-0000000f"
)

// stagePartition writes a staged local partition as a run leaves it
// for pushPartition: files named after the attempt, a manifest, and
// _SUCCESS listing them.
func stagePartition(t *testing.T, runID, attempt string, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	manifest := taggedName(ManifestFile, attempt)
	files[manifest] = `{"run_id": "` + runID + `"}`
	var names []string
	for rel, body := range files {
		names = append(names, rel)
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	sort.Strings(names)
	if err := os.WriteFile(filepath.Join(dir, SuccessFile), successBody(runID, attempt, manifest, names, nil), 0o640); err != nil {
		t.Fatal(err)
	}
	return dir
}

// checkRemotePublished reads dst as a reader should (_SUCCESS, then the
// files it lists) and returns the run id it names and the content of its
// matches file: every listed file must exist.
func checkRemotePublished(t *testing.T, st *store.Store, dst string) (runID, matches string) {
	t.Helper()
	ctx := context.Background()
	body, err := st.ReadFile(ctx, store.Join(dst, SuccessFile))
	if err != nil {
		t.Fatalf("no _SUCCESS: %v", err)
	}
	s := ParseSuccess(body)
	if len(s.Files) == 0 || !slices.Contains(s.Files, s.Manifest) {
		t.Fatalf("_SUCCESS lists no files or not its manifest: %q", body)
	}
	for _, f := range s.Files {
		b, err := st.ReadFile(ctx, store.Join(dst, f))
		if err != nil {
			t.Fatalf("_SUCCESS of run %s lists %s, which is gone: %v", s.RunID, f, err)
		}
		if filepath.Dir(f) == "matches" {
			matches = string(b)
		}
	}
	return s.RunID, matches
}

// TestPushPartition: the conditional create of _SUCCESS decides races. A
// second publisher of the same run (same run id: identical tables) succeeds
// without uploading; one of another run gets failure.Exists and touches nothing;
// --overwrite publishes the new files under new names, switches _SUCCESS
// to them and then removes the old ones, and nothing batchmatch does not
// write.
func TestPushPartition(t *testing.T) {
	ctx := context.Background()
	st := store.New(nil)
	defer st.Close()
	log := slog.New(slog.DiscardHandler)
	dst := "mem://push-test/out/dt=2026-11-30"
	a := stagePartition(t, "run-a", a1, map[string]string{"matches/part-00000-" + a1 + ".parquet": "A", "report-" + a1 + ".html": "old"})
	if already, err := pushPartition(ctx, st, log, a, dst, false, "run-a", nil); err != nil || already {
		t.Fatal(already, err)
	}
	// Something batchmatch never writes, under the partition: never deleted.
	if err := st.WriteFile(ctx, store.Join(dst, "profiles", "x.parquet"), []byte("not ours"), false); err != nil {
		t.Fatal(err)
	}
	keysA, _ := st.List(ctx, dst)
	// Another attempt of the same run.
	a2 := stagePartition(t, "run-a", a2, map[string]string{"matches/part-00000-" + a2 + ".parquet": "A"})
	if already, err := pushPartition(ctx, st, log, a2, dst, false, "run-a", nil); err != nil || !already {
		t.Fatalf("second publisher of the same run: already %v, %v", already, err)
	}
	if keys, _ := st.List(ctx, dst); !slices.Equal(keys, keysA) {
		t.Fatalf("the second publisher of the same run uploaded: %q, was %q", keys, keysA)
	}
	// A later publisher of another run is refused before it uploads anything.
	b := stagePartition(t, "run-b", b1, map[string]string{"matches/part-00000-" + b1 + ".parquet": "B"})
	_, err := pushPartition(ctx, st, log, b, dst, false, "run-b", nil)
	if !errors.Is(err, failure.Exists) {
		t.Fatalf("publisher of another run: %v, want failure.Exists", err)
	}
	if id, m := checkRemotePublished(t, st, dst); id != "run-a" || m != "A" {
		t.Fatalf("after the refused publish: run %s, matches %q", id, m)
	}
	// --overwrite: the new partition, without any old object.
	if _, err := pushPartition(ctx, st, log, b, dst, true, "run-b", nil); err != nil {
		t.Fatal(err)
	}
	keys, err := st.List(ctx, dst)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{SuccessFile, "manifest-" + b1 + ".json", "matches/part-00000-" + b1 + ".parquet", "profiles/x.parquet"}; !slices.Equal(keys, want) {
		t.Fatalf("after overwrite: %q, want %q", keys, want)
	}
	if id, m := checkRemotePublished(t, st, dst); id != "run-b" || m != "B" {
		t.Fatalf("after overwrite: run %s, matches %q", id, m)
	}
}

// TestPushPartitionRace: a publisher that loses the conditional create of
// _SUCCESS to another one (a racer that got ahead after the pre-check)
// succeeds when the winner is the same run, and fails with failure.Exists when
// it is another run; either way the winner's partition is intact and the
// loser's uploads are gone.
func TestPushPartitionRace(t *testing.T) {
	ctx := context.Background()
	st := store.New(nil)
	defer st.Close()
	log := slog.New(slog.DiscardHandler)
	for _, tc := range []struct {
		name, winner string
		wantErr      error
	}{
		{"same run", "run-a", nil},
		{"other run", "run-z", failure.Exists},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := "mem://race-test/" + tc.winner + "/dt=2026-11-30"
			hooks := &Hooks{BeforeMarker: func() {
				files := map[string]string{"matches/part-00000-" + w + ".parquet": "W", "manifest-" + w + ".json": "{}"}
				for rel, body := range files {
					if err := st.WriteFile(ctx, store.Join(dst, rel), []byte(body), false); err != nil {
						t.Fatal(err)
					}
				}
				body := successBody(tc.winner, w, "manifest-"+w+".json", []string{"manifest-" + w + ".json", "matches/part-00000-" + w + ".parquet"}, nil)
				if err := st.WriteFile(ctx, store.Join(dst, SuccessFile), body, true); err != nil {
					t.Fatal(err)
				}
			}}
			a := stagePartition(t, "run-a", a1, map[string]string{"matches/part-00000-" + a1 + ".parquet": "A"})
			_, err := pushPartition(ctx, st, log, a, dst, false, "run-a", hooks)
			if !errors.Is(err, tc.wantErr) && !(err == nil && tc.wantErr == nil) {
				t.Fatalf("losing publisher: %v, want %v", err, tc.wantErr)
			}
			if id, m := checkRemotePublished(t, st, dst); id != tc.winner || m != "W" {
				t.Fatalf("published: run %s, matches %q; want the winner's", id, m)
			}
			keys, _ := st.List(ctx, dst)
			if want := []string{SuccessFile, "manifest-" + w + ".json", "matches/part-00000-" + w + ".parquet"}; !slices.Equal(keys, want) {
				t.Fatalf("after the race: %q, want only the winner's %q", keys, want)
			}
		})
	}
}

// TestPushPartitionFailures: an --overwrite whose requests start failing
// at any point (from the n-th request on, every request is refused) never
// leaves the partition without a complete publish: _SUCCESS always lists
// files that all exist, the old publish's or the new one's. The next
// publish then removes whatever nobody lists.
func TestPushPartitionFailures(t *testing.T) {
	fake := storetest.NewFakeS3(t, "bm")
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	old := stagePartition(t, "run-a", a1, map[string]string{
		"matches/part-00000-" + a1 + ".parquet": "A", "soulmates/part-00000-" + a1 + ".parquet": "A", "rejects/part-00000-" + a1 + ".parquet": "A"})
	neu := stagePartition(t, "run-b", b1, map[string]string{
		"matches/part-00000-" + b1 + ".parquet": "B", "soulmates/part-00000-" + b1 + ".parquet": "B", "rejects/part-00000-" + b1 + ".parquet": "B"})
	newStore := func() *store.Store {
		s := store.New(nil)
		s.Retry = store.Retry{Attempts: 1}
		return s
	}
	// How many requests a clean overwrite takes.
	clean := store.Join(fake.URL, "clean", "dt=2026-11-30")
	st := newStore()
	if _, err := pushPartition(ctx, st, log, old, clean, false, "run-a", nil); err != nil {
		t.Fatal(err)
	}
	fake.SetPlan(nil)
	if _, err := pushPartition(ctx, st, log, neu, clean, true, "run-b", nil); err != nil {
		t.Fatal(err)
	}
	total := fake.Requests()
	st.Close()
	for n := int64(1); n <= total; n++ {
		dst := store.Join(fake.URL, "fail", seqName(n), "dt=2026-11-30")
		st := newStore()
		fake.SetPlan(nil)
		if _, err := pushPartition(ctx, st, log, old, dst, false, "run-a", nil); err != nil {
			t.Fatal(err)
		}
		fake.SetPlan(func(k int64, _ *http.Request) storetest.Fault {
			if k >= n {
				return storetest.Deny
			}
			return storetest.Pass
		})
		_, err := pushPartition(ctx, st, log, neu, dst, true, "run-b", nil)
		fake.SetPlan(nil)
		id, m := checkRemotePublished(t, st, dst)
		if (id == "run-a") != (m == "A") || (id == "run-b") != (m == "B") {
			t.Fatalf("failing from request %d: _SUCCESS of %s lists matches %q", n, id, m)
		}
		if err == nil && id != "run-b" {
			t.Fatalf("failing from request %d: success, but run %s is published", n, id)
		}
		// The next publish cleans up.
		if _, err := pushPartition(ctx, st, log, neu, dst, true, "run-b", nil); err != nil {
			t.Fatal(err)
		}
		keys, _ := st.List(ctx, dst)
		if len(keys) != 5 {
			t.Fatalf("failing from request %d, then published again: %q", n, keys)
		}
		st.Close()
	}
}

func seqName(n int64) string { return string(rune('a'+n/26)) + string(rune('a'+n%26)) }
