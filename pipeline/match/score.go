package match

import (
	"context"
	"fmt"
	"runtime/debug"

	"golang.org/x/sync/errgroup"

	"github.com/osmosis/batchmatch/pipeline/failure"
	"github.com/osmosis/batchmatch/pipeline/read"
)

// Scorer decides compatibility and scores pairs of a population (spec §2, §3).
type Scorer struct {
	P *read.Population
	W Weights
	// NoBlocking scores every pair instead of skipping tiles that cannot
	// match; the results are identical (tested), only slower.
	NoBlocking bool
	// Shard, when Count > 1, scores only the tasks (a tile against itself
	// and every later tile) whose tile falls in shard Index (ShardOf of the
	// tile number), for one part of a run spread over several processes.
	// Every unordered pair is scored by exactly one shard, still once, so
	// the lists are partial: member i's best K among the pairs this shard
	// scored. The best K of the union of all shards' lists is the whole
	// run's list (MergeLists).
	Shard ShardSpec
	// Progress, when set, is told about every finished task.
	Progress *Progress
	// ReleaseColumns lets TopK move the population's trait rows and
	// questionnaire bits into its tiled layout and drop the population's
	// copies (P.Trait and P.QBits become nil): the two largest columns are
	// then held once (at 1 M members, D = 128, 690 MB less during scoring
	// and writing). Pair and ExplainPair read them from the tiles after.
	ReleaseColumns bool

	// tiled is the layout of the last TopK, when it released the
	// population's columns; pos is each member's position in it.
	tiled *tiledPop
	pos   []int32
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

// TopK scores every member against every compatible candidate on a pool of
// workers and returns each member's best k, best first. Scores are
// symmetric, so a task per tile t of the blocking b (Block of s.P) scores t
// against itself and against every later tile c > t that canMatch does not
// rule out (unless NoBlocking), each unordered pair once, offering it to
// both members' heaps. Heaps are per worker and merged at the end by
// member; results are written by member index, so they do not depend on
// scheduling.
func (s *Scorer) TopK(ctx context.Context, b *Blocking, k, workers int) ([][]Cand, ScoreStats, error) {
	if b.p != s.P {
		return nil, ScoreStats{}, fmt.Errorf("%w: TopK with the blocking of another population", failure.Internal)
	}
	// The weights are the one input left that could make a score NaN (the
	// pair score clamps every component): refuse any the options did not
	// check, rather than publish NaN scores or drop them.
	if err := s.W.check(); err != nil {
		return nil, ScoreStats{}, fmt.Errorf("%w: scoring with unchecked weights: %w", failure.Internal, err)
	}
	tiles := b.tiles
	tp := newTiledPop(s.P, tiles, s.ReleaseColumns)
	if s.ReleaseColumns {
		// Pair needs the traits and questionnaires from the tiles, and
		// nothing else of them: the rest is garbage once scoring is done.
		s.tiled = &tiledPop{D: tp.D, panel: tp.panel, qtile: tp.qtile, qbits: tp.qbits}
		s.pos = make([]int32, s.P.N)
		for p, i := range tp.idx {
			if i >= 0 {
				s.pos[i] = int32(p)
			}
		}
	}
	workers = max(workers, 1)
	all := make([]*scoreWorker, workers)
	for w := range all {
		all[w] = &scoreWorker{heaps: make([]*tileHeaps, len(tiles)), work: tileWork{dots: make([]float32, tileSize*tileSize)}}
	}
	stats, err := s.runTasks(ctx, tiles, all, func(w *scoreWorker, t, c int, subs subMask, st *ScoreStats) {
		hA := w.tileHeaps(t, len(tiles[t].members), k)
		var hB *tileHeaps
		if c != t {
			hB = w.tileHeaps(c, len(tiles[c].members), k)
		}
		s.scoreTilePair(tp, t, c, subs, hA, hB, &w.work, st)
	})
	if err != nil {
		return nil, ScoreStats{}, err
	}
	// merge the workers' heaps, tile by tile in parallel
	out := make([][]Cand, s.P.N)
	g, gctx := errgroup.WithContext(ctx)
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
	total, err := sumStats(stats)
	if err != nil {
		return nil, total, err
	}
	return out, total, nil
}

// sumStats adds the pair counts of tasks in task order (totals never
// depend on scheduling) and fails (failure.Internal) when any compatible
// pair scored NaN: none may, and a NaN score is never published or dropped.
func sumStats(stats []ScoreStats) (ScoreStats, error) {
	var total ScoreStats
	for _, st := range stats {
		total.PairsExamined += st.PairsExamined
		total.PairsCompatible += st.PairsCompatible
		if st.nanScores > 0 && total.nanScores == 0 {
			total.nanPair = st.nanPair
		}
		total.nanScores += st.nanScores
	}
	if total.nanScores > 0 {
		return total, fmt.Errorf("%w: %d compatible pairs scored NaN (one: members %d and %d); nothing was published",
			failure.Internal, total.nanScores, total.nanPair[0], total.nanPair[1])
	}
	return total, nil
}

// runTasks runs the scoring tasks of s on a pool of the given workers: a
// task per tile t (of this shard) calls pair for t against itself and every
// later tile c that blocking does not rule out (unless NoBlocking), with the
// sub-tile pairs subs that may match. It returns the pair counts per
// task. A panic in a task becomes an internal error naming the tile;
// cancellation is checked every 64 candidate tiles; finished tasks are
// reported to s.Progress.
func (s *Scorer) runTasks(ctx context.Context, tiles []tileSummary, all []*scoreWorker,
	pair func(w *scoreWorker, t, c int, subs subMask, st *ScoreStats)) ([]ScoreStats, error) {
	stats := make([]ScoreStats, len(tiles))
	s.Progress.start(len(tiles))
	pool := make(chan *scoreWorker, len(all))
	for _, w := range all {
		pool <- w
	}
	sharded := s.Shard.Count > 1
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(len(all))
	for t := range tiles {
		if gctx.Err() != nil {
			break
		}
		tq := &tiles[t]
		if sharded && ShardOf(int64(t), s.Shard.Count) != s.Shard.Index {
			s.Progress.taskDone(0)
			continue
		}
		g.Go(func() (err error) {
			defer func() {
				if r := recover(); r != nil {
					err = fmt.Errorf("%w: scoring tile %d: panic: %v\n%s", failure.Internal, t, r, debug.Stack())
				}
			}()
			w := <-pool // never blocks: at most len(all) tasks run at once
			defer func() { pool <- w }()
			st := &stats[t]
			for c := t; c < len(tiles); c++ {
				if (c-t)%64 == 0 && gctx.Err() != nil {
					return gctx.Err()
				}
				subs := allSubs
				if !s.NoBlocking {
					if c != t && !canMatch(&tq.bounds, &tiles[c].bounds) {
						continue
					}
					if subs = subPairs(tq, &tiles[c]); subs == 0 {
						continue
					}
				}
				pair(w, t, c, subs, st)
			}
			s.Progress.taskDone(st.PairsExamined)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return stats, nil
}

// CountCompatible counts the ordered pairs of p that pass the orientation,
// age and distance filters, computing no score: a diagnostic of how tight
// blocking is (bench/), on a population whose other filters the caller has
// opened. It examines the pairs TopK examines, with blocking.
func CountCompatible(ctx context.Context, p *read.Population, workers int) (int64, error) {
	tiles := Block(p).tiles
	tp := newTiledPop(p, tiles, false)
	all := make([]*scoreWorker, max(workers, 1))
	for w := range all {
		all[w] = &scoreWorker{}
	}
	s := &Scorer{P: p}
	stats, err := s.runTasks(ctx, tiles, all, func(w *scoreWorker, t, c int, subs subMask, st *ScoreStats) {
		tp.countTilePair(t, c, subs, &w.work, st)
	})
	var n int64
	for _, st := range stats {
		n += st.PairsCompatible
	}
	return n, err
}

// MaxK bounds --k: every member's heap holds K candidates per worker.
const MaxK = 10000
