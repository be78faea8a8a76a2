package match

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/osmosis/batchmatch/pipeline/read"
	"github.com/osmosis/batchmatch/pipeline/synth"
)

// TestStabilityMatchesPair: the certificate's count of blocking pairs is
// the count over every pair of the population scored by Pair (a member
// without a soulmate prefers anyone compatible), for populations with
// ties, dealbreakers and blocks, several K and weight sets; none is an
// edge of the top-K graph.
func TestStabilityMatchesPair(t *testing.T) {
	ties := synth.DefaultKnobs(500)
	ties.Clones = 0.15
	deal := synth.DefaultKnobs(400)
	deal.Dealbreak, deal.WideAges = 0.3, true
	open := synth.DefaultKnobs(300)
	open.AllSeekAll, open.WideAges, open.MaxKm = true, true, [2]float32{20039, 20040}
	wide := synth.DefaultKnobs(300) // questionnaires of two words (QuestionsRows)
	wide.Q, wide.Dealbreak = 100, 0.2
	noQ := synth.DefaultKnobs(300)
	noQ.Q = 0
	// no dealbreakers and distances near the limits: members without a
	// soulmate are checked by filters alone, the exact distance deciding
	// where the prefilter is not sure; then the same with blocked pairs
	near := synth.DefaultKnobs(400)
	near.Dealbreak, near.WideAges, near.AllSeekAll, near.MaxKm = 0, true, true, [2]float32{20, 80}
	for _, c := range []struct {
		name   string
		k      synth.Knobs
		blocks bool
	}{{"clones", ties, false}, {"dealbreakers", deal, false}, {"open", open, false}, {"Q > 64", wide, false},
		{"no questions", noQ, false}, {"no dealbreakers", near, false}, {"no dealbreakers, blocks", near, true}} {
		dir := t.TempDir()
		members := synth.Random(81, c.k)
		synth.MustWriteProfiles(t, filepath.Join(dir, "profiles"), members, c.k.D, c.k.Q, 1, synth.ArrowVariable)
		cfg := baseConfig(dir)
		if c.blocks { // every third member blocks the next five
			var pairs [][2]int64
			for a := 0; a+5 < len(members); a += 3 {
				for b := a + 1; b <= a+5; b++ {
					if members[a].ID != nil && members[b].ID != nil {
						pairs = append(pairs, [2]int64{*members[a].ID, *members[b].ID})
					}
				}
			}
			cfg.Blocks = []string{filepath.Join(dir, "blocks.parquet")}
			if err := synth.WriteBlocks(cfg.Blocks[0], pairs); err != nil {
				t.Fatal(err)
			}
		}
		L, err := read.Load(context.Background(), cfg, discard, nil)
		if err != nil {
			t.Fatal(err)
		}
		p := L.Pop
		for _, w := range []Weights{DefaultWeights, {Trait: 1}, {Questions: 1, Proximity: 1}} {
			for _, k := range []int{1, 3, 10} {
				sc := &Scorer{P: p, W: w}
				lists, _, err := sc.topK(context.Background(), k, 2)
				if err != nil {
					t.Fatal(err)
				}
				souls := Soulmates(lists)
				cert, err := sc.Stability(context.Background(), lists, souls, k, 2)
				if err != nil {
					t.Fatal(err)
				}
				thr := make([]float32, p.N)
				has := make([]bool, p.N)
				for _, s := range souls {
					thr[s.A], thr[s.B], has[s.A], has[s.B] = s.S, s.S, true, true
				}
				var want int64
				for i := range p.N {
					for j := i + 1; j < p.N; j++ {
						ps, ok := sc.Pair(i, j)
						if !ok || (has[i] && ps.S <= thr[i]) || (has[j] && ps.S <= thr[j]) {
							continue
						}
						if RankOf(lists[i], int32(j)) != 0 || RankOf(lists[j], int32(i)) != 0 {
							t.Fatalf("%s k=%d: members %d and %d block the assignment inside the top-K graph", c.name, k, i, j)
						}
						want++
					}
				}
				if cert.BlockingPairs != want {
					t.Fatalf("%s weights %v k=%d: certificate %+v, Pair counts %d blocking pairs", c.name, w, k, cert, want)
				}
				t.Logf("%s weights %v k=%d: %+v", c.name, w, k, *cert)
			}
		}
	}
}
