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

// Set fills slot j with one member.
func (t *PairTile) Set(j int, m *PairMember) {
	g := &m.Geo
	t.SinHalfLat[j], t.CosHalfLat[j], t.SinHalfLon[j], t.CosHalfLon[j], t.CosLat[j] = g.SinHalfLat, g.CosHalfLat, g.SinHalfLon, g.CosHalfLon, g.CosLat
	t.HavMax[j], t.MaxKm[j] = m.HavMax, m.MaxKm
	for w := range HLAWords {
		t.HLA[w][j] = m.HLA[w]
	}
	if m.Health {
		t.Health |= 1 << j
	} else {
		t.Health &^= 1 << j
	}
}

// PairMember is what the pair score needs of one member beside the trait
// dot product and the questionnaire sums: location terms, the haversine
// term of max_km, max_km, HLA bitset and whether the biomarker may be used.
// A row's query is one; a tile holds 64 of them structure-of-arrays.
type PairMember struct {
	Geo    GeoPoint
	HavMax float64
	MaxKm  float32
	HLA    [HLAWords]uint64
	Health bool
}

// Member gathers slot j of the tile.
func (t *PairTile) Member(j int) PairMember {
	m := PairMember{
		Geo:    GeoPoint{t.SinHalfLat[j], t.CosHalfLat[j], t.SinHalfLon[j], t.CosHalfLon[j], t.CosLat[j]},
		HavMax: t.HavMax[j], MaxKm: t.MaxKm[j], Health: t.Health&(1<<j) != 0,
	}
	for k := range HLAWords {
		m.HLA[k] = t.HLA[k][j]
	}
	return m
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

// PairParts are a compatible pair's score and its components as PairLane
// computes them (the total from exactly these components).
type PairParts struct {
	S                                      float32
	DistanceKm                             float64
	Trait, Questions, Biomarker, Proximity float64
	HasBiomarker                           bool
}

// PairDistance is the distance filter of the pair score: the great-circle
// distance of q and c, the pair's limit (the smaller max_km) and whether
// the distance is within it. The haversine term is compared with the
// smaller precomputed term first (sin² is monotone on [0, π/2]; the margin
// leaves every borderline pair to the exact test), so a far pair costs no
// square root.
//
//	ha := HaversineA(q, c)
//	if !(ha ≤ min(q.HavMax, c.HavMax)·(1+1e-9) + 1e-300) { return far }
//	limit := float64(min(q.MaxKm, c.MaxKm)); d := DistanceFromA(ha)
//	return d, limit, d ≤ limit
func PairDistance(q, c *PairMember) (d, limit float64, ok bool) {
	ha := HaversineA(&q.Geo, &c.Geo)
	hm := c.HavMax
	if q.HavMax < hm {
		hm = q.HavMax
	}
	if !(ha <= float64(hm*(1+1e-9))+1e-300) {
		return 0, 0, false
	}
	mk := c.MaxKm
	if q.MaxKm < mk {
		mk = q.MaxKm
	}
	limit = float64(mk)
	d = DistanceFromA(ha)
	return d, limit, d <= limit
}

// PairLane is one lane of ScoreRow, and the scalar pair score of the
// pipeline: query q against candidate c with their trait dot product and,
// when p.UseQ, their questionnaire sums. It returns the total score with
// its components, and false when the pair fails the distance or a
// dealbreaker (the other hard filters are the caller's: FilterTile and
// blocked pairs). The biomarker component is computed whenever both may
// use it, also at weight 0 (it adds W.Biomarker·sh = +0 then).
//
//	d, limit, ok := PairDistance(q, c); if !ok { return far }
//	if UseQ && qs.Dealbreak { return incompatible }
//	sd := clamp(1 − d/limit, 0, 1); st := clamp((1 + dot)/2, 0, 1)
//	sq := UseQ ? QuestionScore(qs) : 0
//	hasH := q.Health && c.Health; sh := hasH ? HLAScore(popcounts) : 0
//	num := (W.t·st + W.q·sq) + W.d·sd (+ W.b·sh);  den := (W.t + W.q) + W.d (+ W.b)
//	S := float32(num / den)
func PairLane(p *ScoreRowParams, q, c *PairMember, dot float32, qs *QStats) (PairParts, bool) {
	d, limit, ok := PairDistance(q, c)
	if !ok {
		return PairParts{DistanceKm: d}, false
	}
	if p.UseQ && qs.Dealbreak {
		return PairParts{DistanceKm: d}, false
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
		sq = questionLane(qs.NumAB, qs.DenAB, qs.NumBA, qs.DenBA, qs.Common)
	}
	w := &p.W
	num := float64(float64(float64(w.Trait*st)+float64(w.Questions*sq)) + float64(w.Proximity*sd))
	den := float64(w.Trait+w.Questions) + w.Proximity
	parts := PairParts{DistanceKm: d, Trait: st, Questions: sq, Proximity: sd}
	if q.Health && c.Health {
		var x, o int
		for k := range HLAWords {
			x += bits.OnesCount64(q.HLA[k] ^ c.HLA[k])
			o += bits.OnesCount64(q.HLA[k] | c.HLA[k])
		}
		sh := HLAScore(x, o)
		num += float64(w.Biomarker * sh)
		den += w.Biomarker
		parts.Biomarker, parts.HasBiomarker = sh, true
	}
	parts.S = float32(num / den)
	return parts, true
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
// gets PairLane's score for every lane it finds compatible, which ScoreRow
// returns as ok; other lanes of out are unspecified. beat ⊆ ok are the lanes
// whose score reaches minA or minB[j] (the pairs that may enter the
// query's or the candidate's top-K heap); nan ⊆ ok those whose score is NaN
// (none, for validated members: the caller fails on any).
//
//	for j in mask {
//		if s, ok := PairLane(p, q, t.Member(j), dots[j], lane j of qs); ok {
//			out[j] = s.S; okMask |= 1 << j
//			if s.S >= minA || s.S >= minB[j] { beat |= 1 << j }
//			if s.S != s.S { nan |= 1 << j }
//		}
//	}
func ScoreRow(out *[TileWidth]float32, p *ScoreRowParams, q *PairMember, t *PairTile, dots *[TileWidth]float32, qs *QLanes, mask uint64, minA float32, minB *[TileWidth]float32) (ok, beat, nan uint64) {
	return scoreRowImpl(out, p, q, t, dots, qs, mask, minA, minB)
}

func scoreRowGeneric(out *[TileWidth]float32, p *ScoreRowParams, q *PairMember, t *PairTile, dots *[TileWidth]float32, qs *QLanes, mask uint64, minA float32, minB *[TileWidth]float32) (ok, beat, nan uint64) {
	for m := mask; m != 0; m &= m - 1 {
		j := bits.TrailingZeros64(m)
		c := t.Member(j)
		ls := QStats{qs.NumAB[j], qs.DenAB[j], qs.NumBA[j], qs.DenBA[j], qs.Common[j], qs.Dealbreak&(1<<j) != 0}
		parts, pass := PairLane(p, q, &c, dots[j], &ls)
		if !pass {
			continue
		}
		s := parts.S
		out[j] = s
		ok |= 1 << j
		if s >= minA || s >= minB[j] {
			beat |= 1 << j
		}
		if s != s {
			nan |= 1 << j
		}
	}
	return ok, beat, nan
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
