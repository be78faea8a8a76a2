//go:build !purego

package kernels

import "golang.org/x/sys/cpu"

func init() {
	if cpu.X86.HasAVX2 {
		dotImpls = append(dotImpls, struct {
			name string
			fn   func(a, b []float32) float32
		}{"avx2", dotAVX2})
	}
}
