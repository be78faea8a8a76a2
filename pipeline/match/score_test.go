package match

import (
	"context"
	"fmt"
	"path/filepath"
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
