package match

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"

	"github.com/osmosis/batchmatch/pipeline/read"
	"github.com/osmosis/batchmatch/pipeline/synth"
)

// TestScoreSubsetMatchesTopK: the lists ScoreSubset gives the members of a
// subset are the whole run's (TopK) exactly, and every other member gets
// the best K of its pairs with the subset as Pair scores them, for subsets
// from one member to all, populations full of ties (clones) and with
// blocking on and off.
func TestScoreSubsetMatchesTopK(t *testing.T) {
	ties := synth.DefaultKnobs(700)
	ties.Clones = 0.15
	open := synth.DefaultKnobs(300)
	open.AllSeekAll, open.WideAges, open.MaxKm = true, true, [2]float32{20039, 20040}
	for _, c := range []struct {
		name string
		k    synth.Knobs
	}{{"clones", ties}, {"open", open}} {
		dir := t.TempDir()
		synth.MustWriteProfiles(t, filepath.Join(dir, "profiles"), synth.Random(61, c.k), c.k.D, c.k.Q, 1, synth.ArrowVariable)
		L, err := read.Load(context.Background(), baseConfig(dir), discard, nil)
		if err != nil {
			t.Fatal(err)
		}
		p := L.Pop
		r := rand.New(rand.NewPCG(1, 2))
		for _, noBlocking := range []bool{false, true} {
			for _, k := range []int{1, 3, 10} {
				sc := &Scorer{P: p, W: DefaultWeights, NoBlocking: noBlocking}
				b := Block(p)
				whole, _, err := sc.TopK(context.Background(), b, k, 2)
				if err != nil {
					t.Fatal(err)
				}
				for _, size := range []int{1, 5, p.N / 10, p.N / 2, p.N} {
					sub := make([]int32, 0, size)
					for _, i := range r.Perm(p.N)[:size] {
						sub = append(sub, int32(i))
					}
					got, _, err := sc.ScoreSubset(context.Background(), b, sub, k, 2, true)
					if err != nil {
						t.Fatal(err)
					}
					in := map[int32]bool{}
					for _, i := range sub {
						in[i] = true
						if !slices.Equal(got.Own[i], whole[i]) {
							t.Fatalf("%s k=%d |sub|=%d blocking %v: member %d's list %v, whole run %v", c.name, k, size, !noBlocking, i, got.Own[i], whole[i])
						}
					}
					for i := range p.N {
						if in[int32(i)] {
							continue
						}
						var want []Cand
						for _, j := range sub {
							if ps, ok := sc.Pair(i, int(j)); ok {
								want = append(want, Cand{J: j, S: ps.S})
							}
						}
						if w := MergeLists(k, want); !slices.Equal(got.Others[i], w) {
							t.Fatalf("%s k=%d |sub|=%d: member %d's list against the subset %v, want %v", c.name, k, size, i, got.Others[i], w)
						}
					}
				}
			}
		}
	}
}
