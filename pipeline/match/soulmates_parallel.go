package match

import (
	"cmp"
	"context"
	"slices"

	"golang.org/x/sync/errgroup"
)

// adjEdge is one end's view of an undirected top-K graph edge.
type adjEdge struct {
	to int32
	s  float32
}

// edgeBefore is the greedy order of spec §4 for edges (u, a) and (u, b) seen
// from u: higher score first, then smaller min id, then smaller max id.
func edgeBefore(u int32, a, b adjEdge) bool {
	if a.s != b.s {
		return a.s > b.s
	}
	la, ha := min(u, a.to), max(u, a.to)
	lb, hb := min(u, b.to), max(u, b.to)
	if la != lb {
		return la < lb
	}
	return ha < hb
}

// SoulmatesParallel computes exactly the assignment of Soulmates with the
// locally-dominant-edge algorithm: while edges remain, every unmatched
// member points at its best remaining edge (by the greedy order) and
// mutually pointing pairs are matched. With a strict total order on edges
// this is the greedy matching; rounds run on a pool of workers, and only
// members whose pointer was taken are re-examined.
func SoulmatesParallel(ctx context.Context, lists [][]Cand, workers int) ([]Soulmate, error) {
	n := len(lists)
	// adjacency: each undirected edge once per end
	deg := make([]int32, n+1)
	for i, l := range lists {
		for _, c := range l {
			if c.J < int32(i) && RankOf(lists[c.J], int32(i)) != 0 {
				continue // listed both ways: counted from the smaller end
			}
			deg[i]++
			deg[c.J]++
		}
	}
	start := make([]int32, n+1)
	for i := 0; i < n; i++ {
		start[i+1] = start[i] + deg[i]
	}
	adj := make([]adjEdge, start[n])
	fill := slices.Clone(start[:n])
	for i, l := range lists {
		for _, c := range l {
			if c.J < int32(i) && RankOf(lists[c.J], int32(i)) != 0 {
				continue
			}
			adj[fill[i]] = adjEdge{c.J, c.S}
			fill[i]++
			adj[fill[c.J]] = adjEdge{int32(i), c.S}
			fill[c.J]++
		}
	}
	chunks := func(items int, fn func(lo, hi int) error) error {
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(max(workers, 1))
		step := max(1024, (items+4*workers-1)/(4*workers))
		for lo := 0; lo < items; lo += step {
			hi := min(lo+step, items)
			g.Go(func() error {
				if err := gctx.Err(); err != nil {
					return err
				}
				return fn(lo, hi)
			})
		}
		return g.Wait()
	}
	// sort every adjacency best first
	if err := chunks(n, func(lo, hi int) error {
		for v := lo; v < hi; v++ {
			a := adj[start[v]:start[v+1]]
			slices.SortFunc(a, func(x, y adjEdge) int {
				if edgeBefore(int32(v), x, y) {
					return -1
				}
				if edgeBefore(int32(v), y, x) {
					return 1
				}
				return 0
			})
		}
		return nil
	}); err != nil {
		return nil, err
	}

	mate := make([]int32, n)
	ptr := make([]int32, n)
	cursor := slices.Clone(start[:n])
	for i := range mate {
		mate[i], ptr[i] = -1, -1
	}
	inActive := make([]bool, n)
	active := make([]int32, 0, n)
	for v := 0; v < n; v++ {
		if deg[v] > 0 {
			active = append(active, int32(v))
		}
	}
	for len(active) > 0 {
		for _, v := range active {
			inActive[v] = true
		}
		// 1. each active member points at its best neighbour still unmatched
		if err := chunks(len(active), func(lo, hi int) error {
			for _, v := range active[lo:hi] {
				c := cursor[v]
				for c < start[v+1] && mate[adj[c].to] >= 0 {
					c++
				}
				cursor[v] = c
				ptr[v] = -1
				if c < start[v+1] {
					ptr[v] = adj[c].to
				}
			}
			return nil
		}); err != nil {
			return nil, err
		}
		// 2. mutual pointers are locally dominant: match them. The other
		// end may be inactive (its pointer is still valid: neighbours are
		// only ever removed); when both ends are active the smaller one
		// writes, so no two workers write the same member.
		if err := chunks(len(active), func(lo, hi int) error {
			for _, v := range active[lo:hi] {
				if p := ptr[v]; p >= 0 && ptr[p] == v && (v < p || !inActive[p]) {
					mate[v], mate[p] = p, v
				}
			}
			return nil
		}); err != nil {
			return nil, err
		}
		for _, v := range active {
			inActive[v] = false
		}
		// 3. next round: every unmatched member whose pointer is now
		// matched, active this round or not (a scan of all members, in
		// parallel chunks; per-chunk lists keep the order deterministic)
		step := max(4096, (n+4*workers-1)/(4*max(workers, 1)))
		parts := make([][]int32, (n+step-1)/step)
		if err := chunks(len(parts), func(lo, hi int) error {
			for c := lo; c < hi; c++ {
				for v := c * step; v < min((c+1)*step, n); v++ {
					if mate[v] < 0 && ptr[v] >= 0 && mate[ptr[v]] >= 0 {
						parts[c] = append(parts[c], int32(v))
					}
				}
			}
			return nil
		}); err != nil {
			return nil, err
		}
		active = slices.Concat(parts...)
	}
	var out []Soulmate
	for v := 0; v < n; v++ {
		if p := mate[v]; p > int32(v) {
			var s float32
			for _, e := range adj[start[v]:start[v+1]] {
				if e.to == p {
					s = e.s
					break
				}
			}
			out = append(out, Soulmate{A: int32(v), B: p, S: s, RankA: RankOf(lists[v], p), RankB: RankOf(lists[p], int32(v))})
		}
	}
	slices.SortFunc(out, func(x, y Soulmate) int { return cmp.Compare(x.A, y.A) })
	return out, nil
}
