package match

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/osmosis/batchmatch/pipeline/read"
	"github.com/osmosis/batchmatch/pipeline/synth"
)

// TestAllPassIsSound: whenever allPass says a tile pair needs no per-pair
// filtering, every pair of it passes orientation, ages and distance by
// Pair's own tests; and it does fire on open populations.
func TestAllPassIsSound(t *testing.T) {
	open := synth.DefaultKnobs(900)
	open.AllSeekAll, open.WideAges, open.MaxKm, open.Spread = true, true, [2]float32{300, 20040}, 0.3
	near := synth.DefaultKnobs(900)
	near.AllSeekAll, near.WideAges, near.MaxKm, near.Spread = true, true, [2]float32{0.5, 60}, 0.05
	for _, k := range []synth.Knobs{open, near, synth.DefaultKnobs(900)} {
		dir := t.TempDir()
		synth.MustWriteProfiles(t, filepath.Join(dir, "profiles"), synth.Random(41, k), k.D, k.Q, 1, synth.ArrowVariable)
		L, err := read.Load(context.Background(), baseConfig(dir), discard, nil)
		if err != nil {
			t.Fatal(err)
		}
		p := L.Pop
		tiles := blockingTiles(p)
		fired := 0
		for a := range tiles {
			for b := a; b < len(tiles); b++ {
				if !allPass(&tiles[a].bounds, &tiles[b].bounds) {
					continue
				}
				fired++
				for _, i := range tiles[a].members {
					for _, j := range tiles[b].members {
						if i == j {
							continue
						}
						orient := p.Seeking[i]&(1<<p.Gender[j]) != 0 && p.Seeking[j]&(1<<p.Gender[i]) != 0
						ages := p.Age[j] >= p.AgeMin[i] && p.Age[j] <= p.AgeMax[i] && p.Age[i] >= p.AgeMin[j] && p.Age[i] <= p.AgeMax[j]
						_, _, near := distance(p, int(i), int(j))
						if !orient || !ages || !near {
							t.Fatalf("allPass(%d, %d) but members %d, %d fail: orientation %v, ages %v, distance %v", a, b, i, j, orient, ages, near)
						}
					}
				}
			}
		}
		if k.WideAges && k.MaxKm[1] > 20000 && fired == 0 {
			t.Fatal("allPass never fired on an open population")
		}
		t.Logf("allPass fired on %d tile pairs", fired)
	}
}
