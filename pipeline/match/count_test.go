package match

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/osmosis/batchmatch/pipeline/read"
	"github.com/osmosis/batchmatch/pipeline/synth"
)

// TestCountCompatible: the diagnostic count equals a brute-force count of the
// pairs passing orientation, ages and distance.
func TestCountCompatible(t *testing.T) {
	k := synth.DefaultKnobs(700)
	k.Spread, k.MaxKm = 0.3, [2]float32{2, 200}
	dir := t.TempDir()
	synth.MustWriteProfiles(t, filepath.Join(dir, "profiles"), synth.Random(43, k), k.D, k.Q, 1, synth.ArrowVariable)
	L, err := read.Load(context.Background(), baseConfig(dir), discard, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := L.Pop
	var want int64
	for i := range p.N {
		for j := range p.N {
			orient := p.Seeking[i]&(1<<p.Gender[j]) != 0 && p.Seeking[j]&(1<<p.Gender[i]) != 0
			ages := p.Age[j] >= p.AgeMin[i] && p.Age[j] <= p.AgeMax[i] && p.Age[i] >= p.AgeMin[j] && p.Age[i] <= p.AgeMax[j]
			if _, _, near := distance(p, i, j); i != j && orient && ages && near {
				want++
			}
		}
	}
	got, err := CountCompatible(context.Background(), p, 2)
	if err != nil {
		t.Fatal(err)
	}
	if got != want || want == 0 {
		t.Fatalf("CountCompatible counted %d pairs, brute force %d", got, want)
	}
}
