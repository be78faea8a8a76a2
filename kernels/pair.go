package kernels

import (
	"math"
	"math/bits"
)

// The whole pair score across a row of candidates. The scalar functions
// below are each one lane of the vector algorithm (ScoreRow): the same
// IEEE operations in the same order, no fused multiply-add, clamps written
// as the comparisons the vector code makes, so the row and the pair give
// the same bits on every CPU.

// PairTile holds, structure-of-arrays, what scoring needs of a tile of
// TileWidth candidates beyond the trait dot products and the questionnaire
// sums: the half-angle terms of their locations (GeoPoint), the haversine
// term of their max_km, max_km itself, HLA bitsets word by word, and which
// of them gave health consent.
type PairTile struct {
	SinHalfLat, CosHalfLat, SinHalfLon, CosHalfLon, CosLat [TileWidth]float64
	HavMax                                                 [TileWidth]float64
	MaxKm                                                  [TileWidth]float32
	HLA                                                    [HLAWords][TileWidth]uint64
	Health                                                 uint64 // bit j: candidate j may have a biomarker score
}

// Set fills slot j from one member's columns.
func (t *PairTile) Set(j int, g *GeoPoint, havMax float64, maxKm float32, hla []uint64, health bool) {
	t.SinHalfLat[j], t.CosHalfLat[j], t.SinHalfLon[j], t.CosHalfLon[j], t.CosLat[j] = g.SinHalfLat, g.CosHalfLat, g.SinHalfLon, g.CosHalfLon, g.CosLat
	t.HavMax[j], t.MaxKm[j] = havMax, maxKm
	for w := range HLAWords {
		t.HLA[w][j] = hla[w]
	}
	if health {
		t.Health |= 1 << j
	} else {
		t.Health &^= 1 << j
	}
}

// PairQuery is the query's side of a row: the same columns for one member.
type PairQuery struct {
	Geo    GeoPoint
	HavMax float64
	MaxKm  float32
	HLA    [HLAWords]uint64
	Health bool
}

// QLanes are the questionnaire sums of a query against a tile's candidates,
// lane by lane (QStats, structure-of-arrays).
type QLanes struct {
	NumAB, DenAB, NumBA, DenBA, Common [TileWidth]int32
	Dealbreak                          uint64 // bit j: a dealbreaker fails with candidate j
}

// Weights are the four component weights of the total score (spec §3),
// and whether each component is computed at all: a component whose weight
// is zero adds +0 to the weighted sum, so it is skipped.
type Weights struct {
	Trait, Questions, Biomarker, Proximity float64
}

// ScoreRowParams are the row-invariant inputs of ScoreRow.
type ScoreRowParams struct {
	W Weights
	// UseQ: the questions component (and its dealbreakers) is computed
	// from the QLanes; otherwise it is 0 and no dealbreaker fails.
	UseQ bool
}

// DistanceFromA converts a haversine term to a great-circle distance in km,
// 2R·asin(√a) with a clamped to [0, 1], as one lane of the vector
// algorithm. Below √a = 0.05 (about 640 km), where nearly every scored pair
// lies, asin is its Taylor series to x¹⁷ (asinSmall). Above, the angle is
// halved until it is that small, asin(x) = 2·asin(x / √(2(1 + √(1 − x²)))),
// at most five times (x = 1 takes five), the first time with 1 − x² = 1 − a,
// exact where it matters (a near 1, antipodes). Every operation is an IEEE
// square root, division, multiplication or addition, so a SIMD lane gives
// the same bits.
//
//	a = clamp(a, 0, 1) (NaN stays NaN); x := √a
//	if x < 0.05 { return 2R·asinSmall(x) }
//	x, k = x / √(2(1 + √(1−a))), 2
//	for x ≥ 0.05 { x, k = x / √(2(1 + √(1 − x·x))), 2k }
//	return 2R·k·asinSmall(x)
func DistanceFromA(a float64) float64 {
	// the clamp as the vector code does it: NaN stays NaN, ±0 becomes +0
	if a <= 0 {
		a = 0
	}
	if a > 1 {
		a = 1
	}
	x := math.Sqrt(a)
	if x < 0.05 {
		return 2 * EarthRadiusKm * asinSmall(x)
	}
	x = x / math.Sqrt(2*(1+math.Sqrt(1-a)))
	k := 2.0
	for x >= 0.05 {
		x = x / math.Sqrt(2*(1+math.Sqrt(1-float64(x*x))))
		k *= 2
	}
	return float64(2*EarthRadiusKm*k) * asinSmall(x)
}

// PairLane computes one lane of ScoreRow: candidate j of t against q, with
// the trait dot product dot and the questionnaire sums of lane j of qs. It
// returns the total score and false when the pair fails the distance or a
// dealbreaker (the other hard filters are the caller's: FilterTile).
//
//	ha := HaversineA(q, c_j)
//	if !(ha ≤ min(q.HavMax, c.HavMax[j])·(1+1e-9) + 1e-300) { return far }   // sin² is monotone
//	limit := float64(min(q.MaxKm, c.MaxKm[j])); d := DistanceFromA(ha)
//	if !(d ≤ limit) { return far }
//	if UseQ && dealbreak[j] { return incompatible }
//	sd := clamp(1 − d/limit, 0, 1); st := clamp((1 + dot)/2, 0, 1)
//	sq := UseQ ? QuestionScore(lane j) : 0
//	hasH := q.Health && health[j]; sh := hasH && W.Biomarker ≠ 0 ? HLAScore(popcounts) : 0
//	num := W.t·st + W.q·sq + W.d·sd (+ W.b·sh);  den := W.t + W.q + W.d (+ W.b)
//	return float32(num / den)
func PairLane(p *ScoreRowParams, q *PairQuery, t *PairTile, j int, dot float32, qs *QLanes) (float32, bool) {
	s, _, ok := pairLane(p, q, t, j, dot, qs)
	return s, ok
}

// pairLane is PairLane also returning the distance in km.
func pairLane(p *ScoreRowParams, q *PairQuery, t *PairTile, j int, dot float32, qs *QLanes) (float32, float64, bool) {
	g := GeoPoint{t.SinHalfLat[j], t.CosHalfLat[j], t.SinHalfLon[j], t.CosHalfLon[j], t.CosLat[j]}
	ha := HaversineA(&q.Geo, &g)
	hm := t.HavMax[j]
	if q.HavMax < hm {
		hm = q.HavMax
	}
	if !(ha <= float64(hm*(1+1e-9))+1e-300) {
		return 0, 0, false
	}
	mk := t.MaxKm[j]
	if q.MaxKm < mk {
		mk = q.MaxKm
	}
	limit := float64(mk)
	d := DistanceFromA(ha)
	if !(d <= limit) {
		return 0, d, false
	}
	if p.UseQ && qs.Dealbreak&(1<<j) != 0 {
		return 0, d, false
	}
	sd := 1 - d/limit
	if !(sd > 0) {
		sd = 0
	}
	if !(sd < 1) {
		sd = 1
	}
	st := float64(1+float64(dot)) * 0.5
	if !(st > 0) {
		st = 0
	}
	if !(st < 1) {
		st = 1
	}
	var sq float64
	if p.UseQ {
		sq = questionLane(qs.NumAB[j], qs.DenAB[j], qs.NumBA[j], qs.DenBA[j], qs.Common[j])
	}
	w := &p.W
	num := float64(float64(float64(w.Trait*st)+float64(w.Questions*sq)) + float64(w.Proximity*sd))
	den := float64(w.Trait+w.Questions) + w.Proximity
	if q.Health && t.Health&(1<<j) != 0 {
		var sh float64
		if w.Biomarker != 0 {
			var x, o int
			for k := range HLAWords {
				x += bits.OnesCount64(q.HLA[k] ^ t.HLA[k][j])
				o += bits.OnesCount64(q.HLA[k] | t.HLA[k][j])
			}
			sh = HLAScore(x, o)
		}
		num += float64(w.Biomarker * sh)
		den += w.Biomarker
	}
	return float32(num / den), d, true
}

// questionLane is QuestionScore on one lane's sums, written as the vector
// code computes it.
func questionLane(numAB, denAB, numBA, denBA, common int32) float64 {
	if common == 0 {
		return 0
	}
	satAB, satBA := 1.0, 1.0
	if denAB != 0 {
		satAB = float64(numAB) / float64(denAB)
	}
	if denBA != 0 {
		satBA = float64(numBA) / float64(denBA)
	}
	s := math.Sqrt(float64(satAB*satBA)) - 1/float64(common)
	if !(s > 0) {
		s = 0
	}
	return s
}

var scoreRowImpl = scoreRowGeneric

// ScoreRow scores query q against the candidates of tile t in mask, with
// the trait dot products dots and (p.UseQ) the questionnaire sums qs: out[j]
// gets PairLane's score for every lane it returns true for, which ScoreRow
// returns as a mask; other lanes of out are unspecified. It also returns
// the lanes whose score reaches minA or minB[j] (beat ⊆ ok): the pairs that
// may enter the query's or the candidate's top-K heap.
//
//	for j in mask {
//		if s, ok := PairLane(p, q, t, j, dots[j], qs); ok {
//			out[j] = s; okMask |= 1 << j
//			if s >= minA || s >= minB[j] { beat |= 1 << j }
//		}
//	}
func ScoreRow(out *[TileWidth]float32, p *ScoreRowParams, q *PairQuery, t *PairTile, dots *[TileWidth]float32, qs *QLanes, mask uint64, minA float32, minB *[TileWidth]float32) (ok, beat uint64) {
	return scoreRowImpl(out, p, q, t, dots, qs, mask, minA, minB)
}

func scoreRowGeneric(out *[TileWidth]float32, p *ScoreRowParams, q *PairQuery, t *PairTile, dots *[TileWidth]float32, qs *QLanes, mask uint64, minA float32, minB *[TileWidth]float32) (ok, beat uint64) {
	for m := mask; m != 0; m &= m - 1 {
		j := bits.TrailingZeros64(m)
		s, _, pass := pairLane(p, q, t, j, dots[j], qs)
		if !pass {
			continue
		}
		out[j] = s
		ok |= 1 << j
		if s >= minA || s >= minB[j] {
			beat |= 1 << j
		}
	}
	return ok, beat
}

// QTile holds the bit-sliced questionnaires of a tile of TileWidth
// candidates word by word (mask i of candidate j at [i][j]), for Q ≤ 64
// (one word per mask): the layout QuestionsTile reads eight lanes of at
// once.
type QTile [QMaskWords][TileWidth]uint64

// Set copies one member's masks (PackQuestions, QWords(q) = 1) into slot j.
func (t *QTile) Set(j int, masks []uint64) {
	for i := range QMaskWords {
		t[i][j] = masks[i]
	}
}

var questionsTileImpl = questionsTileGeneric

// QuestionsTile compares query a (one word per mask) with the candidates
// of t in mask and writes each lane's sums to out (QLanes; the dealbreak
// bits of lanes outside mask are cleared, their sums unspecified): lane j
// gets exactly QuestionsBits(a, candidate j) (questionsBits1).
//
//	out.Dealbreak = 0
//	for j in mask {
//		s := questionsBits1(a, t[·][j])
//		out.NumAB[j], out.DenAB[j], out.NumBA[j], out.DenBA[j], out.Common[j] = s.NumAB, …
//		if s.Dealbreak { out.Dealbreak |= 1 << j }
//	}
func QuestionsTile(out *QLanes, a *[QMaskWords]uint64, t *QTile, mask uint64) {
	questionsTileImpl(out, a, t, mask)
}

func questionsTileGeneric(out *QLanes, a *[QMaskWords]uint64, t *QTile, mask uint64) {
	out.Dealbreak = 0
	var b [QMaskWords]uint64
	for m := mask; m != 0; m &= m - 1 {
		j := bits.TrailingZeros64(m)
		for i := range QMaskWords {
			b[i] = t[i][j]
		}
		s := questionsBits1(a, &b)
		out.NumAB[j], out.DenAB[j], out.NumBA[j], out.DenBA[j], out.Common[j] = s.NumAB, s.DenAB, s.NumBA, s.DenBA, s.Common
		if s.Dealbreak {
			out.Dealbreak |= 1 << j
		}
	}
}
