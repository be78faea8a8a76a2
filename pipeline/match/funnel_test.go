package match

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/osmosis/batchmatch/pipeline/read"
	"github.com/osmosis/batchmatch/pipeline/synth"
)

// TestFilterFunnel: every other member is counted under exactly one step,
// a member's compatible candidates are among those that pass, and a member
// without a compatible candidate has exactly its dealbreaker failures
// left, for populations with blocks and dealbreakers.
func TestFilterFunnel(t *testing.T) {
	k := synth.DefaultKnobs(400)
	k.Dealbreak = 0.3
	dir := t.TempDir()
	ms := synth.Random(91, k)
	synth.MustWriteProfiles(t, filepath.Join(dir, "profiles"), ms, k.D, k.Q, 1, synth.ArrowVariable)
	// block pairs that pass orientation, ages and distance, so that the
	// blocked step counts some
	L0, err := read.Load(context.Background(), baseConfig(dir), discard, nil)
	if err != nil {
		t.Fatal(err)
	}
	var pairs [][2]int64
	for a := 0; a < L0.Pop.N; a += 3 {
		for b := a + 1; b < L0.Pop.N; b++ {
			e := (&Scorer{P: L0.Pop, W: DefaultWeights}).ExplainPair(a, b)
			if e.Verdicts[0].Pass && e.Verdicts[1].Pass && e.Verdicts[2].Pass && e.Verdicts[3].Pass && e.Verdicts[4].Pass && e.Verdicts[5].Pass {
				pairs = append(pairs, [2]int64{L0.Pop.ID[a], L0.Pop.ID[b]})
				break
			}
		}
	}
	if err := synth.WriteBlocks(filepath.Join(dir, "blocks.parquet"), pairs); err != nil {
		t.Fatal(err)
	}
	cfg := baseConfig(dir)
	cfg.Blocks = []string{filepath.Join(dir, "blocks.parquet")}
	L, err := read.Load(context.Background(), cfg, discard, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := L.Pop
	fc := &read.FilterColumns{ID: p.ID, Gender: p.Gender, Seeking: p.Seeking, Age: p.Age, AgeMin: p.AgeMin, AgeMax: p.AgeMax,
		Geo: p.Geo, MaxKm: p.MaxKm, HavMax: p.HavMax}
	sc := &Scorer{P: p, W: DefaultWeights}
	lonely, blockedSeen := 0, 0
	for a := range p.N {
		f := FilterFunnel(fc, a, func(id int64) bool { return p.IsBlocked(a, p.Index(id)) })
		if f.Orientation+f.Age+f.Distance+f.Blocked+f.Passed != f.Candidates || f.Candidates != int64(p.N-1) {
			t.Fatalf("member %d: %+v does not add up to %d", a, f, p.N-1)
		}
		var compatible int64
		for b := range p.N {
			if _, ok := sc.Pair(a, b); ok {
				compatible++
			}
		}
		if compatible > f.Passed {
			t.Fatalf("member %d: %d compatible, only %d passed the filters", a, compatible, f.Passed)
		}
		blockedSeen += int(f.Blocked)
		if compatible == 0 {
			lonely++
			var deal int64
			for b := range p.N {
				e := sc.ExplainPair(a, b)
				if b != a && !e.Compatible && e.Verdicts[0].Pass && e.Verdicts[1].Pass && e.Verdicts[2].Pass && e.Verdicts[3].Pass &&
					!p.IsBlocked(a, b) {
					if _, _, ok := distance(p, a, b); ok {
						deal++
					}
				}
			}
			if deal != f.Passed {
				t.Fatalf("member %d without a match: %d fail only a dealbreaker, the funnel leaves %d", a, deal, f.Passed)
			}
		}
	}
	if lonely == 0 || blockedSeen == 0 {
		t.Errorf("%d members without a match, %d blocked pairs seen: the cases are not exercised", lonely, blockedSeen)
	}
}
