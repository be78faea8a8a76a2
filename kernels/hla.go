package kernels

import "math/bits"

// HLAWords is the number of 64-bit words in one HLA bitset (256 alleles).
const HLAWords = 4

// XorOrCount returns popcount(a XOR b) and popcount(a OR b) over the words of
// two bitsets of equal length; it panics on a length mismatch.
//
//	for i := range a {
//		x += bits.OnesCount64(a[i] ^ b[i])
//		o += bits.OnesCount64(a[i] | b[i])
//	}
func XorOrCount(a, b []uint64) (x, o int) {
	if len(a) != len(b) {
		panic("kernels: XorOrCount length mismatch")
	}
	for i := range a {
		x += bits.OnesCount64(a[i] ^ b[i])
		o += bits.OnesCount64(a[i] | b[i])
	}
	return x, o
}

// HLAScore is the biomarker component for the popcounts of XorOrCount:
// x/o, or 0.5 when both sets are empty (o == 0).
func HLAScore(x, o int) float64 {
	if o == 0 {
		return 0.5
	}
	return float64(x) / float64(o)
}
