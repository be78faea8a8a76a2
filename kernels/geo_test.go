package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

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
