package publish_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/osmosis/batchmatch/pipeline"
	"github.com/osmosis/batchmatch/pipeline/failure"
	"github.com/osmosis/batchmatch/pipeline/internal/runtest"
	"github.com/osmosis/batchmatch/pipeline/publish"
	"github.com/osmosis/batchmatch/pipeline/synth"
)

func TestCommitProtocol(t *testing.T) {
	dir := t.TempDir()
	synth.MustWriteProfiles(t, filepath.Join(dir, "profiles"), synth.Random(6, synth.DefaultKnobs(40)), 16, 12, 1, synth.ArrowFixed)
	cfg := runtest.BaseConfig(dir)
	// leftovers of a crashed run are cleaned up
	junk := filepath.Join(cfg.Out, publish.StagingDir, "crashed-attempt", "dt=2026-11-24")
	os.MkdirAll(junk, 0o755)
	res, err := pipeline.Run(context.Background(), cfg, runtest.Quiet)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(cfg.Out, publish.StagingDir)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("staging area survived a successful run")
	}
	for _, f := range []string{publish.SuccessFile, publish.ManifestPath(res.Published), publish.TablePath(res.Published, "matches"),
		publish.TablePath(res.Published, "soulmates"), publish.TablePath(res.Published, "rejects")} {
		if !filepath.IsAbs(f) {
			f = filepath.Join(res.Published, f)
		}
		st, err := os.Stat(f)
		if err != nil {
			t.Fatalf("published run lacks %s: %v", f, err)
		}
		if st.Mode().Perm()&0o007 != 0 {
			t.Errorf("%s is world-accessible: %v", f, st.Mode())
		}
	}
	// an identical re-run succeeds without writing anything; a run of
	// other settings is refused without --overwrite
	before0, _ := os.ReadFile(filepath.Join(res.Published, publish.SuccessFile))
	if again, err := pipeline.Run(context.Background(), cfg, runtest.Quiet); err != nil || !again.AlreadyPublished {
		t.Fatalf("identical re-run without overwrite: %v, want success without publishing", err)
	}
	if after0, _ := os.ReadFile(filepath.Join(res.Published, publish.SuccessFile)); !bytes.Equal(before0, after0) {
		t.Fatal("an identical re-run replaced the partition")
	}
	other := cfg
	other.K = cfg.K + 1
	if _, err := pipeline.Run(context.Background(), other, runtest.Quiet); !errors.Is(err, failure.Exists) {
		t.Fatalf("re-run of other settings without overwrite: %v, want failure.Exists", err)
	}
	// and replaces the partition with it
	before, _ := os.ReadFile(publish.ManifestPath(res.Published))
	cfg.Overwrite = true
	res2, err := pipeline.Run(context.Background(), cfg, runtest.Quiet)
	if err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(publish.ManifestPath(res2.Published))
	if bytes.Equal(before, after) || res2.Manifest.AttemptID == res.Manifest.AttemptID {
		t.Error("overwrite did not replace the partition")
	}
	if res2.Manifest.RunID != res.Manifest.RunID || len(res.Manifest.RunID) != 32 {
		t.Errorf("same input and configuration, different run ids: %q, %q", res.Manifest.RunID, res2.Manifest.RunID)
	}
	// a second run while the lock is held exits with failure.Locked naming the holder
	target, err := publish.OpenTarget(context.Background(), publish.TargetConfig{Out: cfg.Out, Partition: publish.DefaultPartition(synth.AsOf)}, runtest.Discard, nil)
	if err != nil {
		t.Fatal(err)
	}
	holder, err := target.Lock("holder-attempt", false)
	if err != nil {
		t.Fatal(err)
	}
	_, err = pipeline.Run(context.Background(), cfg, runtest.Quiet)
	holder.Close()
	target.Close()
	if !errors.Is(err, failure.Locked) || !strings.Contains(err.Error(), "holder-attempt") {
		t.Fatalf("concurrent run: %v, want failure.Locked naming the holder", err)
	}
}

// TestUnfinishedPublishIsReplaced: a partition without _SUCCESS (a crash
// between the rename and the marker) does not block the next run.
func TestUnfinishedPublishIsReplaced(t *testing.T) {
	dir := t.TempDir()
	synth.MustWriteProfiles(t, filepath.Join(dir, "profiles"), synth.Random(9, synth.DefaultKnobs(30)), 16, 12, 1, synth.ArrowFixed)
	cfg := runtest.BaseConfig(dir)
	half := publish.PartitionDir(cfg.Out, synth.AsOf)
	os.MkdirAll(filepath.Join(half, "matches"), 0o750)
	os.WriteFile(filepath.Join(half, "matches", publish.PartFile), []byte("half-written"), 0o640)
	res, err := pipeline.Run(context.Background(), cfg, runtest.Quiet)
	if err != nil {
		t.Fatalf("run over an unfinished publish: %v", err)
	}
	if b, _ := os.ReadFile(publish.TablePath(res.Published, "matches")); bytes.Equal(b, []byte("half-written")) {
		t.Fatal("unfinished partition was not replaced")
	}
	if !publish.PublishedDir(res.Published) {
		t.Fatal("no _SUCCESS")
	}
}

// TestOverwriteIOFailures fails, one at a time, every file-system operation
// of a run with --overwrite over a published partition (every directory
// and file it creates, every write, fsync, rename, exchange and removal),
// once as a single failure and once as a failure that persists (a disk
// that stays full), on a file system with RENAME_EXCHANGE and on one
// without. After the failed run a complete partition is published, the old
// one or the new one (without RENAME_EXCHANGE and a persisting failure,
// the old one may wait in the staging area until the next run); the next
// run, although it fails on its input, puts back what needs putting back
// and removes the rest; the retry publishes the new partition.
func TestOverwriteIOFailures(t *testing.T) {
	dir := t.TempDir()
	synth.MustWriteProfiles(t, filepath.Join(dir, "profiles"), synth.Random(21, synth.DefaultKnobs(60)), 16, 12, 1, synth.ArrowFixed)
	bad := filepath.Join(dir, "bad")
	os.MkdirAll(bad, 0o755)
	os.WriteFile(filepath.Join(bad, "x.parquet"), []byte("not parquet"), 0o644)
	ctx := context.Background()
	oldCfg := runtest.BaseConfig(dir)
	oldCfg.K = 2
	newCfg := runtest.BaseConfig(dir)
	newCfg.K, newCfg.Overwrite, newCfg.Report = 4, true, true
	reference := func(cfg pipeline.Config) (string, []byte) {
		cfg.Out = filepath.Join(t.TempDir(), "out")
		res, err := pipeline.Run(ctx, cfg, runtest.Quiet)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(publish.TablePath(res.Published, "matches"))
		return res.Manifest.RunID, b
	}
	oldID, oldM := reference(oldCfg)
	newID, newM := reference(newCfg)
	if oldID == newID || bytes.Equal(oldM, newM) {
		t.Fatal("the two runs must differ")
	}
	// The hooks of the runs below: the mode's file system (with or
	// without RENAME_EXCHANGE) and, for the run under test, the faults.
	noExchange := false
	env := func(fault func(op, path string) error) pipeline.Env {
		return pipeline.Env{Log: runtest.Discard, Hooks: &publish.Hooks{Fault: fault, NoExchange: noExchange}}
	}
	n := 0
	fresh := func() string {
		n++
		out := filepath.Join(dir, fmt.Sprintf("out%d", n))
		c := oldCfg
		c.Out = out
		if _, err := pipeline.Run(ctx, c, env(nil)); err != nil {
			t.Fatal(err)
		}
		return out
	}
	check := func(t *testing.T, out, when string) string {
		t.Helper()
		id, m, ok := runtest.PartitionState(t, publish.PartitionDir(out, synth.AsOf))
		switch {
		case !ok:
			t.Fatalf("%s: no published partition", when)
		case id == oldID && bytes.Equal(m, oldM):
			return "old"
		case id == newID && bytes.Equal(m, newM):
			return "new"
		}
		t.Fatalf("%s: the published partition is neither the old one nor the new one (run %s)", when, id)
		return ""
	}
	for _, mode := range []struct {
		name       string
		noExchange bool
	}{{"exchange", false}, {"renames", true}} {
		noExchange = mode.noExchange
		// Every operation of an overwrite, in order.
		var ops []string
		out := fresh()
		record := func(op, path string) error {
			ops = append(ops, op+" "+attemptRE.ReplaceAllString(strings.TrimPrefix(path, out), "<attempt>"))
			return nil
		}
		c := newCfg
		c.Out = out
		if _, err := pipeline.Run(ctx, c, env(record)); err != nil {
			t.Fatal(err)
		}
		if check(t, out, "a clean overwrite") != "new" {
			t.Fatal("a clean overwrite did not publish")
		}
		for _, want := range []string{"create /.lock", "_SUCCESS.tmp", "manifest-<attempt>.json.tmp", "report-<attempt>.html.tmp", "matches/part-00000-<attempt>.parquet"} {
			if !strings.Contains(strings.Join(ops, "\n"), want) {
				t.Fatalf("the hook did not see %q among:\n%s", want, strings.Join(ops, "\n"))
			}
		}
		for _, persist := range []bool{false, true} {
			if persist && testing.Short() {
				continue // -short (the race detector run): single failures only
			}
			for i, op := range ops {
				name := fmt.Sprintf("%s/persist=%v/%d %s", mode.name, persist, i, op)
				t.Run(name, func(t *testing.T) {
					out := fresh()
					k := 0
					fullDisk := func(string, string) error {
						k++
						if k == i+1 || (persist && k > i) {
							return syscall.ENOSPC
						}
						return nil
					}
					c := newCfg
					c.Out = out
					_, err := pipeline.Run(ctx, c, env(fullDisk))
					if err == nil {
						if check(t, out, "after the run") != "new" {
							t.Fatal("the run succeeded, but did not publish")
						}
						return // the failure was in the cleanup after publishing
					}
					if !errors.Is(err, failure.IO) {
						t.Fatalf("a full disk: %v, want failure.IO", err)
					}
					if !(mode.noExchange && persist) {
						check(t, out, "after the failed run")
					}
					// The next run fails on its input, after recovering.
					b := c
					b.Profiles, b.Overwrite = []string{bad}, false
					if _, err := pipeline.Run(ctx, b, env(nil)); !errors.Is(err, failure.BadData) {
						t.Fatalf("the next run: %v, want failure.BadData", err)
					}
					check(t, out, "after the next run")
					if _, err := os.Stat(filepath.Join(out, publish.StagingDir)); !errors.Is(err, os.ErrNotExist) {
						t.Fatalf("the next run left the staging area: %v", err)
					}
					// The retry publishes.
					if _, err := pipeline.Run(ctx, c, env(nil)); err != nil {
						t.Fatal(err)
					}
					if check(t, out, "after the retry") != "new" {
						t.Fatal("the retry did not publish")
					}
				})
			}
		}
	}
}

var attemptRE = regexp.MustCompile(`\d{8}T\d{6}Z-\d+-[0-9a-f]{8}`)

// TestRecoverLegacyReplaced: an overwrite by an earlier batchmatch, killed
// after it moved the old partition to _temporary/<attempt>/replaced and
// renamed the new one (without _SUCCESS) into place, is repaired by the
// next run, even one that fails on its input: the old partition is put
// back, the unfinished one removed. Before, the next run removed both.
func TestRecoverLegacyReplaced(t *testing.T) {
	dir := t.TempDir()
	synth.MustWriteProfiles(t, filepath.Join(dir, "profiles"), synth.Random(22, synth.DefaultKnobs(40)), 16, 12, 1, synth.ArrowFixed)
	bad := filepath.Join(dir, "bad")
	os.MkdirAll(bad, 0o755)
	os.WriteFile(filepath.Join(bad, "x.parquet"), []byte("not parquet"), 0o644)
	ctx := context.Background()
	for _, unfinished := range []bool{false, true} {
		t.Run(fmt.Sprintf("unfinished partition in place=%v", unfinished), func(t *testing.T) {
			cfg := runtest.BaseConfig(dir)
			cfg.Out = filepath.Join(t.TempDir(), "out")
			res, err := pipeline.Run(ctx, cfg, runtest.Quiet)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := os.ReadFile(publish.TablePath(res.Published, "matches"))
			legacy := filepath.Join(cfg.Out, publish.StagingDir, "20261124T010203Z-77-abcdef01")
			os.MkdirAll(legacy, 0o750)
			if err := os.Rename(res.Published, filepath.Join(legacy, "replaced")); err != nil { // where earlier versions moved the old partition
				t.Fatal(err)
			}
			if unfinished {
				os.MkdirAll(filepath.Join(res.Published, "matches"), 0o750)
				os.WriteFile(filepath.Join(res.Published, "matches", publish.PartFile), []byte("new, unfinished"), 0o640)
			}
			b := cfg
			b.Profiles = []string{bad}
			if _, err := pipeline.Run(ctx, b, runtest.Quiet); !errors.Is(err, failure.BadData) {
				t.Fatalf("the next run: %v, want failure.BadData", err)
			}
			id, m, ok := runtest.PartitionState(t, res.Published)
			if !ok || id != res.Manifest.RunID || !bytes.Equal(m, want) {
				t.Fatalf("the published partition was not put back (published %v, run %s)", ok, id)
			}
			if _, err := os.Stat(filepath.Join(cfg.Out, publish.StagingDir)); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("staging area left: %v", err)
			}
		})
	}
}

// TestPartitionDir: a run with --partition publishes under that name.
func TestPartitionDir(t *testing.T) {
	dir := t.TempDir()
	synth.MustWriteProfiles(t, filepath.Join(dir, "profiles"), synth.Random(12, synth.DefaultKnobs(20)), 16, 12, 1, synth.ArrowFixed)
	cfg := runtest.BaseConfig(dir)
	cfg.Partition = "run=nightly"
	res, err := pipeline.Run(context.Background(), cfg, runtest.Quiet)
	if err != nil || res.Published != filepath.Join(cfg.Out, "run=nightly") || !publish.PublishedDir(res.Published) {
		t.Fatalf("%v, %+v", err, res)
	}
}
