package match

import (
	"fmt"
	"math"

	"github.com/osmosis/batchmatch/kernels"
	"github.com/osmosis/batchmatch/pipeline/failure"
)

// RowScratch is the scratch space of ListScores, reused from member to
// member (one per goroutine).
type RowScratch struct {
	ti, tj []float32
	qi, qj []uint64
	out    []PairScore
}

// ListScores returns the score and components of member i's pair with each
// candidate of its list (TopK's: every pair compatible), as Pair computes
// them (the same hard filters, kernels.Dot and kernels.PairLane, the lane
// of the tiled loop, so bit for bit the list's scores), with member i's
// trait, questionnaire and columns gathered once for the whole list. It
// fails (failure.Internal) when a pair is not compatible or its score is
// not the one in the list: the tables never carry components that
// disagree with the score. The result is valid until the next call with
// the same scratch.
func (s *Scorer) ListScores(i int, list []Cand, ws *RowScratch) ([]PairScore, error) {
	p := s.P
	ws.out = ws.out[:0]
	if len(list) == 0 {
		return ws.out, nil
	}
	// member i's rows: the population's, or gathered from the tiles into
	// the scratch (kept apart from j's)
	ti := s.trait(i, ws.ti[:0])
	qi := s.qbits(i, ws.qi[:0])
	if p.Trait == nil {
		ws.ti = ti
	}
	if p.QBits == nil {
		ws.qi = qi
	}
	mi := memberOf(p, i)
	params := kernels.ScoreRowParams{W: s.W.kernel(), UseQ: true}
	for _, c := range list {
		j := int(c.J)
		if !filtersPass(p, i, j) {
			return nil, fmt.Errorf("%w: members %d and %d are in a list but not compatible", failure.Internal, p.ID[i], p.ID[j])
		}
		tj := s.trait(j, ws.tj[:0])
		qj := s.qbits(j, ws.qj[:0])
		if p.Trait == nil {
			ws.tj = tj
		}
		if p.QBits == nil {
			ws.qj = qj
		}
		mj := memberOf(p, j)
		qs := kernels.QuestionsBits(qi, qj, p.QW)
		parts, ok := kernels.PairLane(&params, &mi, &mj, kernels.Dot(ti, tj), &qs)
		if !ok {
			return nil, fmt.Errorf("%w: members %d and %d are in a list but not compatible", failure.Internal, p.ID[i], p.ID[j])
		}
		ps := PairScore{
			S: parts.S, Trait: float32(parts.Trait), Questions: float32(parts.Questions), Proximity: float32(parts.Proximity),
			Biomarker: float32(parts.Biomarker), HasBiomarker: parts.HasBiomarker, DistanceKm: float32(parts.DistanceKm),
		}
		if math.Float32bits(ps.S) != math.Float32bits(c.S) {
			return nil, fmt.Errorf("%w: members %d and %d score %v, their list says %v", failure.Internal, p.ID[i], p.ID[j], ps.S, c.S)
		}
		ws.out = append(ws.out, ps)
	}
	return ws.out, nil
}
