package kernels

import (
	"math"
	"math/bits"
	"math/rand/v2"
	"testing"
)

// TestDistanceFromAAccuracy: the lane-friendly asin (Taylor below 0.05,
// angle halving above) against atan2 over the whole range, densest near
// the ends (antipodes: a near 1).
func TestDistanceFromAAccuracy(t *testing.T) {
	r := rand.New(rand.NewPCG(51, 52))
	var as []float64
	for i := 0; i <= 20000; i++ {
		as = append(as, float64(i)/20000)
	}
	for range 20000 {
		as = append(as, r.Float64(), 1-math.Pow(10, -16*r.Float64()), math.Pow(10, -20*r.Float64()))
	}
	worst, worstA := 0.0, 0.0
	for _, a := range as {
		got := DistanceFromA(a)
		// asin(√a) = atan2(√a, √(1−a)): well conditioned near a = 1,
		// where asin of a rounded √a is not
		want := 2 * EarthRadiusKm * math.Atan2(math.Sqrt(a), math.Sqrt(1-a))
		if e := math.Abs(got-want) / max(want, 1e-300); e > worst {
			worst, worstA = e, a
		}
	}
	t.Logf("max relative error against 2R·asin(√a): %.2e (a = %v)", worst, worstA)
	if worst > 1e-14 {
		t.Fatalf("relative error %.3g at a = %v, want ≤ 1e-14", worst, worstA)
	}
}

// refPairScore is the spec's pair score (§2 distance filter, §3 score) in
// plain float64 for a test: math.Asin, no clamps beyond the spec's.
func refPairScore(w Weights, q *PairQuery, t *PairTile, j int, dot float32, qs *QLanes, useQ bool) (float64, bool) {
	g := GeoPoint{t.SinHalfLat[j], t.CosHalfLat[j], t.SinHalfLon[j], t.CosHalfLon[j], t.CosLat[j]}
	a := HaversineA(&q.Geo, &g)
	d := 2 * EarthRadiusKm * math.Asin(math.Sqrt(math.Min(1, math.Max(0, a))))
	limit := math.Min(float64(q.MaxKm), float64(t.MaxKm[j]))
	if d > limit*(1+1e-12) {
		return 0, false
	}
	if useQ && qs.Dealbreak&(1<<j) != 0 {
		return 0, false
	}
	st := (1 + float64(dot)) / 2
	sd := 1 - d/limit
	sq := 0.0
	if useQ && qs.Common[j] > 0 {
		sab, sba := 1.0, 1.0
		if qs.DenAB[j] > 0 {
			sab = float64(qs.NumAB[j]) / float64(qs.DenAB[j])
		}
		if qs.DenBA[j] > 0 {
			sba = float64(qs.NumBA[j]) / float64(qs.DenBA[j])
		}
		sq = math.Max(0, math.Sqrt(sab*sba)-1/float64(qs.Common[j]))
	}
	num := w.Trait*st + w.Questions*sq + w.Proximity*math.Max(0, sd)
	den := w.Trait + w.Questions + w.Proximity
	if q.Health && t.Health&(1<<j) != 0 {
		x, o := 0, 0
		for k := range HLAWords {
			x += bits.OnesCount64(q.HLA[k] ^ t.HLA[k][j])
			o += bits.OnesCount64(q.HLA[k] | t.HLA[k][j])
		}
		sh := 0.5
		if o > 0 {
			sh = float64(x) / float64(o)
		}
		num += w.Biomarker * sh
		den += w.Biomarker
	}
	return num / den, true
}

// randomRow draws a query and a tile around a city with max_km from 1 to
// 20 000 km (every distance regime: Taylor, halving, antipodes), random
// questionnaire sums and HLA sets.
func randomRow(r *rand.Rand) (*PairQuery, *PairTile, *[TileWidth]float32, *QLanes) {
	q, t := &PairQuery{}, &PairTile{}
	var dots [TileWidth]float32
	qs := &QLanes{}
	point := func() GeoPoint {
		switch r.IntN(4) {
		case 0: // anywhere
			return NewGeoPoint(r.Float64()*180-90, r.Float64()*360-180)
		case 1: // antipodes of the query's city
			return NewGeoPoint(-48.85+r.NormFloat64()*0.01, 2.35-180+r.NormFloat64()*0.01)
		}
		return NewGeoPoint(48.85+r.NormFloat64()*0.5, 2.35+r.NormFloat64()*0.5)
	}
	maxKm := func() float32 { return float32(math.Pow(10, r.Float64()*4.3)) }
	hav := func(km float32) float64 {
		h := math.Min(float64(km)/(2*EarthRadiusKm), math.Pi/2)
		return math.Sin(h) * math.Sin(h)
	}
	q.Geo, q.MaxKm, q.Health = NewGeoPoint(48.85, 2.35), maxKm(), r.IntN(5) > 0
	q.HavMax = hav(q.MaxKm)
	for k := range HLAWords {
		q.HLA[k] = r.Uint64() & r.Uint64() & r.Uint64()
	}
	for j := range TileWidth {
		g := point()
		var h [HLAWords]uint64
		if r.IntN(10) > 0 {
			for k := range h {
				h[k] = r.Uint64() & r.Uint64() & r.Uint64()
			}
		}
		mk := maxKm()
		t.Set(j, &g, hav(mk), mk, h[:], r.IntN(5) > 0)
		dots[j] = float32(r.Float64()*2 - 1)
		qs.Common[j] = int32(r.IntN(12))
		qs.DenAB[j], qs.DenBA[j] = int32(r.IntN(300))*int32(min(qs.Common[j], 1)), int32(r.IntN(300))*int32(min(qs.Common[j], 1))
		qs.NumAB[j], qs.NumBA[j] = int32(r.IntN(int(qs.DenAB[j])+1)), int32(r.IntN(int(qs.DenBA[j])+1))
		if r.IntN(20) == 0 {
			qs.Dealbreak |= 1 << j
		}
	}
	return q, t, &dots, qs
}

// TestPairLaneMatchesSpec: the lane algorithm against the spec's formula in
// plain float64: the same pairs pass (away from the distance limit, where
// the two may round differently) and the scores agree within 1e-6.
func TestPairLaneMatchesSpec(t *testing.T) {
	r := rand.New(rand.NewPCG(53, 54))
	weights := []Weights{{0.4, 0.35, 0.15, 0.1}, {1, 0, 0, 0}, {0, 1, 0, 0}, {0.2, 0.3, 0, 0.5}, {0, 0, 1, 1}}
	checked := 0
	for range 200 {
		q, tile, dots, qs := randomRow(r)
		for _, w := range weights {
			for _, useQ := range []bool{false, true} {
				p := &ScoreRowParams{W: w, UseQ: useQ}
				for j := range TileWidth {
					got, ok := PairLane(p, q, tile, j, dots[j], qs)
					want, wok := refPairScore(w, q, tile, j, dots[j], qs, useQ)
					if ok != wok {
						g := GeoPoint{tile.SinHalfLat[j], tile.CosHalfLat[j], tile.SinHalfLon[j], tile.CosHalfLon[j], tile.CosLat[j]}
						d := DistanceFromA(HaversineA(&q.Geo, &g))
						lim := math.Min(float64(q.MaxKm), float64(tile.MaxKm[j]))
						if math.Abs(d-lim) < 1e-9*lim+1e-9 {
							continue // on the limit: the two formulas may round apart
						}
						t.Fatalf("lane %d (w %v, useQ %v): compatible %v, spec says %v (d %v, limit %v)", j, w, useQ, ok, wok, d, lim)
					}
					if ok {
						checked++
						if math.Abs(float64(got)-want) > 1e-6 {
							t.Fatalf("lane %d (w %v): score %v, spec %v", j, w, got, want)
						}
					}
				}
			}
		}
	}
	if checked < 10000 {
		t.Fatalf("only %d compatible lanes checked", checked)
	}
}
