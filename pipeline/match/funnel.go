package match

import (
	"github.com/osmosis/batchmatch/kernels"
	"github.com/osmosis/batchmatch/pipeline/read"
)

// Funnel is how the other eligible members fare against one member's hard
// filters, each counted under the first filter it fails in the spec's
// order (orientation both ways, ages both ways, distance, blocks); the
// rest pass them and are compatible unless a dealbreaker question fails.
// It is what `explain --partition` tells of a member without a match.
type Funnel struct {
	Candidates  int64 // the other eligible members
	Orientation int64 // one of the two does not seek the other's gender
	Age         int64 // one of the two is outside the other's accepted ages
	Distance    int64 // farther apart than the smaller max_km
	Blocked     int64
	Passed      int64 // passed the four: compatible, or a dealbreaker fails
}

// FilterFunnel counts member a's funnel over the members of fc (a
// included, not counted); blocked reports the ids a is blocked with. The
// filters are Pair's, bit for bit.
func FilterFunnel(fc *read.FilterColumns, a int, blocked func(id int64) bool) Funnel {
	var f Funnel
	for b := range fc.ID {
		if b == a {
			continue
		}
		f.Candidates++
		switch {
		case fc.Seeking[a]&(1<<fc.Gender[b]) == 0 || fc.Seeking[b]&(1<<fc.Gender[a]) == 0:
			f.Orientation++
		case fc.Age[b] < fc.AgeMin[a] || fc.Age[b] > fc.AgeMax[a] || fc.Age[a] < fc.AgeMin[b] || fc.Age[a] > fc.AgeMax[b]:
			f.Age++
		default:
			ma := kernels.PairMember{Geo: fc.Geo[a], HavMax: fc.HavMax[a], MaxKm: fc.MaxKm[a]}
			mb := kernels.PairMember{Geo: fc.Geo[b], HavMax: fc.HavMax[b], MaxKm: fc.MaxKm[b]}
			if _, _, ok := kernels.PairDistance(&ma, &mb); !ok {
				f.Distance++
			} else if blocked(fc.ID[b]) {
				f.Blocked++
			} else {
				f.Passed++
			}
		}
	}
	return f
}
