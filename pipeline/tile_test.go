package pipeline

import (
	"context"
	"math"
	"path/filepath"
	"slices"
	"testing"
)

// TestTiledScoringMatchesPair: the fused tile loop (bit-mask filters,
// unit-vector distance prefilter, DotTile, skipped zero-weight components)
// finds exactly the pairs Pair calls compatible, with bit-identical scores,
// for every pair of populations built to stress each shortcut, under weight
// sets that switch each component off.
func TestTiledScoringMatchesPair(t *testing.T) {
	tiny := defaultKnobs(300)
	tiny.MaxKm, tiny.Spread, tiny.AllSeekAll = [2]float32{0.001, 0.5}, 0.003, true
	exact := defaultKnobs(250)
	exact.Centers = [][2]float64{{0, 180}, {0, -180}, {90, 0}, {-90, 0}}
	exact.Spread, exact.MaxKm, exact.AllSeekAll, exact.WideAges = 0, [2]float32{0.001, 0.01}, true, true
	huge := defaultKnobs(260)
	huge.MaxKm, huge.Centers, huge.AllSeekAll = [2]float32{15000, 20038}, [][2]float64{{48.85, 2.35}, {-48.85, -177.65}}, true
	deal := defaultKnobs(300)
	deal.Dealbreak, deal.Clones, deal.WideAges = 0.3, 0.1, true
	mixed := defaultKnobs(400)
	open := defaultKnobs(300) // every tile pair passes whole (allPass)
	open.AllSeekAll, open.WideAges, open.MaxKm = true, true, [2]float32{20039, 20040}
	for _, c := range []struct {
		name string
		k    popKnobs
	}{{"mixed", mixed}, {"tiny max_km", tiny}, {"exact points", exact}, {"antipodes, huge max_km", huge}, {"dealbreakers and clones", deal}, {"open", open}} {
		dir := t.TempDir()
		writeProfiles(t, filepath.Join(dir, "profiles"), genTestPop(31, c.k), c.k.D, c.k.Q, 1, formArrowVariable)
		L, err := Load(context.Background(), baseConfig(dir), discard, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		p := L.Pop
		for _, w := range [][4]float64{DefaultWeights, {1, 0, 0, 0}, {0, 1, 0, 0}, {0.2, 0.3, 0, 0.5}, {0, 0, 1, 1}} {
			sc := &Scorer{P: p, W: w}
			lists, st, err := sc.TopK(context.Background(), p.N, 2)
			if err != nil {
				t.Fatal(err)
			}
			var compatible int64
			for i := range p.N {
				var want []Cand
				for j := range p.N {
					if ps, ok := sc.Pair(i, j); ok {
						want = append(want, Cand{J: int32(j), S: ps.S})
					}
				}
				compatible += int64(len(want))
				slices.SortFunc(want, func(a, b Cand) int {
					if better(a, b) {
						return -1
					}
					return 1
				})
				if !slices.EqualFunc(lists[i], want, func(a, b Cand) bool { return a.J == b.J && math.Float32bits(a.S) == math.Float32bits(b.S) }) {
					t.Fatalf("%s, weights %v, member %d: tiled %v, Pair %v", c.name, w, i, lists[i], want)
				}
			}
			if st.PairsCompatible != compatible || compatible == 0 {
				t.Fatalf("%s, weights %v: tiled counts %d compatible pairs, Pair %d", c.name, w, st.PairsCompatible, compatible)
			}
		}
	}
}

// TestScoringDoesNotAllocatePerPair: the scoring stage allocates per member
// and per tile (heaps, lists), never per pair or per row of a tile pair.
func TestScoringDoesNotAllocatePerPair(t *testing.T) {
	k := defaultKnobs(2000)
	k.AllSeekAll, k.WideAges = true, true
	dir := t.TempDir()
	writeProfiles(t, filepath.Join(dir, "profiles"), genTestPop(51, k), k.D, k.Q, 1, formArrowVariable)
	L, err := Load(context.Background(), baseConfig(dir), discard, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	sc := &Scorer{P: L.Pop, W: DefaultWeights}
	var st ScoreStats
	allocs := testing.AllocsPerRun(2, func() {
		if _, st, err = sc.TopK(context.Background(), 10, 2); err != nil {
			t.Fatal(err)
		}
	})
	n, tiles := float64(L.Pop.N), float64((L.Pop.N+blockTile-1)/blockTile)
	if bound := 3*n + 40*tiles + 2000; allocs > bound || st.PairsExamined < int64(n*n/4) {
		t.Fatalf("%.0f allocations for %d members, %.0f tiles, %d pairs examined (bound %.0f)", allocs, L.Pop.N, tiles, st.PairsExamined, bound)
	}
}
