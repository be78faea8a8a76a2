package pipeline_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/osmosis/batchmatch/pipeline"
	"github.com/osmosis/batchmatch/pipeline/internal/runtest"
	"github.com/osmosis/batchmatch/pipeline/match"
	"github.com/osmosis/batchmatch/pipeline/publish"
	"github.com/osmosis/batchmatch/pipeline/read"
	"github.com/osmosis/batchmatch/pipeline/synth"
)

// evolving is a population of n members with clones (exact ties
// everywhere) and its sign-ups, changing by churn a night.
func evolving(seed uint64, n int, churn float64) (*synth.Evolution, synth.Knobs) {
	kn := synth.DefaultKnobs(n)
	kn.Clones = 0.2
	base := synth.Random(seed, kn)
	extra := synth.Random(seed+1, kn)
	for i := range extra {
		extra[i].ID = synth.Ptr(int64(1_000_000 + i))
	}
	return &synth.Evolution{Seed: seed, N0: n, Churn: churn, Base: func(s int) synth.Member {
		if s < len(base) {
			return base[s]
		}
		return extra[s-len(base)]
	}}, kn
}

// writeNight writes night k of ev under dir/nK and returns a run
// configuration over it at synth.AsOf + k days (out left to the caller).
func writeNight(t *testing.T, dir string, ev *synth.Evolution, kn synth.Knobs, k int) (pipeline.Config, *synth.Night) {
	t.Helper()
	night := ev.Night(k)
	nd := filepath.Join(dir, "n"+string(rune('0'+k)))
	synth.MustWriteProfiles(t, filepath.Join(nd, "profiles"), night.Members(), kn.D, kn.Q, 2, synth.ArrowVariable)
	if err := synth.WriteSuppress(filepath.Join(nd, synth.NightSuppress), night.Suppress); err != nil {
		t.Fatal(err)
	}
	if err := synth.WriteBlocks(filepath.Join(nd, synth.NightBlocks), night.Blocks); err != nil {
		t.Fatal(err)
	}
	cfg := runtest.BaseConfig(nd)
	cfg.Suppress = []string{filepath.Join(nd, synth.NightSuppress)}
	cfg.Blocks = []string{filepath.Join(nd, synth.NightBlocks)}
	cfg.AsOf = synth.AsOf.AddDate(0, 0, k)
	cfg.Partition = publish.DefaultPartition(cfg.AsOf)
	return cfg, night
}

// publishedTables reads the tables of the partition of asOf under out (a
// directory or a URL) through its _SUCCESS, checked against its manifest.
func publishedTables(t *testing.T, out string, asOf time.Time) (map[string][]byte, *publish.Manifest) {
	t.Helper()
	loc := filepath.Join(out, publish.DefaultPartition(asOf))
	if strings.Contains(out, "://") {
		loc = out + "/" + publish.DefaultPartition(asOf)
	}
	pn, err := publish.OpenNight(context.Background(), loc)
	if err != nil {
		t.Fatal(err)
	}
	tables := map[string][]byte{}
	for _, name := range publish.TableNames {
		if tables[name], err = pn.Table(context.Background(), name); err != nil {
			t.Fatal(err)
		}
	}
	return tables, pn.Manifest
}

func run(t *testing.T, cfg pipeline.Config) *publish.Manifest {
	t.Helper()
	res, err := pipeline.Run(context.Background(), cfg, runtest.Quiet)
	if err != nil {
		t.Fatal(err)
	}
	return res.Manifest
}

// TestIncrementalEqualsFull: seven nights of an evolving population (every
// kind of change: sign-ups, edits of location, preferences, answers and
// traits, members leaving, erasures, consent withdrawn and given, blocks
// added, and birthdays as the date advances), with clones for exact ties
// and K = 3 so that ties sit at the K boundary. Each night is published by
// a full run and by an incremental one, locally and on object storage
// (mem://), and by an incremental pseudonymized export next to a full one:
// every table is byte-identical, every incremental night after the first
// started from the night before and rescored only part of the population.
func TestIncrementalEqualsFull(t *testing.T) {
	ev, kn := evolving(11, 600, 0.06)
	dir := t.TempDir()
	key := filepath.Join(dir, "key")
	if err := os.WriteFile(key, []byte("0123456789abcdef-night"), 0o600); err != nil {
		t.Fatal(err)
	}
	outs := map[string]string{"full": filepath.Join(dir, "full"), "inc": filepath.Join(dir, "inc"),
		"mem": "mem://nights/inc", "pfull": filepath.Join(dir, "pfull"), "pinc": filepath.Join(dir, "pinc")}
	seen := map[string]int{}
	var prevPop *read.Population
	birthdays := 0
	const nights = 7
	for k := range nights {
		cfg, night := writeNight(t, dir, ev, kn, k)
		for kind, n := range night.Events {
			seen[synth.EventKind(kind).String()] += n
		}
		L, err := read.Load(context.Background(), read.Config{Profiles: cfg.Profiles, Suppress: cfg.Suppress, Blocks: cfg.Blocks,
			AsOf: cfg.AsOf, MaxRejectRatio: 1, Workers: 2}, runtest.Discard, nil)
		if err != nil {
			t.Fatal(err)
		}
		if prevPop != nil {
			for i, id := range L.Pop.ID {
				if j := prevPop.Index(id); j >= 0 && prevPop.Age[j] != L.Pop.Age[i] {
					birthdays++
				}
			}
		}
		prevPop = L.Pop
		manifests := map[string]*publish.Manifest{}
		for name, out := range outs {
			c := cfg
			c.Out = out
			c.Incremental = name == "inc" || name == "mem" || name == "pinc"
			if name[0] == 'p' {
				c.PseudonymKey = key
			}
			manifests[name] = run(t, c)
		}
		want, _ := publishedTables(t, outs["full"], cfg.AsOf)
		pwant, _ := publishedTables(t, outs["pfull"], cfg.AsOf)
		for _, name := range []string{"inc", "mem", "pinc"} {
			got, m := publishedTables(t, outs[name], cfg.AsOf)
			w := want
			if name == "pinc" {
				w = pwant
			}
			for _, table := range publish.TableNames {
				if !bytes.Equal(got[table], w[table]) {
					t.Fatalf("night %d, %s: the %s table differs from the full run's", k, name, table)
				}
			}
			ni := m.Night
			if k == 0 {
				if ni.Mode != "full" || !strings.Contains(ni.FullReason, "no night published before") {
					t.Fatalf("night 0, %s: %+v", name, ni)
				}
				continue
			}
			if ni.Mode != "incremental" || ni.From != publish.DefaultPartition(cfg.AsOf.AddDate(0, 0, -1)) ||
				ni.MembersRescored >= m.Counts.Eligible || ni.Changed == 0 || ni.Carried == 0 {
				t.Fatalf("night %d, %s: %+v of %d eligible", k, name, ni, m.Counts.Eligible)
			}
			if m.Churn == nil || m.Stability == nil {
				t.Fatalf("night %d, %s: no churn or stability in the manifest", k, name)
			}
		}
		if k > 0 {
			// churn and stability are computed from the tables, whichever way
			// they were computed
			a, _ := json.Marshal(manifests["full"].Churn)
			b, _ := json.Marshal(manifests["inc"].Churn)
			c, _ := json.Marshal(manifests["full"].Stability)
			d, _ := json.Marshal(manifests["inc"].Stability)
			if !bytes.Equal(a, b) || !bytes.Equal(c, d) {
				t.Fatalf("night %d: churn or stability differ:\n%s\n%s\n%s\n%s", k, a, b, c, d)
			}
		}
	}
	for _, kind := range synth.EventKinds() {
		if seen[kind.String()] == 0 {
			t.Errorf("no %s in %d nights", kind, nights)
		}
	}
	if birthdays == 0 {
		t.Error("no birthday in the nights")
	}
	t.Logf("changes: %v, birthdays %d", seen, birthdays)
}

// TestIncrementalFallsBack: an incremental run that cannot trust the
// previous night runs in full, says why in the manifest, and publishes
// the full run's tables.
func TestIncrementalFallsBack(t *testing.T) {
	ev, kn := evolving(13, 300, 0.05)
	for _, c := range []struct {
		name   string
		reason string
		// change does something to the configuration of night 1 or to the
		// published night 0 under out.
		change func(t *testing.T, cfg *pipeline.Config, out string)
	}{
		{"K changed", "K changed from 3 to 4", func(t *testing.T, cfg *pipeline.Config, out string) { cfg.K = 4 }},
		{"weights changed", "weights changed", func(t *testing.T, cfg *pipeline.Config, out string) {
			cfg.Weights = match.Weights{Trait: 1, Questions: 1}
		}},
		{"another key", "pseudonymized with another key", func(t *testing.T, cfg *pipeline.Config, out string) {
			key := filepath.Join(t.TempDir(), "key")
			if err := os.WriteFile(key, []byte("0123456789abcdef-other"), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg.PseudonymKey = key
		}},
		{"damaged matches", "table not as published", func(t *testing.T, cfg *pipeline.Config, out string) {
			path := publish.TablePath(filepath.Join(out, "dt=2026-11-24"), "matches")
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			b[len(b)/2] ^= 1
			if err := os.WriteFile(path, b, 0o640); err != nil {
				t.Fatal(err)
			}
		}},
		{"state missing", "no such file", func(t *testing.T, cfg *pipeline.Config, out string) {
			if err := os.Remove(publish.TablePath(filepath.Join(out, "dt=2026-11-24"), "state")); err != nil {
				t.Fatal(err)
			}
		}},
		{"another scoring version", "scoring version", func(t *testing.T, cfg *pipeline.Config, out string) {
			editManifest(t, filepath.Join(out, "dt=2026-11-24"), func(m map[string]any) { m["scoring_version"] = 0 })
		}},
		{"no table hashes", "records no SHA-256", func(t *testing.T, cfg *pipeline.Config, out string) {
			editManifest(t, filepath.Join(out, "dt=2026-11-24"), func(m map[string]any) {
				for _, tb := range m["outputs"].(map[string]any) {
					delete(tb.(map[string]any), "sha256")
				}
			})
		}},
		{"no previous night", "no night published before", func(t *testing.T, cfg *pipeline.Config, out string) {
			if err := os.RemoveAll(filepath.Join(out, "dt=2026-11-24")); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg0, _ := writeNight(t, dir, ev, kn, 0)
			cfg1, _ := writeNight(t, dir, ev, kn, 1)
			cfg0.Out, cfg1.Out = filepath.Join(dir, "inc"), filepath.Join(dir, "inc")
			run(t, cfg0)
			c.change(t, &cfg1, cfg1.Out)
			full := cfg1
			full.Out = filepath.Join(dir, "full")
			run(t, full)
			cfg1.Incremental = true
			m := run(t, cfg1)
			if m.Night.Mode != "full" || !strings.Contains(m.Night.FullReason, c.reason) {
				t.Fatalf("night: %+v, want a full run because %q", m.Night, c.reason)
			}
			want, _ := publishedTables(t, full.Out, cfg1.AsOf)
			got, _ := publishedTables(t, cfg1.Out, cfg1.AsOf)
			for _, table := range publish.TableNames {
				if !bytes.Equal(got[table], want[table]) {
					t.Fatalf("the %s table differs from the full run's", table)
				}
			}
		})
	}
}

// editManifest rewrites the manifest of a local partition.
func editManifest(t *testing.T, part string, edit func(map[string]any)) {
	t.Helper()
	path := publish.ManifestPath(part)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	if b, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o640); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkNight: a night of 20 000 generated members changed by 1 %, run
// in full and incrementally from the night before (bench/RESULTS.md has the
// figures at 100 000 and 1 000 000 members, with the commands).
func BenchmarkNight(b *testing.B) {
	dir := b.TempDir()
	night := func(k int) pipeline.Config {
		asOf := synth.AsOf.AddDate(0, 0, k)
		o := synth.Options{N: 20000, Shards: 2, Seed: 8, D: 128, Q: 64, AsOf: asOf.Format(time.DateOnly), Night: k, Churn: 0.01,
			Out: filepath.Join(dir, "n"+string(rune('0'+k)))}
		nf, err := synth.GenerateNight(context.Background(), o, 2)
		if err != nil {
			b.Fatal(err)
		}
		cfg := runtest.BaseConfig(dir)
		cfg.Profiles, cfg.Suppress, cfg.Blocks = []string{filepath.Dir(nf.Profiles[0])}, []string{nf.Suppress}, []string{nf.Blocks}
		cfg.AsOf, cfg.K, cfg.MaxRejectRatio, cfg.Overwrite = asOf, 10, 0.001, true
		return cfg
	}
	n0, n1 := night(0), night(1)
	for _, mode := range []string{"full", "incremental"} {
		b.Run(mode, func(b *testing.B) {
			out := filepath.Join(dir, mode)
			n0.Out, n1.Out, n1.Incremental = out, out, mode == "incremental"
			if _, err := pipeline.Run(context.Background(), n0, runtest.Quiet); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := pipeline.Run(context.Background(), n1, runtest.Quiet); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
