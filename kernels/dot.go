package kernels

import "math"

// Implementations chosen once at start-up from the CPU's features
// (dot_amd64.go); the generic ones define the results.
var (
	dotImpl     = dotGeneric
	dotTileImpl = dotTileGeneric
)

// Dot returns the inner product of a and b in float32, accumulated in one
// fixed order that every implementation (generic and SIMD, on every machine)
// follows bit for bit, so scores do not depend on where a run executes: a
// single chain of fused multiply-adds, element 0 first, each rounded once to
// float32 (IEEE 754 fusedMultiplyAdd, as VFMADD231PS computes it). This is
// the order a register-blocked GEMM micro-kernel keeps per output, so Dot and
// DotTile agree exactly. a and b must have the same length; Dot panics
// otherwise. Dot(a, b) == Dot(b, a) exactly.
//
//	var s float32
//	for i := range a {
//		s = FMA32(a[i], b[i], s) // a[i]*b[i] + s, rounded once
//	}
//	return s
func Dot(a, b []float32) float32 {
	if len(a) != len(b) {
		panic("kernels: Dot length mismatch")
	}
	return dotImpl(a, b)
}

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

// DotTile computes the dot products of nq queries against nc candidates of
// width d, both stored k-major ("panels": element k of query i at
// q[k*ldq+i], of candidate j at c[k*ldc+j]), into out (out[i*ldo+j]). Each
// result is exactly Dot of the two vectors, so tiled and pairwise scoring
// agree bit for bit. On amd64 with AVX2 and FMA a register-blocked 6×16
// micro-kernel does the work: each candidate value is loaded once per six
// queries and each query value once per sixteen candidates.
//
//	for i := 0; i < nq; i++ {
//		for j := 0; j < nc; j++ {
//			var s float32
//			for k := 0; k < d; k++ {
//				s = FMA32(q[k*ldq+i], c[k*ldc+j], s)
//			}
//			out[i*ldo+j] = s
//		}
//	}
func DotTile(out []float32, ldo int, q []float32, ldq int, c []float32, ldc int, nq, nc, d int) {
	if nq <= 0 || nc <= 0 {
		return
	}
	if ldq < nq || ldc < nc || ldo < nc || d < 0 ||
		len(out) < (nq-1)*ldo+nc || (d > 0 && (len(q) < (d-1)*ldq+nq || len(c) < (d-1)*ldc+nc)) {
		panic("kernels: DotTile slice too short or bad stride")
	}
	dotTileImpl(out, ldo, q, ldq, c, ldc, nq, nc, d)
}

func dotTileGeneric(out []float32, ldo int, q []float32, ldq int, c []float32, ldc int, nq, nc, d int) {
	for i := 0; i < nq; i++ {
		row := out[i*ldo : i*ldo+nc]
		for j := range row {
			var s float32
			for k := 0; k < d; k++ {
				s = FMA32(q[k*ldq+i], c[k*ldc+j], s)
			}
			row[j] = s
		}
	}
}

// PackPanel writes n row-major vectors of width d (rows[i*d+k]) into dst in
// the k-major panel form DotTile reads, with leading dimension ld ≥ n:
// dst[k*ld+i] = rows[i*d+k]. Columns n..ld-1 are set to zero.
func PackPanel(dst []float32, ld int, rows []float32, n, d int) {
	if ld < n || len(rows) < n*d || len(dst) < d*ld {
		panic("kernels: PackPanel slice too short")
	}
	for k := 0; k < d; k++ {
		col := dst[k*ld : (k+1)*ld]
		for i := 0; i < n; i++ {
			col[i] = rows[i*d+k]
		}
		clear(col[n:])
	}
}
