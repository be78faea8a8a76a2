package pipeline

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

	"github.com/osmosis/batchmatch/pipeline/failure"
	"github.com/osmosis/batchmatch/pipeline/synth"
)

// partitionState reads a local partition as a reader should: _SUCCESS,
// then the files it lists (all must exist). ok is false when there is no
// published partition.
func partitionState(t *testing.T, part string) (runID string, matches []byte, ok bool) {
	t.Helper()
	body, err := os.ReadFile(filepath.Join(part, successFile))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil, false
	}
	if err != nil {
		t.Fatal(err)
	}
	s := parseSuccess(body)
	if len(s.Files) == 0 {
		t.Fatalf("%s lists no files:\n%s", successFile, body)
	}
	for _, f := range s.Files {
		b, err := os.ReadFile(filepath.Join(part, filepath.FromSlash(f)))
		if err != nil {
			t.Fatalf("%s of run %s lists %s, which is not there: %v", successFile, s.RunID, f, err)
		}
		if f == "matches/"+partFile {
			matches = b
		}
	}
	return s.RunID, matches, true
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
	oldCfg := baseConfig(dir)
	oldCfg.K = 2
	newCfg := baseConfig(dir)
	newCfg.K, newCfg.Overwrite, newCfg.Report = 4, true, true
	reference := func(cfg Config) (string, []byte) {
		cfg.Out = filepath.Join(t.TempDir(), "out")
		res, err := Run(ctx, cfg, discard)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(tablePath(res.Published, "matches"))
		return res.Manifest.RunID, b
	}
	oldID, oldM := reference(oldCfg)
	newID, newM := reference(newCfg)
	if oldID == newID || bytes.Equal(oldM, newM) {
		t.Fatal("the two runs must differ")
	}
	defer func() { faultHook, noExchange = nil, false }()
	n := 0
	fresh := func() string {
		n++
		out := filepath.Join(dir, fmt.Sprintf("out%d", n))
		c := oldCfg
		c.Out = out
		if _, err := Run(ctx, c, discard); err != nil {
			t.Fatal(err)
		}
		return out
	}
	check := func(t *testing.T, out, when string) string {
		t.Helper()
		id, m, ok := partitionState(t, PartitionDir(out, synth.AsOf))
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
		faultHook = func(op, path string) error {
			ops = append(ops, op+" "+attemptRE.ReplaceAllString(strings.TrimPrefix(path, out), "<attempt>"))
			return nil
		}
		c := newCfg
		c.Out = out
		_, err := Run(ctx, c, discard)
		faultHook = nil
		if err != nil {
			t.Fatal(err)
		}
		if check(t, out, "a clean overwrite") != "new" {
			t.Fatal("a clean overwrite did not publish")
		}
		for _, want := range []string{"create /.lock", "_SUCCESS.tmp", "manifest.json.tmp", "report.html.tmp", "matches/part-00000.parquet"} {
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
					faultHook = func(string, string) error {
						k++
						if k == i+1 || (persist && k > i) {
							return syscall.ENOSPC
						}
						return nil
					}
					c := newCfg
					c.Out = out
					_, err := Run(ctx, c, discard)
					faultHook = nil
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
					if _, err := Run(ctx, b, discard); !errors.Is(err, failure.BadData) {
						t.Fatalf("the next run: %v, want failure.BadData", err)
					}
					check(t, out, "after the next run")
					if _, err := os.Stat(filepath.Join(out, stagingDir)); !errors.Is(err, os.ErrNotExist) {
						t.Fatalf("the next run left the staging area: %v", err)
					}
					// The retry publishes.
					if _, err := Run(ctx, c, discard); err != nil {
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
			cfg := baseConfig(dir)
			cfg.Out = filepath.Join(t.TempDir(), "out")
			res, err := Run(ctx, cfg, discard)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := os.ReadFile(tablePath(res.Published, "matches"))
			legacy := filepath.Join(cfg.Out, stagingDir, "20261124T010203Z-77-abcdef01")
			os.MkdirAll(legacy, 0o750)
			if err := os.Rename(res.Published, filepath.Join(legacy, legacyReplaced)); err != nil {
				t.Fatal(err)
			}
			if unfinished {
				os.MkdirAll(filepath.Join(res.Published, "matches"), 0o750)
				os.WriteFile(filepath.Join(res.Published, "matches", partFile), []byte("new, unfinished"), 0o640)
			}
			b := cfg
			b.Profiles = []string{bad}
			if _, err := Run(ctx, b, discard); !errors.Is(err, failure.BadData) {
				t.Fatalf("the next run: %v, want failure.BadData", err)
			}
			id, m, ok := partitionState(t, res.Published)
			if !ok || id != res.Manifest.RunID || !bytes.Equal(m, want) {
				t.Fatalf("the published partition was not put back (published %v, run %s)", ok, id)
			}
			if _, err := os.Stat(filepath.Join(cfg.Out, stagingDir)); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("staging area left: %v", err)
			}
		})
	}
}

// TestCheckPartition: --partition takes a conservative character set.
func TestCheckPartition(t *testing.T) {
	for name, ok := range map[string]bool{
		"dt=2026-11-24": true, "run=nightly": true, "latest": true, "v1.2_x-y": true, "A": true,
		"": false, " ": false, "\n": false, "dt=2026 11 24": false, "con*": false, "a/b": false, "..": false,
		"a..b": false, ".hidden": false, "_temporary": false, "-x": false, "=x": false, "é": false,
		"a\\b": false, "x?": false, "a:b": false, strings.Repeat("a", 128): true, strings.Repeat("a", 129): false,
	} {
		err := CheckPartition(name)
		if ok != (err == nil) {
			t.Errorf("CheckPartition(%q) = %v", name, err)
		}
		if err != nil && !errors.Is(err, failure.Usage) {
			t.Errorf("CheckPartition(%q): %v is not a usage error", name, err)
		}
		o := Options{Profiles: []string{"p"}, Out: "o", K: 1, Workers: 1, Weights: defaultWeights[:], AsOf: "2026-11-24", Partition: name}
		if _, err := o.Config(synth.AsOf, true); name != "" && ok != (err == nil) {
			t.Errorf("--partition %q: %v", name, err)
		}
	}
}

// TestMetricsTextfileMode: the metrics textfile is 0640 like every file
// the job writes (prometheus.WriteToTextfile made it 0644).
func TestMetricsTextfileMode(t *testing.T) {
	prom := filepath.Join(t.TempDir(), "batchmatch.prom")
	if err := PublishMetrics(MetricsOptions{Textfile: prom}, nil, 74, "h"); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(prom)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o640 {
		t.Fatalf("mode %v, want 0640", st.Mode().Perm())
	}
	b, _ := os.ReadFile(prom)
	if !strings.Contains(string(b), "batchmatch_last_run_exit_code 74") {
		t.Fatalf("textfile:\n%s", b)
	}
	ents, _ := os.ReadDir(filepath.Dir(prom))
	if len(ents) != 1 {
		t.Fatalf("temporary files left: %v", ents)
	}
}
