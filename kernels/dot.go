package kernels

import "math"

// Implementations chosen once at start-up from the CPU's features
// (dot_amd64.go); the generic ones define the results.
var (
	dotImpl     = dotGeneric
	dotTileImpl = dotTileGeneric
)

// DotBlock is the length of the float32 FMA chains a dot product is cut
// into. Each block's chain is exact to float32 rounding of its own partial
// sums, which stay small, and the block results are summed in float64, so
// the error does not grow with one long float32 running sum: within 1e-6 of
// the float64 dot product of unit vectors for every width (spec v1.1 asks
// 1e-5 of the trait score for every D, D = 10 000 included). For widths up
// to DotBlock there is one block, and the result is the plain chain.
const DotBlock = 128

// Dot returns the inner product of a and b, accumulated in one fixed order
// that every implementation (generic and SIMD, on every machine) follows bit
// for bit, so scores do not depend on where a run executes: chains of fused
// multiply-adds over blocks of DotBlock elements, element 0 first, each
// rounded once to float32 (IEEE 754 fusedMultiplyAdd, as VFMADD231PS
// computes it), the block results added in float64 in block order and the
// sum rounded to float32. Within a block this is the order a
// register-blocked GEMM micro-kernel keeps per output, so Dot and DotTile
// agree exactly. a and b must have the same length; Dot panics otherwise.
// Dot(a, b) == Dot(b, a) exactly.
//
//	var acc float64
//	for k0 := 0; k0 < len(a); k0 += DotBlock {
//		var s float32
//		for k := k0; k < min(k0+DotBlock, len(a)); k++ {
//			s = FMA32(a[k], b[k], s) // a[k]*b[k] + s, rounded once
//		}
//		if k0 == 0 { acc = float64(s) } else { acc += float64(s) }
//	}
//	return float32(acc)
func Dot(a, b []float32) float32 {
	if len(a) != len(b) {
		panic("kernels: Dot length mismatch")
	}
	if len(a) <= DotBlock {
		return dotImpl(a, b)
	}
	acc := float64(dotImpl(a[:DotBlock], b[:DotBlock]))
	for k := DotBlock; k < len(a); k += DotBlock {
		e := min(k+DotBlock, len(a))
		acc += float64(dotImpl(a[k:e], b[k:e]))
	}
	return float32(acc)
}

// dotGeneric is one FMA chain over all of a (a block of Dot).
func dotGeneric(a, b []float32) float32 {
	b = b[:len(a)]
	var s float32
	for i := range a {
		s = FMA32(a[i], b[i], s)
	}
	return s
}

// FMA32 returns x*y + z computed exactly and rounded once to float32 (round
// to nearest, ties to even), as the float32 FMA instructions do.
//
// The product of two float32 values is exact in float64, so the only error
// of float32(x*y + z) computed in float64 is double rounding, which can only
// bite when the float64 sum lands exactly on a midpoint between two float32
// values; that case is settled with the sum's exact error (TwoSum).
func FMA32(x, y, z float32) float32 {
	p := float64(float64(x) * float64(y)) // exact
	s := float64(p + float64(z))
	// float32 midpoints in the normal range have the low 29 bits of the
	// float64 significand equal to 1<<28; below the normal range the
	// spacing differs, so tiny sums take the careful path too.
	if math.Float64bits(s)&(1<<29-1) != 1<<28 && !(math.Abs(s) < 0x1p-125) {
		return float32(s)
	}
	return fma32Slow(p, float64(z), s)
}

// fma32Slow rounds p + z (s = RN64(p + z)) to float32 correctly when s may
// be a float32 midpoint.
func fma32Slow(p, z, s float64) float32 {
	r := float32(s)
	if float64(r) == s || math.IsNaN(s) || math.IsInf(s, 0) {
		return r
	}
	bb := s - p
	e := (p - (s - bb)) + (z - bb) // p + z == s + e exactly
	if e == 0 {
		return r
	}
	// the float32 neighbours of s and the midpoint between them
	lo, hi := r, r
	if float64(r) < s {
		hi = math.Nextafter32(r, float32(math.Inf(1)))
	} else {
		lo = math.Nextafter32(r, float32(math.Inf(-1)))
	}
	lo64, hi64 := float64(lo), float64(hi)
	if math.IsInf(hi64, 1) {
		hi64 = 0x1p128
	}
	if math.IsInf(lo64, -1) {
		lo64 = -0x1p128
	}
	if s != lo64/2+hi64/2 {
		return r
	}
	if e > 0 {
		return hi
	}
	return lo
}

// PanelBlock is the number of vectors a panel interleaves: vectors are
// stored in blocks of PanelBlock, k-major within the block, so that the
// micro-kernel reads each block as one sequential stream.
const PanelBlock = 16

// PanelLen is the length of a panel of n vectors of width d: n rounded up
// to whole blocks.
func PanelLen(n, d int) int { return (n + PanelBlock - 1) / PanelBlock * PanelBlock * d }

// panelAt is the index of element k of vector v in a panel of width d.
func panelAt(v, k, d int) int { return v/PanelBlock*PanelBlock*d + k*PanelBlock + v%PanelBlock }

// PackPanel writes n row-major vectors of width d (rows[i*d+k]) into dst in
// the panel form DotTile reads: element k of vector i at
// dst[(i/16)·16·d + k·16 + i%16]. The slots of the last block past n are
// set to zero. dst must hold PanelLen(n, d) values.
func PackPanel(dst []float32, rows []float32, n, d int) {
	if len(rows) < n*d || len(dst) < PanelLen(n, d) {
		panic("kernels: PackPanel slice too short")
	}
	clear(dst[:PanelLen(n, d)])
	for i := 0; i < n; i++ {
		for k := 0; k < d; k++ {
			dst[panelAt(i, k, d)] = rows[i*d+k]
		}
	}
}

// DotTile computes the dot products of nq query vectors against nc
// candidate vectors of width d, both given as panels (PackPanel), into out
// (out[i*ldo+j], ldo ≥ nc). Each result is exactly Dot of the two vectors
// (the same DotBlock chains, combined the same way), so tiled and pairwise
// scoring agree bit for bit. On amd64 with AVX2 and FMA register-blocked
// 6×16 micro-kernels compute the chains: each candidate value is loaded once
// per six queries and each query value once per sixteen candidates, each
// block of 16 candidates read as one sequential stream.
//
//	for i := 0; i < nq; i++ {
//		for j := 0; j < nc; j++ {
//			var acc float64
//			for k0 := 0; k0 < d; k0 += DotBlock {
//				var s float32
//				for k := k0; k < min(k0+DotBlock, d); k++ {
//					s = FMA32(q[panelAt(i, k, d)], c[panelAt(j, k, d)], s)
//				}
//				if k0 == 0 { acc = float64(s) } else { acc += float64(s) }
//			}
//			out[i*ldo+j] = float32(acc)
//		}
//	}
func DotTile(out []float32, ldo int, q, c []float32, nq, nc, d int) {
	if nq <= 0 || nc <= 0 {
		return
	}
	if ldo < nc || d < 0 || len(out) < (nq-1)*ldo+nc || len(q) < PanelLen(nq, d) || len(c) < PanelLen(nc, d) {
		panic("kernels: DotTile slice too short or bad stride")
	}
	if d <= DotBlock {
		dotTileImpl(out, ldo, q, c, nq, nc, d, 0, d)
		return
	}
	dotTileBlocks(out, ldo, q, c, nq, nc, d)
}

// dotTileBlocks is DotTile for d > DotBlock: sub-tiles of at most 16
// queries × 64 candidates (whole panel blocks, so each is a panel of its
// own), one chain per block of DotBlock elements into a float32 scratch
// tile, the blocks summed in a float64 one. Nothing escapes to the heap.
func dotTileBlocks(out []float32, ldo int, q, c []float32, nq, nc, d int) {
	const bq, bc = PanelBlock, 4 * PanelBlock
	var part [bq * bc]float32
	var acc [bq * bc]float64
	for i0 := 0; i0 < nq; i0 += bq {
		mq := min(bq, nq-i0)
		for j0 := 0; j0 < nc; j0 += bc {
			mc := min(bc, nc-j0)
			for k0 := 0; k0 < d; k0 += DotBlock {
				dotTileImpl(part[:], bc, q[i0*d:], c[j0*d:], mq, mc, d, k0, min(k0+DotBlock, d))
				for i := 0; i < mq; i++ {
					for j := 0; j < mc; j++ {
						if k0 == 0 {
							acc[i*bc+j] = float64(part[i*bc+j])
						} else {
							acc[i*bc+j] += float64(part[i*bc+j])
						}
					}
				}
			}
			for i := 0; i < mq; i++ {
				for j := 0; j < mc; j++ {
					out[(i0+i)*ldo+j0+j] = float32(acc[i*bc+j])
				}
			}
		}
	}
}

// dotTileGeneric computes, for the panels q and c of width d, the chains
// over elements k0..k1-1 (one block of DotTile) into out.
func dotTileGeneric(out []float32, ldo int, q, c []float32, nq, nc, d, k0, k1 int) {
	dotTileCols(out, ldo, q, c, nq, 0, nc, d, k0, k1)
}

// dotTileCols is dotTileGeneric for candidate columns j0..j1-1.
func dotTileCols(out []float32, ldo int, q, c []float32, nq, j0, j1, d, k0, k1 int) {
	for i := 0; i < nq; i++ {
		for j := j0; j < j1; j++ {
			var s float32
			for k := k0; k < k1; k++ {
				s = FMA32(q[panelAt(i, k, d)], c[panelAt(j, k, d)], s)
			}
			out[i*ldo+j] = s
		}
	}
}
