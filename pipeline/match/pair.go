package match

import (
	"github.com/osmosis/batchmatch/kernels"
	"github.com/osmosis/batchmatch/pipeline/read"
)

// PairScore is the score of one compatible pair and its components.
type PairScore struct {
	S, Trait, Questions, Biomarker, Proximity float32
	HasBiomarker                              bool
	DistanceKm                                float32
}

// Pair returns the score of members i and j and whether they are compatible.
// It is symmetric bit for bit: Pair(i, j) and Pair(j, i) give the same result.
func (s *Scorer) Pair(i, j int) (PairScore, bool) {
	p := s.P
	if i == j {
		return PairScore{}, false
	}
	// 1. orientation, both ways
	if p.Seeking[i]&(1<<p.Gender[j]) == 0 || p.Seeking[j]&(1<<p.Gender[i]) == 0 {
		return PairScore{}, false
	}
	// 2. age ranges, both ways
	if p.Age[j] < p.AgeMin[i] || p.Age[j] > p.AgeMax[i] || p.Age[i] < p.AgeMin[j] || p.Age[i] > p.AgeMax[j] {
		return PairScore{}, false
	}
	// 3. distance
	d, limit, ok := distance(p, i, j)
	if !ok {
		return PairScore{}, false
	}
	// 4. blocks
	if p.IsBlocked(i, j) {
		return PairScore{}, false
	}
	// 5. dealbreakers
	QS := kernels.QMaskWords * p.QW
	qs := kernels.QuestionsBits(p.QBits[i*QS:(i+1)*QS], p.QBits[j*QS:(j+1)*QS], p.QW)
	if qs.Dealbreak {
		return PairScore{}, false
	}
	D := p.D
	st := traitScore(kernels.Dot(p.Trait[i*D:(i+1)*D], p.Trait[j*D:(j+1)*D]))
	sq := kernels.QuestionScore(qs)
	sd := proximity(d, limit)
	ps := PairScore{Trait: float32(st), Questions: float32(sq), Proximity: float32(sd), DistanceKm: float32(d)}
	hasH := p.Health[i] && p.Health[j]
	var sh float64
	if hasH {
		H := kernels.HLAWords
		x, o := kernels.XorOrCount(p.HLA[i*H:(i+1)*H], p.HLA[j*H:(j+1)*H])
		sh = kernels.HLAScore(x, o)
		ps.Biomarker, ps.HasBiomarker = float32(sh), true
	}
	ps.S = s.total(st, sq, sh, sd, hasH)
	return ps, true
}

// distance applies the distance filter of Pair exactly: the great-circle
// distance of i and j, the pair's limit, and whether d ≤ limit.
func distance(p *read.Population, i, j int) (d, limit float64, ok bool) {
	return distanceOf(&p.Geo[i], &p.Geo[j], p.HavMax[i], p.HavMax[j], p.MaxKm[i], p.MaxKm[j])
}

func distanceOf(gi, gj *kernels.GeoPoint, havI, havJ float64, maxI, maxJ float32) (d, limit float64, ok bool) {
	// sin² is monotone on [0, π/2], so a > min(HavMax) means d > the limit;
	// the margin leaves every borderline pair to the exact test below.
	ha := kernels.HaversineA(gi, gj)
	if ha > min(havI, havJ)*(1+1e-9)+1e-300 {
		return 0, 0, false
	}
	limit = float64(min(maxI, maxJ))
	d = kernels.DistanceFromA(ha)
	return d, limit, d <= limit
}

func proximity(d, limit float64) float64 { return min(max(1-d/limit, 0), 1) }

func traitScore(dot float32) float64 { return min(max((1+float64(dot))/2, 0), 1) }

// total combines the components with the weights (spec §3). Each product is
// rounded explicitly so that no compiler may fuse it into an FMA: Pair and
// the tiled loop must agree bit for bit, and a component whose weight is
// zero may be passed as 0 without changing the result.
func (s *Scorer) total(st, sq, sh, sd float64, hasH bool) float32 {
	w := &s.W
	num := float64(w.Trait*st) + float64(w.Questions*sq) + float64(w.Proximity*sd)
	den := w.Trait + w.Questions + w.Proximity
	if hasH {
		num += float64(w.Biomarker * sh)
		den += w.Biomarker
	}
	return float32(num / den)
}
