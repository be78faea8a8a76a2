//go:build !purego

package kernels

import "golang.org/x/sys/cpu"

//go:generate sh -c "cd _asm && go run . -out ../dot_amd64.s -stubs ../dot_stub_amd64.go -pkg kernels"

// hasFMA: the fast paths need AVX2 and FMA; hasAVX512 adds the 512-bit
// DotTile micro-kernel and peak probe (AVX-512F, with the OS saving the
// ZMM state, which x/sys/cpu checks). Read once, at start-up;
// GODEBUG=cpu.avx512f=off or cpu.all=off turn them off.
var (
	hasFMA    = cpu.X86.HasAVX2 && cpu.X86.HasFMA
	hasAVX512 = hasFMA && cpu.X86.HasAVX512F
)

func init() {
	if hasFMA {
		dotImpl = dotFMA
		dotTileImpl = dotTileAVX2
		fmaLoopImpl = fmaLoopAVX2
		filterImpl = filterAVX2
		traitRowImpl = traitRowAVX2
	}
	if hasAVX512 {
		dotTileImpl = dotTileAVX512
		fmaLoopImpl = fmaLoopAVX512
	}
	if cpu.X86.HasPOPCNT {
		questions1Impl = questionsPOPCNT
		questionsRowsImpl = questionsRowsPOPCNT
	}
}

// Implementation reports which kernel implementations this process uses:
// "avx512" (the AVX-512 DotTile and the AVX2+FMA kernels), "avx2+fma" or
// "generic".
func Implementation() string {
	switch {
	case hasAVX512:
		return "avx512"
	case hasFMA:
		return "avx2+fma"
	}
	return "generic"
}

// tileKernels[r] computes an r×16 block; r = 1..tileRows.
var tileKernels = [...]func(out *float32, ldo int, q *float32, ldq int, c *float32, ldc int, d int){
	nil, dotTile1x16, dotTile2x16, dotTile3x16, dotTile4x16, dotTile5x16, dotTile6x16,
}

const tileRows = 6

// dotTileAVX2 drives the micro-kernels, over elements k0..k1-1, across the
// 16-vector blocks of the panels: rows 0–5, 6–11 and 12–15 of each query block (so that a
// micro-kernel's six queries sit side by side in one block) against each
// whole block of 16 candidates; a last, partial candidate block takes the
// generic path (same results, bit for bit).
func dotTileAVX2(out []float32, ldo int, q, c []float32, nq, nc, d, k0, k1 int) {
	if nq <= 0 || nc <= 0 {
		return
	}
	if k1 <= k0 {
		for i := 0; i < nq; i++ {
			clear(out[i*ldo : i*ldo+nc])
		}
		return
	}
	const B = PanelBlock
	n16 := nc &^ (B - 1)
	for j := 0; j < n16; j += B {
		cb := &c[j*d+k0*B]
		for i := 0; i < nq; i += B {
			qb := q[i*d+k0*B:]
			for r0 := 0; r0 < B && i+r0 < nq; r0 += tileRows {
				r := min(tileRows, B-r0, nq-i-r0)
				tileKernels[r](&out[(i+r0)*ldo+j], ldo, &qb[r0], B, cb, B, k1-k0)
			}
		}
	}
	dotTileCols(out, ldo, q, c, nq, n16, nc, d, k0, k1) // a partial last block, if any
}

// tileKernelsZ16[r] computes an r×16 block with AVX-512; r = 1..16.
var tileKernelsZ16 = [...]func(out *float32, ldo int, q *float32, ldq int, c *float32, ldc int, d int){
	nil, dotTile1x16z, dotTile2x16z, dotTile3x16z, dotTile4x16z, dotTile5x16z, dotTile6x16z, dotTile7x16z, dotTile8x16z,
	dotTile9x16z, dotTile10x16z, dotTile11x16z, dotTile12x16z, dotTile13x16z, dotTile14x16z, dotTile15x16z, dotTile16x16z,
}

// dotTileAVX512 is dotTileAVX2 with 512-bit micro-kernels: each query
// block of 16 against each whole block of 16 candidates in one call (16×16,
// 16 ZMM accumulators, the query values broadcast from memory into the
// FMAs), query blocks outside so that one (8 KiB at d = 128) stays in L1
// while the candidate panel streams past; a partial last candidate block
// takes the generic path. Every output is the same single FMA chain over
// k0..k1-1, so the results are those of every other path, bit for bit.
// (An 8×32 register block, two candidate vectors per broadcast, measured
// 15 % slower here: bench/RESULTS.md.)
func dotTileAVX512(out []float32, ldo int, q, c []float32, nq, nc, d, k0, k1 int) {
	if nq <= 0 || nc <= 0 {
		return
	}
	if k1 <= k0 {
		for i := 0; i < nq; i++ {
			clear(out[i*ldo : i*ldo+nc])
		}
		return
	}
	const B = PanelBlock
	n16 := nc &^ (B - 1)
	for i := 0; i < nq; i += B {
		r := min(B, nq-i)
		qb := &q[i*d+k0*B]
		for j := 0; j < n16; j += B {
			tileKernelsZ16[r](&out[i*ldo+j], ldo, qb, B, &c[j*d+k0*B], B, k1-k0)
		}
	}
	dotTileCols(out, ldo, q, c, nq, n16, nc, d, k0, k1) // a partial last block, if any
}

func fmaLoopAVX512(n int) (flops int64) {
	fmaLoopZ(n)
	return int64(n) * 16 * 16 * 2
}

func fmaLoopAVX2(n int) (flops int64) {
	fmaLoop(n)
	return int64(n) * 12 * 8 * 2
}

func filterAVX2(q *FilterQuery, c *FilterCands, margin float64) (keep, sure uint64) {
	return filter64(&c.Age[0], &c.AgeMin[0], &c.AgeMax[0], &c.X[0], &c.Y[0], &c.Z[0], &c.CosT[0],
		q.Age, q.AgeMin, q.AgeMax, q.X, q.Y, q.Z, q.CosT, margin)
}

func questionsPOPCNT(a, b *[QMaskWords]uint64) QStats {
	var s QStats
	s.NumAB, s.DenAB, s.NumBA, s.DenBA, s.Common, s.Dealbreak = questions64(a, b)
	return s
}

// questionsRowsPOPCNT runs the assembly loop for one-word masks; QStats is
// laid out as the assembly writes it (five int32, then the bool; 24 bytes),
// which TestQStatsLayout pins.
func questionsRowsPOPCNT(out []QStats, a, rows []uint64, idx []int32, w int) {
	if w != 1 || len(idx) == 0 {
		questionsRowsGeneric(out, a, rows, idx, w)
		return
	}
	questions64x(&out[0].NumAB, (*[QMaskWords]uint64)(a), (*[QMaskWords]uint64)(rows), &idx[0], len(idx))
}

// traitRowAVX2 skips the multiply and divide when w = den = 1 (the trait
// weight alone, normalized to 1): 1·st/1 = st exactly, so the result is the
// same bit for bit.
func traitRowAVX2(out, dots *[TileWidth]float32, w, den float64, minA float32, minB *[TileWidth]float32) uint64 {
	if w == 1 && den == 1 {
		return traitRowUnit64(&out[0], &dots[0], minA, &minB[0])
	}
	return traitRow64(&out[0], &dots[0], w, den, minA, &minB[0])
}
