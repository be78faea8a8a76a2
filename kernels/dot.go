package kernels

// Dot returns the inner product of a and b, accumulated in float32 in index
// order. a and b must have the same length; Dot panics otherwise.
//
//	var s float32
//	for i := range a {
//		s += a[i] * b[i]
//	}
func Dot(a, b []float32) float32 {
	if len(a) != len(b) {
		panic("kernels: Dot length mismatch")
	}
	// Four independent accumulators break the add dependency chain; the
	// summation order is fixed, so Dot(a, b) == Dot(b, a) bit for bit.
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
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
