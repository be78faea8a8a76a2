package publish_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/osmosis/batchmatch/pipeline"
	"github.com/osmosis/batchmatch/pipeline/failure"
	"github.com/osmosis/batchmatch/pipeline/internal/runtest"
	"github.com/osmosis/batchmatch/pipeline/match"
	"github.com/osmosis/batchmatch/pipeline/publish"
	"github.com/osmosis/batchmatch/pipeline/synth"
)

// TestDecide: the one decision about a partition's parts (publish.Decide)
// as a night shard makes it from a listing (publish.ViewParts, no lock)
// and as Commit makes it, on a local output and on an object store. While
// a shard index has no part the verdict is Waiting (naming the indices;
// Commit: not ready); a complete set of the current run is Ready (Commit
// publishes it); when the inputs were delivered again between the shards,
// so that every index has a part but no set is complete, the verdict is
// Mixed and Commit fails with failure.BadData (before the fix, a night in
// that state exited 0 on every shard and commit 75 forever). Parts of
// another scheduler run of the night do not count as done for a night
// that knows its own.
func TestDecide(t *testing.T) {
	ctx := context.Background()
	for _, remote := range []bool{false, true} {
		name := map[bool]string{false: "local", true: "object-store"}[remote]
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			profiles := filepath.Join(dir, "profiles")
			deliver := func(seed uint64) {
				t.Helper()
				os.RemoveAll(profiles)
				synth.MustWriteProfiles(t, profiles, synth.Random(seed, synth.DefaultKnobs(300)), 16, 12, 2, synth.ArrowFixed)
			}
			out := filepath.Join(dir, "out")
			if remote {
				out = "mem://decide-" + strings.ReplaceAll(t.Name(), "/", "-") + "/out"
			}
			shard := func(i, n int, night string) string {
				t.Helper()
				t.Setenv("BATCHMATCH_JOB_NAME", night)
				cfg := pipeline.Config{
					Profiles: []string{profiles}, Out: out, K: 5,
					AsOf: synth.AsOf, Weights: match.DefaultWeights, Workers: 2,
					MaxRejectRatio: 1, Shard: match.ShardSpec{Index: i, Count: n}, SpoolDir: t.TempDir(),
				}
				res, err := pipeline.Run(ctx, cfg, runtest.Quiet)
				if err != nil {
					t.Fatalf("shard %d of %d: %v", i, n, err)
				}
				return res.Manifest.RunID
			}
			decide := func(runID, night string) publish.Decision {
				t.Helper()
				v, err := publish.ViewParts(ctx, out, "dt=2026-11-24", 0)
				if err != nil {
					t.Fatal(err)
				}
				d, err := publish.Decide(v.Parts, night, func(s *publish.PartSet) (bool, error) { return s.RunID() == runID, nil })
				if err != nil {
					t.Fatal(err)
				}
				return d
			}
			commit := func() error {
				_, err := pipeline.Commit(ctx, pipeline.CommitConfig{Out: out, AsOf: synth.AsOf, Workers: 2, SpoolDir: t.TempDir()}, runtest.Quiet)
				return err
			}
			deliver(5)
			if d := decide("x", ""); d.Verdict != publish.Waiting || d.Count != 0 {
				t.Fatalf("no part at all: %+v, want Waiting", d)
			}
			id := shard(2, 3, "n1")
			if d := decide(id, "job/n1"); d.Verdict != publish.Waiting || !slices.Equal(d.Missing, []int{0, 1}) {
				t.Fatalf("one part of three: %v %v, want Waiting for [0 1]", d.Verdict, d.Missing)
			}
			shard(0, 3, "n1")
			if err := commit(); !errors.Is(err, failure.NotReady) {
				t.Fatalf("Commit with a part missing: %v, want not ready as Decide said", err)
			}
			deliver(6) // the inputs are delivered again: shard 1 runs on them
			id2 := shard(1, 3, "n1")
			if d := decide(id2, "job/n1"); d.Verdict != publish.Mixed {
				t.Fatalf("every shard done over two deliveries: %v, want Mixed", d.Verdict)
			}
			// Every part is of an earlier run of the night: for the next
			// run of the night (another Job) none is done.
			if d := decide(id2, "job/n2"); d.Verdict != publish.Waiting || !slices.Equal(d.Missing, []int{0, 1, 2}) {
				t.Fatalf("a later night run seeing an earlier one's parts: %v %v, want Waiting for [0 1 2]", d.Verdict, d.Missing)
			}
			if err := commit(); !errors.Is(err, failure.BadData) || !strings.Contains(err.Error(), "inputs changed") {
				t.Fatalf("Commit of a mixed night: %v, want failure.BadData saying the inputs changed", err)
			}
			shard(0, 3, "n2")
			shard(2, 3, "n2")
			d := decide(id2, "job/n2")
			if d.Verdict != publish.Ready || d.Set == nil || d.Set.RunID() != id2 {
				t.Fatalf("every shard of the new delivery: %+v, want Ready with run %s", d, id2)
			}
			if err := commit(); err != nil {
				t.Fatalf("Commit after Decide said ready: %v", err)
			}
			v, err := publish.ViewParts(ctx, out, "dt=2026-11-24", 0)
			if err != nil {
				t.Fatal(err)
			}
			if v.Published == nil || !v.Published.Intact() || !publish.ConsumedByRun(v.Published, id2) {
				t.Fatalf("after the commit: published %+v, want intact and of run %s", v.Published, id2)
			}
			if len(v.Parts.Sets) != 0 {
				t.Errorf("parts left after the commit: %s", publish.Decision{Sets: v.Parts.Sets}.Describe())
			}
			_ = id
		})
	}
}
