package kernels

import (
	"math"
	"math/bits"
	"math/rand/v2"
	"testing"
	"unsafe"
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
func refPairScore(w Weights, q *PairMember, t *PairTile, j int, dot float32, qs *QLanes, useQ bool) (float64, bool) {
	g := t.Member(j).Geo
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
func randomRow(r *rand.Rand) (*PairMember, *PairTile, *[TileWidth]float32, *QLanes) {
	q, t := &PairMember{}, &PairTile{}
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
		t.Set(j, &PairMember{Geo: g, HavMax: hav(mk), MaxKm: mk, HLA: h, Health: r.IntN(5) > 0})
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
					c := tile.Member(j)
					ls := QStats{qs.NumAB[j], qs.DenAB[j], qs.NumBA[j], qs.DenBA[j], qs.Common[j], qs.Dealbreak&(1<<j) != 0}
					parts, ok := PairLane(p, q, &c, dots[j], &ls)
					got := parts.S
					want, wok := refPairScore(w, q, tile, j, dots[j], qs, useQ)
					if ok != wok {
						g := tile.Member(j).Geo
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

// TestPairLayout pins the offsets the assembly reads PairTile, QLanes and
// the row constants at (kernels/_asm: tSinHalfLat…, qNumAB…, cSLat…).
func TestPairLayout(t *testing.T) {
	var pt PairTile
	var ql QLanes
	for _, c := range []struct {
		name      string
		got, want uintptr
	}{
		{"SinHalfLat", unsafe.Offsetof(pt.SinHalfLat), 0}, {"CosHalfLat", unsafe.Offsetof(pt.CosHalfLat), 512},
		{"SinHalfLon", unsafe.Offsetof(pt.SinHalfLon), 1024}, {"CosHalfLon", unsafe.Offsetof(pt.CosHalfLon), 1536},
		{"CosLat", unsafe.Offsetof(pt.CosLat), 2048}, {"HavMax", unsafe.Offsetof(pt.HavMax), 2560},
		{"MaxKm", unsafe.Offsetof(pt.MaxKm), 3072}, {"HLA", unsafe.Offsetof(pt.HLA), 3328}, {"Health", unsafe.Offsetof(pt.Health), 5376},
		{"NumAB", unsafe.Offsetof(ql.NumAB), 0}, {"DenAB", unsafe.Offsetof(ql.DenAB), 256}, {"NumBA", unsafe.Offsetof(ql.NumBA), 512},
		{"DenBA", unsafe.Offsetof(ql.DenBA), 768}, {"Common", unsafe.Offsetof(ql.Common), 1024}, {"Dealbreak", unsafe.Offsetof(ql.Dealbreak), 1280},
	} {
		if c.got != c.want {
			t.Errorf("offset of %s = %d, the assembly reads %d", c.name, c.got, c.want)
		}
	}
}

type scoreRowCase struct {
	name string
	fn   func(out *[TileWidth]float32, p *ScoreRowParams, q *PairMember, t *PairTile, dots *[TileWidth]float32, qs *QLanes, mask uint64, minA float32, minB *[TileWidth]float32) (ok, beat, nan uint64)
}

// ScoreRow implementations side by side; pair_amd64_test.go adds the fast path.
var scoreRowImpls = []scoreRowCase{{"generic", scoreRowGeneric}}

// poisonLane puts a special value into one field of lane j.
func poisonLane(r *rand.Rand, t *PairTile, dots *[TileWidth]float32, qs *QLanes, j int) {
	sp := []float64{math.NaN(), math.Inf(1), math.Inf(-1), math.Copysign(0, -1), 0, 1, 1 + 1e-16, -1e-300}
	v := sp[r.IntN(len(sp))]
	switch r.IntN(10) {
	case 0:
		t.SinHalfLat[j] = v
	case 1:
		t.CosLat[j] = v
	case 2:
		t.HavMax[j] = v
	case 3:
		t.MaxKm[j] = float32(v)
	case 4:
		dots[j] = float32(v)
	case 5:
		qs.Common[j], qs.DenAB[j], qs.NumAB[j] = 0, 0, 0
	case 6:
		qs.DenBA[j] = 0
	case 7:
		for k := range HLAWords {
			t.HLA[k][j] = 0
		}
	case 8:
		t.CosHalfLon[j] = v
	case 9:
		t.MaxKm[j] = math.SmallestNonzeroFloat32
	}
}

// TestScoreRowImplementations: every implementation gives the generic
// row's scores bit for bit on the lanes it passes, the same ok and beat
// masks, for masks of every shape, every weight pattern, with and without
// questions, and special values (NaN, ±Inf, ±0, subnormals) in a field of
// some lanes.
func TestScoreRowImplementations(t *testing.T) {
	r := rand.New(rand.NewPCG(55, 56))
	weights := []Weights{{0.4, 0.35, 0.15, 0.1}, {1, 0, 0, 0}, {0, 1, 0, 0}, {0.2, 0.3, 0, 0.5}, {0, 0, 1, 1}, {3, 0, 2, 0}}
	masks := []uint64{0, ^uint64(0), 1, 1 << 63, 0xff00ff00ff00ff00, 0x0123456789abcdef}
	for _, impl := range scoreRowImpls[1:] {
		t.Run(impl.name, func(t *testing.T) {
			passed := 0
			for trial := range 600 {
				q, tile, dots, qs := randomRow(r)
				if trial%3 == 1 {
					for range 8 {
						poisonLane(r, tile, dots, qs, r.IntN(TileWidth))
					}
				}
				var minB [TileWidth]float32
				for j := range minB {
					minB[j] = float32(r.Float64())
				}
				minA := float32(r.Float64())
				if trial%7 == 0 {
					minA = float32(math.Inf(-1))
				}
				p := &ScoreRowParams{W: weights[trial%len(weights)], UseQ: trial%2 == 0}
				mask := masks[trial%len(masks)]
				if trial%len(masks) == 0 {
					mask = r.Uint64()
				}
				var want, got [TileWidth]float32
				wok, wbeat, wnan := scoreRowGeneric(&want, p, q, tile, dots, qs, mask, minA, &minB)
				gok, gbeat, gnan := impl.fn(&got, p, q, tile, dots, qs, mask, minA, &minB)
				if gok != wok || gbeat != wbeat || gnan != wnan {
					t.Fatalf("trial %d: ok %016x beat %016x nan %016x, generic %016x %016x %016x", trial, gok, gbeat, gnan, wok, wbeat, wnan)
				}
				for m := wok; m != 0; m &= m - 1 {
					j := bits.TrailingZeros64(m)
					if math.Float32bits(got[j]) != math.Float32bits(want[j]) {
						t.Fatalf("trial %d lane %d: %v, generic %v", trial, j, got[j], want[j])
					}
					passed++
				}
			}
			if passed < 2000 {
				t.Fatalf("only %d lanes passed: the rows are too thin", passed)
			}
		})
	}
}

// FuzzScoreRow: a row drawn from a seed, with bytes choosing lanes to
// poison, the mask, weights and thresholds: every implementation equals
// the generic one bit for bit.
func FuzzScoreRow(f *testing.F) {
	f.Add(uint64(1), uint64(0xffffffffffffffff), uint8(0), []byte{3, 17, 63})
	f.Add(uint64(2), uint64(0x8000000000000001), uint8(5), []byte{0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, seed, mask uint64, wsel uint8, poison []byte) {
		r := rand.New(rand.NewPCG(seed, 57))
		q, tile, dots, qs := randomRow(r)
		for _, b := range poison {
			poisonLane(r, tile, dots, qs, int(b)%TileWidth)
		}
		ws := []Weights{{0.4, 0.35, 0.15, 0.1}, {1, 0, 0, 0}, {0, 1, 0, 0}, {0, 0, 1, 1}}
		p := &ScoreRowParams{W: ws[int(wsel)%len(ws)], UseQ: wsel&8 != 0}
		var minB [TileWidth]float32
		for j := range minB {
			minB[j] = float32(r.Float64())
		}
		minA := float32(r.Float64())
		var want [TileWidth]float32
		wok, wbeat, wnan := scoreRowGeneric(&want, p, q, tile, dots, qs, mask, minA, &minB)
		for _, impl := range scoreRowImpls[1:] {
			var got [TileWidth]float32
			gok, gbeat, gnan := impl.fn(&got, p, q, tile, dots, qs, mask, minA, &minB)
			if gok != wok || gbeat != wbeat || gnan != wnan {
				t.Fatalf("%s: ok %016x beat %016x nan %016x, generic %016x %016x %016x", impl.name, gok, gbeat, gnan, wok, wbeat, wnan)
			}
			for m := wok; m != 0; m &= m - 1 {
				j := bits.TrailingZeros64(m)
				if math.Float32bits(got[j]) != math.Float32bits(want[j]) {
					t.Fatalf("%s lane %d: %v, generic %v", impl.name, j, got[j], want[j])
				}
			}
		}
	})
}

// BenchmarkScoreRow times one query against a full tile of 64 candidates.
func BenchmarkScoreRow(b *testing.B) {
	r := rand.New(rand.NewPCG(58, 59))
	q, tile, dots, qs := randomRow(r)
	for j := range TileWidth { // every lane near: the dense case
		g := NewGeoPoint(48.85+r.NormFloat64()*0.5, 2.35+r.NormFloat64()*0.5)
		tile.Set(j, &PairMember{Geo: g, HavMax: 1, MaxKm: 20000, Health: true})
	}
	q.HavMax, q.MaxKm = 1, 20000
	var minB [TileWidth]float32
	var out [TileWidth]float32
	p := &ScoreRowParams{W: Weights{0.4, 0.35, 0.15, 0.1}, UseQ: true}
	for _, impl := range scoreRowImpls {
		b.Run(impl.name+"/64", func(b *testing.B) {
			for b.Loop() {
				impl.fn(&out, p, q, tile, dots, qs, ^uint64(0), 0, &minB)
			}
		})
	}
}

type questionsTileCase struct {
	name string
	fn   func(out *QLanes, a *[QMaskWords]uint64, t *QTile, mask uint64)
}

// QuestionsTile implementations side by side; pair_amd64_test.go adds the fast path.
var questionsTileImpls = []questionsTileCase{{"generic", questionsTileGeneric}}

// randomQuestionnaire packs a random questionnaire of q ≤ 64 questions.
func randomQuestionnaire(r *rand.Rand, q int, deal float64) [QMaskWords]uint64 {
	ans, acc, imp := make([]byte, q), make([]byte, q), make([]byte, q)
	for i := range q {
		if r.IntN(5) > 0 {
			ans[i] = byte(1 + r.IntN(8))
		}
		acc[i] = byte(r.IntN(256))
		imp[i] = byte(r.IntN(4))
		if r.Float64() < deal {
			imp[i] = 4
		}
	}
	var m [QMaskWords]uint64
	PackQuestions(m[:], ans, acc, imp)
	return m
}

// TestQuestionsTile: every implementation equals QuestionsBits of the
// unpacked pair on every lane in the mask, for Q around the word size and
// dealbreakers from none to many, and clears the dealbreak bits outside.
func TestQuestionsTile(t *testing.T) {
	r := rand.New(rand.NewPCG(61, 62))
	for _, impl := range questionsTileImpls {
		t.Run(impl.name, func(t *testing.T) {
			for trial := range 200 {
				q := []int{0, 1, 7, 63, 64}[trial%5]
				deal := []float64{0, 0.05, 0.5}[trial%3]
				a := randomQuestionnaire(r, q, deal)
				var tile QTile
				var rows [TileWidth][QMaskWords]uint64
				for j := range TileWidth {
					rows[j] = randomQuestionnaire(r, q, deal)
					if j%9 == 0 {
						rows[j] = a // a clone: every answer acceptable or not alike
					}
					tile.Set(j, rows[j][:])
				}
				mask := []uint64{^uint64(0), r.Uint64(), 0, 1 << 63}[trial%4]
				out := QLanes{Dealbreak: ^uint64(0)}
				impl.fn(&out, &a, &tile, mask)
				var deals uint64
				for m := mask; m != 0; m &= m - 1 {
					j := bits.TrailingZeros64(m)
					want := QuestionsBits(a[:], rows[j][:], 1)
					got := QStats{out.NumAB[j], out.DenAB[j], out.NumBA[j], out.DenBA[j], out.Common[j], out.Dealbreak&(1<<j) != 0}
					if got != want {
						t.Fatalf("trial %d (Q=%d) lane %d: %+v, QuestionsBits %+v", trial, q, j, got, want)
					}
					if want.Dealbreak {
						deals |= 1 << j
					}
				}
				if out.Dealbreak != deals {
					t.Fatalf("trial %d: dealbreak mask %016x, want %016x", trial, out.Dealbreak, deals)
				}
			}
		})
	}
}

// BenchmarkQuestionsTile times one query against a full tile.
func BenchmarkQuestionsTile(b *testing.B) {
	r := rand.New(rand.NewPCG(63, 64))
	a := randomQuestionnaire(r, 64, 0.02)
	var tile QTile
	for j := range TileWidth {
		m := randomQuestionnaire(r, 64, 0.02)
		tile.Set(j, m[:])
	}
	var out QLanes
	for _, impl := range questionsTileImpls {
		b.Run(impl.name+"/64", func(b *testing.B) {
			for b.Loop() {
				impl.fn(&out, &a, &tile, ^uint64(0))
			}
		})
	}
}

// FuzzQuestionsTile: a tile drawn from a seed, any mask and question
// count: every implementation equals the generic one.
func FuzzQuestionsTile(f *testing.F) {
	f.Add(uint64(1), uint64(0xffffffffffffffff), uint8(64))
	f.Add(uint64(2), uint64(0x8000000000000001), uint8(3))
	f.Fuzz(func(t *testing.T, seed, mask uint64, q8 uint8) {
		r := rand.New(rand.NewPCG(seed, 65))
		q := int(q8) % 65
		a := randomQuestionnaire(r, q, 0.1)
		var tile QTile
		for j := range TileWidth {
			m := randomQuestionnaire(r, q, 0.1)
			tile.Set(j, m[:])
		}
		var want QLanes
		questionsTileGeneric(&want, &a, &tile, mask)
		for _, impl := range questionsTileImpls[1:] {
			var got QLanes
			impl.fn(&got, &a, &tile, mask)
			if got.Dealbreak != want.Dealbreak {
				t.Fatalf("%s: dealbreak %016x, generic %016x", impl.name, got.Dealbreak, want.Dealbreak)
			}
			for m := mask; m != 0; m &= m - 1 {
				j := bits.TrailingZeros64(m)
				if got.NumAB[j] != want.NumAB[j] || got.DenAB[j] != want.DenAB[j] || got.NumBA[j] != want.NumBA[j] ||
					got.DenBA[j] != want.DenBA[j] || got.Common[j] != want.Common[j] {
					t.Fatalf("%s lane %d differs from the generic sums", impl.name, j)
				}
			}
		}
	})
}

// TestScoreRowNaNLanes: a NaN score (only reachable through a weight the
// options refuse) is reported in the nan mask by every implementation,
// never lost among the lanes that beat no heap.
func TestScoreRowNaNLanes(t *testing.T) {
	r := rand.New(rand.NewPCG(71, 72))
	q, tile, dots, qs := randomRow(r)
	var minB [TileWidth]float32
	p := &ScoreRowParams{W: Weights{Trait: 1, Questions: math.NaN()}, UseQ: true}
	for _, impl := range scoreRowImpls {
		var out [TileWidth]float32
		ok, beat, nan := impl.fn(&out, p, q, tile, dots, qs, ^uint64(0), 0, &minB)
		if ok == 0 || nan != ok || beat != 0 {
			t.Fatalf("%s: ok %016x nan %016x beat %016x: every compatible lane's score is NaN", impl.name, ok, nan, beat)
		}
	}
}
