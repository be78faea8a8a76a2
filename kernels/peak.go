package kernels

// fmaLoopImpl is FMALoop's implementation (an FMA-bound assembly loop on
// amd64 with AVX2 and FMA).
var fmaLoopImpl = fmaLoopGeneric

// FMALoop runs an FMA-bound loop of n iterations and returns the number of
// floating-point operations it performed (a fused multiply-add counts as
// two). Timing it on every core gives the machine's practical peak, the
// yardstick bench/ compares the trait kernel with. On amd64 with AVX2 and
// FMA it is 12 independent chains of 8-lane VFMADD231PS per iteration:
//
//	for ; n > 0; n-- {
//		for c := range acc { // 12 chains × 8 lanes
//			acc[c] = 0.5*0.5 + acc[c]
//		}
//	}
func FMALoop(n int) int64 { return fmaLoopImpl(n) }

// fmaLoopGeneric is the portable loop: 8 scalar chains of multiply-add.
func fmaLoopGeneric(n int) int64 {
	var a [8]float32
	x := float32(0.5)
	for it := 0; it < n; it++ {
		for c := range a {
			a[c] = x*x + a[c]
		}
	}
	sink = a[0]
	return int64(len(a)) * 2 * int64(max(n, 0))
}

var sink float32
