package match

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/osmosis/batchmatch/kernels"
	"github.com/osmosis/batchmatch/pipeline/read"
	"github.com/osmosis/batchmatch/pipeline/synth"
)

// loadGenerated generates n members with the real generator and loads them.
func loadGenerated(b *testing.B, n int) *read.Population {
	b.Helper()
	dir := b.TempDir()
	o := synth.Options{N: n, Shards: 2, Seed: 1, D: 128, Q: 64, AsOf: "2026-11-24", Out: filepath.Join(dir, "p")}
	if _, err := synth.Generate(context.Background(), o, 2); err != nil {
		b.Fatal(err)
	}
	cfg := baseConfig(dir)
	cfg.Profiles = []string{o.Out}
	L, err := read.Load(context.Background(), cfg, discard, nil)
	if err != nil {
		b.Fatal(err)
	}
	return L.Pop
}

// BenchmarkTopK is the scoring stage on the generator's population (realistic
// filters: most pairs fail orientation, age or distance) and on the same
// population with every filter open (every pair is scored).
func BenchmarkTopK(b *testing.B) {
	for _, n := range []int{5000, 20000} {
		pop := loadGenerated(b, n)
		for _, mode := range []string{"realistic", "all-compatible", "embedding-only"} {
			p := pop
			w := DefaultWeights
			if mode == "embedding-only" {
				w = Weights{Trait: 1}
			}
			if mode != "realistic" {
				cp := *pop
				cp.Seeking = make([]uint8, cp.N)
				cp.AgeMin, cp.AgeMax, cp.MaxKm, cp.HavMax = make([]uint16, cp.N), make([]uint16, cp.N), make([]float32, cp.N), make([]float64, cp.N)
				for i := range cp.N {
					cp.Seeking[i], cp.AgeMin[i], cp.AgeMax[i], cp.MaxKm[i], cp.HavMax[i] = 7, 0, 255, 20040, 1
				}
				qs := kernels.QMaskWords * cp.QW
				cp.QBits = make([]uint64, len(pop.QBits))
				for i := range cp.N { // no dealbreakers: level 4 becomes 3
					ans, acc, imp := pop.Questionnaire(i)
					for q, v := range imp {
						imp[q] = min(v, 3)
					}
					kernels.PackQuestions(cp.QBits[i*qs:(i+1)*qs], ans, acc, imp)
				}
				p = &cp
			}
			if mode != "realistic" && n > 5000 {
				continue // 400 M full scorings per iteration: too slow for -count 6
			}
			sc := &Scorer{P: p, W: w, NoBlocking: true} // the scoring cost itself
			b.Run(fmt.Sprintf("%s/%s/%d", kernels.Implementation(), mode, n), func(b *testing.B) {
				var st ScoreStats
				for b.Loop() {
					var err error
					_, st, err = sc.topK(context.Background(), 10, 2)
					if err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(st.PairsExamined)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mpairs/s")
				b.ReportMetric(float64(st.PairsCompatible)/float64(st.PairsExamined), "compatible-frac")
			})
		}
	}
}

// TestShardedTopKEqualsWhole: the partial lists of a sharded scoring,
// merged, are the whole run's lists exactly, every pair is scored by one
// shard (the counts add up), and shards share the work.
func TestShardedTopKEqualsWhole(t *testing.T) {
	k := synth.DefaultKnobs(900)
	k.Clones = 0.05
	dir := t.TempDir()
	synth.MustWriteProfiles(t, filepath.Join(dir, "profiles"), synth.Random(53, k), k.D, k.Q, 1, synth.ArrowVariable)
	L, err := read.Load(context.Background(), baseConfig(dir), discard, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := L.Pop
	for _, noBlocking := range []bool{false, true} {
		whole, wst, err := (&Scorer{P: p, W: DefaultWeights, NoBlocking: noBlocking}).topK(context.Background(), 5, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range []int{2, 3, 7} {
			var sum ScoreStats
			union := make([][]Cand, p.N)
			for sh := range n {
				sc := &Scorer{P: p, W: DefaultWeights, NoBlocking: noBlocking, Shard: ShardSpec{Index: sh, Count: n}}
				part, st, err := sc.topK(context.Background(), 5, 2)
				if err != nil {
					t.Fatal(err)
				}
				if st.PairsExamined == wst.PairsExamined { // a shard may get no tile of 15, never all of them here
					t.Errorf("shard %d of %d examined all %d pairs: the work is not shared", sh, n, st.PairsExamined)
				}
				sum.PairsExamined += st.PairsExamined
				sum.PairsCompatible += st.PairsCompatible
				for i := range part {
					union[i] = append(union[i], part[i]...)
				}
			}
			for i := range union {
				if got := MergeLists(5, union[i]); !slices.Equal(got, whole[i]) {
					t.Fatalf("%d shards, member %d: merged %v, whole run %v", n, i, got, whole[i])
				}
			}
			if sum != wst {
				t.Fatalf("%d shards (no blocking %v): pair counts %+v, whole run %+v", n, noBlocking, sum, wst)
			}
		}
	}
}

// TestListScoresMatchesPair: the components ListScores computes for a
// member's list are Pair's bit for bit, for every member and several
// weight sets and widths (one and several dot blocks).
func TestListScoresMatchesPair(t *testing.T) {
	for _, d := range []int{16, 300} {
		k := synth.DefaultKnobs(400)
		k.D, k.Clones = d, 0.05
		dir := t.TempDir()
		synth.MustWriteProfiles(t, filepath.Join(dir, "profiles"), synth.Random(57, k), k.D, k.Q, 1, synth.ArrowVariable)
		L, err := read.Load(context.Background(), baseConfig(dir), discard, nil)
		if err != nil {
			t.Fatal(err)
		}
		p := L.Pop
		for _, w := range []Weights{DefaultWeights, {Trait: 1}, {Questions: 1, Biomarker: 2, Proximity: 1}} {
			sc := &Scorer{P: p, W: w}
			lists, _, err := sc.topK(context.Background(), 12, 2)
			if err != nil {
				t.Fatal(err)
			}
			var ws RowScratch
			for i, l := range lists {
				got, err := sc.ListScores(i, l, &ws)
				if err != nil {
					t.Fatal(err)
				}
				for r, c := range l {
					want, _ := sc.Pair(i, int(c.J))
					if got[r] != want {
						t.Fatalf("D=%d weights %v member %d candidate %d: %+v, Pair %+v", d, w, i, c.J, got[r], want)
					}
				}
			}
		}
	}
}
