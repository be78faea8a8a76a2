package match

import (
	"context"
	"fmt"
	"runtime/debug"
	"slices"

	"golang.org/x/sync/errgroup"

	"github.com/osmosis/batchmatch/pipeline/failure"
	"github.com/osmosis/batchmatch/pipeline/read"
)

// SubsetLists are the lists ScoreSubset computes: for each member of the
// subset, its whole top K (Own); for every other member, the best K of its
// pairs with members of the subset (Others, when asked for). Both are
// indexed by member; the slots that do not apply are nil.
type SubsetLists struct {
	Own    [][]Cand
	Others [][]Cand
	InSub  []bool
}

// ScoreSubset scores every member of sub (population indices, any order,
// no repeats) against every member of the population, with the tiled loop
// of TopK, and returns each sub member's top k and, when others, every
// other member's best k among its pairs with sub members.
//
// The sub members are ordered and cut into tiles of their own (the
// blocking order of Block), and a task per such tile scores it against
// every tile of b that may match (canMatch, subPairs; all of them with
// NoBlocking), each pair offered to the sub member's heap and, when
// others, to the other member's. A member of sub also sits in a tile of b,
// so its pair with itself may be scored: its heap keeps k+1 candidates
// and drops itself. Pairs of two sub members are scored twice, once from
// each side, and only the sub side's heap keeps them. Scores are those of
// TopK bit for bit (the same loop), so the lists are exactly what a whole
// run gives these members (TestScoreSubsetMatchesTopK).
func (s *Scorer) ScoreSubset(ctx context.Context, b *Blocking, sub []int32, k, workers int, others bool) (*SubsetLists, ScoreStats, error) {
	if b.p != s.P {
		return nil, ScoreStats{}, fmt.Errorf("%w: ScoreSubset with the blocking of another population", failure.Internal)
	}
	p := s.P
	out := &SubsetLists{Own: make([][]Cand, p.N), InSub: make([]bool, p.N)}
	if others {
		out.Others = make([][]Cand, p.N)
	}
	for _, i := range sub {
		out.InSub[i] = true
	}
	if len(sub) == 0 {
		return out, ScoreStats{}, nil
	}
	full := b.tiles
	T := len(full)
	tiles := append(slices.Clip(full), subsetTiles(p, sub)...)
	tp := s.newTiledCopy(tiles)
	workers = max(workers, 1)
	all := make([]*scoreWorker, workers)
	for w := range all {
		all[w] = &scoreWorker{heaps: make([]*tileHeaps, len(tiles)), work: tileWork{dots: make([]float32, tileSize*tileSize)}}
	}
	stats := make([]ScoreStats, len(tiles)-T)
	s.Progress.add(len(tiles) - T)
	pool := make(chan *scoreWorker, len(all))
	for _, w := range all {
		pool <- w
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(len(all))
	for x := T; x < len(tiles); x++ {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() (err error) {
			defer func() {
				if r := recover(); r != nil {
					err = fmt.Errorf("%w: scoring subset tile %d: panic: %v\n%s", failure.Internal, x-T, r, debug.Stack())
				}
			}()
			w := <-pool
			defer func() { pool <- w }()
			st := &stats[x-T]
			tq := &tiles[x]
			hA := w.tileHeaps(x, len(tq.members), k+1)
			for c := 0; c < T; c++ {
				if c%64 == 0 && gctx.Err() != nil {
					return gctx.Err()
				}
				subs := ^subMask(0)
				if !s.NoBlocking {
					if !canMatch(&tq.bounds, &tiles[c].bounds) {
						continue
					}
					if subs = subPairs(tq, &tiles[c]); subs == 0 {
						continue
					}
				}
				var hB *tileHeaps
				if others {
					hB = w.tileHeaps(c, len(tiles[c].members), k)
				}
				s.scoreTilePair(tp, x, c, subs, hA, hB, &w.work, st)
			}
			s.Progress.taskDone(st.PairsExamined)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, ScoreStats{}, err
	}
	if err := ctx.Err(); err != nil {
		return nil, ScoreStats{}, err
	}
	total, err := sumStats(stats)
	if err != nil {
		return nil, total, err
	}
	// merge the workers' heaps, tile by tile in parallel
	g, gctx = errgroup.WithContext(ctx)
	g.SetLimit(workers)
	for t := range tiles {
		if t < T && !others {
			continue
		}
		g.Go(func() error {
			if gctx.Err() != nil {
				return gctx.Err()
			}
			own := t >= T
			kk := k
			if own {
				kk = k + 1
			}
			for r, i := range tiles[t].members {
				if !own && out.InSub[i] {
					continue // its own list comes from its subset tile
				}
				m := topK{k: kk, h: make([]Cand, 0, kk)}
				for _, w := range all {
					if w.heaps[t] != nil {
						for _, c := range w.heaps[t].h[r].h {
							m.offer(c)
						}
					}
				}
				l := m.sorted()
				if own {
					l = slices.DeleteFunc(l, func(c Cand) bool { return c.J == i })
					out.Own[i] = l[:min(len(l), k)]
				} else {
					out.Others[i] = l
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, total, err
	}
	return out, total, nil
}

// subsetTiles orders the members of sub as blockingTiles orders a
// population (orientation group, 1° cell, max_km class, age band, Morton
// code) and cuts them into summarised tiles and sub-tiles.
func subsetTiles(p *read.Population, sub []int32) []tileSummary {
	keys, vec := sortedTileKeys(p, sub)
	// A subset is sparse: cut a tile short where the orientation group, the
	// 1° cell, the max_km class or the age band changes (once it holds a
	// sub-tile), so that each tile stays as compact as the population's
	// and meets as few tiles as they do.
	tiles := make([]tileSummary, 0, (len(sub)+tileSize-1)/tileSize)
	for lo := 0; lo < len(keys); {
		hi := min(lo+tileSize, len(keys))
		for e := lo + subTileSize; e < hi; e++ {
			if !keys[e-1].sameCell(keys[e]) {
				hi = e
				break
			}
		}
		t := tileSummary{members: make([]int32, 0, hi-lo)}
		for _, k := range keys[lo:hi] {
			t.members = append(t.members, k.index)
		}
		lo = hi
		t.bounds = summarize(p, vec, t.members)
		for s := 0; s < len(t.members); s += subTileSize {
			t.sub = append(t.sub, summarize(p, vec, t.members[s:min(s+subTileSize, len(t.members))]))
		}
		tiles = append(tiles, t)
	}
	return tiles
}

// add adds tasks to the total of a Progress (a run that scores in several
// passes, such as Incremental's).
func (p *Progress) add(tasks int) {
	if p != nil {
		p.total.Add(int64(tasks))
	}
}
