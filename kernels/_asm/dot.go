// Command _asm generates batchmatch's amd64 kernels with avo:
//
//	cd kernels/_asm && go run . -out ../dot_amd64.s -stubs ../dot_stub_amd64.go -pkg kernels
//
// (`go generate ./kernels` runs exactly that). The generated files are
// committed; CI re-runs the generator and fails if they changed.
package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

func main() {
	ConstraintExpr("!purego")
	dot()
	Generate()
}

// dot generates dotAVX2, which follows dotGeneric's summation order exactly:
// 32 lane sums (4 YMM accumulators, element i into lane i%32), the input
// zero-padded to a multiple of 8 by a masked load, lanes combined as
// (s[l]+s[l+8])+(s[l+16]+s[l+24]), then ((v0+v4)+(v2+v6))+((v1+v5)+(v3+v7)).
// Multiply and add are separate (no FMA), as in the generic code.
func dot() {
	mask := GLOBL("dotmask", RODATA|NOPTR)
	for j := 0; j < 8; j++ {
		DATA(4*j, U32(0xffffffff))
	}
	for j := 8; j < 16; j++ {
		DATA(4*j, U32(0))
	}

	TEXT("dotAVX2", NOSPLIT, "func(a, b []float32) float32")
	Doc("dotAVX2 is Dot with AVX2 (no FMA), bit-identical to dotGeneric.")
	pa := Load(Param("a").Base(), GP64())
	pb := Load(Param("b").Base(), GP64())
	n := Load(Param("a").Len(), GP64())
	acc := []VecVirtual{YMM(), YMM(), YMM(), YMM()}
	for _, r := range acc {
		VXORPS(r, r, r)
	}
	i := GP64()
	XORQ(i, i)
	rem := GP64()

	Label("loop32")
	MOVQ(n, rem)
	SUBQ(i, rem)
	CMPQ(rem, Imm(32))
	JL(LabelRef("block0"))
	for k := 0; k < 4; k++ {
		x := YMM()
		VMOVUPS(Mem{Base: pa, Index: i, Scale: 4, Disp: 32 * k}, x)
		VMULPS(Mem{Base: pb, Index: i, Scale: 4, Disp: 32 * k}, x, x)
		VADDPS(x, acc[k], acc[k])
	}
	ADDQ(Imm(32), i)
	JMP(LabelRef("loop32"))

	// fewer than 32 left: full 8-blocks go to acc[0], acc[1], acc[2] in
	// turn, then the partial block (masked) to the next accumulator.
	for k := 0; k < 4; k++ {
		Label(fmt.Sprintf("block%d", k))
		MOVQ(n, rem)
		SUBQ(i, rem)
		if k < 3 {
			CMPQ(rem, Imm(8))
			JL(LabelRef(fmt.Sprintf("partial%d", k)))
			x := YMM()
			VMOVUPS(Mem{Base: pa, Index: i, Scale: 4}, x)
			VMULPS(Mem{Base: pb, Index: i, Scale: 4}, x, x)
			VADDPS(x, acc[k], acc[k])
			ADDQ(Imm(8), i)
			JMP(LabelRef(fmt.Sprintf("block%d", k+1)))
		}
		Label(fmt.Sprintf("partial%d", k))
		CMPQ(rem, Imm(0))
		JE(LabelRef("reduce"))
		// mask lanes 0..rem-1: load 8 dwords from dotmask + 4·(8-rem)
		off := GP64()
		MOVQ(U32(8), off)
		SUBQ(rem, off)
		base := GP64()
		LEAQ(mask, base)
		m := YMM()
		VMOVDQU(Mem{Base: base, Index: off, Scale: 4}, m)
		x, y := YMM(), YMM()
		VMASKMOVPS(Mem{Base: pa, Index: i, Scale: 4}, m, x)
		VMASKMOVPS(Mem{Base: pb, Index: i, Scale: 4}, m, y)
		VMULPS(y, x, x)
		VADDPS(x, acc[k], acc[k])
		JMP(LabelRef("reduce"))
	}

	Label("reduce")
	VADDPS(acc[1], acc[0], acc[0]) // s[l] + s[l+8]
	VADDPS(acc[3], acc[2], acc[2]) // s[l+16] + s[l+24]
	VADDPS(acc[2], acc[0], acc[0]) // v[l]
	hi := XMM()
	VEXTRACTF128(Imm(1), acc[0], hi)
	lo := acc[0].AsX()
	VADDPS(hi, lo, lo) // w[j] = v[j] + v[j+4]
	t := XMM()
	VMOVHLPS(lo, lo, t)
	VADDPS(t, lo, lo) // u[0] = w[0]+w[2], u[1] = w[1]+w[3]
	u := XMM()
	VMOVSHDUP(lo, u)
	VADDSS(u, lo, lo) // u[0] + u[1]
	VZEROUPPER()
	Store(lo, ReturnIndex(0))
	RET()
}
