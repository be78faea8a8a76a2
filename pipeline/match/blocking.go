package match

import (
	"cmp"
	"math"
	"slices"

	"github.com/osmosis/batchmatch/kernels"
	"github.com/osmosis/batchmatch/pipeline/read"
)

// tileSize is the number of members per blocking tile; it is also the
// query tile of a scoring task, which keeps one heap per query of its tile.
const tileSize = 64

// TileSize is the number of members per tile: a scoring task (and a unit
// of the progress report) is one tile.
const TileSize = tileSize

// angleMargin widens every tile's angular radius (radians, about 64 m on the
// Earth) so that rounding in the bounds can never skip a compatible pair.
const angleMargin = 1e-5

// bounds summarise what any member of a group offers and accepts. Two
// groups whose bounds cannot match hold no compatible pair.
type bounds struct {
	genders      uint8  // bit g: some member has gender g
	seeks        uint8  // union of the members' seeking masks
	ageLo, ageHi uint16 // members' ages
	accLo, accHi uint16 // union of the accepted age ranges
	centre       [3]float64
	radius       float64 // largest angle from centre to a member, plus margin
	maxKm        float64 // largest max_km
	// for allPass: what every member offers and accepts
	seeksAll           uint8   // intersection of the seeking masks
	accLoMax, accHiMin uint16  // narrowest accepted age bounds
	minKm              float64 // smallest max_km
}

// subTileSize is the size of the sub-tiles a tile is also summarised in,
// so that a tile pair that may match is examined only in the sub-tile
// pairs (8×8 members) that may match: where a city has few members of an
// orientation group and age band, a tile mixes places and ages, and its
// 8-member runs are still tight.
const subTileSize = 8

// subTiles is the number of sub-tiles of a tile.
const subTiles = tileSize / subTileSize

// subMask has bit x·subTiles + y set for sub-tile x of one tile and y of
// another that may match.
type subMask uint64

// allSubs is every sub-tile pair.
const allSubs = ^subMask(0)

// tileSummary is a tile of tileSize members in blocking order: its bounds,
// and the bounds of each run of subTileSize members (its sub-tiles).
type tileSummary struct {
	bounds
	members []int32 // population indices, in blocking order
	sub     []bounds
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

// blockingAgeBand is the width in years of the age bands of the blocking
// order.
const blockingAgeBand = 4

// Blocking is a population ordered for blocking and cut into summarised
// tiles (blockingTiles): the first stage of scoring, which lets TopK skip
// the tile pairs that cannot hold a compatible pair.
type Blocking struct {
	p     *read.Population
	tiles []tileSummary
}

// Block orders p for blocking and cuts it into tiles of tileSize members.
func Block(p *read.Population) *Blocking {
	return &Blocking{p: p, tiles: blockingTiles(p)}
}

// Tiles is the number of tiles.
func (b *Blocking) Tiles() int { return len(b.tiles) }

// tileKey is where a member sorts in the blocking order.
type tileKey struct {
	group  uint16 // gender and seeking
	cell   int32  // 1° latitude × 1° longitude
	class  uint16 // max_km class: powers of two from 5 km
	band   uint16 // age band
	morton uint64 // Z-order of a ~10 m grid
	index  int32  // the member
}

// sameCell reports whether two keys share orientation group, 1° cell,
// max_km class and age band.
func (a tileKey) sameCell(b tileKey) bool {
	return a.group == b.group && a.cell == b.cell && a.class == b.class && a.band == b.band
}

// sortedTileKeys returns the keys of the members of sub in blocking order,
// and the unit vectors of their locations indexed by population index (what
// summarize reads).
func sortedTileKeys(p *read.Population, sub []int32) ([]tileKey, [][3]float64) {
	vec := make([][3]float64, p.N)
	keys := make([]tileKey, len(sub))
	for n, i := range sub {
		v := unitVector(&p.Geo[i])
		vec[i] = v
		lat := math.Asin(max(-1, min(1, v[2]))) * 180 / math.Pi
		lon := math.Atan2(v[1], v[0]) * 180 / math.Pi
		y := uint32(min(max((lat+90)/180, 0), 1) * (1<<21 - 1))
		x := uint32(min(max((lon+180)/360, 0), 1) * (1<<22 - 1))
		cell := int32(math.Floor(lat+90))*400 + int32(math.Floor(lon+180))
		class := uint16(max(0, min(15, math.Floor(math.Log2(float64(p.MaxKm[i])/5)))))
		keys[n] = tileKey{uint16(p.Gender[i])<<8 | uint16(p.Seeking[i]), cell, class, p.Age[i] / blockingAgeBand, interleave(x, y), i}
	}
	slices.SortFunc(keys, func(a, b tileKey) int {
		return cmp.Or(cmp.Compare(a.group, b.group), cmp.Compare(a.cell, b.cell), cmp.Compare(a.class, b.class),
			cmp.Compare(a.band, b.band), cmp.Compare(a.morton, b.morton), cmp.Compare(a.index, b.index))
	})
	return keys, vec
}

// blockingTiles orders the population by orientation group, 1° cell,
// max_km class (powers of two from 5 km: a tile's reach is its largest
// max_km), age band, and then location along a Morton (Z-order) curve of a
// ~10 m grid, so that the members of a tile are alike in what they offer
// and accept and close together on the map. The order only makes tiles
// compact; it never affects results. Each tile and sub-tile is summarised.
func blockingTiles(p *read.Population) []tileSummary {
	all := make([]int32, p.N)
	for i := range all {
		all[i] = int32(i)
	}
	keys, vec := sortedTileKeys(p, all)
	tiles := make([]tileSummary, 0, (p.N+tileSize-1)/tileSize)
	for lo := 0; lo < p.N; lo += tileSize {
		t := tileSummary{members: make([]int32, 0, tileSize)}
		for _, k := range keys[lo:min(lo+tileSize, p.N)] {
			t.members = append(t.members, k.index)
		}
		t.bounds = summarize(p, vec, t.members)
		for s := 0; s < len(t.members); s += subTileSize {
			t.sub = append(t.sub, summarize(p, vec, t.members[s:min(s+subTileSize, len(t.members))]))
		}
		tiles = append(tiles, t)
	}
	return tiles
}

// summarize bounds a group of members.
func summarize(p *read.Population, vec [][3]float64, members []int32) bounds {
	t := bounds{ageLo: math.MaxUint16, accLo: math.MaxUint16, seeksAll: 7, accHiMin: math.MaxUint16, minKm: math.Inf(1)}
	var c [3]float64
	for _, i := range members {
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
		c, n = vec[members[0]], 1
	}
	for d := range c {
		t.centre[d] = c[d] / n
	}
	for _, i := range members {
		t.radius = max(t.radius, angle(t.centre, vec[i]))
	}
	t.radius += angleMargin
	return t
}

// canMatch reports whether some member of a and some member of b could pass
// the orientation, age and distance filters together. It may say yes for
// groups with no compatible pair, never no for groups with one. Distance
// uses the chord between the centres, which never exceeds their angle, so
// no trigonometry is needed and the bound stays safe.
func canMatch(a, b *bounds) bool {
	if a.seeks&b.genders == 0 || b.seeks&a.genders == 0 {
		return false
	}
	if b.ageHi < a.accLo || b.ageLo > a.accHi || a.ageHi < b.accLo || a.ageLo > b.accHi {
		return false
	}
	dx, dy, dz := a.centre[0]-b.centre[0], a.centre[1]-b.centre[1], a.centre[2]-b.centre[2]
	// (a.radius + b.radius) in one term keeps canMatch(a, b) == canMatch(b, a)
	// bit for bit, so sharded and whole runs examine the same tile pairs.
	gap := math.Sqrt(dx*dx+dy*dy+dz*dz) - (a.radius + b.radius)
	return gap <= 0 || gap*kernels.EarthRadiusKm <= min(a.maxKm, b.maxKm)*(1+1e-9)
}

// subPairs returns the sub-tile pairs of tiles a and b that may match:
// bit x·subTiles + y for sub-tile x of a and y of b.
func subPairs(a, b *tileSummary) subMask {
	var m subMask
	for x := range a.sub {
		for y := range b.sub {
			if canMatch(&a.sub[x], &b.sub[y]) {
				m |= 1 << (subTiles*x + y)
			}
		}
	}
	return m
}

// allPass reports whether every member of a and every member of b pass the
// orientation, age and distance filters together, with room to spare on
// distance (the exact test could not disagree), so that a tile pair needs
// no per-pair filtering at all.
func allPass(a, b *bounds) bool {
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
	return (angle(a.centre, b.centre)+(a.radius+b.radius))*kernels.EarthRadiusKm <= lim*(1-1e-6)
}

// interleave returns the Morton code of (x, y): the bits of x and y
// alternated, x in the even positions.
func interleave(x, y uint32) uint64 {
	return spread(x) | spread(y)<<1
}

// spread puts the low 32 bits of v in the even bit positions.
func spread(v uint32) uint64 {
	x := uint64(v)
	x = (x | x<<16) & 0x0000ffff0000ffff
	x = (x | x<<8) & 0x00ff00ff00ff00ff
	x = (x | x<<4) & 0x0f0f0f0f0f0f0f0f
	x = (x | x<<2) & 0x3333333333333333
	x = (x | x<<1) & 0x5555555555555555
	return x
}
