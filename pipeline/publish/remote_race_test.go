package publish

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/osmosis/batchmatch/pipeline/failure"
	"github.com/osmosis/batchmatch/pipeline/store"
	"github.com/osmosis/batchmatch/pipeline/store/storetest"
)

// The publishes of these tests, each staged as a run leaves it for
// pushPartition: its three tables and its manifest named after its
// attempt, and _SUCCESS listing them.
func stagePublish(t *testing.T, runID, attempt, content string) string {
	t.Helper()
	files := map[string]string{}
	for _, table := range []string{"matches", "soulmates", "rejects"} {
		files[table+"/part-00000-"+attempt+".parquet"] = content
	}
	return stagePartition(t, runID, attempt, files)
}

// intactPublish reads dst as a reader must (_SUCCESS, then every file it
// lists) and fails the test when a listed file is gone; it returns the
// publishing attempt and the content of its files.
func intactPublish(t *testing.T, st *store.Store, dst string) (attempt, content string) {
	t.Helper()
	ctx := context.Background()
	body, err := st.ReadFile(ctx, store.Join(dst, SuccessFile))
	if err != nil {
		t.Fatalf("no _SUCCESS: %v", err)
	}
	s := ParseSuccess(body)
	if len(s.Files) != 4 {
		t.Fatalf("_SUCCESS lists %d files, want 4:\n%s", len(s.Files), body)
	}
	for _, f := range s.Files {
		b, err := st.ReadFile(ctx, store.Join(dst, f))
		if err != nil {
			t.Fatalf("_SUCCESS of attempt %s lists %s, which is gone: %v", s.AttemptID, f, err)
		}
		content = string(b)
	}
	return s.AttemptID, content
}

const (
	attemptOld = "20261130T000000Z-1-00000001"
	attemptA   = "20261130T010000Z-2-0000000a"
	attemptB   = "20261130T010000Z-3-0000000b"
)

// TestPushPartitionLostAnswer: the store carries out the conditional write
// of _SUCCESS but its answer is lost (a 503 after the work); the retried
// write is refused because the object is there, or no longer the version
// it was conditional on. The publisher reads _SUCCESS back, finds its own
// attempt, and succeeds without deleting anything: its publish is intact.
// Before, it took the refusal for another publisher's win, deleted its
// own files and left a _SUCCESS that lists files that do not exist.
func TestPushPartitionLostAnswer(t *testing.T) {
	fake := storetest.NewFakeS3(t, "bm-lost")
	log := slog.New(slog.DiscardHandler)
	ctx := context.Background()
	for _, overwrite := range []bool{false, true} {
		t.Run(fmt.Sprintf("overwrite=%v", overwrite), func(t *testing.T) {
			st := store.New(nil)
			defer st.Close()
			dst := store.Join(fake.URL, fmt.Sprintf("lost-%v", overwrite), "dt=2026-11-30")
			if overwrite {
				if _, err := pushPartition(ctx, st, log, stagePublish(t, "run-old", attemptOld, "old"), dst, false, "run-old", nil); err != nil {
					t.Fatal(err)
				}
			}
			var once sync.Once
			fake.SetPlan(func(_ int64, r *http.Request) storetest.Fault {
				f := storetest.Pass
				if r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "/"+SuccessFile) {
					once.Do(func() { f = storetest.LoseAnswer })
				}
				return f
			})
			defer fake.SetPlan(nil)
			already, err := pushPartition(ctx, st, log, stagePublish(t, "run-a", attemptA, "A"), dst, overwrite, "run-a", nil)
			fake.SetPlan(nil)
			if err != nil || already {
				t.Fatalf("publish whose _SUCCESS answer was lost: already %v, %v; want a publish", already, err)
			}
			if a, c := intactPublish(t, st, dst); a != attemptA || c != "A" {
				t.Fatalf("published: attempt %s, content %q; want this publish", a, c)
			}
		})
	}
}

// TestPushPartitionConcurrentOverwrite: two --overwrite publishers of one
// partition (two shards of a night both committing) read the same
// published _SUCCESS; A writes its _SUCCESS and removes what it does not
// list, B's uploads included, while B is between its uploads and its own
// _SUCCESS. B's write, conditional on the version it read, is refused: B
// deletes nothing A lists and succeeds when it is the same run (failure.Exists
// otherwise). The partition stays A's, every listed file present. Before,
// B's unconditional PUT published a _SUCCESS listing the files A had
// deleted.
func TestPushPartitionConcurrentOverwrite(t *testing.T) {
	fake := storetest.NewFakeS3(t, "bm-race")
	log := slog.New(slog.DiscardHandler)
	ctx := context.Background()
	for _, tc := range []struct {
		name, runB string
		wantErr    error
	}{{"same run", "run-a", nil}, {"other run", "run-b", failure.Exists}} {
		t.Run(tc.name, func(t *testing.T) {
			st := store.New(nil)
			defer st.Close()
			dst := store.Join(fake.URL, "overwrite-"+tc.runB, "dt=2026-11-30")
			if _, err := pushPartition(ctx, st, log, stagePublish(t, "run-old", attemptOld, "old"), dst, false, "run-old", nil); err != nil {
				t.Fatal(err)
			}
			bUploaded, aDone := make(chan struct{}), make(chan struct{})
			var errB error
			var alreadyB bool
			var wg sync.WaitGroup
			wg.Add(1)
			go func() { // B: uploads, then waits until A is done before its _SUCCESS
				defer wg.Done()
				hooks := &Hooks{BeforeMarker: func() { close(bUploaded); <-aDone }}
				alreadyB, errB = pushPartition(ctx, st, log, stagePublish(t, tc.runB, attemptB, "B"), dst, true, tc.runB, hooks)
			}()
			hooksA := &Hooks{BeforeMarker: func() { <-bUploaded }}
			if _, err := pushPartition(ctx, st, log, stagePublish(t, "run-a", attemptA, "A"), dst, true, "run-a", hooksA); err != nil {
				t.Fatalf("A: %v", err)
			}
			close(aDone)
			wg.Wait()
			if !errors.Is(errB, tc.wantErr) && !(errB == nil && tc.wantErr == nil) {
				t.Fatalf("B, which lost: %v, want %v", errB, tc.wantErr)
			}
			if tc.wantErr == nil && !alreadyB {
				t.Errorf("B lost to a publish of its own run and did not say it was already published")
			}
			if a, c := intactPublish(t, st, dst); a != attemptA || c != "A" {
				t.Fatalf("published: attempt %s, content %q; want A's", a, c)
			}
		})
	}
}

// TestPushPartitionRepairsOthersCleanup: a publisher B reads A's _SUCCESS
// (published a moment before) and uploads while A's cleanup removes what
// A's _SUCCESS does not list, B's uploads included. B's replace,
// conditional on A's _SUCCESS, wins: B finds files it lists gone and
// uploads them again, so that its _SUCCESS never lists a missing file.
func TestPushPartitionRepairsOthersCleanup(t *testing.T) {
	st := store.New(nil)
	defer st.Close()
	log := slog.New(slog.DiscardHandler)
	ctx := context.Background()
	dst := "mem://repair-cleanup/out/dt=2026-11-30"
	bUploaded, aDone, bDone := make(chan struct{}), make(chan struct{}), make(chan struct{})
	var errB error
	hooksA := &Hooks{AfterMarker: func() {
		go func() { // B starts after A's _SUCCESS, uploads, and writes its own after A's cleanup
			defer close(bDone)
			hooks := &Hooks{BeforeMarker: func() { close(bUploaded); <-aDone }}
			_, errB = pushPartition(ctx, st, log, stagePublish(t, "run-b", attemptB, "B"), dst, true, "run-b", hooks)
		}()
		<-bUploaded
	}}
	if _, err := pushPartition(ctx, st, log, stagePublish(t, "run-a", attemptA, "A"), dst, false, "run-a", hooksA); err != nil {
		t.Fatalf("A: %v", err)
	}
	close(aDone)
	<-bDone
	if errB != nil {
		t.Fatalf("B: %v", errB)
	}
	if a, c := intactPublish(t, st, dst); a != attemptB || c != "B" {
		t.Fatalf("published: attempt %s, content %q; want B's", a, c)
	}
}

// TestPushPartitionRepairsDamage: a partition published by a run whose
// _SUCCESS lists a file that is gone is not "already published": a publish
// of the same run id publishes it again (repair), and then every listed
// file is there. Before, it succeeded without uploading, leaving the
// partition damaged for good.
func TestPushPartitionRepairsDamage(t *testing.T) {
	st := store.New(nil)
	defer st.Close()
	log := slog.New(slog.DiscardHandler)
	ctx := context.Background()
	dst := "mem://repair-damage/out/dt=2026-11-30"
	if _, err := pushPartition(ctx, st, log, stagePublish(t, "run-a", attemptOld, "A"), dst, false, "run-a", nil); err != nil {
		t.Fatal(err)
	}
	if err := st.Delete(ctx, store.Join(dst, "soulmates/part-00000-"+attemptOld+".parquet")); err != nil {
		t.Fatal(err)
	}
	already, err := pushPartition(ctx, st, log, stagePublish(t, "run-a", attemptA, "A"), dst, false, "run-a", nil)
	if err != nil || already {
		t.Fatalf("a publish of the same run over a damaged partition: already %v, %v; want a repair", already, err)
	}
	if a, _ := intactPublish(t, st, dst); a != attemptA {
		t.Fatalf("published: attempt %s, want the repair's", a)
	}
	keys, _ := st.List(ctx, dst)
	if slices.ContainsFunc(keys, func(k string) bool { return strings.Contains(k, attemptOld) }) {
		t.Errorf("files of the damaged publish are left: %q", keys)
	}
}
