package pipeline

import (
	"cmp"
	"math"
	"slices"

	"github.com/osmosis/batchmatch/kernels"
)

// blockTile is the number of members per blocking tile; it is also the
// query tile, so a worker task keeps one heap per query of its tile.
const blockTile = queryTile

// angleMargin widens every tile's angular radius (radians, about 64 m on the
// Earth) so that rounding in the bounds can never skip a compatible pair.
const angleMargin = 1e-5

// tileSummary bounds what any member of a tile offers and accepts. Two
// tiles whose summaries cannot match hold no compatible pair.
type tileSummary struct {
	members      []int32 // population indices, in blocking order
	genders      uint8   // bit g: some member has gender g
	seeks        uint8   // union of the members' seeking masks
	ageLo, ageHi uint16  // members' ages
	accLo, accHi uint16  // union of the accepted age ranges
	centre       [3]float64
	radius       float64 // largest angle from centre to a member, plus margin
	maxKm        float64 // largest max_km
	// for allPass: what every member offers and accepts
	seeksAll           uint8   // intersection of the seeking masks
	accLoMax, accHiMin uint16  // narrowest accepted age bounds
	minKm              float64 // smallest max_km
}

// unitVector returns a member's position on the unit sphere.
func unitVector(g *kernels.GeoPoint) [3]float64 {
	sinLat := 2 * g.SinHalfLat * g.CosHalfLat
	cosLon := g.CosHalfLon*g.CosHalfLon - g.SinHalfLon*g.SinHalfLon
	sinLon := 2 * g.SinHalfLon * g.CosHalfLon
	return [3]float64{g.CosLat * cosLon, g.CosLat * sinLon, sinLat}
}

func angle(a, b [3]float64) float64 {
	// atan2 of |a×b| and a·b is accurate at every angle (acos is not near 0).
	cx := a[1]*b[2] - a[2]*b[1]
	cy := a[2]*b[0] - a[0]*b[2]
	cz := a[0]*b[1] - a[1]*b[0]
	return math.Atan2(math.Sqrt(cx*cx+cy*cy+cz*cz), a[0]*b[0]+a[1]*b[1]+a[2]*b[2])
}

// blockingTiles orders the population by orientation group, 1° cell and age
// (the order only makes tiles compact; it never affects results) and
// summarises each tile of blockTile members.
func blockingTiles(p *Population) []tileSummary {
	type key struct {
		group uint16
		cell  int32
		age   uint16
		index int32
	}
	vec := make([][3]float64, p.N)
	keys := make([]key, p.N)
	for i := 0; i < p.N; i++ {
		v := unitVector(&p.Geo[i])
		vec[i] = v
		lat := math.Asin(max(-1, min(1, v[2]))) * 180 / math.Pi
		lon := math.Atan2(v[1], v[0]) * 180 / math.Pi
		cell := int32(math.Floor(lat+90))*400 + int32(math.Floor(lon+180))
		keys[i] = key{uint16(p.Gender[i])<<8 | uint16(p.Seeking[i]), cell, p.Age[i], int32(i)}
	}
	slices.SortFunc(keys, func(a, b key) int {
		return cmp.Or(cmp.Compare(a.group, b.group), cmp.Compare(a.cell, b.cell), cmp.Compare(a.age, b.age), cmp.Compare(a.index, b.index))
	})
	var tiles []tileSummary
	for lo := 0; lo < p.N; lo += blockTile {
		hi := min(lo+blockTile, p.N)
		t := tileSummary{ageLo: math.MaxUint16, accLo: math.MaxUint16, seeksAll: 7, accHiMin: math.MaxUint16, minKm: math.Inf(1)}
		var c [3]float64
		for _, k := range keys[lo:hi] {
			i := k.index
			t.members = append(t.members, i)
			t.genders |= 1 << p.Gender[i]
			t.seeks |= p.Seeking[i]
			t.ageLo, t.ageHi = min(t.ageLo, p.Age[i]), max(t.ageHi, p.Age[i])
			t.accLo, t.accHi = min(t.accLo, p.AgeMin[i]), max(t.accHi, p.AgeMax[i])
			t.maxKm = max(t.maxKm, float64(p.MaxKm[i]))
			t.seeksAll &= p.Seeking[i]
			t.accLoMax, t.accHiMin = max(t.accLoMax, p.AgeMin[i]), min(t.accHiMin, p.AgeMax[i])
			t.minKm = min(t.minKm, float64(p.MaxKm[i]))
			for d := range c {
				c[d] += vec[i][d]
			}
		}
		n := math.Sqrt(c[0]*c[0] + c[1]*c[1] + c[2]*c[2])
		if n < 1e-9 { // members all around the sphere: any centre will do
			c, n = vec[t.members[0]], 1
		}
		for d := range c {
			t.centre[d] = c[d] / n
		}
		for _, i := range t.members {
			t.radius = max(t.radius, angle(t.centre, vec[i]))
		}
		t.radius += angleMargin
		tiles = append(tiles, t)
	}
	return tiles
}

// canMatch reports whether some member of a and some member of b could pass
// the orientation, age and distance filters together. It may say yes for
// tiles with no compatible pair, never no for tiles with one.
func canMatch(a, b *tileSummary) bool {
	if a.seeks&b.genders == 0 || b.seeks&a.genders == 0 {
		return false
	}
	if b.ageHi < a.accLo || b.ageLo > a.accHi || a.ageHi < b.accLo || a.ageLo > b.accHi {
		return false
	}
	gap := angle(a.centre, b.centre) - a.radius - b.radius
	return gap <= 0 || gap*kernels.EarthRadiusKm <= min(a.maxKm, b.maxKm)*(1+1e-9)
}

// allPass reports whether every member of a and every member of b pass the
// orientation, age and distance filters together, with room to spare on
// distance (the exact test could not disagree), so that a tile pair needs
// no per-pair filtering at all.
func allPass(a, b *tileSummary) bool {
	if a.seeksAll&b.genders != b.genders || b.seeksAll&a.genders != a.genders {
		return false
	}
	if b.ageLo < a.accLoMax || b.ageHi > a.accHiMin || a.ageLo < b.accLoMax || a.ageHi > b.accHiMin {
		return false
	}
	lim := min(a.minKm, b.minKm)
	if lim >= math.Pi*kernels.EarthRadiusKm+1 { // beyond the antipode
		return true
	}
	return (angle(a.centre, b.centre)+a.radius+b.radius)*kernels.EarthRadiusKm <= lim*(1-1e-6)
}
