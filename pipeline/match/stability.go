package match

import (
	"context"
	"fmt"
	"math"
	"math/bits"
	"runtime/debug"

	"golang.org/x/sync/errgroup"

	"github.com/osmosis/batchmatch/kernels"
	"github.com/osmosis/batchmatch/pipeline/failure"
)

// Certificate is the stability check of a soulmate assignment against
// every compatible pair of the population, not only the top-K graph it was
// computed on (the manifest's "stability").
//
// A blocking pair is two compatible members who each score strictly
// higher with the other than with their soulmate (or have none). The
// greedy rule leaves none inside the top-K graph. Outside it, a member
// whose soulmate scores at least their K-th candidate (or who has fewer
// than K candidates: every compatible member is then in their list) cannot
// be in one: anyone they prefer is in their list, so the pair is an edge
// of the graph. Only the other members are checked, against each other.
type Certificate struct {
	// MembersChecked could be in a blocking pair: a full list and no
	// soulmate, or one scoring below their K-th candidate. The others are
	// certified by their lists alone.
	MembersChecked int64 `json:"members_checked"`
	// PairsExamined are the ordered pairs of checked members the blocking
	// tiles did not rule out; PairsScored of them were scored (the rest
	// failed a filter, could not beat both soulmates, or are two members
	// without a soulmate, whom compatibility alone decides).
	PairsExamined int64 `json:"pairs_examined"`
	PairsScored   int64 `json:"pairs_scored"`
	// BlockingPairs in the whole compatible graph (unordered), and how
	// many members are in at least one.
	BlockingPairs          int64 `json:"blocking_pairs"`
	MembersInBlockingPairs int64 `json:"members_in_blocking_pairs"`
}

// Stability checks the assignment souls over lists (each member's top k,
// TopK's) against every compatible pair of the population: it scores the
// pairs between the members it must check (Certificate) with the tiled
// loop's filters, dot cells, questionnaire lanes and kernels.ScoreRow, so
// each pair's score and compatibility are Pair's bit for bit
// (TestStabilityMatchesPair), skipping the pairs whose trait score alone
// bounds their score below one of the two soulmates' and, between two
// members without a soulmate, computing no score at all (every compatible
// such pair blocks).
func (s *Scorer) Stability(ctx context.Context, lists [][]Cand, souls []Soulmate, k, workers int) (*Certificate, error) {
	p := s.P
	thr := make([]float32, p.N) // the score a partner must beat: the soulmate's, or -Inf
	for i := range thr {
		thr[i] = float32(math.Inf(-1))
	}
	for _, sm := range souls {
		thr[sm.A], thr[sm.B] = sm.S, sm.S
	}
	// Checked members without a soulmate (every compatible pair of two of
	// them blocks: no score needed) are tiled apart from those with one.
	var unmatched, matched []int32
	for i, l := range lists {
		if len(l) >= k && thr[i] < l[k-1].S {
			if math.IsInf(float64(thr[i]), -1) {
				unmatched = append(unmatched, int32(i))
			} else {
				matched = append(matched, int32(i))
			}
		}
	}
	cert := &Certificate{MembersChecked: int64(len(unmatched) + len(matched))}
	if cert.MembersChecked < 2 {
		return cert, nil
	}
	tiles := subsetTiles(p, unmatched)
	nu := len(tiles) // tiles [0, nu) hold members without a soulmate
	tiles = append(tiles, subsetTiles(p, matched)...)
	tp := s.newTiledCopy(tiles)
	thrPos := make([]float32, len(tp.idx)) // thr by tile position (padding: +Inf, never read)
	for pos, i := range tp.idx {
		thrPos[pos] = inf32
		if i >= 0 {
			thrPos[pos] = thr[i]
		}
	}
	type result struct {
		examined, scored, blocking int64
		members                    []int32
	}
	res := make([]result, len(tiles))
	W := &s.W
	// The best score a pair can have given its trait score: every other
	// component at 1, with or without the biomarker, a hair above for the
	// rounding of total.
	bound := func(st float64) float64 {
		a := (W.Trait*st + W.Questions + W.Proximity) / (W.Trait + W.Questions + W.Proximity)
		b := (W.Trait*st + W.Questions + W.Proximity + W.Biomarker) / (W.Trait + W.Questions + W.Proximity + W.Biomarker)
		return max(a, b)*(1+1e-6) + 1e-7
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(workers, 1))
	for t := range tiles {
		g.Go(func() (err error) {
			defer func() {
				if r := recover(); r != nil {
					err = fmt.Errorf("%w: stability check, tile %d: panic: %v\n%s", failure.Internal, t, r, debug.Stack())
				}
			}()
			w := &tileWork{dots: make([]float32, tileSize*tileSize)}
			var st ScoreStats
			rs := &res[t]
			inBlocking := map[int32]bool{}
			var qi, qj []uint64
			params := kernels.ScoreRowParams{W: s.W.kernel(), UseQ: p.QW > 0}
			for c := t; c < len(tiles); c++ {
				if (c-t)%64 == 0 && gctx.Err() != nil {
					return gctx.Err()
				}
				subs := ^subMask(0)
				if !s.NoBlocking {
					if c != t && !canMatch(&tiles[t].bounds, &tiles[c].bounds) {
						continue
					}
					if subs = subPairs(&tiles[t], &tiles[c]); subs == 0 {
						continue
					}
				}
				before := st.PairsExamined
				_, kept := tp.examine(t, c, subs, w, &st)
				rs.examined += st.PairsExamined - before
				if !kept {
					continue
				}
				na := len(tiles[t].members)
				scored := t >= nu || c >= nu // else neither has a soulmate: compatibility alone decides
				if scored {
					tp.dotCells(t, c, na, w)
				}
				// the members of this tile pair in a blocking pair: rows of t,
				// columns of c (marked in inBlocking once per tile pair)
				var rowHits, colHits uint64
				for r := 0; r < na; r++ {
					pi := t*tileSize + r
					i := int(tp.idx[pi])
					m := w.mask[r]
					if c == t {
						m &^= uint64(2)<<r - 1 // each unordered pair once: columns after r
					}
					if m == 0 {
						continue
					}
					if !scored {
						if p.Blocked == nil && !tp.tileDeal[t] && !tp.tileDeal[c] {
							// no blocks or dealbreakers in play: the pairs the
							// prefilter is sure of all block; the rest need
							// the exact distance
							hits := m & w.sure[r]
							if rest := m &^ w.sure[r]; rest != 0 {
								mi := memberOf(p, i)
								for ; rest != 0; rest &= rest - 1 {
									col := bits.TrailingZeros64(rest)
									mj := memberOf(p, int(tp.idx[c*tileSize+col]))
									if _, _, ok := kernels.PairDistance(&mi, &mj); ok {
										hits |= 1 << col
									}
								}
							}
							if hits != 0 {
								rs.blocking += int64(bits.OnesCount64(hits))
								rowHits |= 1 << r
								colHits |= hits
							}
							continue
						}
						for ; m != 0; m &= m - 1 {
							col := bits.TrailingZeros64(m)
							pj := c*tileSize + col
							j := int(tp.idx[pj])
							// PairLane's hard filters without its score: the
							// exact distance where the prefilter was not sure,
							// blocks, dealbreakers
							if w.sure[r]&(1<<col) == 0 {
								mi, mj := memberOf(p, i), memberOf(p, j)
								if _, _, ok := kernels.PairDistance(&mi, &mj); !ok {
									continue
								}
							}
							if p.IsBlocked(i, j) {
								continue
							}
							if tp.deal[pi] || tp.deal[pj] {
								qa, qb := s.qbits(i, qi), s.qbits(j, qj)
								qi, qj = qa[:0], qb[:0]
								if kernels.QuestionsBits(qa, qb, p.QW).Dealbreak {
									continue
								}
							}
							rs.blocking++
							rowHits |= 1 << r
							colHits |= 1 << col
						}
						continue
					}
					// Lanes whose trait score bounds them below one of the
					// two soulmates leave the row, and blocked pairs; the
					// rest are scored as the tiled loop scores them
					// (kernels.ScoreRow: PairLane's bits, hard filters
					// included).
					ti := thrPos[pi]
					dots := (*[tileSize]float32)(w.dots[r*tileSize : (r+1)*tileSize])
					for mm := m; mm != 0; mm &= mm - 1 {
						col := bits.TrailingZeros64(mm)
						pj := c*tileSize + col
						if bound(traitLane(dots[col])) <= float64(max(ti, thrPos[pj])) || p.IsBlocked(i, int(tp.idx[pj])) {
							m &^= 1 << col
						}
					}
					if m == 0 {
						continue
					}
					if params.UseQ {
						tp.questionLanes(t, c, r, m, p.QW, w)
					}
					w.pq = tp.ptile[t].Member(r)
					ok, _, _ := kernels.ScoreRow(&w.srow, &params, &w.pq, &tp.ptile[c], dots, &w.ql, m, inf32, &infRow)
					rs.scored += int64(bits.OnesCount64(ok))
					for ; ok != 0; ok &= ok - 1 {
						col := bits.TrailingZeros64(ok)
						pj := c*tileSize + col
						if S := w.srow[col]; S > ti && S > thrPos[pj] {
							rs.blocking++
							rowHits |= 1 << r
							colHits |= 1 << col
						}
					}
				}
				for ; rowHits != 0; rowHits &= rowHits - 1 {
					inBlocking[tp.idx[t*tileSize+bits.TrailingZeros64(rowHits)]] = true
				}
				for ; colHits != 0; colHits &= colHits - 1 {
					inBlocking[tp.idx[c*tileSize+bits.TrailingZeros64(colHits)]] = true
				}
			}
			for i := range inBlocking {
				rs.members = append(rs.members, i)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	members := map[int32]bool{}
	for _, r := range res {
		cert.PairsExamined += r.examined
		cert.PairsScored += r.scored
		cert.BlockingPairs += r.blocking
		for _, i := range r.members {
			members[i] = true
		}
	}
	cert.MembersInBlockingPairs = int64(len(members))
	return cert, nil
}

// inf32 is +Inf as a float32.
var inf32 = float32(math.Inf(1))

// traitLane is the trait component of a pair with trait dot product dot,
// as kernels.PairLane computes it: clamp((1 + dot)/2, 0, 1).
func traitLane(dot float32) float64 {
	st := float64(1+float64(dot)) * 0.5
	if !(st > 0) {
		st = 0
	}
	if !(st < 1) {
		st = 1
	}
	return st
}
