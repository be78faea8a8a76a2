//go:build !purego

package kernels

func init() {
	if hasFMA {
		dotImpls = append(dotImpls, dotImplCase{"fma", dotFMA})
		dotTileImpls = append(dotTileImpls, dotTileCase{"avx2", dotTileAVX2})
		fmaLoopImpls = append(fmaLoopImpls, fmaLoopCase{"avx2", fmaLoopAVX2})
	}
}

func init() {
	if hasFMA {
		filterImpls = append(filterImpls, filterCase{"avx2", filterAVX2})
	}
}
