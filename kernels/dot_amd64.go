//go:build !purego

package kernels

import "golang.org/x/sys/cpu"

//go:generate sh -c "cd _asm && go run . -out ../dot_amd64.s -stubs ../dot_stub_amd64.go -pkg kernels"

func init() {
	if cpu.X86.HasAVX2 {
		dotImpl = dotAVX2
	}
}

// Implementation reports which Dot implementation this process uses.
func Implementation() string {
	if cpu.X86.HasAVX2 {
		return "avx2"
	}
	return "generic"
}
