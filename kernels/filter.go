package kernels

// TileWidth is the number of candidates FilterTile examines at once (one
// bit each in a uint64 mask).
const TileWidth = 64

// FilterCands are the hard-filter columns of a tile of TileWidth candidates:
// age and accepted age range, home location as a unit vector, and the cosine
// of the member's largest accepted angle (max_km / R). Padding slots should
// get an age range no query can pass.
type FilterCands struct {
	Age, AgeMin, AgeMax [TileWidth]int32
	X, Y, Z, CosT       [TileWidth]float64
}

// FilterQuery is the same columns for the query.
type FilterQuery struct {
	Age, AgeMin, AgeMax int32
	X, Y, Z, CosT       float64
}

var filterImpl = filterGeneric

// FilterTile applies the age filter both ways and the trig-free distance
// prefilter of one query to a tile of candidates. The pair's distance limit
// is the smaller max_km, whose cosine is the larger CosT, and the great-
// circle angle is within it when the unit vectors' dot product is at least
// that cosine. keep has bit j set when candidate j passes the ages and is
// not certainly too far (its cosine is not below the threshold by more than
// margin); sure, a subset of keep, when it is certainly near enough (above
// by more than margin). Pairs in keep but not in sure need the exact test.
//
//	for j := range TileWidth {
//		ages := c.Age[j] >= q.AgeMin && c.Age[j] <= q.AgeMax && q.Age >= c.AgeMin[j] && q.Age <= c.AgeMax[j]
//		cos := (q.X*c.X[j] + q.Y*c.Y[j]) + q.Z*c.Z[j]   // each product rounded, no FMA
//		thr := c.CosT[j]; if q.CosT > thr { thr = q.CosT }
//		if ages && !(cos < thr-margin) { keep |= 1 << j }
//		if ages && cos > thr+margin    { sure |= 1 << j }
//	}
func FilterTile(q *FilterQuery, c *FilterCands, margin float64) (keep, sure uint64) {
	return filterImpl(q, c, margin)
}

func filterGeneric(q *FilterQuery, c *FilterCands, margin float64) (keep, sure uint64) {
	for j := range TileWidth {
		if c.Age[j] < q.AgeMin || c.Age[j] > q.AgeMax || q.Age < c.AgeMin[j] || q.Age > c.AgeMax[j] {
			continue
		}
		cos := float64(float64(q.X*c.X[j])+float64(q.Y*c.Y[j])) + float64(q.Z*c.Z[j])
		thr := c.CosT[j]
		if q.CosT > thr {
			thr = q.CosT
		}
		if !(cos < thr-margin) {
			keep |= 1 << j
		}
		if cos > thr+margin {
			sure |= 1 << j
		}
	}
	return keep, sure
}
