package match

import (
	"slices"
	"sync"

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
	// 1, 2, 4: orientation and age ranges, both ways; blocked pairs
	if !filtersPass(p, i, j) {
		return PairScore{}, false
	}
	// 3. distance
	mi, mj := memberOf(p, i), memberOf(p, j)
	if _, _, ok := kernels.PairDistance(&mi, &mj); !ok {
		return PairScore{}, false
	}
	// 5. dealbreakers, and the score
	bufs := pairBufPool.Get().(*pairBufs)
	defer pairBufPool.Put(bufs)
	qs := kernels.QuestionsBits(s.qbits(i, bufs.qi[:0]), s.qbits(j, bufs.qj[:0]), p.QW)
	params := kernels.ScoreRowParams{W: s.W.kernel(), UseQ: true}
	parts, ok := kernels.PairLane(&params, &mi, &mj, kernels.Dot(s.trait(i, bufs.ti[:0]), s.trait(j, bufs.tj[:0])), &qs)
	if !ok {
		return PairScore{}, false
	}
	return PairScore{
		S: parts.S, Trait: float32(parts.Trait), Questions: float32(parts.Questions), Proximity: float32(parts.Proximity),
		Biomarker: float32(parts.Biomarker), HasBiomarker: parts.HasBiomarker, DistanceKm: float32(parts.DistanceKm),
	}, true
}

// filtersPass reports whether members i and j pass the hard filters that
// need no arithmetic: orientation and age ranges, both ways, and blocked
// pairs (the distance and dealbreakers are kernels.PairLane's).
func filtersPass(p *read.Population, i, j int) bool {
	if p.Seeking[i]&(1<<p.Gender[j]) == 0 || p.Seeking[j]&(1<<p.Gender[i]) == 0 {
		return false
	}
	if p.Age[j] < p.AgeMin[i] || p.Age[j] > p.AgeMax[i] || p.Age[i] < p.AgeMin[j] || p.Age[i] > p.AgeMax[j] {
		return false
	}
	return !p.IsBlocked(i, j)
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

// pairBufs is room for two members' traits and questionnaires gathered
// from the tiles (pooled: the kernels' dispatch makes a stack buffer
// escape, and Pair runs for every row of the matches table).
type pairBufs struct {
	ti, tj [256]float32
	qi, qj [4 * kernels.QMaskWords]uint64
}

var pairBufPool = sync.Pool{New: func() any { return new(pairBufs) }}

// trait returns member i's normalised trait: the population's row, or,
// once TopK released it, the row gathered from the tile panel into buf.
func (s *Scorer) trait(i int, buf []float32) []float32 {
	p := s.P
	D := p.D
	if p.Trait != nil {
		return p.Trait[i*D : (i+1)*D]
	}
	pos := int(s.pos[i])
	panel := s.tiled.panel[pos/tileSize*D*tileSize : (pos/tileSize+1)*D*tileSize]
	r := pos % tileSize
	base := r / kernels.PanelBlock * kernels.PanelBlock * D
	buf = slices.Grow(buf[:0], D)[:D]
	for k := range D {
		buf[k] = panel[base+k*kernels.PanelBlock+r%kernels.PanelBlock]
	}
	return buf
}

// qbits returns member i's bit-sliced questionnaire: the population's, or,
// once TopK released it, the one gathered from the tiles into buf.
func (s *Scorer) qbits(i int, buf []uint64) []uint64 {
	p := s.P
	QS := kernels.QMaskWords * p.QW
	if p.QBits != nil {
		return p.QBits[i*QS : (i+1)*QS]
	}
	pos := int(s.pos[i])
	if s.tiled.qtile == nil {
		return s.tiled.qbits[pos*QS : (pos+1)*QS]
	}
	buf = slices.Grow(buf[:0], QS)[:QS]
	qt := &s.tiled.qtile[pos/tileSize]
	for k := range kernels.QMaskWords {
		buf[k] = qt[k][pos%tileSize]
	}
	return buf
}

// Questionnaire returns member i's answers, accept masks and importance
// levels, unpacked from the bit-sliced form (the population's, or the
// tiles' once TopK released it).
func (s *Scorer) Questionnaire(i int) (ans, acc, imp []byte) {
	p := s.P
	ans, acc, imp = make([]byte, p.Q), make([]byte, p.Q), make([]byte, p.Q)
	kernels.UnpackQuestions(ans, acc, imp, s.qbits(i, nil))
	return ans, acc, imp
}
