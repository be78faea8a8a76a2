//go:build !purego

package kernels

import "golang.org/x/sys/cpu"

func init() {
	if hasFMA {
		dotImpls = append(dotImpls, dotImplCase{"fma", dotFMA})
		dotTileImpls = append(dotTileImpls, dotTileCase{"avx2", dotTileAVX2})
		fmaLoopImpls = append(fmaLoopImpls, fmaLoopCase{"avx2", fmaLoopAVX2})
	}
	if hasAVX512 {
		dotTileImpls = append(dotTileImpls, dotTileCase{"avx512", dotTileAVX512})
		fmaLoopImpls = append(fmaLoopImpls, fmaLoopCase{"avx512", fmaLoopAVX512})
	}
}

func init() {
	if hasFMA {
		filterImpls = append(filterImpls, filterCase{"avx2", filterAVX2})
	}
}

func init() {
	if cpu.X86.HasPOPCNT {
		questions1Impls = append(questions1Impls, struct {
			name string
			fn   func(a, b *[QMaskWords]uint64) QStats
		}{"popcnt", questionsPOPCNT})
	}
}

func init() {
	if cpu.X86.HasPOPCNT {
		questionRowsImpls = append(questionRowsImpls, questionRowsCase{"popcnt", questionsRowsPOPCNT})
	}
}

func init() {
	if hasFMA {
		traitRowImpls = append(traitRowImpls, traitRowCase{"avx2", traitRowAVX2})
	}
}
