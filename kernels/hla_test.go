package kernels

import (
	"math/rand/v2"
	"testing"
)

func TestXorOrCount(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for n := 0; n <= 9; n++ {
		for range 50 {
			a, b := make([]uint64, n), make([]uint64, n)
			for i := range a {
				a[i], b[i] = r.Uint64()&r.Uint64(), r.Uint64()&r.Uint64()
			}
			x, o := XorOrCount(a, b)
			var wx, wo int
			for i := range a {
				for bit := 0; bit < 64; bit++ {
					ba, bb := a[i]>>bit&1, b[i]>>bit&1
					if ba != bb {
						wx++
					}
					if ba|bb == 1 {
						wo++
					}
				}
			}
			if x != wx || o != wo {
				t.Fatalf("n=%d: got (%d, %d), want (%d, %d)", n, x, o, wx, wo)
			}
		}
	}
	if HLAScore(0, 0) != 0.5 || HLAScore(3, 12) != 0.25 {
		t.Fatal("HLAScore")
	}
}

func BenchmarkXorOrCount(b *testing.B) {
	x, y := []uint64{1, 2, 3, 4}, []uint64{5, 6, 7, 8}
	b.Run("generic/4", func(b *testing.B) {
		for b.Loop() {
			_, _ = XorOrCount(x, y)
		}
	})
}
