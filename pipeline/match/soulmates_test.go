package match

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// randomLists builds top-K lists over n members from a random symmetric
// score function with few distinct values (many ties), as TopK would.
func randomLists(seed uint64, n, k, levels int, density float64) [][]Cand {
	r := rand.New(rand.NewPCG(seed, 3))
	score := func(i, j int) (float32, bool) {
		a, b := min(i, j), max(i, j)
		h := rand.New(rand.NewPCG(seed^uint64(a)*0x9E3779B97F4A7C15, uint64(b)))
		if h.Float64() > density {
			return 0, false
		}
		return float32(1+h.IntN(levels)) / float32(levels), true
	}
	_ = r
	lists := make([][]Cand, n)
	for i := 0; i < n; i++ {
		h := topK{k: k}
		for j := 0; j < n; j++ {
			if s, ok := score(i, j); ok && i != j {
				h.offer(Cand{J: int32(j), S: s})
			}
		}
		lists[i] = h.sorted()
	}
	return lists
}

// TestSoulmatesParallelIsGreedy: the parallel assignment equals the
// sequential greedy rule exactly, on many random graphs full of ties.
func TestSoulmatesParallelIsGreedy(t *testing.T) {
	for seed := uint64(1); seed <= 120; seed++ {
		n := 2 + int(seed*7%300)
		k := 1 + int(seed%12)
		levels := []int{1, 2, 3, 5, 50, 1000}[seed%6]
		density := []float64{0.02, 0.1, 0.5, 1}[seed%4]
		lists := randomLists(seed, n, k, levels, density)
		want := Soulmates(lists)
		for _, workers := range []int{1, 2, 7} {
			got, err := SoulmatesParallel(context.Background(), lists, workers)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("seed %d (n=%d k=%d levels=%d density=%v workers=%d): parallel differs from greedy\n got %v\nwant %v",
					seed, n, k, levels, density, workers, got, want)
			}
		}
	}
}

func BenchmarkSoulmates(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		// synthetic top-10 lists: each member lists 10 random others with
		// symmetric scores, as a blocked population would produce
		r := rand.New(rand.NewPCG(1, 2))
		lists := make([][]Cand, n)
		for i := range lists {
			l := make([]Cand, 10)
			for x := range l {
				j := int32(r.IntN(n))
				a, c := min(int32(i), j), max(int32(i), j)
				l[x] = Cand{J: j, S: float32(uint32(a)*2654435761^uint32(c)*40503) / float32(1<<32)}
			}
			slices.SortFunc(l, func(x, y Cand) int {
				if better(x, y) {
					return -1
				}
				return 1
			})
			lists[i] = l
		}
		b.Run(fmt.Sprintf("sequential/%d", n), func(b *testing.B) {
			for b.Loop() {
				Soulmates(lists)
			}
		})
		b.Run(fmt.Sprintf("parallel/%d", n), func(b *testing.B) {
			for b.Loop() {
				if _, err := SoulmatesParallel(context.Background(), lists, 2); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
