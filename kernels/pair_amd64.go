//go:build !purego

package kernels

import (
	"unsafe"

	"golang.org/x/sys/cpu"
)

// hasScoreRow512: the AVX-512 ScoreRow needs DQ (KMOVB, VCVTQQ2PD), VL
// (the float32 lanes on YMM) and VPOPCNTDQ (the HLA popcounts) beside F.
var hasScoreRow512 = hasAVX512 && cpu.X86.HasAVX512DQ && cpu.X86.HasAVX512VL && cpu.X86.HasAVX512VPOPCNTDQ

func init() {
	if hasScoreRow512 {
		scoreRowImpl = scoreRowAVX512
		questionsTileImpl = questionsTileAVX512
	}
}

// scoreRowConsts is what scoreRow512 reads beside the tile: the query's
// columns, the weights and the constants of PairLane, at the offsets the
// generator uses (TestPairLayout).
type scoreRowConsts struct {
	f   [28]float64
	hla [HLAWords]uint64
}

// scoreRowAVX512 fills the constants and runs the assembly row.
func scoreRowAVX512(out *[TileWidth]float32, p *ScoreRowParams, q *PairMember, t *PairTile, dots *[TileWidth]float32, qs *QLanes, mask uint64, minA float32, minB *[TileWidth]float32) (ok, beat, nan uint64) {
	if mask == 0 {
		return 0, 0, 0
	}
	var c scoreRowConsts
	w := &p.W
	den0 := float64(w.Trait+w.Questions) + w.Proximity
	c.f = [28]float64{
		q.Geo.SinHalfLat, q.Geo.CosHalfLat, q.Geo.SinHalfLon, q.Geo.CosHalfLon, q.Geo.CosLat, q.HavMax,
		w.Trait, w.Questions, w.Proximity, w.Biomarker, den0, den0 + w.Biomarker,
		1, 0.5, 2, 0.05, 1 + 1e-9, 1e-300, 2 * EarthRadiusKm, 0,
		asinCoef[1], asinCoef[2], asinCoef[3], asinCoef[4], asinCoef[5], asinCoef[6], asinCoef[7], asinCoef[8],
	}
	c.hla = q.HLA
	var flags uint64
	if p.UseQ {
		flags |= 1
	}
	if q.Health {
		flags |= 2
	}
	if w.Biomarker != 0 {
		flags |= 4
	}
	return scoreRow512(&out[0], (*float64)(unsafe.Pointer(t)), &dots[0], (*int32)(unsafe.Pointer(qs)), &minB[0], &c.f[0], mask, flags, q.MaxKm, minA)
}

// questionsTileAVX512 runs the assembly on QLanes and QTile as flat arrays
// (offsets pinned by TestPairLayout).
func questionsTileAVX512(out *QLanes, a *[QMaskWords]uint64, t *QTile, mask uint64) {
	questionsTile512((*int32)(unsafe.Pointer(out)), &a[0], &t[0][0], mask)
}
