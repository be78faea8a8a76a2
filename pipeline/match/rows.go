package match

import (
	"fmt"
	"math"

	"github.com/osmosis/batchmatch/pipeline/failure"
)

// RowScratch is the scratch space of ListScores, reused from member to
// member (one per goroutine).
type RowScratch struct {
	out []PairScore
}

// ListScores returns the score and components of member i's pair with each
// candidate of its list (TopK's: every pair compatible), as Pair computes
// them (kernels.PairLane, the lane of the tiled loop, so bit for bit the
// list's scores). It fails (failure.Internal) when a pair is not
// compatible or its score is not the one in the list: the tables never
// carry components that disagree with the score. The result is valid
// until the next call with the same scratch.
func (s *Scorer) ListScores(i int, list []Cand, ws *RowScratch) ([]PairScore, error) {
	p := s.P
	ws.out = ws.out[:0]
	for _, c := range list {
		j := int(c.J)
		ps, ok := s.Pair(i, j)
		if !ok {
			return nil, fmt.Errorf("%w: members %d and %d are in a list but not compatible", failure.Internal, p.ID[i], p.ID[j])
		}
		if math.Float32bits(ps.S) != math.Float32bits(c.S) {
			return nil, fmt.Errorf("%w: members %d and %d score %v, their list says %v", failure.Internal, p.ID[i], p.ID[j], ps.S, c.S)
		}
		ws.out = append(ws.out, ps)
	}
	return ws.out, nil
}
