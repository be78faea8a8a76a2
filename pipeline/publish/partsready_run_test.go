package publish_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/osmosis/batchmatch/pipeline"
	"github.com/osmosis/batchmatch/pipeline/failure"
	"github.com/osmosis/batchmatch/pipeline/internal/runtest"
	"github.com/osmosis/batchmatch/pipeline/match"
	"github.com/osmosis/batchmatch/pipeline/publish"
	"github.com/osmosis/batchmatch/pipeline/synth"
)

// TestPartsReady: from a listing alone, PartsReady tells a shard whether
// the set of parts is complete, on a local output and on an object store,
// with the shard count given or found; it agrees with what Commit then
// finds, and an incomplete (.tmp) attempt does not count. Published tells
// a published partition.
func TestPartsReady(t *testing.T) {
	dir := t.TempDir()
	ms := synth.Random(5, synth.DefaultKnobs(300))
	synth.MustWriteProfiles(t, filepath.Join(dir, "profiles"), ms, 16, 12, 2, synth.ArrowFixed)
	ctx := context.Background()
	for _, out := range []string{filepath.Join(dir, "out"), "mem://partsready/out"} {
		name := "local"
		if strings.Contains(out, "://") {
			name = "object-store"
		}
		t.Run(name, func(t *testing.T) {
			shard := func(i, n int) {
				t.Helper()
				cfg := pipeline.Config{
					Profiles: []string{filepath.Join(dir, "profiles")}, Out: out, K: 5,
					AsOf: synth.AsOf, Weights: match.DefaultWeights, Workers: 2,
					MaxRejectRatio: 1, Shard: match.ShardSpec{Index: i, Count: n}, SpoolDir: t.TempDir(),
				}
				if _, err := pipeline.Run(ctx, cfg, runtest.Quiet); err != nil {
					t.Fatalf("shard %d of %d: %v", i, n, err)
				}
			}
			notReady := func(count int, want string) {
				t.Helper()
				err := publish.PartsReady(ctx, out, "", synth.AsOf, count)
				if !errors.Is(err, failure.NotReady) || !strings.Contains(err.Error(), want) {
					t.Errorf("publish.PartsReady(count %d): %v, want not ready naming %q", count, err, want)
				}
			}
			notReady(0, "no ")
			notReady(3, "indices [0 1 2]")
			shard(2, 3)
			notReady(3, "indices [0 1]")
			notReady(0, "indices [0 1]")
			shard(0, 3)
			if !strings.Contains(out, "://") { // an attempt cut short leaves a .tmp: not a part
				if err := os.MkdirAll(filepath.Join(out, publish.StagingDir, "shards", "dt=2026-11-24", "3", "1", "x.tmp"), 0o750); err != nil { // shard 1 of 3
					t.Fatal(err)
				}
			}
			notReady(3, "indices [1]")
			_, err := pipeline.Commit(ctx, pipeline.CommitConfig{Out: out, AsOf: synth.AsOf, Workers: 2, SpoolDir: t.TempDir()}, runtest.Quiet)
			if !errors.Is(err, failure.NotReady) {
				t.Errorf("Commit with a part missing: %v, want not ready as PartsReady said", err)
			}
			shard(1, 3)
			for _, n := range []int{0, 3} {
				if err := publish.PartsReady(ctx, out, "", synth.AsOf, n); err != nil {
					t.Errorf("publish.PartsReady(count %d) with every part: %v", n, err)
				}
			}
			notReady(4, "indices [0 1 2 3]") // another count has no part
			if ok, err := publish.IsPublished(ctx, out, "", synth.AsOf); ok || err != nil {
				t.Errorf("Published before the commit: %v, %v", ok, err)
			}
			if _, err := pipeline.Commit(ctx, pipeline.CommitConfig{Out: out, AsOf: synth.AsOf, Workers: 2, SpoolDir: t.TempDir()}, runtest.Quiet); err != nil {
				t.Fatalf("Commit after PartsReady said ready: %v", err)
			}
			notReady(3, "") // the parts are gone once published
			if ok, err := publish.IsPublished(ctx, out, "", synth.AsOf); !ok || err != nil {
				t.Errorf("Published after the commit: %v, %v", ok, err)
			}
			if ok, err := publish.IsPublished(ctx, out, "dt=2026-11-25", synth.AsOf); ok || err != nil {
				t.Errorf("Published for another partition: %v, %v", ok, err)
			}
		})
	}
}
