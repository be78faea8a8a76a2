package pipeline

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/osmosis/batchmatch/pipeline/store"
)

// stagePartition writes a published-looking local partition.
func stagePartition(t *testing.T, runID string, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	files["manifest.json"] = `{"run_id": "` + runID + `"}`
	files[successFile] = string(successBody(runID, "attempt-"+runID))
	for rel, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestPushPartition: the conditional create of _SUCCESS decides races. A
// second publisher of the same run (same run id: identical tables) succeeds;
// one of another run gets ErrExists and leaves _SUCCESS alone; --overwrite
// replaces the partition and removes objects the new publish does not have.
func TestPushPartition(t *testing.T) {
	ctx := context.Background()
	st := store.New(nil)
	defer st.Close()
	log := slog.New(slog.DiscardHandler)
	dst := "mem://push-test/out/dt=2026-11-30"
	a := stagePartition(t, "run-a", map[string]string{"matches/part-00000.parquet": "A", "extra/x": "old"})
	if err := pushPartition(ctx, st, log, a, dst, false, "run-a"); err != nil {
		t.Fatal(err)
	}
	// A racing attempt of the same run.
	a2 := stagePartition(t, "run-a", map[string]string{"matches/part-00000.parquet": "A", "extra/x": "old"})
	if err := pushPartition(ctx, st, log, a2, dst, false, "run-a"); err != nil {
		t.Fatalf("second publisher of the same run: %v", err)
	}
	// A later publisher of another run is refused before it uploads anything.
	b := stagePartition(t, "run-b", map[string]string{"matches/part-00000.parquet": "B"})
	err := pushPartition(ctx, st, log, b, dst, false, "run-b")
	if !errors.Is(err, ErrExists) {
		t.Fatalf("publisher of another run: %v, want ErrExists", err)
	}
	if got, _ := st.ReadFile(ctx, store.Join(dst, successFile)); successRunID(got) != "run-a" {
		t.Fatalf("_SUCCESS after the refused publish: %q", got)
	}
	if got, _ := st.ReadFile(ctx, store.Join(dst, "matches/part-00000.parquet")); string(got) != "A" {
		t.Fatalf("a refused publish replaced the matches: %q", got)
	}
	// --overwrite: the new partition, without the old extra object.
	if err := pushPartition(ctx, st, log, b, dst, true, "run-b"); err != nil {
		t.Fatal(err)
	}
	keys, err := st.List(ctx, dst)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{successFile, "manifest.json", "matches/part-00000.parquet"}; !slices.Equal(keys, want) {
		t.Fatalf("after overwrite: %q, want %q", keys, want)
	}
	if got, _ := st.ReadFile(ctx, store.Join(dst, "matches/part-00000.parquet")); string(got) != "B" {
		t.Fatalf("matches after overwrite: %q", got)
	}
}

// TestPushPartitionRace: a publisher that loses the conditional create of
// _SUCCESS to another one (a racer that got ahead after the pre-check)
// succeeds when the winner is the same run, and fails with ErrExists, saying
// the tables may be mixed, when it is another run.
func TestPushPartitionRace(t *testing.T) {
	ctx := context.Background()
	st := store.New(nil)
	defer st.Close()
	log := slog.New(slog.DiscardHandler)
	defer func() { beforeMarker = nil }()
	for _, tc := range []struct {
		name, winner string
		wantErr      error
	}{
		{"same run", "run-a", nil},
		{"other run", "run-z", ErrExists},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := "mem://race-test/" + tc.winner + "/dt=2026-11-30"
			beforeMarker = func() {
				if err := st.WriteFile(ctx, store.Join(dst, successFile), successBody(tc.winner, "winner"), true); err != nil {
					t.Fatal(err)
				}
			}
			a := stagePartition(t, "run-a", map[string]string{"matches/part-00000.parquet": "A"})
			err := pushPartition(ctx, st, log, a, dst, false, "run-a")
			if !errors.Is(err, tc.wantErr) && !(err == nil && tc.wantErr == nil) {
				t.Fatalf("losing publisher: %v, want %v", err, tc.wantErr)
			}
			if got, _ := st.ReadFile(ctx, store.Join(dst, successFile)); successRunID(got) != tc.winner {
				t.Fatalf("_SUCCESS = %q, want the winner's", got)
			}
		})
	}
}
