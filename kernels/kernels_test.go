package kernels

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// Implementations under test. Fast paths (issue 3) add rows here so that
// every test runs them side by side with the generic code.
type dotImplCase struct {
	name string
	fn   func(a, b []float32) float32
}

var dotImpls = []dotImplCase{{"generic", dotGeneric}}

var questionImpls = []struct {
	name string
	fn   func(ansA, accA, impA, ansB, accB, impB []byte) QStats
}{
	{"generic", Questions},
	{"bitsliced", func(ansA, accA, impA, ansB, accB, impB []byte) QStats {
		w := QWords(len(ansA))
		pa, pb := make([]uint64, QMaskWords*w), make([]uint64, QMaskWords*w)
		PackQuestions(pa, ansA, accA, impA)
		PackQuestions(pb, ansB, accB, impB)
		return QuestionsBits(pa, pb, w)
	}},
}

// one-word implementations (Q ≤ 64) side by side; dot_amd64_test.go adds
// the POPCNT assembly.
var questions1Impls = []struct {
	name string
	fn   func(a, b *[QMaskWords]uint64) QStats
}{{"generic", questionsBits1}}

func init() {
	for _, impl := range questions1Impls {
		questionImpls = append(questionImpls, struct {
			name string
			fn   func(ansA, accA, impA, ansB, accB, impB []byte) QStats
		}{"words1-" + impl.name, func(ansA, accA, impA, ansB, accB, impB []byte) QStats {
			if len(ansA) > 64 {
				return Questions(ansA, accA, impA, ansB, accB, impB) // one word holds 64 questions
			}
			var pa, pb [QMaskWords]uint64
			PackQuestions(pa[:], ansA, accA, impA)
			PackQuestions(pb[:], ansB, accB, impB)
			return impl.fn(&pa, &pb)
		}})
	}
}

// refDot is the float64 reference.
func refDot(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}

// lengths around vector widths: 0..40, and 127/128/129-style boundaries.
func testLengths() []int {
	var ls []int
	for n := 0; n <= 40; n++ {
		ls = append(ls, n)
	}
	for _, b := range []int{63, 64, 65, 127, 128, 129, 255, 256, 257, 511, 512, 513, 1023} {
		ls = append(ls, b)
	}
	return ls
}

func randVec(r *rand.Rand, n int, scale float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64() * scale)
	}
	return v
}

func TestDot(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, impl := range dotImpls {
		t.Run(impl.name, func(t *testing.T) {
			for _, n := range testLengths() {
				for _, scale := range []float64{1e-20, 1, 1e15} {
					// guard bands: the kernel sees a sub-slice; the bytes around
					// it are poisoned and must not influence the result.
					ga, gb := randVec(r, n+16, scale), randVec(r, n+16, scale)
					for i := 0; i < 8; i++ {
						ga[i], gb[i], ga[n+8+i], gb[n+8+i] = float32(math.NaN()), float32(math.Inf(1)), float32(math.NaN()), float32(math.Inf(-1))
					}
					a, b := ga[8:8+n:8+n], gb[8:8+n:8+n]
					got := impl.fn(a, b)
					want := refDot(a, b)
					var mag float64
					for i := range a {
						mag += math.Abs(float64(a[i]) * float64(b[i]))
					}
					// float32 accumulation: error bounded by ~n·ε·Σ|aᵢbᵢ|, plus
					// the subnormal spacing (1.4e-45) per product for tiny inputs.
					if tol := float64(n+1) * (6e-8*mag + 1.5e-45); math.Abs(float64(got)-want) > tol {
						t.Errorf("n=%d scale=%g: got %v, want %v (tol %g)", n, scale, got, want, tol)
					}
					if rev := impl.fn(b, a); math.Float32bits(rev) != math.Float32bits(got) {
						t.Errorf("n=%d: Dot not symmetric: %v vs %v", n, got, rev)
					}
				}
			}
		})
	}
}

func TestDotSpecialValues(t *testing.T) {
	for _, impl := range dotImpls {
		t.Run(impl.name, func(t *testing.T) {
			for _, n := range []int{1, 3, 4, 5, 8, 16, 17, 33, 128, 129} {
				for lane := 0; lane < n; lane++ {
					for _, special := range []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))} {
						a, b := make([]float32, n), make([]float32, n)
						for i := range a {
							a[i], b[i] = 1, 1
						}
						a[lane] = special
						got := impl.fn(a, b)
						want := refDot(a, b)
						if math.IsNaN(want) != math.IsNaN(float64(got)) || (!math.IsNaN(want) && float64(got) != want) {
							t.Fatalf("n=%d lane=%d special=%v: got %v, want %v", n, lane, special, got, want)
						}
					}
				}
			}
		})
	}
}

// TestDotImplementationsAgree: every fast path gives dotGeneric's result bit
// for bit (NaN results: both NaN), on all lengths around the vector widths,
// sub-slices with poisoned guard bands, and NaN/±Inf/-0 in every lane.
func TestDotImplementationsAgree(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	same := func(x, y float32) bool { return math.Float32bits(x) == math.Float32bits(y) || (x != x && y != y) }
	for _, impl := range dotImpls[1:] {
		t.Run(impl.name, func(t *testing.T) {
			for _, n := range testLengths() {
				for trial := 0; trial < 20; trial++ {
					ga, gb := randVec(r, n+16, 1), randVec(r, n+16, 1)
					for i := 0; i < 8; i++ {
						ga[i], ga[n+8+i], gb[i], gb[n+8+i] = float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN())
					}
					a, b := ga[8:8+n:8+n], gb[8:8+n:8+n]
					if trial > 0 && n > 0 { // specials in a random lane
						sp := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.Copysign(0, -1)), 3e38}
						a[r.IntN(n)] = sp[trial%len(sp)]
					}
					if got, want := impl.fn(a, b), dotGeneric(a, b); !same(got, want) {
						t.Fatalf("n=%d trial %d: %v, generic %v", n, trial, got, want)
					}
				}
			}
		})
	}
}

func TestXorOrCount(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for n := 0; n <= 9; n++ {
		for range 50 {
			a, b := make([]uint64, n), make([]uint64, n)
			for i := range a {
				a[i], b[i] = r.Uint64()&r.Uint64(), r.Uint64()&r.Uint64()
			}
			x, o := XorOrCount(a, b)
			var wx, wo int
			for i := range a {
				for bit := 0; bit < 64; bit++ {
					ba, bb := a[i]>>bit&1, b[i]>>bit&1
					if ba != bb {
						wx++
					}
					if ba|bb == 1 {
						wo++
					}
				}
			}
			if x != wx || o != wo {
				t.Fatalf("n=%d: got (%d, %d), want (%d, %d)", n, x, o, wx, wo)
			}
		}
	}
	if HLAScore(0, 0) != 0.5 || HLAScore(3, 12) != 0.25 {
		t.Fatal("HLAScore")
	}
}

// refQuestions is the spec's definition, question by question.
func refQuestions(ansA, accA, impA, ansB, accB, impB []byte) QStats {
	w := []int32{0, 1, 10, 50, 250}
	var s QStats
	for q := range ansA {
		if impA[q] == 4 && ansB[q] != 0 && accA[q]&(1<<(ansB[q]-1)) == 0 {
			s.Dealbreak = true
		}
		if impB[q] == 4 && ansA[q] != 0 && accB[q]&(1<<(ansA[q]-1)) == 0 {
			s.Dealbreak = true
		}
		if ansA[q] == 0 || ansB[q] == 0 {
			continue
		}
		s.Common++
		s.DenAB += w[impA[q]]
		s.DenBA += w[impB[q]]
		if accA[q]&(1<<(ansB[q]-1)) != 0 {
			s.NumAB += w[impA[q]]
		}
		if accB[q]&(1<<(ansA[q]-1)) != 0 {
			s.NumBA += w[impB[q]]
		}
	}
	return s
}

func randQuestions(r *rand.Rand, n int) (ans, acc, imp []byte) {
	ans, acc, imp = make([]byte, n), make([]byte, n), make([]byte, n)
	for q := range n {
		ans[q] = byte(r.IntN(9))
		acc[q] = byte(r.IntN(256))
		imp[q] = byte(r.IntN(5))
	}
	return
}

func TestQuestions(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, impl := range questionImpls {
		t.Run(impl.name, func(t *testing.T) {
			for _, n := range testLengths() {
				for range 20 {
					a1, a2, a3 := randQuestions(r, n)
					b1, b2, b3 := randQuestions(r, n)
					got := impl.fn(a1, a2, a3, b1, b2, b3)
					if want := refQuestions(a1, a2, a3, b1, b2, b3); got != want {
						t.Fatalf("n=%d: got %+v, want %+v", n, got, want)
					}
					rev := impl.fn(b1, b2, b3, a1, a2, a3)
					if rev.NumAB != got.NumBA || rev.DenAB != got.DenBA || rev.Common != got.Common || rev.Dealbreak != got.Dealbreak {
						t.Fatalf("n=%d: not symmetric: %+v vs %+v", n, got, rev)
					}
				}
			}
		})
	}
}

func TestQuestionScore(t *testing.T) {
	for _, tc := range []struct {
		s    QStats
		want float64
	}{
		{QStats{}, 0},             // C empty
		{QStats{Common: 1}, 0},    // sat 1·1 − 1/1
		{QStats{Common: 4}, 0.75}, // zero weights: fully satisfied
		{QStats{NumAB: 50, DenAB: 100, NumBA: 50, DenBA: 50, Common: 10}, math.Sqrt(0.5) - 0.1},
		{QStats{NumAB: 0, DenAB: 100, NumBA: 50, DenBA: 50, Common: 10}, 0}, // clamped at 0
	} {
		if got := QuestionScore(tc.s); math.Abs(got-tc.want) > 1e-15 {
			t.Errorf("%+v: got %v, want %v", tc.s, got, tc.want)
		}
	}
}

// TestDistanceFromAEdges: the clamp of the haversine term to [0, 1] at its
// edges (rounding can push it slightly outside) and for specials, against
// the textbook formula: 0 below, half the circumference above, NaN stays NaN.
func TestDistanceFromAEdges(t *testing.T) {
	half := math.Pi * EarthRadiusKm
	for _, tc := range []struct{ a, want float64 }{
		{0, 0}, {math.Copysign(0, -1), 0}, {-1e-17, 0}, {-1, 0}, {math.Inf(-1), 0},
		{1, half}, {1 + 1e-16, half}, {2, half}, {math.Inf(1), half},
		{0.25, 2 * EarthRadiusKm * math.Asin(0.5)},
		{math.NaN(), math.NaN()},
	} {
		got := DistanceFromA(tc.a)
		if math.IsNaN(tc.want) {
			if !math.IsNaN(got) {
				t.Errorf("DistanceFromA(NaN) = %v, want NaN", got)
			}
			continue
		}
		if math.Abs(got-tc.want) > 1e-9*tc.want || math.Signbit(got) {
			t.Errorf("DistanceFromA(%v) = %v, want %v", tc.a, got, tc.want)
		}
	}
}

func textbookHaversine(lat1, lon1, lat2, lon2 float64) float64 {
	rad := math.Pi / 180
	dphi, dlam := (lat2-lat1)*rad, (lon2-lon1)*rad
	a := math.Pow(math.Sin(dphi/2), 2) + math.Cos(lat1*rad)*math.Cos(lat2*rad)*math.Pow(math.Sin(dlam/2), 2)
	return 2 * EarthRadiusKm * math.Asin(math.Sqrt(math.Min(1, a)))
}

func TestHaversine(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	pts := [][2]float64{{90, 0}, {-90, 0}, {0, 180}, {0, -180}, {48.8566, 2.3522}, {48.8566, 2.3523}, {0, 0}}
	for range 2000 {
		pts = append(pts, [2]float64{r.Float64()*180 - 90, r.Float64()*360 - 180})
	}
	for i := 1; i < len(pts); i++ {
		p, q := pts[i-1], pts[r.IntN(len(pts))]
		gp, gq := NewGeoPoint(p[0], p[1]), NewGeoPoint(q[0], q[1])
		got := DistanceFromA(HaversineA(&gp, &gq))
		want := textbookHaversine(p[0], p[1], q[0], q[1])
		if math.Abs(got-want) > 1e-9*want+1e-9 {
			t.Fatalf("%v → %v: %v km, textbook %v km", p, q, got, want)
		}
		if HaversineA(&gp, &gq) != HaversineA(&gq, &gp) {
			t.Fatalf("%v, %v: HaversineA not symmetric", p, q)
		}
	}
	// Paris–Lyon is about 392 km.
	if d := HaversineKm(48.8566, 2.3522, 45.7640, 4.8357); math.Abs(d-391.5) > 2 {
		t.Fatalf("Paris–Lyon %v km", d)
	}
}

// floats decodes fuzz bytes as float32 values (4 bytes each).
func floats(b []byte) []float32 {
	v := make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v
}

func FuzzDot(f *testing.F) {
	f.Add([]byte{0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64})
	f.Add(make([]byte, 4*129))
	f.Fuzz(func(t *testing.T, data []byte) {
		v := floats(data)
		a, b := v[:len(v)/2], v[len(v)/2:2*(len(v)/2)]
		for _, impl := range dotImpls {
			got := impl.fn(a, b)
			want := refDot(a, b)
			var mag float64
			for i := range a {
				mag += math.Abs(float64(a[i]) * float64(b[i]))
			}
			switch {
			case math.IsNaN(mag) || math.IsInf(mag, 0) || mag > math.MaxFloat32/2:
				// overflow or NaN inputs: only require no panic and symmetry below
			case math.Abs(float64(got)-want) > float64(len(a)+1)*6e-8*mag+1e-30:
				t.Fatalf("%s n=%d: got %v, want %v", impl.name, len(a), got, want)
			}
			if rev := impl.fn(b, a); math.Float32bits(rev) != math.Float32bits(got) && !(rev != rev && got != got) {
				t.Fatalf("%s: not symmetric", impl.name)
			}
		}
	})
}

func FuzzQuestions(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4, 0, 255, 4, 3, 2, 1, 8, 8})
	f.Fuzz(func(t *testing.T, data []byte) {
		n := len(data) / 6
		col := func(k int, max byte) []byte {
			c := make([]byte, n)
			for i := range c {
				c[i] = byte(int(data[k*n+i]) % (int(max) + 1))
			}
			return c
		}
		a1, a2, a3, b1, b2, b3 := col(0, 8), col(1, 255), col(2, 4), col(3, 8), col(4, 255), col(5, 4)
		want := refQuestions(a1, a2, a3, b1, b2, b3)
		for _, impl := range questionImpls {
			if got := impl.fn(a1, a2, a3, b1, b2, b3); got != want {
				t.Fatalf("%s n=%d: got %+v, want %+v", impl.name, n, got, want)
			}
		}
		s := QuestionScore(want)
		if !(s >= 0 && s <= 1) {
			t.Fatalf("QuestionScore %v out of [0, 1]", s)
		}
	})
}

func BenchmarkDot(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	for _, impl := range dotImpls {
		for _, n := range []int{16, 128, 1024} {
			x, y := randVec(r, n, 1), randVec(r, n, 1)
			b.Run(fmt.Sprintf("%s/%d", impl.name, n), func(b *testing.B) {
				b.SetBytes(int64(8 * n))
				var s float32
				for b.Loop() {
					s += impl.fn(x, y)
				}
				_ = s
			})
		}
	}
}

func BenchmarkQuestions(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	for _, impl := range questionImpls[:1] { // the bit-sliced row packs per call: see BenchmarkQuestionsBits
		for _, n := range []int{16, 64, 256} {
			a1, a2, a3 := randQuestions(r, n)
			b1, b2, b3 := randQuestions(r, n)
			b.Run(fmt.Sprintf("%s/%d", impl.name, n), func(b *testing.B) {
				for b.Loop() {
					_ = impl.fn(a1, a2, a3, b1, b2, b3)
				}
			})
		}
	}
}

// BenchmarkQuestionsBits times the bit-sliced kernel on packed members
// (packing happens once per member, not per pair).
func BenchmarkQuestionsBits(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	for _, n := range []int{16, 64, 256} {
		a1, a2, a3 := randQuestions(r, n)
		b1, b2, b3 := randQuestions(r, n)
		w := QWords(n)
		pa, pb := make([]uint64, QMaskWords*w), make([]uint64, QMaskWords*w)
		PackQuestions(pa, a1, a2, a3)
		PackQuestions(pb, b1, b2, b3)
		b.Run(fmt.Sprintf("bitsliced/%d", n), func(b *testing.B) {
			for b.Loop() {
				_ = QuestionsBits(pa, pb, w)
			}
		})
	}
}

func BenchmarkXorOrCount(b *testing.B) {
	x, y := []uint64{1, 2, 3, 4}, []uint64{5, 6, 7, 8}
	b.Run("generic/4", func(b *testing.B) {
		for b.Loop() {
			_, _ = XorOrCount(x, y)
		}
	})
}

func BenchmarkHaversineA(b *testing.B) {
	p, q := NewGeoPoint(48.85, 2.35), NewGeoPoint(45.76, 4.84)
	b.Run("generic/1", func(b *testing.B) {
		var s float64
		for b.Loop() {
			s += HaversineA(&p, &q)
		}
		_ = s
	})
}

func BenchmarkQuestions1(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	a1, a2, a3 := randQuestions(r, 64)
	b1, b2, b3 := randQuestions(r, 64)
	var pa, pb [QMaskWords]uint64
	PackQuestions(pa[:], a1, a2, a3)
	PackQuestions(pb[:], b1, b2, b3)
	for _, impl := range questions1Impls {
		b.Run(impl.name+"/64", func(b *testing.B) {
			var s int32
			for b.Loop() {
				s += impl.fn(&pa, &pb).NumAB
			}
			_ = s
		})
	}
}

// TestAsinSmall: the series agrees with math.Asin to a few ulps on [0, 0.05)
// (dense and random points, and the switch point), and DistanceFromA is
// continuous across the switch.
func TestAsinSmall(t *testing.T) {
	r := rand.New(rand.NewPCG(61, 62))
	check := func(x float64) {
		t.Helper()
		got, want := asinSmall(x), math.Asin(x)
		if math.Abs(got-want) > 4e-16*want {
			t.Fatalf("asinSmall(%g) = %.17g, math.Asin %.17g (rel %g)", x, got, want, (got-want)/want)
		}
	}
	for i := 0; i < 50000; i++ {
		check(0.05 * float64(i) / 50000)
		check(0.05 * r.Float64())
		check(0.05 * math.Ldexp(r.Float64(), -r.IntN(60)))
	}
	check(math.Nextafter(0.05, 0))
	below, above := DistanceFromA(math.Nextafter(0.0025, 0)), DistanceFromA(0.0025)
	if math.Abs(above-below) > 1e-9 {
		t.Fatalf("DistanceFromA jumps at the switch: %.17g → %.17g", below, above)
	}
}

// TestUnpackQuestions: unpacking gives back exactly what was packed, for
// every question count around the word boundaries.
func TestUnpackQuestions(t *testing.T) {
	r := rand.New(rand.NewPCG(81, 82))
	for _, n := range testLengths() {
		a, c, i := randQuestions(r, n)
		bits := make([]uint64, QMaskWords*QWords(n))
		PackQuestions(bits, a, c, i)
		a2, c2, i2 := make([]byte, n), make([]byte, n), make([]byte, n)
		UnpackQuestions(a2, c2, i2, bits)
		if string(a2) != string(a) || string(c2) != string(c) || string(i2) != string(i) {
			t.Fatalf("n=%d: round trip changed the questionnaire", n)
		}
	}
}
