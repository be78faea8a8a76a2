package synth_test

import (
	"context"
	"log/slog"
	"math/bits"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/osmosis/batchmatch/kernels"
	"github.com/osmosis/batchmatch/pipeline/match"
	"github.com/osmosis/batchmatch/pipeline/read"
	"github.com/osmosis/batchmatch/pipeline/synth"
)

func TestGenerate(t *testing.T) {
	dir := t.TempDir()
	o := synth.Options{N: 6000, Shards: 3, Seed: 7, D: 32, Q: 20, AsOf: "2026-11-24", InvalidRatio: 0.02}
	load := func(name string, o synth.Options) *read.Loaded {
		o.Out = filepath.Join(dir, name)
		if _, err := synth.Generate(context.Background(), o, 2); err != nil {
			t.Fatal(err)
		}
		cfg := baseConfig(dir)
		cfg.Profiles = []string{o.Out}
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		cfg.Alloc = mem
		L, err := read.Load(context.Background(), cfg, discard, nil)
		if err != nil {
			t.Fatal(err)
		}
		mem.AssertSize(t, 0)
		return L
	}
	a := load("a", o)
	o5 := o
	o5.Shards = 5
	b := load("b", o5)
	// deterministic by seed, whatever the shard count
	if !slices.Equal(a.Pop.ID, b.Pop.ID) || !slices.Equal(a.Pop.Trait, b.Pop.Trait) || !slices.Equal(a.Pop.QBits, b.Pop.QBits) {
		t.Fatal("same seed, different shard count: different population")
	}
	if a.Counts.RowsRead != 6000 || a.Dims.D != 32 || a.Dims.Q != 20 {
		t.Fatalf("read %d rows, D=%d Q=%d", a.Counts.RowsRead, a.Dims.D, a.Dims.Q)
	}
	// every injected kind that the fixed form can hold shows up as its reason
	if q := a.Counts.RowsQuarantined; q < 90 || q > 200 {
		t.Errorf("%d rows quarantined at --invalid-ratio 0.02 of 6000", q)
	}
	for _, reason := range synth.BreakReasons(false) {
		if a.Counts.QuarantinedByReason[string(reason)] == 0 {
			t.Errorf("no %s reject generated", reason)
		}
	}
	// realistic structure
	p := a.Pop
	frac := func(n int) float64 { return float64(n) / float64(p.N) }
	valid := a.Counts.RowsValid
	if c := float64(a.Counts.Eligible) / float64(valid); c < 0.95 || c > 0.99 {
		t.Errorf("consent rate %.3f, want about 0.97", c)
	}
	var health, ages, hlaBits, paris, deal int
	for i := 0; i < p.N; i++ {
		if p.Health[i] {
			health++
			for _, w := range p.HLA[i*kernels.HLAWords : (i+1)*kernels.HLAWords] {
				hlaBits += bits.OnesCount64(w)
			}
		}
		if p.Age[i] < 18 || p.Age[i] > 75 {
			ages++
		}
		if distTo(p, i, 48.8566, 2.3522) < 60 {
			paris++
		}
		_, _, imps := p.Questionnaire(i)
		for _, imp := range imps {
			if imp == kernels.Dealbreaker {
				deal++
			}
		}
	}
	if h := frac(health); h < 0.75 || h > 0.85 {
		t.Errorf("health consent %.3f, want about 0.80", h)
	}
	if ages != 0 {
		t.Errorf("%d members outside 18..75", ages)
	}
	if m := float64(hlaBits) / float64(health); m < 9 || m > 12.5 {
		t.Errorf("mean HLA alleles %.1f, want about 12 (fewer with repeats)", m)
	}
	if f := frac(paris); f < 0.25 || f > 0.5 {
		t.Errorf("%.2f of members around Paris, want the largest share (~1/3)", f)
	}
	if deal == 0 {
		t.Error("no dealbreakers generated")
	}
	// variable-width form: wrong lengths and null traits are generated too
	ov := o
	ov.Variable, ov.N, ov.InvalidRatio = true, 3000, 0.05
	v := load("v", ov)
	for _, reason := range synth.BreakReasons(true) {
		if v.Counts.QuarantinedByReason[string(reason)] == 0 {
			t.Errorf("variable form: no %s reject generated", reason)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "a", "profiles-00000-of-00003.parquet")); err != nil {
		t.Error(err)
	}
}

func distTo(p *read.Population, i int, lat, lon float64) float64 {
	g := kernels.NewGeoPoint(lat, lon)
	return kernels.DistanceFromA(kernels.HaversineA(&p.Geo[i], &g))
}

// TestGenerateOpen: --open makes every pair of distinct members compatible.
func TestGenerateOpen(t *testing.T) {
	dir := t.TempDir()
	o := synth.Options{N: 700, Shards: 2, Seed: 9, D: 16, Q: 12, AsOf: "2026-11-24", Out: filepath.Join(dir, "profiles"), Open: true}
	if _, err := synth.Generate(context.Background(), o, 2); err != nil {
		t.Fatal(err)
	}
	L, err := read.Load(context.Background(), baseConfig(dir), discard, nil)
	if err != nil {
		t.Fatal(err)
	}
	n := int64(L.Pop.N)
	if n != int64(o.N) {
		t.Fatalf("%d eligible members of %d", n, o.N)
	}
	_, st, err := (&match.Scorer{P: L.Pop, W: match.DefaultWeights}).TopK(context.Background(), match.Block(L.Pop), 10, 2)
	if err != nil {
		t.Fatal(err)
	}
	if st.PairsCompatible != n*(n-1) || st.PairsExamined != n*(n-1) {
		t.Fatalf("examined %d, compatible %d pairs, want %d", st.PairsExamined, st.PairsCompatible, n*(n-1))
	}
}

var discard = slog.New(slog.DiscardHandler)

// baseConfig reads dir/profiles.
func baseConfig(dir string) read.Config {
	return read.Config{Profiles: []string{filepath.Join(dir, "profiles")}, AsOf: synth.AsOf, Workers: 2, MaxRejectRatio: 1}
}
