package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// refBlocked is Dot's contract built from the exact reference FMA: chains
// of DotBlock elements, the chain results summed in float64 in block order.
func refBlocked(a, b []float32) float32 {
	if len(a) <= DotBlock {
		return refChain(a, b)
	}
	var acc float64
	for k0 := 0; k0 < len(a); k0 += DotBlock {
		s := float64(refChain(a[k0:min(k0+DotBlock, len(a))], b[k0:min(k0+DotBlock, len(b))]))
		if k0 == 0 {
			acc = s
		} else {
			acc += s
		}
	}
	return float32(acc)
}

// withDotImpl runs fn with the chain implementation set to impl.
func withDotImpl(impl func(a, b []float32) float32, fn func()) {
	saved := dotImpl
	dotImpl = impl
	defer func() { dotImpl = saved }()
	fn()
}

// withDotTileImpl runs fn with the tile implementation set to impl.
func withDotTileImpl(impl func(out []float32, ldo int, q, c []float32, nq, nc, d, k0, k1 int), fn func()) {
	saved := dotTileImpl
	dotTileImpl = impl
	defer func() { dotTileImpl = saved }()
	fn()
}

// blockLengths are widths around the DotBlock boundaries and the large D
// the spec names.
var blockLengths = []int{0, 1, 127, 128, 129, 255, 256, 257, 383, 384, 385, 1000, 4096, 10000}

// TestDotBlocks: Dot is the blocked chain, bit for bit, with every chain
// implementation, including NaN/±Inf in a lane of any block.
func TestDotBlocks(t *testing.T) {
	r := rand.New(rand.NewPCG(41, 42))
	for _, impl := range dotImpls {
		t.Run(impl.name, func(t *testing.T) {
			withDotImpl(impl.fn, func() {
				for _, n := range blockLengths {
					for trial := 0; trial < 4; trial++ {
						a, b := randVec(r, n, 1/math.Sqrt(float64(n+1))), randVec(r, n, 1/math.Sqrt(float64(n+1)))
						if trial > 0 && n > 0 {
							sp := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))}
							a[r.IntN(n)] = sp[trial%len(sp)]
						}
						got, want := Dot(a, b), refBlocked(a, b)
						if !sameFloat(got, want) {
							t.Fatalf("n=%d trial %d: Dot %v, blocked reference %v", n, trial, got, want)
						}
						if rev := Dot(b, a); !sameFloat(rev, got) {
							t.Fatalf("n=%d: Dot not symmetric: %v vs %v", n, got, rev)
						}
					}
				}
			})
		})
	}
}

// TestDotAccuracyEveryWidth: for unit vectors, Dot is within 4e-6 of the
// float64 dot product of the same float32 values at every width, so the
// trait score (1+dot)/2 stays within 2e-6, well inside the spec's 1e-5
// (spec v1.1: for every D). The cases are random directions and the worst
// case of one long chain: equal positive values, whose running sum grows
// to 1 with every rounding error in the same direction.
func TestDotAccuracyEveryWidth(t *testing.T) {
	r := rand.New(rand.NewPCG(43, 44))
	unit := func(v []float32) {
		var s float64
		for _, x := range v {
			s += float64(x) * float64(x)
		}
		for i := range v {
			v[i] = float32(float64(v[i]) / math.Sqrt(s))
		}
	}
	for _, n := range []int{16, 64, 128, 129, 256, 512, 1024, 2048, 4096, 8192, 10000, 20000} {
		var worst, worstChain float64
		for trial := 0; trial < 6; trial++ {
			a, b := make([]float32, n), make([]float32, n)
			for i := range a {
				switch trial {
				case 0: // identical, equal components: dot = 1
					a[i], b[i] = 1, 1
				case 1: // equal components with a little noise
					a[i], b[i] = 1+0.01*float32(r.NormFloat64()), 1+0.01*float32(r.NormFloat64())
				default:
					a[i], b[i] = float32(r.NormFloat64()), float32(r.NormFloat64())
					if trial == 2 {
						b[i] = a[i] // identical random vectors
					}
				}
			}
			unit(a)
			unit(b)
			want := refDot(a, b)
			worst = max(worst, math.Abs(float64(Dot(a, b))-want))
			worstChain = max(worstChain, math.Abs(float64(dotGeneric(a, b))-want))
		}
		t.Logf("D=%5d: max |Dot - float64| = %.2e (one float32 chain: %.2e)", n, worst, worstChain)
		if worst > 4e-6 {
			t.Errorf("D=%d: Dot is %.3g from the float64 dot product, want ≤ 4e-6", n, worst)
		}
	}
}

// TestDotTileBlocks: DotTile of widths above DotBlock equals Dot of the
// unpacked vectors bit for bit, with every tile implementation, on shapes
// around the 16-query and 64-candidate sub-tiles and a strided output.
func TestDotTileBlocks(t *testing.T) {
	r := rand.New(rand.NewPCG(45, 46))
	for _, impl := range dotTileImpls {
		t.Run(impl.name, func(t *testing.T) {
			withDotTileImpl(impl.fn, func() {
				for _, d := range []int{128, 129, 256, 300, 1000} {
					for _, sh := range [][2]int{{1, 1}, {6, 16}, {17, 65}, {33, 64}, {64, 130}} {
						nq, nc := sh[0], sh[1]
						ldo := nc + 3
						qrows, crows := randVec(r, nq*d, 0.1), randVec(r, nc*d, 0.1)
						if nq > 1 {
							qrows[(nq-1)*d+d-1] = float32(math.Inf(1)) // a special in the last block
						}
						q, c := make([]float32, PanelLen(nq, d)), make([]float32, PanelLen(nc, d))
						PackPanel(q, qrows, nq, d)
						PackPanel(c, crows, nc, d)
						out := make([]float32, nq*ldo)
						for i := range out {
							out[i] = 12345
						}
						DotTile(out, ldo, q, c, nq, nc, d)
						for i := 0; i < nq; i++ {
							for j := 0; j < ldo; j++ {
								got := out[i*ldo+j]
								if j >= nc {
									if got != 12345 {
										t.Fatalf("d=%d %v: wrote outside the tile at [%d,%d]", d, sh, i, j)
									}
									continue
								}
								if want := Dot(qrows[i*d:(i+1)*d], crows[j*d:(j+1)*d]); !sameFloat(got, want) {
									t.Fatalf("d=%d %v: out[%d,%d] = %v, Dot = %v", d, sh, i, j, got, want)
								}
							}
						}
					}
				}
			})
		})
	}
}
