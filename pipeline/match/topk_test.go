package match

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestTopK: offering candidates one by one keeps exactly the K best under
// "better" (score descending, then index ascending), the minimum to beat
// is the K-th score once full, for K around the sizes in use and with
// scores full of ties, compared with sorting everything.
func TestTopK(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	for _, k := range []int{1, 2, 3, 9, 10, 11, 64} {
		for _, levels := range []int{2, 7, 1 << 20} {
			for trial := range 20 {
				n := r.IntN(300)
				all := make([]Cand, n)
				perm := r.Perm(n)
				h := topK{k: k, h: make([]Cand, 0, k)}
				for i := range all {
					all[i] = Cand{J: int32(perm[i]), S: float32(r.IntN(levels)) / float32(levels)}
					h.offer(all[i])
					if got, want := heapMin(&h), minOf(all[:i+1], k); got != want {
						t.Fatalf("k=%d levels=%d trial %d after %d offers: min to beat %v, want %v", k, levels, trial, i+1, got, want)
					}
				}
				want := slices.Clone(all)
				slices.SortFunc(want, func(a, b Cand) int {
					if better(a, b) {
						return -1
					}
					return 1
				})
				want = want[:min(k, n)]
				if got := h.sorted(); !slices.Equal(got, want) {
					t.Fatalf("k=%d levels=%d trial %d: kept %v, want %v", k, levels, trial, got, want)
				}
			}
		}
	}
}

// minOf is the score a new candidate must reach to enter the top k of cs.
func minOf(cs []Cand, k int) float32 {
	if len(cs) < k {
		return float32(negInf)
	}
	s := make([]float32, len(cs))
	for i, c := range cs {
		s[i] = c.S
	}
	slices.Sort(s)
	return s[len(s)-k]
}

var negInf = float32(math.Inf(-1))

// BenchmarkOffer: streams of 256 random candidates into a fresh top-K,
// offered as the scoring loop does (only those reaching the minimum), so
// that most offers insert: about K·(1 + ln(256/K)) of the 256.
func BenchmarkOffer(b *testing.B) {
	for _, k := range []int{10, 64} {
		r := rand.New(rand.NewPCG(1, 2))
		cs := make([]Cand, 1<<14)
		for i := range cs {
			cs[i] = Cand{J: int32(i), S: r.Float32()}
		}
		b.Run(fmt.Sprintf("topK/%d", k), func(b *testing.B) {
			h := topK{k: k, h: make([]Cand, 0, k)}
			i := 0
			for b.Loop() {
				if i&255 == 0 {
					h.h = h.h[:0]
				}
				if c := cs[i&(len(cs)-1)]; c.S >= heapMin(&h) {
					h.offer(c)
				}
				i++
			}
		})
	}
}
