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
	dotFMA()
	for r := 1; r <= tileRows; r++ {
		dotTile(r)
	}
	fmaLoop()
	Generate()
}

// tileRows × 16 is the register block of the DotTile micro-kernel: 2·tileRows
// YMM accumulators, two candidate vectors and one broadcast query value fit
// the 16 YMM registers for tileRows = 6.
const tileRows = 6

// dotFMA generates dotFMA, Dot's single chain of scalar fused multiply-adds:
// s = a[i]*b[i] + s for i = 0..n-1, rounded once per step, exactly as
// dotGeneric (FMA32) and the DotTile micro-kernels compute it.
func dotFMA() {
	TEXT("dotFMA", NOSPLIT, "func(a, b []float32) float32")
	Doc("dotFMA is Dot as one chain of VFMADD231SS, bit-identical to dotGeneric.")
	pa := Load(Param("a").Base(), GP64())
	pb := Load(Param("b").Base(), GP64())
	n := Load(Param("a").Len(), GP64())
	s := XMM()
	VXORPS(s, s, s)
	i := GP64()
	XORQ(i, i)
	Label("fmaloop")
	CMPQ(i, n)
	JGE(LabelRef("fmadone"))
	x := XMM()
	VMOVSS(Mem{Base: pa, Index: i, Scale: 4}, x)
	VFMADD231SS(Mem{Base: pb, Index: i, Scale: 4}, x, s)
	INCQ(i)
	JMP(LabelRef("fmaloop"))
	Label("fmadone")
	Store(s, ReturnIndex(0))
	RET()
}

// dotTile generates dotTile<r>x16, the register-blocked micro-kernel of
// DotTile: r queries × 16 candidates, k-major panels, one FMA chain per
// output in k order (the order of Dot):
//
//	for k := 0; k < d; k++ {
//		c0, c1 := c[k*ldc : k*ldc+8], c[k*ldc+8 : k*ldc+16]
//		for i := 0; i < r; i++ {
//			a := broadcast(q[k*ldq+i])
//			acc[i][0] = a*c0 + acc[i][0] // VFMADD231PS, rounded once
//			acc[i][1] = a*c1 + acc[i][1]
//		}
//	}
//	out[i*ldo : i*ldo+16] = acc[i]
func dotTile(r int) {
	name := fmt.Sprintf("dotTile%dx16", r)
	TEXT(name, NOSPLIT, "func(out *float32, ldo int, q *float32, ldq int, c *float32, ldc int, d int)")
	Doc(fmt.Sprintf("%s computes a %d×16 block of DotTile (d ≥ 1).", name, r))
	po := Load(Param("out"), GP64())
	ldo := Load(Param("ldo"), GP64())
	pq := Load(Param("q"), GP64())
	ldq := Load(Param("ldq"), GP64())
	pc := Load(Param("c"), GP64())
	ldc := Load(Param("ldc"), GP64())
	d := Load(Param("d"), GP64())
	SHLQ(Imm(2), ldo)
	SHLQ(Imm(2), ldq)
	SHLQ(Imm(2), ldc)
	acc := make([]VecVirtual, 2*r)
	for i := range acc {
		acc[i] = YMM()
		VXORPS(acc[i], acc[i], acc[i])
	}
	loop := fmt.Sprintf("tile%dloop", r)
	Label(loop)
	c0, c1 := YMM(), YMM()
	VMOVUPS(Mem{Base: pc}, c0)
	VMOVUPS(Mem{Base: pc, Disp: 32}, c1)
	for i := 0; i < r; i++ {
		a := YMM()
		VBROADCASTSS(Mem{Base: pq, Disp: 4 * i}, a)
		VFMADD231PS(c0, a, acc[2*i])
		VFMADD231PS(c1, a, acc[2*i+1])
	}
	ADDQ(ldc, pc)
	ADDQ(ldq, pq)
	DECQ(d)
	JNZ(LabelRef(loop))
	for i := 0; i < r; i++ {
		VMOVUPS(acc[2*i], Mem{Base: po})
		VMOVUPS(acc[2*i+1], Mem{Base: po, Disp: 32})
		if i < r-1 {
			ADDQ(ldo, po)
		}
	}
	VZEROUPPER()
	RET()
}

// fmaLoop generates fmaLoop, an FMA-bound loop for measuring the machine's
// peak: 12 independent chains of VFMADD231PS (enough to cover the FMA
// latency on two ports), n iterations, 12·8·2 = 192 flops each.
func fmaLoop() {
	TEXT("fmaLoop", NOSPLIT, "func(n int) float32")
	Doc("fmaLoop runs n iterations of 12 independent 8-lane FMAs and returns a lane of the sum.")
	n := Load(Param("n"), GP64())
	acc := make([]VecVirtual, 12)
	for i := range acc {
		acc[i] = YMM()
		VXORPS(acc[i], acc[i], acc[i])
	}
	half := GP32()
	MOVL(U32(0x3f000000), half) // 0.5
	x := XMM()
	MOVD(half, x)
	y := YMM()
	VBROADCASTSS(x, y)
	TESTQ(n, n)
	JZ(LabelRef("peakdone"))
	Label("peakloop")
	for i := range acc {
		VFMADD231PS(y, y, acc[i])
	}
	DECQ(n)
	JNZ(LabelRef("peakloop"))
	Label("peakdone")
	for i := 1; i < len(acc); i++ {
		VADDPS(acc[i], acc[0], acc[0])
	}
	VZEROUPPER()
	Store(acc[0].AsX(), ReturnIndex(0))
	RET()
}
