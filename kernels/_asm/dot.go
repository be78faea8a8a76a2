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
	scoreRow512()
	questionsTile512()
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
	fmaPeak("fmaLoopZ", "fmaLoopZ runs n iterations of 16 independent 16-lane FMAs and returns a lane of the sum.",
		16, ZMM, func(r VecVirtual) { VPXORD(r, r, r) }, "peakz", false)
}

// fmaLoop generates fmaLoop, an FMA-bound loop for measuring the machine's
// peak: 12 independent chains of VFMADD231PS (enough to cover the FMA
// latency on two ports), n iterations, 12·8·2 = 192 flops each.
func fmaLoop() {
	fmaPeak("fmaLoop", "fmaLoop runs n iterations of 12 independent 8-lane FMAs and returns a lane of the sum.",
		12, YMM, func(r VecVirtual) { VXORPS(r, r, r) }, "peak", true)
}

// fmaPeak generates a peak probe: chains independent VFMADD231PS chains in
// registers from reg (zeroed by zero), n iterations, the chains summed and
// one lane returned (after VZEROUPPER when zeroFirst, else before it).
func fmaPeak(name, doc string, chains int, reg func() VecVirtual, zero func(VecVirtual), label string, zeroFirst bool) {
	TEXT(name, NOSPLIT, "func(n int) float32")
	Doc(doc)
	n := Load(Param("n"), GP64())
	acc := make([]VecVirtual, chains)
	for i := range acc {
		acc[i] = reg()
		zero(acc[i])
	}
	half := GP32()
	MOVL(U32(0x3f000000), half) // 0.5
	x := XMM()
	VMOVD(half, x)
	y := reg()
	VBROADCASTSS(x, y)
	TESTQ(n, n)
	JZ(LabelRef(label + "done"))
	Label(label + "loop")
	for i := range acc {
		VFMADD231PS(y, y, acc[i])
	}
	DECQ(n)
	JNZ(LabelRef(label + "loop"))
	Label(label + "done")
	for i := 1; i < len(acc); i++ {
		VADDPS(acc[i], acc[0], acc[0])
	}
	if zeroFirst {
		VZEROUPPER()
		VMOVSS(acc[0].AsX(), addr(ReturnIndex(0)))
	} else {
		VMOVSS(acc[0].AsX(), addr(ReturnIndex(0)))
		VZEROUPPER()
	}
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

// Offsets of the PairTile and QLanes fields and of the scoreRow512
// constants, in bytes (pinned by kernels.TestPairLayout).
const (
	tSinHalfLat = 0
	tCosHalfLat = 512
	tSinHalfLon = 1024
	tCosHalfLon = 1536
	tCosLat     = 2048
	tHavMax     = 2560
	tMaxKm      = 3072
	tHLA        = 3328 // [4][64]uint64
	tHealth     = 5376

	qNumAB     = 0
	qDenAB     = 256
	qNumBA     = 512
	qDenBA     = 768
	qCommon    = 1024
	qDealbreak = 1280

	// scoreRowConsts: f [28]float64, then hla [4]uint64
	cSLat, cCLat, cSLon, cCLon, cCosLat, cHav = 0, 8, 16, 24, 32, 40
	cWt, cWq, cWd, cWb, cDen0, cDen1          = 48, 56, 64, 72, 80, 88
	cOne, cHalf, cTwo, c005, cHfac, cTiny     = 96, 104, 112, 120, 128, 136
	cTwoR, cZero, cAsin1                      = 144, 152, 160 // asin coefficients 1..8 at cAsin1 + 8·(n-1)
	cHLA                                      = 224
)

// scoreRow512 generates scoreRow512, ScoreRow with AVX-512: the 64 lanes
// in chunks of 8 float64 (a chunk whose mask byte is zero is skipped), each
// chunk the operations of kernels.PairLane in the same order (the biomarker
// only when its weight is not 0: at weight 0 it adds +0): IEEE
// multiply, add, divide and square root (no FMA), clamps as compare-and-
// blend (VMINPD/VMAXPD with the operand order that gives pairLane's NaN and
// ±0 behaviour), the angle-halving loop run while any lane still needs it,
// popcounts with VPOPCNTQ. Comparison predicates: LE_OQ 0x12, LT_OQ 0x11,
// GT_OQ 0x1e, GE_OQ 0x1d, EQ_OQ 0x00.
func scoreRow512() {
	TEXT("scoreRow512", NOSPLIT, "func(out *float32, tile *float64, dots *float32, qs *int32, minB *float32, qc *float64, mask, flags uint64, qMaxKm, minA float32) (ok, beat, nan uint64)")
	Pragma("noescape")
	Doc("scoreRow512 is ScoreRow with AVX-512 (F, DQ, VL, VPOPCNTDQ); flags: 1 UseQ, 2 the query's health, 4 a biomarker weight.")
	// Few general registers stay live (the tile, the sums and the
	// constants); the rest is read from the frame when needed, and the
	// results are accumulated in their slots.
	pT := Load(Param("tile"), GP64())
	pQ := Load(Param("qs"), GP64())
	pC := Load(Param("qc"), GP64())
	flags := addr(Param("flags"))
	c := func(off int) Mem { return Mem{Base: pC, Disp: off} }
	okAcc, beatAcc, nanAcc := addr(ReturnIndex(0)), addr(ReturnIndex(1)), addr(ReturnIndex(2))
	MOVQ(U32(0), okAcc)
	MOVQ(U32(0), beatAcc)
	MOVQ(U32(0), nanAcc)
	qmk := YMM()
	VBROADCASTSS(addr(Param("qMaxKm")), qmk)
	mina := YMM()
	VBROADCASTSS(addr(Param("minA")), mina)
	// Zeroes are copied from one register: avo's liveness would take an
	// xor-zeroing idiom per chunk for a read of an undefined register,
	// live from the entry.
	zero, onez := ZMM(), ZMM()
	VPXORQ(zero, zero, zero)
	VBROADCASTSD(c(cOne), onez)
	for ch := 0; ch < 8; ch++ {
		b8, b4 := 64*ch, 32*ch // byte offsets of the chunk in 8- and 4-byte arrays
		skip := fmt.Sprintf("srskip%d", ch)
		m := GP64()
		MOVQ(addr(Param("mask")), m)
		if ch > 0 {
			SHRQ(U8(8*ch), m)
		}
		ANDQ(U32(0xff), m)
		JZ(LabelRef(skip))
		kM := K()
		KMOVB(m.As32(), kM)

		// ha = sdp² + (qCos·cCos)·sdl², sdp = cSLat·qCLat − cCLat·qSLat, sdl alike
		sdp, t := ZMM(), ZMM()
		VMOVUPD(Mem{Base: pT, Disp: tSinHalfLat + b8}, sdp)
		VMULPD_BCST(c(cCLat), sdp, sdp)
		VMOVUPD(Mem{Base: pT, Disp: tCosHalfLat + b8}, t)
		VMULPD_BCST(c(cSLat), t, t)
		VSUBPD(t, sdp, sdp)
		sdl := ZMM()
		VMOVUPD(Mem{Base: pT, Disp: tSinHalfLon + b8}, sdl)
		VMULPD_BCST(c(cCLon), sdl, sdl)
		VMOVUPD(Mem{Base: pT, Disp: tCosHalfLon + b8}, t)
		VMULPD_BCST(c(cSLon), t, t)
		VSUBPD(t, sdl, sdl)
		ha := ZMM()
		VMULPD(sdp, sdp, ha)
		VMOVUPD(Mem{Base: pT, Disp: tCosLat + b8}, t)
		VMULPD_BCST(c(cCosLat), t, t) // cCos·qCos (commutative: = qCos·cCos)
		VMULPD(sdl, sdl, sdl)
		VMULPD(sdl, t, t)
		VADDPD(t, ha, ha)
		// near: ha ≤ min(qHav, cHav)·(1+1e-9) + 1e-300
		hm := ZMM()
		VBROADCASTSD(c(cHav), hm)
		VMINPD(Mem{Base: pT, Disp: tHavMax + b8}, hm, hm) // qHav < cHav ? qHav : cHav
		VMULPD_BCST(c(cHfac), hm, hm)
		VADDPD_BCST(c(cTiny), hm, hm)
		kP := K()
		VCMPPD(U8(0x12), hm, ha, kP) // ha LE thr
		KANDB(kM, kP, kP)
		KORTESTB(kP, kP)
		JZ(LabelRef(skip))

		// limit = float64(min(qMaxKm, cMaxKm))
		lim := ZMM()
		ly := YMM()
		VMINPS(Mem{Base: pT, Disp: tMaxKm + b4}, qmk, ly) // q < c ? q : c
		VCVTPS2PD(ly, lim)

		// DistanceFromA(ha)
		a := ha
		k0 := K()
		VCMPPD(U8(0x12), zero, a, k0) // a ≤ 0 → +0 (NaN stays)
		VMOVAPD(zero, k0, a)
		VCMPPD(U8(0x1e), onez, a, k0) // a > 1 → 1
		VMOVAPD(onez, k0, a)
		x := ZMM()
		VSQRTPD(a, x)
		kL := K()
		VCMPPD_BCST(U8(0x11), c(c005), x, kL) // x < 0.05: small
		KNOTB(kL, kL)                         // large (NaN included, as pairLane)
		scale := ZMM()
		VMOVAPD(onez, scale) // k = 1
		u := ZMM()
		KORTESTB(kL, kL)
		done := fmt.Sprintf("srasin%d", ch)
		JZ(LabelRef(done))
		// first halving: x / √(2(1 + √(1−a)))
		VSUBPD(a, onez, u)
		VSQRTPD(u, u)
		VADDPD(onez, u, u)
		VMULPD_BCST(c(cTwo), u, u)
		VSQRTPD(u, u)
		VDIVPD(u, x, u)
		VMOVAPD(u, kL, x)
		VBROADCASTSD(c(cTwo), t)
		VMOVAPD(t, kL, scale)
		loop := fmt.Sprintf("srhalf%d", ch)
		Label(loop)
		kH := K()
		VCMPPD_BCST(U8(0x1d), c(c005), x, kH) // x ≥ 0.05
		KANDB(kL, kH, kH)
		KORTESTB(kH, kH)
		JZ(LabelRef(done))
		VMULPD(x, x, u)
		VSUBPD(u, onez, u)
		VSQRTPD(u, u)
		VADDPD(onez, u, u)
		VMULPD_BCST(c(cTwo), u, u)
		VSQRTPD(u, u)
		VDIVPD(u, x, u)
		VMOVAPD(u, kH, x)
		VMULPD_BCST(c(cTwo), scale, t)
		VMOVAPD(t, kH, scale)
		JMP(LabelRef(loop))
		Label(done)
		// asinSmall(x) = x + (x·z)·p(z), z = x², p by Horner from c8
		z, p := ZMM(), ZMM()
		VMULPD(x, x, z)
		VBROADCASTSD(c(cAsin1+8*7), p)
		for n := 7; n >= 1; n-- {
			VMULPD(z, p, p)
			VADDPD_BCST(c(cAsin1+8*(n-1)), p, p)
		}
		VMULPD(z, x, t)
		VMULPD(p, t, t)
		VADDPD(t, x, t) // asin
		d := ZMM()
		VMULPD_BCST(c(cTwoR), scale, d) // 2R·k
		VMULPD(t, d, d)
		kD := K()
		VCMPPD(U8(0x12), lim, d, kD) // d LE limit
		KANDB(kD, kP, kP)
		// dealbreakers (UseQ)
		db := GP64()
		MOVQ(Mem{Base: pQ, Disp: qDealbreak}, db)
		if ch > 0 {
			SHRQ(U8(8*ch), db)
		}
		TESTQ(U32(1), flags)
		nodb := fmt.Sprintf("srnodb%d", ch)
		JZ(LabelRef(nodb))
		kDB := K()
		KMOVB(db.As32(), kDB)
		KANDNB(kP, kDB, kP) // kP &^ db
		Label(nodb)
		KORTESTB(kP, kP)
		JZ(LabelRef(skip))

		// sd = clamp(1 − d/limit, 0, 1)
		sd := ZMM()
		VDIVPD(lim, d, sd)
		VSUBPD(sd, onez, sd)
		VMAXPD_BCST(c(cZero), sd, sd) // sd > 0 ? sd : 0
		VMINPD(onez, sd, sd)          // sd < 1 ? sd : 1
		// st = clamp((1 + dot)·0.5, 0, 1)
		st := ZMM()
		pDot := Load(Param("dots"), GP64())
		VCVTPS2PD(Mem{Base: pDot, Disp: b4}, st)
		VADDPD(onez, st, st)
		VMULPD_BCST(c(cHalf), st, st)
		VMAXPD_BCST(c(cZero), st, st)
		VMINPD(onez, st, st)
		// sq (UseQ): common == 0 ? 0 : max0(√(satAB·satBA) − 1/common)
		sq := ZMM()
		VMOVAPD(zero, sq)
		TESTQ(U32(1), flags)
		noq := fmt.Sprintf("srnoq%d", ch)
		JZ(LabelRef(noq))
		sat := func(numOff, denOff int) VecVirtual {
			n, dn := ZMM(), ZMM()
			VCVTDQ2PD(Mem{Base: pQ, Disp: numOff + b4}, n)
			VCVTDQ2PD(Mem{Base: pQ, Disp: denOff + b4}, dn)
			kz := K()
			VCMPPD_BCST(U8(0x00), c(cZero), dn, kz) // den == 0
			VDIVPD(dn, n, n)
			VMOVAPD(onez, kz, n)
			return n
		}
		sab := sat(qNumAB, qDenAB)
		sba := sat(qNumBA, qDenBA)
		VMULPD(sba, sab, sab)
		VSQRTPD(sab, sab)
		cm := ZMM()
		VCVTDQ2PD(Mem{Base: pQ, Disp: qCommon + b4}, cm)
		VDIVPD(cm, onez, sba) // 1/common
		VSUBPD(sba, sab, sab)
		VMAXPD_BCST(c(cZero), sab, sab) // s > 0 ? s : 0
		kc := K()
		VCMPPD_BCST(U8(0x04), c(cZero), cm, kc) // common != 0 (NEQ_UQ)
		VMOVAPD(sab, kc, sq)
		Label(noq)
		// num = (Wt·st + Wq·sq) + Wd·sd
		num := ZMM()
		VMULPD_BCST(c(cWt), st, num)
		VMULPD_BCST(c(cWq), sq, sq)
		VADDPD(sq, num, num)
		VMULPD_BCST(c(cWd), sd, sd)
		VADDPD(sd, num, num)
		den := ZMM()
		VBROADCASTSD(c(cDen0), den)
		// biomarker lanes: the query's and the candidate's health consent
		hb := GP64()
		MOVQ(Mem{Base: pT, Disp: tHealth}, hb)
		if ch > 0 {
			SHRQ(U8(8*ch), hb)
		}
		// the query's health consent (flags bit 1): all lanes or none
		qh := GP64()
		MOVQ(flags, qh)
		SHRQ(U8(1), qh)
		ANDQ(U32(1), qh)
		NEGQ(qh)
		ANDQ(qh, hb)
		kHB := K()
		KMOVB(hb.As32(), kHB)
		KORTESTB(kHB, kHB)
		noh := fmt.Sprintf("srnoh%d", ch)
		JZ(LabelRef(noh))
		sh := ZMM()
		VMOVAPD(zero, sh)
		TESTQ(U32(4), flags)
		now := fmt.Sprintf("srnow%d", ch)
		JZ(LabelRef(now))
		xs, ors := ZMM(), ZMM()
		VMOVAPD(zero, xs)
		VMOVAPD(zero, ors)
		for w := 0; w < 4; w++ {
			cw, v := ZMM(), ZMM()
			VMOVDQU64(Mem{Base: pT, Disp: tHLA + 512*w + b8}, cw)
			VPXORQ_BCST(c(cHLA+8*w), cw, v)
			VPOPCNTQ(v, v)
			VPADDQ(v, xs, xs)
			VPORQ_BCST(c(cHLA+8*w), cw, v)
			VPOPCNTQ(v, v)
			VPADDQ(v, ors, ors)
		}
		VCVTQQ2PD(xs, xs)
		VCVTQQ2PD(ors, ors)
		ko := K()
		VCMPPD_BCST(U8(0x00), c(cZero), ors, ko) // o == 0
		VDIVPD(ors, xs, sh)
		VBROADCASTSD(c(cHalf), t)
		VMOVAPD(t, ko, sh)
		Label(now)
		VMULPD_BCST(c(cWb), sh, sh)
		VADDPD(sh, num, sh)
		VMOVAPD(sh, kHB, num)
		VBROADCASTSD(c(cDen1), t)
		VMOVAPD(t, kHB, den)
		Label(noh)
		// S = float32(num / den)
		VDIVPD(den, num, num)
		sy := YMM()
		VCVTPD2PS(num, sy)
		pOut := Load(Param("out"), GP64())
		VMOVUPS(sy, Mem{Base: pOut, Disp: b4})
		// beat: S ≥ minA or S ≥ minB[j], among the ok lanes
		kA, kB := K(), K()
		VCMPPS(U8(0x1d), mina, sy, kA)
		pMinB := Load(Param("minB"), GP64())
		VCMPPS(U8(0x1d), Mem{Base: pMinB, Disp: b4}, sy, kB)
		KORB(kA, kB, kA)
		KANDB(kP, kA, kA)
		r := GP64()
		KMOVB(kP, r.As32())
		if ch > 0 {
			SHLQ(U8(8*ch), r)
		}
		ORQ(r, okAcc)
		KMOVB(kA, r.As32())
		if ch > 0 {
			SHLQ(U8(8*ch), r)
		}
		ORQ(r, beatAcc)
		kN := K()
		VCMPPS(U8(0x03), sy, sy, kN) // UNORD_Q: a NaN score
		KANDB(kP, kN, kN)
		KMOVB(kN, r.As32())
		if ch > 0 {
			SHLQ(U8(8*ch), r)
		}
		ORQ(r, nanAcc)
		Label(skip)
	}
	VZEROUPPER()
	RET()
}

// questionsTile512 generates questionsTile512, QuestionsTile with AVX-512:
// eight candidates' masks per ZMM (QTile is word-major), the query's words
// broadcast, the popcounts with VPOPCNTQ, the weighted sums in int64 lanes
// stored as int32; the same operations as questionsBits1, lane by lane.
func questionsTile512() {
	TEXT("questionsTile512", NOSPLIT, "func(out *int32, a *uint64, t *uint64, mask uint64)")
	Pragma("noescape")
	Doc("questionsTile512 is QuestionsTile with AVX-512 (F, DQ, VPOPCNTDQ).")
	po := Load(Param("out"), GP64())
	pa := Load(Param("a"), GP64())
	pt := Load(Param("t"), GP64())
	MOVQ(U32(0), Mem{Base: po, Disp: qDealbreak})
	aw := func(i int) Mem { return Mem{Base: pa, Disp: 8 * i} }
	weights := []int{1, 10, 50, 250}
	for ch := 0; ch < 8; ch++ {
		b8, b4 := 64*ch, 32*ch
		tw := func(i int) Mem { return Mem{Base: pt, Disp: 512*i + b8} }
		skip := fmt.Sprintf("qtskip%d", ch)
		m := GP64()
		MOVQ(addr(Param("mask")), m)
		if ch > 0 {
			SHRQ(U8(8*ch), m)
		}
		ANDQ(U32(0xff), m)
		JZ(LabelRef(skip))
		// okAB: the candidate's answer acceptable to the query; okBA the reverse
		okAB, okBA, x := ZMM(), ZMM(), ZMM()
		VMOVDQU64(tw(1), okAB)
		VPANDQ_BCST(aw(9), okAB, okAB)
		VPBROADCASTQ(aw(1), okBA)
		VPANDQ(tw(9), okBA, okBA)
		for o := 1; o < 8; o++ {
			VMOVDQU64(tw(1+o), x)
			VPANDQ_BCST(aw(9+o), x, x)
			VPORQ(x, okAB, okAB)
			VPBROADCASTQ(aw(1+o), x)
			VPANDQ(tw(9+o), x, x)
			VPORQ(x, okBA, okBA)
		}
		ansA, ansB := ZMM(), ZMM()
		VPBROADCASTQ(aw(0), ansA)
		VMOVDQU64(tw(0), ansB)
		// dealbreak: a[imp 4] & ansB &^ okAB | b[imp 4] & ansA &^ okBA
		d1, d2 := ZMM(), ZMM()
		VPANDQ_BCST(aw(21), ansB, d1)
		VPANDNQ(d1, okAB, d1) // ^okAB & d1
		VPANDQ(tw(21), ansA, d2)
		VPANDNQ(d2, okBA, d2)
		VPORQ(d2, d1, d1)
		kd := K()
		VPTESTMQ(d1, d1, kd)
		r := GP64()
		KMOVB(kd, r.As32())
		ANDQ(m, r) // lanes outside the mask: no dealbreak bit
		if ch > 0 {
			SHLQ(U8(8*ch), r)
		}
		ORQ(r, Mem{Base: po, Disp: qDealbreak})
		c := ansA
		VPANDQ(ansB, c, c)
		cnt := ZMM()
		VPOPCNTQ(c, cnt)
		cy := YMM()
		VPMOVQD(cnt, cy)
		VMOVDQU32(cy, Mem{Base: po, Disp: qCommon + b4})
		side := func(imp func(l int) (VecVirtual, bool), okm VecVirtual, numOff, denOff int) {
			num, den := ZMM(), ZMM()
			for li, wt := range weights {
				mk, _ := imp(li + 1)
				VPANDQ(c, mk, mk)
				p := ZMM()
				VPOPCNTQ(mk, p)
				if wt != 1 {
					VPMULLQ_BCST(wconst(wt), p, p)
				}
				if li == 0 {
					VMOVDQA64(p, den)
				} else {
					VPADDQ(p, den, den)
				}
				VPANDQ(okm, mk, mk)
				VPOPCNTQ(mk, p)
				if wt != 1 {
					VPMULLQ_BCST(wconst(wt), p, p)
				}
				if li == 0 {
					VMOVDQA64(p, num)
				} else {
					VPADDQ(p, num, num)
				}
			}
			y := YMM()
			VPMOVQD(num, y)
			VMOVDQU32(y, Mem{Base: po, Disp: numOff + b4})
			VPMOVQD(den, y)
			VMOVDQU32(y, Mem{Base: po, Disp: denOff + b4})
		}
		side(func(l int) (VecVirtual, bool) { v := ZMM(); VPBROADCASTQ(aw(17+l), v); return v, true }, okAB, qNumAB, qDenAB)
		side(func(l int) (VecVirtual, bool) { v := ZMM(); VMOVDQU64(tw(17+l), v); return v, true }, okBA, qNumBA, qDenBA)
		Label(skip)
	}
	VZEROUPPER()
	RET()
}

// wconst is a read-only 8-byte constant holding the importance weight w.
func wconst(w int) Mem {
	name := fmt.Sprintf("qweight%d", w)
	if m, ok := wconsts[name]; ok {
		return m
	}
	m := GLOBL(name, RODATA|NOPTR)
	DATA(0, U64(uint64(w)))
	wconsts[name] = m
	return m
}

var wconsts = map[string]Mem{}
