package kernels

import "math"

// EarthRadiusKm is the mean Earth radius the spec fixes for distances.
const EarthRadiusKm = 6371.0088

// GeoPoint holds the per-member trigonometric terms that let the haversine
// formula run without any trigonometric call per pair.
type GeoPoint struct {
	SinHalfLat, CosHalfLat float64 // sin, cos of φ/2
	SinHalfLon, CosHalfLon float64 // sin, cos of λ/2
	CosLat                 float64 // cos φ
}

// NewGeoPoint precomputes the terms of a point given in degrees.
func NewGeoPoint(latDeg, lonDeg float64) GeoPoint {
	phi := latDeg * math.Pi / 180
	lam := lonDeg * math.Pi / 180
	return GeoPoint{
		SinHalfLat: math.Sin(phi / 2), CosHalfLat: math.Cos(phi / 2),
		SinHalfLon: math.Sin(lam / 2), CosHalfLon: math.Cos(lam / 2),
		CosLat: math.Cos(phi),
	}
}

// HaversineA returns the haversine term
// a = sin²(Δφ/2) + cos φ1 cos φ2 sin²(Δλ/2), with the half-angle sines of the
// differences expanded by the angle-difference identity so that no
// trigonometric function is evaluated per pair. It is symmetric bit for bit:
// HaversineA(p, q) == HaversineA(q, p).
//
//	sdp := sin(φ2/2)cos(φ1/2) − cos(φ2/2)sin(φ1/2)   // = sin(Δφ/2)
//	sdl := sin(λ2/2)cos(λ1/2) − cos(λ2/2)sin(λ1/2)   // = sin(Δλ/2)
//	a   := sdp² + cos φ1 · cos φ2 · sdl²
func HaversineA(p, q *GeoPoint) float64 {
	// The explicit conversions round each product, which forbids the
	// compiler from fusing them into an FMA (Go spec, "Arithmetic
	// operators"): a fused x*y−z is not antisymmetric under the swap.
	sdp := float64(q.SinHalfLat*p.CosHalfLat) - float64(q.CosHalfLat*p.SinHalfLat)
	sdl := float64(q.SinHalfLon*p.CosHalfLon) - float64(q.CosHalfLon*p.SinHalfLon)
	return float64(sdp*sdp) + float64(float64(p.CosLat*q.CosLat)*float64(sdl*sdl))
}

// asinCoef[n] = (2n)! / (4ⁿ (n!)² (2n+1)), the Taylor coefficients of asin.
var asinCoef = func() (c [9]float64) {
	c[0] = 1
	for n := 1; n < len(c); n++ {
		c[n] = c[n-1] * float64((2*n-1)*(2*n-1)) / float64(2*n*(2*n+1))
	}
	return c
}()

// asinSmall is asin(x) for 0 ≤ x < 0.05: x + x·z·(c1 + z·(c2 + …)), z = x².
// The explicit conversions keep the compiler from fusing (the result must
// not depend on the architecture).
func asinSmall(x float64) float64 {
	z := float64(x * x)
	p := asinCoef[8]
	for n := 7; n >= 1; n-- {
		p = float64(p*z) + asinCoef[n]
	}
	return x + float64(float64(x*z)*p)
}

// HaversineKm is the textbook haversine distance in km between two points in
// degrees. The pipeline uses the precomputed GeoPoint form; this one serves
// tools that need a single distance.
func HaversineKm(lat1, lon1, lat2, lon2 float64) float64 {
	p, q := NewGeoPoint(lat1, lon1), NewGeoPoint(lat2, lon2)
	return DistanceFromA(HaversineA(&p, &q))
}
