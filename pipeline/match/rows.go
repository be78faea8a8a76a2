package match

import (
	"fmt"
	"math"

	"github.com/osmosis/batchmatch/kernels"
	"github.com/osmosis/batchmatch/pipeline/failure"
)

// RowScratch is the scratch space of ListScores: panels and dot products,
// reused from member to member (one per goroutine).
type RowScratch struct {
	q, c, dots []float32
	rows       []float32
	out        []PairScore
}

// ListScores returns the score and components of member i's pair with each
// candidate of its list (TopK's: every pair compatible), as Pair computes
// them, bit for bit: the same component functions, the trait dot products
// of the whole list in one kernels.DotTile call instead of one latency-bound
// kernels.Dot chain per pair. It fails (failure.Internal) when a pair's
// score is not the one in the list. The result is valid until the next
// call with the same scratch.
func (s *Scorer) ListScores(i int, list []Cand, ws *RowScratch) ([]PairScore, error) {
	p := s.P
	n, D := len(list), p.D
	ws.out = ws.out[:0]
	if n == 0 {
		return ws.out, nil
	}
	ws.q = grow(ws.q, kernels.PanelLen(1, D))
	ws.c = grow(ws.c, kernels.PanelLen(n, D))
	ws.rows = grow(ws.rows, n*D)
	// whole blocks of 16 candidates (the panel pads with zeros): a partial
	// block would take DotTile's generic path
	nc := (n + kernels.PanelBlock - 1) / kernels.PanelBlock * kernels.PanelBlock
	ws.dots = grow(ws.dots, nc)
	kernels.PackPanel(ws.q, p.Trait[i*D:(i+1)*D], 1, D)
	for k, c := range list {
		copy(ws.rows[k*D:(k+1)*D], p.Trait[int(c.J)*D:(int(c.J)+1)*D])
	}
	kernels.PackPanel(ws.c, ws.rows[:n*D], n, D)
	kernels.DotTile(ws.dots, nc, ws.q, ws.c, 1, nc, D)
	QS, H := kernels.QMaskWords*p.QW, kernels.HLAWords
	for k, c := range list {
		j := int(c.J)
		d, limit, _ := distance(p, i, j)
		qs := kernels.QuestionsBits(p.QBits[i*QS:(i+1)*QS], p.QBits[j*QS:(j+1)*QS], p.QW)
		st := traitScore(ws.dots[k])
		sq := kernels.QuestionScore(qs)
		sd := proximity(d, limit)
		ps := PairScore{Trait: float32(st), Questions: float32(sq), Proximity: float32(sd), DistanceKm: float32(d)}
		hasH := p.Health[i] && p.Health[j]
		var sh float64
		if hasH {
			x, o := kernels.XorOrCount(p.HLA[i*H:(i+1)*H], p.HLA[j*H:(j+1)*H])
			sh = kernels.HLAScore(x, o)
			ps.Biomarker, ps.HasBiomarker = float32(sh), true
		}
		ps.S = s.total(st, sq, sh, sd, hasH)
		if math.Float32bits(ps.S) != math.Float32bits(c.S) {
			return nil, fmt.Errorf("%w: members %d and %d score %v, their list says %v", failure.Internal, p.ID[i], p.ID[j], ps.S, c.S)
		}
		ws.out = append(ws.out, ps)
	}
	return ws.out, nil
}

func grow(b []float32, n int) []float32 {
	if cap(b) < n {
		return make([]float32, n)
	}
	return b[:n]
}
