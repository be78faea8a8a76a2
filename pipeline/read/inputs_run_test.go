package read_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"
	pq "github.com/parquet-go/parquet-go"

	"github.com/osmosis/batchmatch/pipeline"
	"github.com/osmosis/batchmatch/pipeline/internal/runtest"
	"github.com/osmosis/batchmatch/pipeline/publish"
	"github.com/osmosis/batchmatch/pipeline/synth"
)

// TestSymlinkedSuppressFile: a suppression file that is a link inside the
// --suppress folder is honoured; the member it names appears nowhere.
func TestSymlinkedSuppressFile(t *testing.T) {
	dir := t.TempDir()
	k := synth.DefaultKnobs(60)
	k.Invalid, k.AllSeekAll, k.WideAges, k.MaxKm, k.ConsentP = 0, true, true, [2]float32{20000, 20000}, 1
	ms := synth.Random(8, k)
	synth.MustWriteProfiles(t, filepath.Join(dir, "profiles"), ms, k.D, k.Q, 2, synth.ArrowFixed)
	type sup struct {
		UserID int64 `parquet:"user_id"`
	}
	gone := []int64{*ms[3].ID, *ms[17].ID}
	real := filepath.Join(dir, "erasures", "today.parquet")
	os.MkdirAll(filepath.Dir(real), 0o755)
	if err := pq.WriteFile(real, []sup{{gone[0]}, {gone[1]}}); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(dir, "suppress"), 0o755)
	if err := os.Symlink(real, filepath.Join(dir, "suppress", "today.parquet")); err != nil {
		t.Fatal(err)
	}
	cfg := runtest.BaseConfig(dir)
	cfg.Suppress = []string{filepath.Join(dir, "suppress")}
	res, err := pipeline.Run(context.Background(), cfg, runtest.Quiet)
	if err != nil {
		t.Fatal(err)
	}
	if res.Manifest.Counts.RowsSuppressed != 2 || len(res.Manifest.Inputs.Suppress) != 1 {
		t.Fatalf("suppressed %d rows from %d files, want 2 from 1", res.Manifest.Counts.RowsSuppressed, len(res.Manifest.Inputs.Suppress))
	}
	for _, m := range runtest.ReadMatches(t, publish.TablePath(res.Published, "matches"), memory.NewGoAllocator()) {
		if slices.Contains(gone, m.UserID) || slices.Contains(gone, m.MatchID) {
			t.Fatalf("suppressed member in matches: %+v", m)
		}
	}
}
