package publish

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestIndex: Of finds every id and nothing else, for sorted and unsorted
// ids, dense, spread and skewed, negative and extreme values.
func TestIndex(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	for _, c := range []struct {
		name string
		ids  func(n int) []int64
	}{
		{"dense", func(n int) []int64 {
			s := make([]int64, n)
			for i := range s {
				s[i] = int64(1000 + i)
			}
			return s
		}},
		{"spread", func(n int) []int64 {
			s := make([]int64, n)
			for i := range s {
				s[i] = r.Int64()
			}
			return s
		}},
		{"skewed and extreme", func(n int) []int64 {
			s := make([]int64, n)
			for i := range s {
				s[i] = int64(i * i)
			}
			if n > 2 {
				s[0], s[1] = math.MinInt64, math.MaxInt64
			}
			return s
		}},
	} {
		for _, n := range []int{0, 1, 2, 17, 5000} {
			ids := c.ids(n)
			slices.Sort(ids)
			ids = slices.Compact(ids)
			for _, sorted := range []bool{true, false} {
				in := slices.Clone(ids)
				if !sorted {
					r.Shuffle(len(in), func(i, j int) { in[i], in[j] = in[j], in[i] })
				}
				x := NewIndex(in)
				for k, id := range in {
					if got := x.Of(id); got != k {
						t.Fatalf("%s n=%d sorted %v: Of(%d) = %d, want %d", c.name, n, sorted, id, got, k)
					}
				}
				for range 200 {
					id := r.Int64() - r.Int64()
					if _, found := slices.BinarySearch(ids, id); !found && x.Of(id) != -1 {
						t.Fatalf("%s n=%d: Of(%d) found an absent id", c.name, n, id)
					}
				}
			}
		}
	}
}
