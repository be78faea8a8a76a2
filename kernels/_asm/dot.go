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
	"github.com/mmcloughlin/avo/gotypes"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

func main() {
	ConstraintExpr("!purego")
	dotFMA()
	for r := 1; r <= tileRows; r++ {
		dotTile(r)
	}
	for r := 1; r <= 16; r++ {
		dotTileZ16(r)
	}
	fmaLoop()
	fmaLoopZ()
	filter64()
	questions64()
	questions64x()
	traitRow(false)
	traitRow(true)
	Generate()
}

// tileRows × 16 is the register block of the DotTile micro-kernel: 2·tileRows
// YMM accumulators, two candidate vectors and one broadcast query value fit
// the 16 YMM registers for tileRows = 6.
const tileRows = 6

// addr is the frame address of a parameter or result. Floating-point
// arguments and results move through VEX instructions (VMOVSS, VMOVSD,
// VBROADCASTSD from memory), never avo's Load/Store, which emit legacy SSE
// MOVSS/MOVSD: a legacy SSE instruction while the upper halves of the YMM
// registers are dirty costs a state transition, measured here as 900 ns
// instead of 40 ns for filter64.
func addr(c gotypes.Component) Mem {
	b, err := c.Resolve()
	if err != nil {
		panic(err)
	}
	return b.Addr
}

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
	VMOVSS(s, addr(ReturnIndex(0)))
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

// dotTileZ16 generates dotTile<r>x16z, DotTile's AVX-512 micro-kernel for
// r ≤ 16 queries × one panel block of 16 candidates: one ZMM accumulator
// per query, the query value broadcast from memory into the FMA itself:
//
//	for k := 0; k < d; k++ {
//		v := c[k*ldc : k*ldc+16]
//		for i := 0; i < r; i++ {
//			acc[i] = broadcast(q[k*ldq+i])*v + acc[i] // VFMADD231PS m32bcst
//		}
//	}
func dotTileZ16(r int) {
	name := fmt.Sprintf("dotTile%dx16z", r)
	TEXT(name, NOSPLIT, "func(out *float32, ldo int, q *float32, ldq int, c *float32, ldc int, d int)")
	Doc(fmt.Sprintf("%s computes a %d×16 block of DotTile with AVX-512 (d ≥ 1).", name, r))
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
	acc := make([]VecVirtual, r)
	for i := range acc {
		acc[i] = ZMM()
		VPXORD(acc[i], acc[i], acc[i])
	}
	loop := fmt.Sprintf("tilez16_%dloop", r)
	Label(loop)
	v := ZMM()
	VMOVUPS(Mem{Base: pc}, v)
	for i := 0; i < r; i++ {
		VFMADD231PS_BCST(Mem{Base: pq, Disp: 4 * i}, v, acc[i])
	}
	ADDQ(ldc, pc)
	ADDQ(ldq, pq)
	DECQ(d)
	JNZ(LabelRef(loop))
	for i := 0; i < r; i++ {
		VMOVUPS(acc[i], Mem{Base: po})
		if i < r-1 {
			ADDQ(ldo, po)
		}
	}
	VZEROUPPER()
	RET()
}

// fmaLoopZ generates fmaLoopZ, fmaLoop with 16 chains of 16-lane
// VFMADD231PS (ZMM): the AVX-512 peak, 16·16·2 = 512 flops an iteration.
func fmaLoopZ() {
	TEXT("fmaLoopZ", NOSPLIT, "func(n int) float32")
	Doc("fmaLoopZ runs n iterations of 16 independent 16-lane FMAs and returns a lane of the sum.")
	n := Load(Param("n"), GP64())
	acc := make([]VecVirtual, 16)
	for i := range acc {
		acc[i] = ZMM()
		VPXORD(acc[i], acc[i], acc[i])
	}
	half := GP32()
	MOVL(U32(0x3f000000), half) // 0.5
	x := XMM()
	VMOVD(half, x)
	y := ZMM()
	VBROADCASTSS(x, y)
	TESTQ(n, n)
	JZ(LabelRef("peakzdone"))
	Label("peakzloop")
	for i := range acc {
		VFMADD231PS(y, y, acc[i])
	}
	DECQ(n)
	JNZ(LabelRef("peakzloop"))
	Label("peakzdone")
	for i := 1; i < len(acc); i++ {
		VADDPS(acc[i], acc[0], acc[0])
	}
	VMOVSS(acc[0].AsX(), addr(ReturnIndex(0)))
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
	VMOVD(half, x)
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
	VMOVSS(acc[0].AsX(), addr(ReturnIndex(0)))
	RET()
}

// filter64 generates filter64, the hard filters of one query against a
// tile of 64 candidates (FilterTile): ages both ways on int32 lanes (8 per
// YMM), then the unit-vector distance prefilter on float64 lanes (4 per
// YMM), with the operations of the generic code in the same order (no FMA),
// so the masks are identical bit for bit:
//
//	fail := lo > age[j] | age[j] > hi | amin[j] > qAge | qAge > amax[j]
//	cos  := (qx*x[j] + qy*y[j]) + qz*z[j]
//	thr  := qCos > cosT[j] ? qCos : cosT[j]            // VMAXPD
//	keep |= !fail && !(cos < thr-margin)              // NLT_UQ
//	sure |= !fail && cos > thr+margin                 // GT_OQ
func filter64() {
	TEXT("filter64", NOSPLIT, "func(age, amin, amax *int32, x, y, z, cosT *float64, qAge, qMin, qMax int32, qx, qy, qz, qCos, margin float64) (keep, sure uint64)")
	Doc("filter64 is FilterTile for 64 candidates with AVX2.")
	pAge := Load(Param("age"), GP64())
	pMin := Load(Param("amin"), GP64())
	pMax := Load(Param("amax"), GP64())
	broadcastD := func(name string) VecVirtual {
		r, x, y := GP32(), XMM(), YMM()
		Load(Param(name), r)
		VMOVD(r, x)
		VPBROADCASTD(x, y)
		return y
	}
	qa, qlo, qhi := broadcastD("qAge"), broadcastD("qMin"), broadcastD("qMax")
	ok := GP64()
	XORQ(ok, ok)
	for b := 0; b < 8; b++ {
		a, t, f := YMM(), YMM(), YMM()
		VMOVDQU(Mem{Base: pAge, Disp: 32 * b}, a)
		VPCMPGTD(a, qlo, f) // lo > age
		VPCMPGTD(qhi, a, t) // age > hi
		VPOR(t, f, f)
		VMOVDQU(Mem{Base: pMin, Disp: 32 * b}, a)
		VPCMPGTD(qa, a, t) // amin > qAge
		VPOR(t, f, f)
		VMOVDQU(Mem{Base: pMax, Disp: 32 * b}, a)
		VPCMPGTD(a, qa, t) // qAge > amax
		VPOR(t, f, f)
		m := GP64()
		VMOVMSKPS(f, m.As32())
		if b > 0 {
			SHLQ(U8(8*b), m)
		}
		ORQ(m, ok)
	}
	NOTQ(ok) // bit j: ages pass both ways

	px := Load(Param("x"), GP64())
	py := Load(Param("y"), GP64())
	pz := Load(Param("z"), GP64())
	pc := Load(Param("cosT"), GP64())
	broadcastF := func(name string) VecVirtual {
		y := YMM()
		VBROADCASTSD(addr(Param(name)), y)
		return y
	}
	qx, qy, qz, qc, mg := broadcastF("qx"), broadcastF("qy"), broadcastF("qz"), broadcastF("qCos"), broadcastF("margin")
	keep, sure := GP64(), GP64()
	XORQ(keep, keep)
	XORQ(sure, sure)
	for b := 0; b < 16; b++ {
		c, u, thr, lo := YMM(), YMM(), YMM(), YMM()
		VMULPD(Mem{Base: px, Disp: 32 * b}, qx, c)
		VMULPD(Mem{Base: py, Disp: 32 * b}, qy, u)
		VADDPD(u, c, c)
		VMULPD(Mem{Base: pz, Disp: 32 * b}, qz, u)
		VADDPD(u, c, c)
		VMOVUPD(Mem{Base: pc, Disp: 32 * b}, u)
		VMAXPD(u, qc, thr) // qCos > cosT ? qCos : cosT
		VSUBPD(mg, thr, lo)
		VCMPPD(U8(0x15), lo, c, lo) // NLT_UQ: !(cos < thr-margin)
		VADDPD(mg, thr, thr)
		VCMPPD(U8(0x1e), thr, c, thr) // GT_OQ: cos > thr+margin
		mk, ms := GP64(), GP64()
		VMOVMSKPD(lo, mk.As32())
		VMOVMSKPD(thr, ms.As32())
		if b > 0 {
			SHLQ(U8(4*b), mk)
			SHLQ(U8(4*b), ms)
		}
		ORQ(mk, keep)
		ORQ(ms, sure)
	}
	ANDQ(ok, keep)
	ANDQ(ok, sure)
	VZEROUPPER()
	Store(keep, ReturnIndex(0))
	Store(sure, ReturnIndex(1))
	RET()
}

// questions64 generates questions64, QuestionsBits for up to 64 questions
// (one word per mask) with POPCNT: masks at fixed offsets, everything in
// registers (the Go compiler spills and re-checks POPCNT per call).
//
//	okAB := OR over o of b[answer o] & a[accept o]; okBA likewise
//	deal := a[imp 4] & ansB &^ okAB | b[imp 4] & ansA &^ okBA != 0
//	c := ansA & ansB; common = popcount(c)
//	for l in 1..4: den += w[l]·popcount(a[imp l] & c); num += w[l]·popcount(a[imp l] & c & okAB)
func questions64() {
	TEXT("questions64", NOSPLIT, "func(a, b *[22]uint64) (numAB, denAB, numBA, denBA, common int32, deal bool)")
	Doc("questions64 is QuestionsBits for one word per mask, with POPCNT.")
	pa, pb := GP64(), GP64()
	Load(Param("a"), pa)
	Load(Param("b"), pb)
	questionsBody(pa, pb, func(field int, r GPVirtual) {
		names := []string{"numAB", "denAB", "numBA", "denBA", "common", "deal"}
		if field == 5 {
			Store(r.As8(), Return(names[field]))
		} else {
			Store(r.As32(), Return(names[field]))
		}
	})
	RET()
}

// questions64x generates questions64x, questions64 of one query against n
// candidate rows picked by index, results written as QStats (24 bytes:
// five int32 then the bool), so the Go-to-assembly call is paid once per
// batch instead of once per pair:
//
//	for k := 0; k < n; k++ {
//		out[k] = questions64(a, rows[idx[k]])
//	}
func questions64x() {
	TEXT("questions64x", NOSPLIT, "func(out *int32, a *[22]uint64, rows *[22]uint64, idx *int32, n int)")
	Doc("questions64x is questions64 of a against rows[idx[k]] for k < n, into out[k].")
	po, pa, prows, pidx, n := GP64(), GP64(), GP64(), GP64(), GP64()
	Load(Param("out"), po)
	Load(Param("a"), pa)
	Load(Param("rows"), prows)
	Load(Param("idx"), pidx)
	Load(Param("n"), n)
	TESTQ(n, n)
	JZ(LabelRef("qxdone"))
	Label("qxloop")
	pb := GP64()
	MOVLQSX(Mem{Base: pidx}, pb)
	IMUL3Q(U32(8*22), pb, pb)
	ADDQ(prows, pb)
	questionsBody(pa, pb, func(field int, r GPVirtual) {
		if field == 5 {
			MOVB(r.As8(), Mem{Base: po, Disp: 20})
		} else {
			MOVL(r.As32(), Mem{Base: po, Disp: 4 * field})
		}
	})
	ADDQ(U32(24), po)
	ADDQ(U32(4), pidx)
	DECQ(n)
	JNZ(LabelRef("qxloop"))
	Label("qxdone")
	RET()
}

// questionsBody emits the comparison of the one-word masks at pa and pb
// and hands each result to store: fields 0..4 numAB, denAB, numBA, denBA,
// common (int32), 5 the dealbreaker flag (a byte).
//
//	okAB := OR over o of b[answer o] & a[accept o]; okBA likewise
//	deal := a[imp 4] & ansB &^ okAB | b[imp 4] & ansA &^ okBA != 0
//	c := ansA & ansB; common = popcount(c)
//	for l in 1..4: den += w[l]·popcount(a[imp l] & c); num += w[l]·popcount(a[imp l] & c & okAB)
func questionsBody(pa, pb GPVirtual, store func(field int, r GPVirtual)) {
	word := func(p GPVirtual, i int) Mem { return Mem{Base: p, Disp: 8 * i} }
	ok := func(x, y GPVirtual) GPVirtual { // OR over o of x[answer o] & y[accept o]
		r := GP64()
		MOVQ(word(x, 1), r)
		ANDQ(word(y, 9), r)
		for o := 1; o < 8; o++ {
			t := GP64()
			MOVQ(word(x, 1+o), t)
			ANDQ(word(y, 9+o), t)
			ORQ(t, r)
		}
		return r
	}
	okAB := ok(pb, pa)
	okBA := ok(pa, pb)
	ansA, ansB := GP64(), GP64()
	MOVQ(word(pa, 0), ansA)
	MOVQ(word(pb, 0), ansB)
	d1, d2 := GP64(), GP64()
	MOVQ(word(pa, 21), d1)
	ANDQ(ansB, d1)
	ANDNQ(d1, okAB, d1) // d1 &^ okAB
	MOVQ(word(pb, 21), d2)
	ANDQ(ansA, d2)
	ANDNQ(d2, okBA, d2)
	ORQ(d2, d1)
	SETNE(d1.As8())
	store(5, d1)
	c := ansA
	ANDQ(ansB, c)
	cnt := GP64()
	XORQ(cnt, cnt) // break POPCNT's false output dependency on some CPUs
	POPCNTQ(c, cnt)
	store(4, cnt)
	weights := []uint32{1, 10, 50, 250}
	side := func(p, okm GPVirtual, numField int) {
		num, den := GP64(), GP64()
		XORQ(num, num)
		XORQ(den, den)
		for l, w := range weights {
			x, pc := GP64(), GP64()
			MOVQ(word(p, 18+l), x)
			ANDQ(c, x)
			XORQ(pc, pc)
			POPCNTQ(x, pc)
			if w != 1 {
				IMUL3Q(U32(w), pc, pc)
			}
			ADDQ(pc, den)
			ANDQ(okm, x)
			XORQ(pc, pc)
			POPCNTQ(x, pc)
			if w != 1 {
				IMUL3Q(U32(w), pc, pc)
			}
			ADDQ(pc, num)
		}
		store(numField, num)
		store(numField+1, den)
	}
	side(pa, okAB, 0)
	side(pb, okBA, 2)
}

// traitRow generates traitRow64, TraitScoreRow for 64 lanes: float64 on
// 4 lanes per YMM in the generic code's order, each step rounded alike
// (VMAXPD/VMINPD return the second operand on NaN, as the generic code's
// comparisons do), then rounded to float32 and compared with the minima:
//
//	st := (1 + float64(dot[j])) * 0.5
//	st = st > 0 ? st : 0; st = st < 1 ? st : 1
//	s := float32(w*st / den)
//	out[j] = s; beat |= (s >= minA || s >= minB[j]) << j
//
// unit generates traitRowUnit64, the same for w = den = 1, where w·st/den
// is st exactly: no multiply and no divide (the divides are most of the
// cost: 16 VDIVPD per row).
func traitRow(unit bool) {
	if unit {
		TEXT("traitRowUnit64", NOSPLIT, "func(out, dots *float32, minA float32, minB *float32) uint64")
		Doc("traitRowUnit64 is TraitScoreRow with AVX2 for w = den = 1.")
	} else {
		TEXT("traitRow64", NOSPLIT, "func(out, dots *float32, w, den float64, minA float32, minB *float32) uint64")
		Doc("traitRow64 is TraitScoreRow with AVX2.")
	}
	po, pd, pm := GP64(), GP64(), GP64()
	Load(Param("out"), po)
	Load(Param("dots"), pd)
	Load(Param("minB"), pm)
	bcast := func(name string) VecVirtual {
		y := YMM()
		VBROADCASTSD(addr(Param(name)), y)
		return y
	}
	var w, den VecVirtual
	if !unit {
		w, den = bcast("w"), bcast("den")
	}
	minA := XMM()
	VBROADCASTSS(addr(Param("minA")), minA)
	one, half, zero := YMM(), YMM(), YMM()
	c := GP64()
	MOVQ(U64(0x3ff0000000000000), c) // 1.0
	t := XMM()
	VMOVQ(c, t)
	VBROADCASTSD(t, one)
	MOVQ(U64(0x3fe0000000000000), c) // 0.5
	t2 := XMM()
	VMOVQ(c, t2)
	VBROADCASTSD(t2, half)
	VXORPD(zero, zero, zero)
	beat := GP64()
	XORQ(beat, beat)
	for b := 0; b < 16; b++ {
		d := YMM()
		VCVTPS2PD(Mem{Base: pd, Disp: 16 * b}, d)
		VADDPD(one, d, d)  // 1 + dot
		VMULPD(half, d, d) // ÷ 2, exact
		VMAXPD(zero, d, d) // d > 0 ? d : 0
		VMINPD(one, d, d)  // d < 1 ? d : 1
		if !unit {
			VMULPD(w, d, d)
			VDIVPD(den, d, d)
		}
		s := XMM()
		VCVTPD2PSY(d, s)
		VMOVUPS(s, Mem{Base: po, Disp: 16 * b})
		ga, gb := XMM(), XMM()
		VCMPPS(U8(0x1d), minA, s, ga) // GE_OQ: s >= minA
		VCMPPS(U8(0x1d), Mem{Base: pm, Disp: 16 * b}, s, gb)
		VORPS(gb, ga, ga)
		m := GP64()
		VMOVMSKPS(ga, m.As32())
		if b > 0 {
			SHLQ(U8(4*b), m)
		}
		ORQ(m, beat)
	}
	VZEROUPPER()
	Store(beat, ReturnIndex(0))
	RET()
}
