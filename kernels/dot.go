package kernels

// dotImpl is the implementation Dot uses: dotGeneric, or a fast path
// chosen once at start-up from the CPU's features (dot_amd64.go).
var dotImpl = dotGeneric

// Dot returns the inner product of a and b in float32, summed in a fixed
// order that every implementation (generic and SIMD, on every machine)
// follows bit for bit, so scores do not depend on where a run executes:
// 32 lane sums over the input zero-padded to a multiple of 8, combined
// pairwise, with separate multiplies and adds (no FMA). a and b must have
// the same length; Dot panics otherwise. Dot(a, b) == Dot(b, a) exactly.
//
//	var s [32]float32
//	for i := range pad8(a) { s[i%32] += a[i] * b[i] }       // padding adds +0
//	v[l] = (s[l] + s[l+8]) + (s[l+16] + s[l+24])            // l = 0..7
//	return ((v[0]+v[4]) + (v[2]+v[6])) + ((v[1]+v[5]) + (v[3]+v[7]))
func Dot(a, b []float32) float32 {
	if len(a) != len(b) {
		panic("kernels: Dot length mismatch")
	}
	return dotImpl(a, b)
}

// dotGeneric is the portable Dot. The explicit float32 conversions round
// each product, which keeps the compiler from fusing it into an FMA (as it
// may on arm64), so results match the SIMD paths exactly.
func dotGeneric(a, b []float32) float32 {
	var s [32]float32
	n := len(a)
	b = b[:n]
	i := 0
	for ; i+32 <= n; i += 32 {
		x, y := a[i:i+32:i+32], b[i:i+32:i+32]
		for l := range s {
			s[l] += float32(x[l] * y[l])
		}
	}
	for k := 0; i < n; k, i = k+1, i+8 { // tail: 8-blocks into lanes 8k.., zero-padded
		for l := 0; l < 8; l++ {
			var p float32
			if i+l < n {
				p = float32(a[i+l] * b[i+l])
			}
			s[8*k+l] += p
		}
	}
	var v [8]float32
	for l := range v {
		v[l] = (s[l] + s[l+8]) + (s[l+16] + s[l+24])
	}
	return ((v[0] + v[4]) + (v[2] + v[6])) + ((v[1] + v[5]) + (v[3] + v[7]))
}

// DotTile computes the dot products of nq query rows against nc candidate
// rows, all of width d, stored row-major in q and c, into out (row-major,
// nq×nc). It is the tile form of Dot that SIMD micro-kernels implement.
//
//	for i := 0; i < nq; i++ {
//		for j := 0; j < nc; j++ {
//			out[i*nc+j] = Dot(q[i*d:(i+1)*d], c[j*d:(j+1)*d])
//		}
//	}
func DotTile(out, q, c []float32, nq, nc, d int) {
	if len(q) < nq*d || len(c) < nc*d || len(out) < nq*nc {
		panic("kernels: DotTile slice too short")
	}
	for i := 0; i < nq; i++ {
		qi := q[i*d : (i+1)*d]
		row := out[i*nc : (i+1)*nc]
		for j := range row {
			row[j] = Dot(qi, c[j*d:(j+1)*d])
		}
	}
}
