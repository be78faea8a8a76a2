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
// The score is kernels.PairLane, one lane of the vector row the tiled loop
// runs (kernels.ScoreRow), so the two agree bit for bit on every CPU. It is
// symmetric bit for bit: Pair(i, j) and Pair(j, i) give the same result.
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
	mi, mj := memberOf(p, i), memberOf(p, j)
	if _, _, ok := kernels.PairDistance(&mi, &mj); !ok {
		return PairScore{}, false
	}
	// 4. blocked pairs
	if p.IsBlocked(i, j) {
		return PairScore{}, false
	}
	// 5. dealbreakers, and the score
	QS := kernels.QMaskWords * p.QW
	qs := kernels.QuestionsBits(p.QBits[i*QS:(i+1)*QS], p.QBits[j*QS:(j+1)*QS], p.QW)
	D := p.D
	params := kernels.ScoreRowParams{W: s.W.kernel(), UseQ: true}
	parts, ok := kernels.PairLane(&params, &mi, &mj, kernels.Dot(p.Trait[i*D:(i+1)*D], p.Trait[j*D:(j+1)*D]), &qs)
	if !ok {
		return PairScore{}, false
	}
	return PairScore{
		S: parts.S, Trait: float32(parts.Trait), Questions: float32(parts.Questions), Proximity: float32(parts.Proximity),
		Biomarker: float32(parts.Biomarker), HasBiomarker: parts.HasBiomarker, DistanceKm: float32(parts.DistanceKm),
	}, true
}

// memberOf gathers what kernels.PairLane needs of member i.
func memberOf(p *read.Population, i int) kernels.PairMember {
	m := kernels.PairMember{Geo: p.Geo[i], HavMax: p.HavMax[i], MaxKm: p.MaxKm[i], Health: p.Health[i]}
	copy(m.HLA[:], p.HLA[i*kernels.HLAWords:(i+1)*kernels.HLAWords])
	return m
}

// kernel is w in the kernels' type.
func (w Weights) kernel() kernels.Weights {
	return kernels.Weights{Trait: w.Trait, Questions: w.Questions, Biomarker: w.Biomarker, Proximity: w.Proximity}
}

// distance is the distance filter of Pair for members i and j.
func distance(p *read.Population, i, j int) (d, limit float64, ok bool) {
	mi, mj := memberOf(p, i), memberOf(p, j)
	return kernels.PairDistance(&mi, &mj)
}
