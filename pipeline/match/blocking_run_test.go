package match_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/osmosis/batchmatch/pipeline"
	"github.com/osmosis/batchmatch/pipeline/internal/runtest"
	"github.com/osmosis/batchmatch/pipeline/publish"
	"github.com/osmosis/batchmatch/pipeline/synth"
)

// TestBlockingIsExact: blocking only skips work. On populations built to
// stress the bounds, blocked and exhaustive runs publish byte-identical
// tables, and blocking examines fewer pairs where there is anything to skip.
func TestBlockingIsExact(t *testing.T) {
	cities := synth.DefaultKnobs(1600)
	cities.Centers = [][2]float64{{48.85, 2.35}, {45.76, 4.84}, {43.30, 5.37}, {40.71, -74.0}, {35.68, 139.7}, {-33.9, 151.2}}
	cities.Spread, cities.MaxKm = 0.4, [2]float32{5, 300}
	anti := synth.DefaultKnobs(1500)
	anti.Centers = [][2]float64{{0, 179.9}, {0, -179.9}, {60, 180}, {-45, -180}}
	anti.Spread, anti.MaxKm, anti.AllSeekAll, anti.WideAges = 0.3, [2]float32{10, 500}, true, true
	poles := synth.DefaultKnobs(1500)
	poles.Centers = [][2]float64{{89.9, 0}, {-89.9, 0}, {89.5, 120}, {-89.5, -60}}
	poles.Spread, poles.MaxKm, poles.AllSeekAll = 0.5, [2]float32{5, 400}, true
	exact := synth.DefaultKnobs(1300)
	exact.Centers = [][2]float64{{0, 180}, {0, -180}, {90, 0}, {-90, 0}, {1, 1}}
	exact.Spread, exact.MaxKm, exact.AllSeekAll, exact.WideAges = 0, [2]float32{0.001, 0.01}, true, true
	tiny := synth.DefaultKnobs(1500)
	tiny.MaxKm, tiny.Spread = [2]float32{0.01, 0.5}, 0.05
	huge := synth.DefaultKnobs(1300)
	huge.MaxKm, huge.Centers = [2]float32{20000, 20038}, [][2]float64{{48.85, 2.35}, {-33.9, 151.2}}
	ages := synth.DefaultKnobs(1600)
	ages.AgeSpan, ages.Centers, ages.Spread = [2]int{18, 90}, [][2]float64{{48.85, 2.35}}, 0.1

	for _, c := range []struct {
		name      string
		k         synth.Knobs
		mustPrune bool
	}{
		{"cities", cities, true}, {"antimeridian", anti, true}, {"poles", poles, true},
		{"exact meridian and pole points", exact, true}, {"tiny max_km", tiny, true},
		{"huge max_km", huge, true}, {"age bands", ages, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			synth.MustWriteProfiles(t, filepath.Join(dir, "profiles"), synth.Random(21, c.k), c.k.D, c.k.Q, 2, synth.ArrowVariable)
			var tables [2]map[string][]byte
			var counts [2]publish.Counts
			for v, noBlocking := range []bool{false, true} {
				cfg := runtest.BaseConfig(dir)
				cfg.Out, cfg.NoBlocking, cfg.K = filepath.Join(dir, fmt.Sprint("out", v)), noBlocking, 5
				res, err := pipeline.Run(context.Background(), cfg, runtest.Quiet)
				if err != nil {
					t.Fatal(err)
				}
				counts[v] = res.Manifest.Counts
				tables[v] = map[string][]byte{}
				for _, tb := range []string{"matches", "soulmates"} {
					tables[v][tb], _ = os.ReadFile(publish.TablePath(res.Published, tb))
				}
			}
			for tb := range tables[0] {
				if !bytes.Equal(tables[0][tb], tables[1][tb]) {
					t.Errorf("%s differ between blocked and exhaustive runs", tb)
				}
			}
			b, e := counts[0], counts[1]
			if b.PairsCompatible != e.PairsCompatible || e.PairsCompatible == 0 {
				t.Errorf("compatible pairs: blocked %d, exhaustive %d", b.PairsCompatible, e.PairsCompatible)
			}
			if c.mustPrune && b.PairsExamined >= e.PairsExamined {
				t.Errorf("blocking examined %d of %d pairs: nothing skipped", b.PairsExamined, e.PairsExamined)
			}
			t.Logf("examined %d of %d pairs (%.1f %%), %d compatible", b.PairsExamined, e.PairsExamined,
				100*float64(b.PairsExamined)/float64(e.PairsExamined), b.PairsCompatible)
		})
	}
}
