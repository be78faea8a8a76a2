package pipeline

import (
	"context"
	"fmt"
	"runtime/debug"
	"slices"

	"golang.org/x/sync/errgroup"

	"github.com/osmosis/batchmatch/kernels"
	"github.com/osmosis/batchmatch/pipeline/failure"
	"github.com/osmosis/batchmatch/pipeline/read"
)

// queryTile is the number of query members one worker task scores.
const queryTile = 64

// PairScore is the score of one compatible pair and its components.
type PairScore struct {
	S, Trait, Questions, Biomarker, Proximity float32
	HasBiomarker                              bool
	DistanceKm                                float32
}

// Scorer decides compatibility and scores pairs of a population (spec §2, §3).
type Scorer struct {
	P *read.Population
	W [4]float64 // trait, questions, biomarker, proximity
	// NoBlocking scores every pair instead of skipping tiles that cannot
	// match; the results are identical (tested), only slower.
	NoBlocking bool
	// CountOnly only counts the pairs that pass orientation, ages and
	// distance (PairsCompatible), computing no score: a diagnostic of how
	// tight blocking is (bench/), on a population whose other filters the
	// caller has opened.
	CountOnly bool
	// Shard, when Count > 1, scores only the tasks (a tile against itself
	// and every later tile) whose tile falls in shard Index (ShardOf of the
	// tile number), for one part of a run spread over several processes.
	// Every unordered pair is scored by exactly one shard, still once, so
	// the lists are partial: member i's best K among the pairs this shard
	// scored. The best K of the union of all shards' lists is the whole
	// run's list (MergeLists).
	Shard ShardSpec
	// progress, when set, is told about every finished query tile.
	progress *progress
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

// Cand is one entry of a member's top-K: candidate index and score.
type Cand struct {
	J int32
	S float32
}

// better reports whether a ranks before b: higher score, then lower id
// (index order is id order).
func better(a, b Cand) bool {
	return a.S > b.S || (a.S == b.S && a.J < b.J)
}

// topK is a bounded min-heap on "better": the root is the worst kept entry.
type topK struct {
	k int
	h []Cand
}

func (t *topK) offer(c Cand) {
	if len(t.h) < t.k {
		t.h = append(t.h, c)
		for i := len(t.h) - 1; i > 0; {
			par := (i - 1) / 2
			if !better(t.h[par], t.h[i]) {
				break
			}
			t.h[par], t.h[i] = t.h[i], t.h[par]
			i = par
		}
		return
	}
	if !better(c, t.h[0]) {
		return
	}
	t.h[0] = c
	for i := 0; ; {
		l, r, w := 2*i+1, 2*i+2, i
		if l < len(t.h) && better(t.h[w], t.h[l]) {
			w = l
		}
		if r < len(t.h) && better(t.h[w], t.h[r]) {
			w = r
		}
		if w == i {
			break
		}
		t.h[w], t.h[i] = t.h[i], t.h[w]
		i = w
	}
}

// sorted returns the kept entries best first in a new slice.
func (t *topK) sorted() []Cand {
	out := slices.Clone(t.h)
	slices.SortFunc(out, func(a, b Cand) int {
		if better(a, b) {
			return -1
		}
		if better(b, a) {
			return 1
		}
		return 0
	})
	return out
}

// ScoreStats are the pair counts of the scoring stage. Pairs are ordered
// (query, candidate): each unordered pair is examined and counted twice.
type ScoreStats struct {
	PairsExamined   int64 `json:"pairs_examined"`
	PairsCompatible int64 `json:"pairs_compatible"`
	// nanScores counts compatible pairs whose score came out NaN: none
	// may (validation keeps every input finite and every divisor
	// positive), so TopK fails with failure.Internal rather than drop them.
	nanScores int64
	nanPair   [2]int64 // the ids of one such pair
}

// scoreWorker is one worker's state: its scratch space and the top-K heaps
// of every member it has offered a candidate to, allocated per tile on
// first use. Each ordered pair is scored by exactly one task, so the top-K
// of a member is the best k of the union of its heaps over the workers,
// whichever worker saw which pair.
type scoreWorker struct {
	heaps []*tileHeaps
	work  tileWork
}

// tileHeaps are the heaps of one tile's members and, side by side, the
// score each needs to beat (heapMin), so that the scoring loop reads a
// small array instead of every heap.
type tileHeaps struct {
	h   []topK
	min [blockTile]float32
}

func (w *scoreWorker) tileHeaps(t, n, k int) *tileHeaps {
	if w.heaps[t] == nil {
		th := &tileHeaps{h: make([]topK, n)}
		backing := make([]Cand, n*k) // one allocation, no growth garbage
		for i := range th.h {
			th.h[i] = topK{k: k, h: backing[i*k : i*k : (i+1)*k]}
		}
		for i := range th.min {
			th.min[i] = heapMin(&topK{k: k})
		}
		w.heaps[t] = th
	}
	return w.heaps[t]
}

// offer offers c to member r's heap and refreshes its minimum.
func (th *tileHeaps) offer(r int, c Cand) {
	th.h[r].offer(c)
	th.min[r] = heapMin(&th.h[r])
}

// TopK scores every member against every compatible candidate on a pool of
// workers and returns each member's best k, best first. Scores are
// symmetric, so a task per tile t of blockingTiles scores t against itself
// and against every later tile c > t that canMatch does not rule out
// (unless NoBlocking), each unordered pair once, offering it to both
// members' heaps. Heaps are per worker and merged at the end by member;
// results are written by member index, so they do not depend on scheduling.
func (s *Scorer) TopK(ctx context.Context, k, workers int) ([][]Cand, ScoreStats, error) {
	tiles := blockingTiles(s.P)
	tp := newTiledPop(s.P, tiles)
	out := make([][]Cand, s.P.N)
	stats := make([]ScoreStats, len(tiles))
	if s.progress != nil {
		s.progress.total.Store(int64(len(tiles)))
	}
	workers = max(workers, 1)
	pool := make(chan *scoreWorker, workers)
	all := make([]*scoreWorker, workers)
	for w := range all {
		all[w] = &scoreWorker{heaps: make([]*tileHeaps, len(tiles)), work: tileWork{dots: make([]float32, blockTile*blockTile)}}
		pool <- all[w]
	}
	sharded := s.Shard.Count > 1
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(workers)
	for t := range tiles {
		if gctx.Err() != nil {
			break
		}
		tq := &tiles[t]
		if sharded && ShardOf(int64(t), s.Shard.Count) != s.Shard.Index {
			s.progress.tileDone(0)
			continue
		}
		g.Go(func() (err error) {
			defer func() {
				if r := recover(); r != nil {
					err = fmt.Errorf("%w: scoring tile %d: panic: %v\n%s", failure.Internal, t, r, debug.Stack())
				}
			}()
			w := <-pool // never blocks: at most `workers` tasks run at once
			defer func() { pool <- w }()
			st := &stats[t]
			for c := t; c < len(tiles); c++ {
				if (c-t)%64 == 0 && gctx.Err() != nil {
					return gctx.Err()
				}
				subs := uint16(0xffff)
				if !s.NoBlocking {
					if c != t && !canMatch(&tq.bounds, &tiles[c].bounds) {
						continue
					}
					if subs = subPairs(tq, &tiles[c]); subs == 0 {
						continue
					}
				}
				hA := w.tileHeaps(t, len(tq.members), k)
				var hB *tileHeaps
				if c != t {
					hB = w.tileHeaps(c, len(tiles[c].members), k)
				}
				s.scoreTilePair(tp, t, c, subs, hA, hB, &w.work, st)
			}
			s.progress.tileDone(st.PairsExamined)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, ScoreStats{}, err
	}
	if err := ctx.Err(); err != nil {
		return nil, ScoreStats{}, err
	}
	// merge the workers' heaps, tile by tile in parallel
	g, gctx = errgroup.WithContext(ctx)
	g.SetLimit(workers)
	for t := range tiles {
		g.Go(func() error {
			if gctx.Err() != nil {
				return gctx.Err()
			}
			for r, i := range tiles[t].members {
				m := topK{k: k, h: make([]Cand, 0, k)}
				for _, w := range all {
					if w.heaps[t] != nil {
						for _, c := range w.heaps[t].h[r].h {
							m.offer(c)
						}
					}
				}
				out[i] = m.sorted()
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, ScoreStats{}, err
	}
	var total ScoreStats
	for _, st := range stats { // tile order: totals never depend on scheduling
		total.PairsExamined += st.PairsExamined
		total.PairsCompatible += st.PairsCompatible
		if st.nanScores > 0 && total.nanScores == 0 {
			total.nanPair = st.nanPair
		}
		total.nanScores += st.nanScores
	}
	if total.nanScores > 0 {
		return nil, total, fmt.Errorf("%w: %d compatible pairs scored NaN (one: members %d and %d); nothing was published",
			failure.Internal, total.nanScores, total.nanPair[0], total.nanPair[1])
	}
	return out, total, nil
}

// MergeLists returns the best k of the union of several candidate lists of
// one member (in any order; no candidate in two lists), best first: how the
// partial lists of the shards of a run become the whole run's list.
func MergeLists(k int, lists ...[]Cand) []Cand {
	m := topK{k: k, h: make([]Cand, 0, k)}
	for _, l := range lists {
		for _, c := range l {
			m.offer(c)
		}
	}
	return m.sorted()
}

// rankOf returns the 1-based rank of j in list, or 0.
func rankOf(list []Cand, j int32) int32 {
	for r, c := range list {
		if c.J == j {
			return int32(r + 1)
		}
	}
	return 0
}
