package publish_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/osmosis/batchmatch/pipeline"
	"github.com/osmosis/batchmatch/pipeline/internal/runtest"
	"github.com/osmosis/batchmatch/pipeline/match"
	"github.com/osmosis/batchmatch/pipeline/publish"
	"github.com/osmosis/batchmatch/pipeline/store"
	"github.com/osmosis/batchmatch/pipeline/store/storetest"
	"github.com/osmosis/batchmatch/pipeline/synth"
)

// protocolFixture is a small population under dir/profiles.
func protocolFixture(t *testing.T, seed uint64) string {
	t.Helper()
	dir := t.TempDir()
	synth.MustWriteProfiles(t, filepath.Join(dir, "profiles"), synth.Random(seed, synth.DefaultKnobs(200)), 16, 12, 2, synth.ArrowFixed)
	return dir
}

// successOf reads the _SUCCESS of a local partition.
func successOf(t *testing.T, part string) publish.Success {
	t.Helper()
	body, err := os.ReadFile(filepath.Join(part, publish.SuccessFile))
	if err != nil {
		t.Fatal(err)
	}
	return publish.ParseSuccess(body)
}

// TestLocalFilesNamedPerAttempt: every file of a local publish carries the
// publishing attempt's id, so that a file a _SUCCESS listed is never
// rewritten: a reader that read _SUCCESS before an --overwrite and then
// reads the files it listed finds them gone (and starts again), never the
// new publish's bytes under the old names. Before, local names were the
// same in every publish, and such a reader mixed tables of two runs.
func TestLocalFilesNamedPerAttempt(t *testing.T) {
	dir := protocolFixture(t, 31)
	ctx := context.Background()
	cfg := runtest.BaseConfig(dir)
	cfg.K, cfg.Report = 2, true
	res, err := pipeline.Run(ctx, cfg, runtest.Quiet)
	if err != nil {
		t.Fatal(err)
	}
	old := successOf(t, res.Published)
	if len(old.Files) < 5 {
		t.Fatalf("_SUCCESS lists %q", old.Files)
	}
	for _, f := range old.Files {
		if !strings.Contains(f, res.Manifest.AttemptID) {
			t.Errorf("%s does not carry the attempt id %s", f, res.Manifest.AttemptID)
		}
	}
	cfg.K, cfg.Overwrite = 4, true
	if _, err := pipeline.Run(ctx, cfg, runtest.Quiet); err != nil {
		t.Fatal(err)
	}
	for _, f := range old.Files {
		if _, err := os.ReadFile(filepath.Join(res.Published, f)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("after an overwrite, %s (listed by the old _SUCCESS) is readable (%v): a reader of the old listing reads the new publish", f, err)
		}
	}
}

// TestPartitionNamespaces: --partition names that are the staging area's
// own ("staged", "aside", "replaced") publish and replace like any other,
// with RENAME_EXCHANGE and without: exactly one published partition, never
// one nested in another. Before, with --partition aside and no exchange,
// every overwrite moved the old partition inside the new one.
func TestPartitionNamespaces(t *testing.T) {
	dir := protocolFixture(t, 32)
	ctx := context.Background()
	for _, name := range []string{"aside", "staged", "replaced"} {
		for _, noExchange := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/noExchange=%v", name, noExchange), func(t *testing.T) {
				cfg := runtest.BaseConfig(dir)
				cfg.Out, cfg.Partition = filepath.Join(t.TempDir(), "out"), name
				env := pipeline.Env{Log: runtest.Discard, Hooks: &publish.Hooks{NoExchange: noExchange}}
				for i, k := range []int{2, 3, 2} {
					cfg.K, cfg.Overwrite = k, i > 0
					if _, err := pipeline.Run(ctx, cfg, env); err != nil {
						t.Fatalf("publish %d: %v", i, err)
					}
				}
				var markers []string
				filepath.WalkDir(cfg.Out, func(p string, d fs.DirEntry, err error) error {
					if err == nil && d.Name() == publish.SuccessFile {
						markers = append(markers, strings.TrimPrefix(p, cfg.Out))
					}
					return err
				})
				if want := []string{"/" + name + "/" + publish.SuccessFile}; !slices.Equal(markers, want) {
					t.Fatalf("_SUCCESS files under OUT: %q, want %q", markers, want)
				}
				if id, _, ok := runtest.PartitionState(t, filepath.Join(cfg.Out, name)); !ok || id == "" {
					t.Fatal("nothing published")
				}
			})
		}
	}
}

// TestRepairDamagedPublish: a local partition whose _SUCCESS lists a file
// that is gone is not "already published" for a run of the same run id:
// the run publishes it again, without --overwrite, and then every listed
// file is there. Before, the run exited 0 without writing, and the
// partition stayed damaged.
func TestRepairDamagedPublish(t *testing.T) {
	dir := protocolFixture(t, 33)
	ctx := context.Background()
	cfg := runtest.BaseConfig(dir)
	res, err := pipeline.Run(ctx, cfg, runtest.Quiet)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(publish.TablePath(res.Published, "soulmates")); err != nil {
		t.Fatal(err)
	}
	if publish.PublishedDir(res.Published) {
		t.Fatal("a partition with a listed file missing counts as published")
	}
	again, err := pipeline.Run(ctx, cfg, runtest.Quiet)
	if err != nil {
		t.Fatal(err)
	}
	if again.AlreadyPublished {
		t.Fatal("the same run over a damaged partition: already published, nothing written")
	}
	if id, _, ok := runtest.PartitionState(t, res.Published); !ok || id != res.Manifest.RunID {
		t.Fatalf("after the repair: published %v, run %s", ok, id)
	}
	other := cfg
	other.K = cfg.K + 1
	if err := os.Remove(publish.TablePath(res.Published, "rejects")); err != nil {
		t.Fatal(err)
	}
	if _, err := pipeline.Run(ctx, other, runtest.Quiet); err == nil {
		t.Fatal("another run replaced a damaged partition of another run id without --overwrite")
	}
}

// TestLeftoversDoNotBlock: a leftover of a dead run that cannot be removed
// (a file the file system refuses to delete: EBUSY, as NFS answers for a
// file a reader holds open, or an immutable one) or that cannot be decided
// (a link planted where a shard's owner lock should be) is a warning: the
// run publishes, the leftover stays for a person, and the next run
// publishes too. Before, every run on OUT failed in recovery, of every
// date.
func TestLeftoversDoNotBlock(t *testing.T) {
	dir := protocolFixture(t, 34)
	ctx := context.Background()
	cfg := runtest.BaseConfig(dir)
	busy := filepath.Join(cfg.Out, publish.StagingDir, "20261124T000000Z-1-deadbeef", "staged", "dt=2026-11-24", "matches", "held")
	os.MkdirAll(filepath.Dir(busy), 0o750)
	os.WriteFile(busy, []byte("held open"), 0o640)
	shardDir := filepath.Join(cfg.Out, publish.StagingDir, "shards", "dt=2026-11-23", "2", "0")
	os.MkdirAll(filepath.Join(shardDir, "20261123T000000Z-2-deadbeef.tmp"), 0o750)
	victim := filepath.Join(dir, "victim")
	os.WriteFile(victim, []byte("precious"), 0o640)
	if err := os.Symlink(victim, filepath.Join(shardDir, "20261123T000000Z-2-deadbeef.lock")); err != nil {
		t.Fatal(err)
	}
	env := pipeline.Env{Log: runtest.Discard, Hooks: &publish.Hooks{Fault: func(op, path string) error {
		if op == "remove" && path == busy {
			return syscall.EBUSY
		}
		return nil
	}}}
	for _, date := range []string{"2026-11-24", "2026-11-25"} {
		c := cfg
		c.AsOf, _ = time.Parse(time.DateOnly, date)
		res, err := pipeline.Run(ctx, c, env)
		if err != nil {
			t.Fatalf("run of %s with a leftover that cannot be removed: %v", date, err)
		}
		if !publish.PublishedDir(res.Published) {
			t.Fatalf("%s not published", date)
		}
	}
	if _, err := os.Stat(busy); err != nil {
		t.Errorf("the leftover that could not be removed: %v", err)
	}
	if b, err := os.ReadFile(victim); err != nil || string(b) != "precious" {
		t.Errorf("the planted link's target was touched: %q, %v", b, err)
	}
}

// shardsAndRef runs n shards of cfg into out and a whole run of cfg into a
// reference output, and returns the reference tables.
func shardsAndRef(t *testing.T, cfg pipeline.Config, n int) map[string][]byte {
	t.Helper()
	ctx := context.Background()
	ref := cfg
	ref.Out, ref.SpoolDir = filepath.Join(t.TempDir(), "ref"), ""
	res, err := pipeline.Run(ctx, ref, runtest.Quiet)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]byte{}
	for _, tb := range []string{"matches", "soulmates", "rejects"} {
		want[tb], _ = os.ReadFile(publish.TablePath(res.Published, tb))
	}
	for i := range n {
		c := cfg
		c.Shard = match.ShardSpec{Index: i, Count: n}
		if _, err := pipeline.Run(ctx, c, runtest.Quiet); err != nil {
			t.Fatalf("shard %d: %v", i, err)
		}
	}
	return want
}

// publishedTables reads the tables of the partition at synth.AsOf under out
// (a directory or an object-store URL) through its _SUCCESS.
func publishedTables(t *testing.T, out string) map[string][]byte {
	t.Helper()
	ctx := context.Background()
	st := store.New(nil)
	defer st.Close()
	read := func(rel string) ([]byte, error) { return os.ReadFile(filepath.Join(runtest.PartitionDir(out), rel)) }
	if store.IsURL(out) {
		read = func(rel string) ([]byte, error) {
			return store.Default().ReadFile(ctx, store.Join(out, publish.DefaultPartition(synth.AsOf), rel))
		}
	}
	body, err := read(publish.SuccessFile)
	if err != nil {
		t.Fatalf("not published: %v", err)
	}
	got := map[string][]byte{}
	for _, f := range publish.ParseSuccess(body).Files {
		if tb, _, ok := strings.Cut(f, "/"); ok {
			if got[tb], err = read(f); err != nil {
				t.Fatalf("_SUCCESS lists %s: %v", f, err)
			}
		}
	}
	return got
}

// TestBrokenPartsAreSkipped: a complete-looking part whose part.parquet is
// missing (a commit's cleanup raced its upload: part.json landed after the
// table was deleted) or corrupt, under an attempt name that sorts first,
// is skipped for a verified attempt of the same shard, and the missing one
// is removed as dead; the commit publishes what a whole run publishes.
// Before, the commit took the earliest name per shard and failed (66 or
// 65) on every night until a person deleted the part.
func TestBrokenPartsAreSkipped(t *testing.T) {
	dir := protocolFixture(t, 35)
	ctx := context.Background()
	for _, remote := range []bool{false, true} {
		for _, kind := range []string{"missing", "corrupt"} {
			t.Run(fmt.Sprintf("remote=%v/%s", remote, kind), func(t *testing.T) {
				cfg := runtest.BaseConfig(dir)
				cfg.Out, cfg.SpoolDir = filepath.Join(t.TempDir(), "out"), t.TempDir()
				if remote {
					cfg.Out = "mem://broken-" + kind + "/out"
				}
				want := shardsAndRef(t, cfg, 2)
				// A duplicate attempt of shard 1, named to sort first.
				const broken = "00000000T000000Z-0-00000000"
				parts := store.Join(cfg.Out, publish.StagingDir, "shards", "dt=2026-11-24", "2", "1")
				if !remote {
					parts = filepath.Join(cfg.Out, publish.StagingDir, "shards", "dt=2026-11-24", "2", "1")
				}
				copyPart(t, parts, broken, kind)
				if _, err := pipeline.Commit(ctx, pipeline.CommitConfig{Out: cfg.Out, AsOf: synth.AsOf, Workers: 2, SpoolDir: t.TempDir()}, runtest.Quiet); err != nil {
					t.Fatalf("commit with a %s part first: %v", kind, err)
				}
				got := publishedTables(t, cfg.Out)
				for tb := range want {
					if !bytes.Equal(got[tb], want[tb]) {
						t.Errorf("%s differs from a whole run", tb)
					}
				}
			})
		}
	}
}

// copyPart copies the one complete attempt under parts (a directory or an
// object-store prefix of one shard index) as attempt to, with its
// part.parquet missing or corrupt (same size, one byte changed).
func copyPart(t *testing.T, parts, to, kind string) {
	t.Helper()
	ctx := context.Background()
	st := store.Default()
	var from string
	var read func(rel string) []byte
	var write func(rel string, b []byte)
	if store.IsURL(parts) {
		keys, err := st.List(ctx, parts)
		if err != nil || len(keys) == 0 {
			t.Fatalf("no part under %s: %v", parts, err)
		}
		from, _, _ = strings.Cut(keys[0], "/")
		read = func(rel string) []byte {
			b, err := st.ReadFile(ctx, store.Join(parts, from, rel))
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
		write = func(rel string, b []byte) {
			if err := st.WriteFile(ctx, store.Join(parts, to, rel), b, false); err != nil {
				t.Fatal(err)
			}
		}
	} else {
		ents, err := os.ReadDir(parts)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if e.IsDir() && !strings.HasSuffix(e.Name(), ".tmp") {
				from = e.Name()
			}
		}
		os.MkdirAll(filepath.Join(parts, to), 0o750)
		read = func(rel string) []byte {
			b, err := os.ReadFile(filepath.Join(parts, from, rel))
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
		write = func(rel string, b []byte) {
			if err := os.WriteFile(filepath.Join(parts, to, rel), b, 0o640); err != nil {
				t.Fatal(err)
			}
		}
	}
	if kind == "corrupt" {
		b := read("part.parquet")
		b[len(b)/2] ^= 0xff
		write("part.parquet", b)
	}
	write("part.json", read("part.json"))
}

// TestCommitIdempotent: a commit retried after it succeeded (a lost exit
// status, a Job retried, an operator running the runbook again), with and
// without --overwrite, finds no parts and the partition published by the
// run the inputs give: 0, nothing written. Before, `commit --overwrite`
// exited 75 (no parts) for good.
func TestCommitIdempotent(t *testing.T) {
	dir := protocolFixture(t, 36)
	ctx := context.Background()
	for _, remote := range []bool{false, true} {
		for _, overwrite := range []bool{false, true} {
			t.Run(fmt.Sprintf("remote=%v/overwrite=%v", remote, overwrite), func(t *testing.T) {
				cfg := runtest.BaseConfig(dir)
				cfg.Out, cfg.SpoolDir = filepath.Join(t.TempDir(), "out"), t.TempDir()
				if remote {
					cfg.Out = fmt.Sprintf("mem://idempotent-%v/out", overwrite)
				}
				cfg.Overwrite = overwrite
				shardsAndRef(t, cfg, 2)
				cc := pipeline.CommitConfig{Out: cfg.Out, AsOf: synth.AsOf, Workers: 2, Overwrite: overwrite, SpoolDir: t.TempDir()}
				first, err := pipeline.Commit(ctx, cc, runtest.Quiet)
				if err != nil {
					t.Fatal(err)
				}
				for i := range 2 {
					again, err := pipeline.Commit(ctx, cc, runtest.Quiet)
					if err != nil {
						t.Fatalf("commit again (%d): %v", i+1, err)
					}
					if !again.AlreadyPublished || again.Manifest.RunID != first.Manifest.RunID {
						t.Fatalf("commit again: %+v, want already published by run %s", again, first.Manifest.RunID)
					}
				}
			})
		}
	}
}

// TestRemotePartsSwept: on object storage, the part of a shard retried
// after its night was published (it finds the others' parts gone) is
// removed by a later run or commit on the same output, as a local run
// removes it: the published manifest proves it consumed. Before, nothing
// ever removed it.
func TestRemotePartsSwept(t *testing.T) {
	dir := protocolFixture(t, 37)
	ctx := context.Background()
	cfg := runtest.BaseConfig(dir)
	cfg.Out, cfg.SpoolDir = "mem://swept/out", t.TempDir()
	shardsAndRef(t, cfg, 2)
	if _, err := pipeline.Commit(ctx, pipeline.CommitConfig{Out: cfg.Out, AsOf: synth.AsOf, Workers: 2, SpoolDir: t.TempDir()}, runtest.Quiet); err != nil {
		t.Fatal(err)
	}
	retry := cfg
	retry.Shard = match.ShardSpec{Index: 1, Count: 2}
	if _, err := pipeline.Run(ctx, retry, runtest.Quiet); err != nil {
		t.Fatal(err)
	}
	parts := store.Join(cfg.Out, publish.StagingDir, "shards")
	if keys, _ := store.Default().List(ctx, parts); len(keys) == 0 {
		t.Fatal("the retried shard left no part")
	}
	next := cfg
	next.AsOf = synth.AsOf.AddDate(0, 0, 1)
	if _, err := pipeline.Run(ctx, next, runtest.Quiet); err != nil {
		t.Fatal(err)
	}
	if keys, _ := store.Default().List(ctx, parts); len(keys) != 0 {
		t.Fatalf("the consumed part survived the next run: %q", keys)
	}
}

// TestPartsVanishMidCommit: two commits of one night on object storage
// (two shards that both found every part): while A downloads the parts,
// B publishes and removes them. A finds them gone, reads _SUCCESS again,
// finds the night published by the same run, and succeeds. Before, A
// exited 66 (input missing: a permanent code that fails the Job) for a
// night that was published.
func TestPartsVanishMidCommit(t *testing.T) {
	dir := protocolFixture(t, 38)
	fake := storetest.NewFakeS3(t, "bm-vanish")
	ctx := context.Background()
	cfg := runtest.BaseConfig(dir)
	cfg.Out, cfg.SpoolDir = store.Join(fake.URL, "out"), t.TempDir()
	shardsAndRef(t, cfg, 2)
	cc := func() pipeline.CommitConfig {
		return pipeline.CommitConfig{Out: cfg.Out, AsOf: synth.AsOf, Workers: 2, SpoolDir: t.TempDir()}
	}
	var fired atomic.Bool
	var errB error
	fake.SetPlan(func(_ int64, r *http.Request) storetest.Fault {
		if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/part.parquet") && fired.CompareAndSwap(false, true) {
			_, errB = pipeline.Commit(ctx, cc(), runtest.Quiet) // B, while A waits for its first part
		}
		return storetest.Pass
	})
	defer fake.SetPlan(nil)
	res, err := pipeline.Commit(ctx, cc(), runtest.Quiet)
	if errB != nil {
		t.Fatalf("B: %v", errB)
	}
	if !fired.Load() {
		t.Fatal("A downloaded no part: the race was not staged")
	}
	if err != nil || !res.AlreadyPublished {
		t.Fatalf("A, whose parts B removed after publishing: %v (%+v), want already published", err, res)
	}
}
