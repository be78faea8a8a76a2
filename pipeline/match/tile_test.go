package match

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/osmosis/batchmatch/pipeline/failure"
	"github.com/osmosis/batchmatch/pipeline/read"
	"github.com/osmosis/batchmatch/pipeline/synth"
)

// TestTiledScoringMatchesPair: the fused tile loop (bit-mask filters,
// unit-vector distance prefilter, DotTile, skipped zero-weight components)
// finds exactly the pairs Pair calls compatible, with bit-identical scores,
// for every pair of populations built to stress each shortcut, under weight
// sets that switch each component off.
func TestTiledScoringMatchesPair(t *testing.T) {
	tiny := synth.DefaultKnobs(300)
	tiny.MaxKm, tiny.Spread, tiny.AllSeekAll = [2]float32{0.001, 0.5}, 0.003, true
	exact := synth.DefaultKnobs(250)
	exact.Centers = [][2]float64{{0, 180}, {0, -180}, {90, 0}, {-90, 0}}
	exact.Spread, exact.MaxKm, exact.AllSeekAll, exact.WideAges = 0, [2]float32{0.001, 0.01}, true, true
	huge := synth.DefaultKnobs(260)
	huge.MaxKm, huge.Centers, huge.AllSeekAll = [2]float32{15000, 20038}, [][2]float64{{48.85, 2.35}, {-48.85, -177.65}}, true
	deal := synth.DefaultKnobs(300)
	deal.Dealbreak, deal.Clones, deal.WideAges = 0.3, 0.1, true
	mixed := synth.DefaultKnobs(400)
	open := synth.DefaultKnobs(300) // every tile pair passes whole (allPass)
	open.AllSeekAll, open.WideAges, open.MaxKm = true, true, [2]float32{20039, 20040}
	for _, c := range []struct {
		name string
		k    synth.Knobs
	}{{"mixed", mixed}, {"tiny max_km", tiny}, {"exact points", exact}, {"antipodes, huge max_km", huge}, {"dealbreakers and clones", deal}, {"open", open}} {
		dir := t.TempDir()
		synth.MustWriteProfiles(t, filepath.Join(dir, "profiles"), synth.Random(31, c.k), c.k.D, c.k.Q, 1, synth.ArrowVariable)
		L, err := read.Load(context.Background(), baseConfig(dir), discard, nil)
		if err != nil {
			t.Fatal(err)
		}
		p := L.Pop
		for _, w := range []Weights{DefaultWeights, {Trait: 1}, {Questions: 1}, {Trait: 0.2, Questions: 0.3, Proximity: 0.5}, {Biomarker: 1, Proximity: 1}} {
			sc := &Scorer{P: p, W: w}
			lists, st, err := sc.topK(context.Background(), p.N, 2)
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
	k := synth.DefaultKnobs(2000)
	k.AllSeekAll, k.WideAges = true, true
	dir := t.TempDir()
	synth.MustWriteProfiles(t, filepath.Join(dir, "profiles"), synth.Random(51, k), k.D, k.Q, 1, synth.ArrowVariable)
	L, err := read.Load(context.Background(), baseConfig(dir), discard, nil)
	if err != nil {
		t.Fatal(err)
	}
	sc := &Scorer{P: L.Pop, W: DefaultWeights}
	var st ScoreStats
	allocs := testing.AllocsPerRun(2, func() {
		if _, st, err = sc.topK(context.Background(), 10, 2); err != nil {
			t.Fatal(err)
		}
	})
	n, tiles := float64(L.Pop.N), float64((L.Pop.N+tileSize-1)/tileSize)
	if bound := 3*n + 40*tiles + 2000; allocs > bound || st.PairsExamined < int64(n*n/4) {
		t.Fatalf("%.0f allocations for %d members, %.0f tiles, %d pairs examined (bound %.0f)", allocs, L.Pop.N, tiles, st.PairsExamined, bound)
	}
}

// TestNaNScoreFailsTheRun: no NaN score is ever dropped silently. The
// pair score clamps every component (a max_km of 0 gives proximity 0, not
// 0/0), so the weights are the one input left that could make a score
// NaN: the scorer refuses weights the options did not check, and the row
// kernel's NaN lanes fail the run (kernels.TestScoreRowNaNLanes).
func TestNaNScoreFailsTheRun(t *testing.T) {
	dir := t.TempDir()
	k := synth.DefaultKnobs(40)
	k.AllSeekAll, k.WideAges, k.Invalid, k.ConsentP, k.Dealbreak = true, true, 0, 1, 0
	k.Spread = 0 // everyone at a city centre
	synth.MustWriteProfiles(t, filepath.Join(dir, "profiles"), synth.Random(2, k), k.D, k.Q, 1, synth.ArrowVariable)
	L, err := read.Load(context.Background(), baseConfig(dir), discard, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := L.Pop
	for _, w := range []Weights{{Trait: 1, Questions: math.NaN()}, {Trait: math.Inf(1)}, {Trait: 1e308, Proximity: 1e308}, {Biomarker: 1}} {
		_, _, err = (&Scorer{P: p, W: w}).topK(context.Background(), 5, 2)
		if !errors.Is(err, failure.Internal) || !strings.Contains(err.Error(), "weight") {
			t.Fatalf("weights %+v: got %v, want failure.Internal about the weights", w, err)
		}
	}
	// max_km 0 after loading (validation rejects it): proximity clamps to
	// 0, no NaN, and the pair at distance 0 is still compatible
	p.MaxKm[0], p.HavMax[0] = 0, 0
	lists, _, err := (&Scorer{P: p, W: DefaultWeights}).topK(context.Background(), 5, 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range lists[0] {
		if c.S != c.S {
			t.Fatalf("NaN score in member 0's list: %+v", lists[0])
		}
	}
}

// TestReleaseColumns: a scorer that moved the population's traits and
// questionnaires into its tiles (ReleaseColumns) finds the same lists, and
// Pair, Questionnaire and ExplainPair read the same values from the tiles,
// bit for bit, for Q ≤ 64 (word-major tiles) and Q > 64.
func TestReleaseColumns(t *testing.T) {
	for _, q := range []int{12, 70} {
		k := synth.DefaultKnobs(300)
		k.Q, k.AllSeekAll, k.WideAges, k.Dealbreak = q, true, true, 0.005
		dir := t.TempDir()
		synth.MustWriteProfiles(t, filepath.Join(dir, "profiles"), synth.Random(5, k), k.D, k.Q, 1, synth.ArrowVariable)
		load := func() *read.Population {
			L, err := read.Load(context.Background(), baseConfig(dir), discard, nil)
			if err != nil {
				t.Fatal(err)
			}
			return L.Pop
		}
		keep, rel := &Scorer{P: load(), W: DefaultWeights}, &Scorer{P: load(), W: DefaultWeights, ReleaseColumns: true}
		lk, _, err := keep.topK(context.Background(), 5, 2)
		if err != nil {
			t.Fatal(err)
		}
		lr, _, err := rel.topK(context.Background(), 5, 2)
		if err != nil {
			t.Fatal(err)
		}
		if rel.P.Trait != nil || rel.P.QBits != nil {
			t.Fatal("ReleaseColumns kept the population's columns")
		}
		if !slices.EqualFunc(lk, lr, slices.Equal) {
			t.Fatalf("Q=%d: lists differ after releasing the columns", q)
		}
		pairs := 0
		for i := range keep.P.N {
			a1, b1, c1 := keep.Questionnaire(i)
			a2, b2, c2 := rel.Questionnaire(i)
			if !slices.Equal(a1, a2) || !slices.Equal(b1, b2) || !slices.Equal(c1, c2) {
				t.Fatalf("Q=%d: member %d's questionnaire differs read from the tiles", q, i)
			}
			for j := range keep.P.N {
				p1, ok1 := keep.Pair(i, j)
				p2, ok2 := rel.Pair(i, j)
				if ok1 != ok2 || p1 != p2 {
					t.Fatalf("Q=%d: Pair(%d, %d) = %+v %v before, %+v %v from the tiles", q, i, j, p1, ok1, p2, ok2)
				}
				if ok1 {
					pairs++
				}
			}
			if i%37 == 0 {
				if e1, e2 := keep.ExplainPair(i, (i+1)%keep.P.N), rel.ExplainPair(i, (i+1)%keep.P.N); e1.Score != e2.Score || e1.Components != e2.Components {
					t.Fatalf("Q=%d: ExplainPair differs from the tiles", q)
				}
			}
		}
		if pairs < 500 {
			t.Fatalf("only %d compatible pairs", pairs)
		}
	}
}

// TestPermuteRows: the in-place permutation gives row j the row perm[j]
// was, for random permutations of every size around the word of its
// visited set, and rows of widths 0 to 3.
func TestPermuteRows(t *testing.T) {
	r := rand.New(rand.NewPCG(81, 82))
	for _, n := range []int{0, 1, 2, 63, 64, 65, 200} {
		for w := range 4 {
			perm := make([]int32, n)
			for i := range perm {
				perm[i] = int32(i)
			}
			r.Shuffle(n, func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
			a := make([]float32, n*w)
			for i := range a {
				a[i] = float32(i)
			}
			orig := slices.Clone(a)
			read.PermuteRows(a, w, perm)
			for j := range n {
				if !slices.Equal(a[j*w:(j+1)*w], orig[int(perm[j])*w:(int(perm[j])+1)*w]) {
					t.Fatalf("n=%d w=%d: row %d is not the old row %d", n, w, j, perm[j])
				}
			}
		}
	}
}
