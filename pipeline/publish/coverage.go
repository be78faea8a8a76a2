package publish

import (
	"cmp"
	"fmt"
	"math"
	"slices"

	"github.com/osmosis/batchmatch/pipeline/match"
	"github.com/osmosis/batchmatch/pipeline/read"
)

// CoverageRow counts, for one group of eligible members, how many got a
// match and how many a soulmate. Groups are coarse (age bands, 2°×2°
// cells) and small cells are merged, so the counts identify nobody.
type CoverageRow struct {
	Group        string `json:"group"`
	Eligible     int64  `json:"eligible"`
	WithMatch    int64  `json:"with_match"`
	WithSoulmate int64  `json:"with_soulmate"`
}

// Coverage is soulmate coverage by age band and by region.
type Coverage struct {
	ByAgeBand []CoverageRow `json:"by_age_band"`
	ByRegion  []CoverageRow `json:"by_region"`
}

// MinCellMembers is the smallest region cell reported on its own (smaller
// cells are merged, so that the counts identify nobody).
const MinCellMembers = 20

var ageBands = []struct {
	lo   uint16
	name string
}{{0, "18-24"}, {25, "25-29"}, {30, "30-34"}, {35, "35-39"}, {40, "40-49"}, {50, "50-59"}, {60, "60+"}}

func ageBand(age uint16) int {
	b := 0
	for k, ab := range ageBands {
		if age >= ab.lo {
			b = k
		}
	}
	return b
}

// regionCell names the 2°×2° cell of a point by its south-west corner.
func regionCell(lat, lon float64) string {
	la := int(math.Floor(lat/2) * 2)
	lo := int(math.Floor(lon/2) * 2)
	ns, ew := "N", "E"
	if la < 0 {
		ns = "S"
	}
	if lo < 0 {
		ew = "W"
	}
	return fmt.Sprintf("%s%02d %s%03d", ns, abs(la), ew, abs(lo))
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// ComputeCoverage aggregates match and soulmate coverage over the population.
func ComputeCoverage(p *read.Population, lists [][]match.Cand, souls []match.Soulmate) *Coverage {
	hasSoul := make([]bool, p.N)
	for _, s := range souls {
		hasSoul[s.A], hasSoul[s.B] = true, true
	}
	bands := make([]CoverageRow, len(ageBands))
	for k := range bands {
		bands[k].Group = ageBands[k].name
	}
	cells := map[string]*CoverageRow{}
	for i := 0; i < p.N; i++ {
		g := p.Geo[i]
		lat := 2 * math.Atan2(g.SinHalfLat, g.CosHalfLat) * 180 / math.Pi
		lon := 2 * math.Atan2(g.SinHalfLon, g.CosHalfLon) * 180 / math.Pi
		name := regionCell(lat, lon)
		c := cells[name]
		if c == nil {
			c = &CoverageRow{Group: name}
			cells[name] = c
		}
		for _, r := range []*CoverageRow{&bands[ageBand(p.Age[i])], c} {
			r.Eligible++
			if len(lists[i]) > 0 {
				r.WithMatch++
			}
			if hasSoul[i] {
				r.WithSoulmate++
			}
		}
	}
	cov := &Coverage{}
	for _, b := range bands {
		if b.Eligible > 0 {
			cov.ByAgeBand = append(cov.ByAgeBand, b)
		}
	}
	other := CoverageRow{Group: fmt.Sprintf("other (cells under %d members)", MinCellMembers)}
	for _, c := range cells {
		if c.Eligible < MinCellMembers {
			other.Eligible += c.Eligible
			other.WithMatch += c.WithMatch
			other.WithSoulmate += c.WithSoulmate
			continue
		}
		cov.ByRegion = append(cov.ByRegion, *c)
	}
	slices.SortFunc(cov.ByRegion, func(a, b CoverageRow) int {
		return cmp.Or(cmp.Compare(b.Eligible, a.Eligible), cmp.Compare(a.Group, b.Group))
	})
	if other.Eligible > 0 {
		cov.ByRegion = append(cov.ByRegion, other)
	}
	return cov
}
