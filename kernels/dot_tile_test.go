package kernels

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

type dotTileCase struct {
	name string
	fn   func(out []float32, ldo int, q, c []float32, nq, nc, d, k0, k1 int)
}

// Tile implementations side by side; dot_amd64_test.go adds the fast path.
var dotTileImpls = []dotTileCase{{"generic", dotTileGeneric}}

type fmaLoopCase struct {
	name string
	fn   func(n int) int64
}

var fmaLoopImpls = []fmaLoopCase{{"generic", fmaLoopGeneric}}

// tileShapes are the (nq, nc, d) shapes tested: around the 6-row (AVX2)
// and 8-row (AVX-512) register blocks, the 16-query panel block, the 16-
// and 32-column blocks (a pair of blocks, a lone block, a partial one) and
// the 64-member tile.
func tileShapes() [][3]int {
	var s [][3]int
	for _, nq := range []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 15, 16, 17, 24, 63, 64} {
		for _, nc := range []int{0, 1, 15, 16, 17, 31, 32, 33, 47, 48, 49, 64} {
			for _, d := range []int{0, 1, 2, 7, 128, 129} {
				s = append(s, [3]int{nq, nc, d})
			}
		}
	}
	return s
}

// TestDotTile checks every implementation against Dot of the unpacked
// vectors, bit for bit, with strides wider than the tile, poisoned guard
// bands around every operand and the output, and NaN/±Inf in every lane.
func TestDotTile(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	for _, impl := range dotTileImpls {
		t.Run(impl.name, func(t *testing.T) {
			for si, sh := range tileShapes() {
				nq, nc, d := sh[0], sh[1], sh[2]
				ldo := nc + 2
				const guard = 8
				qrows, crows := randVec(r, nq*d, 1), randVec(r, nc*d, 1)
				if si%3 == 1 && d > 0 { // specials: one per lane of query i / candidate j
					for i := 0; i < nq; i++ {
						qrows[i*d+(i%d)] = []float32{nan, inf, -inf}[i%3]
					}
					for j := 0; j < nc; j++ {
						crows[j*d+((j*7)%d)] = []float32{-inf, nan, inf, 0}[j%4]
					}
				}
				poison := func(n int) []float32 {
					v := make([]float32, n+2*guard)
					for i := range v {
						v[i] = nan
					}
					return v
				}
				qg, cg := poison(PanelLen(nq, d)), poison(PanelLen(nc, d))
				q, c := qg[guard:guard+PanelLen(nq, d)], cg[guard:guard+PanelLen(nc, d)]
				PackPanel(q, qrows, nq, d)
				PackPanel(c, crows, nc, d)
				for k := 0; k < d; k++ { // the padding of the last blocks is never read
					for i := nq; i < (nq+15)/16*16; i++ {
						q[panelAt(i, k, d)] = inf
					}
					for j := nc; j < (nc+15)/16*16; j++ {
						c[panelAt(j, k, d)] = nan
					}
				}
				// the whole width, and a range of elements inside it (a
				// block of a wider DotTile)
				for _, kr := range [][2]int{{0, d}, {d / 3, d - d/4}} {
					k0, k1 := kr[0], kr[1]
					og := make([]float32, nq*ldo+2*guard)
					for i := range og {
						og[i] = 12345
					}
					out := og[guard : guard+nq*ldo]
					impl.fn(out, ldo, q, c, nq, nc, d, k0, k1)
					for i := 0; i < nq; i++ {
						for j := 0; j < ldo; j++ {
							got := out[i*ldo+j]
							if j >= nc {
								if got != 12345 {
									t.Fatalf("%v: wrote outside the tile at [%d,%d]", sh, i, j)
								}
								continue
							}
							want := dotGeneric(qrows[i*d+k0:i*d+k1], crows[j*d+k0:j*d+k1])
							if !sameFloat(got, want) {
								t.Fatalf("%v k%d..%d: out[%d,%d] = %v, chain = %v", sh, k0, k1, i, j, got, want)
							}
						}
					}
					for g := 0; g < guard; g++ {
						if og[g] != 12345 || og[len(og)-1-g] != 12345 {
							t.Fatalf("%v: wrote into the output guard band", sh)
						}
					}
				}
			}
		})
	}
}

func TestDotTileRejectsShortSlices(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("DotTile accepted a query panel too short for its shape")
		}
	}()
	DotTile(make([]float32, 16), 4, make([]float32, PanelLen(4, 2)-1), make([]float32, PanelLen(4, 2)), 4, 4, 2)
}

// FuzzDotTile: bytes give the shape and the values; every implementation
// must equal the generic one bit for bit.
func FuzzDotTile(f *testing.F) {
	f.Add(uint8(6), uint8(16), uint8(3), make([]byte, 4*(6+16)*3))
	f.Add(uint8(7), uint8(17), uint8(1), []byte{0, 0, 192, 127, 0, 0, 128, 127, 0, 0, 128, 255, 1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, nq8, nc8, d8 uint8, data []byte) {
		nq, nc, d := int(nq8%20), int(nc8%40), int(d8%40)
		vals := make([]float32, (nq+nc)*d)
		for i := range vals {
			if 4*i+4 <= len(data) {
				vals[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:]))
			} else {
				vals[i] = float32(i%7) - 3
			}
		}
		q, c := make([]float32, PanelLen(nq, d)), make([]float32, PanelLen(nc, d))
		PackPanel(q, vals[:nq*d], nq, d)
		PackPanel(c, vals[nq*d:], nc, d)
		k0, k1 := 0, d
		if nq8&1 == 1 { // a block of a wider tile: elements k0..k1-1
			k0, k1 = d/3, d-d/5
		}
		want := make([]float32, nq*nc)
		dotTileGeneric(want, nc, q, c, nq, nc, d, k0, k1)
		for _, impl := range dotTileImpls[1:] {
			got := make([]float32, nq*nc)
			impl.fn(got, nc, q, c, nq, nc, d, k0, k1)
			for i := range got {
				if !sameFloat(got[i], want[i]) {
					t.Fatalf("%s %dx%dx%d: out[%d] = %v, generic %v", impl.name, nq, nc, d, i, got[i], want[i])
				}
			}
		}
	})
}

// BenchmarkDotTile times a 64×64 tile of 128-wide traits (the pipeline's
// tile) and reports GFLOP/s (2·d flops per pair).
func BenchmarkDotTile(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	for _, impl := range dotTileImpls {
		for _, sh := range [][3]int{{64, 64, 128}, {6, 16, 128}, {64, 64, 32}} {
			nq, nc, d := sh[0], sh[1], sh[2]
			q, c := randVec(r, PanelLen(nq, d), 1), randVec(r, PanelLen(nc, d), 1)
			out := make([]float32, nq*nc)
			b.Run(fmt.Sprintf("%s/%dx%dx%d", impl.name, nq, nc, d), func(b *testing.B) {
				for b.Loop() {
					impl.fn(out, nc, q, c, nq, nc, d, 0, d)
				}
				b.ReportMetric(float64(2*nq*nc*d)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}
