package match

import (
	"cmp"
	"slices"
)

// Soulmate is one pair of the one-to-one assignment, A < B by index (and id).
type Soulmate struct {
	A, B         int32
	S            float32
	RankA, RankB int32 // rank of B in A's list and of A in B's, 0 when absent
}

// edge is an undirected edge of the top-K graph, A < B.
type edge struct {
	A, B int32
	S    float32
}

// Soulmates applies spec §4's greedy rule to the top-K graph sequentially:
// edges in descending score (ties: smaller min id, then smaller max id),
// keeping an edge when neither end is taken. Scores are the float32 values
// of the lists. The result is sorted by A. It is the reference the parallel
// SoulmatesParallel (used by Run) is tested against.
func Soulmates(lists [][]Cand) []Soulmate {
	var edges []edge
	for i, l := range lists {
		for _, c := range l {
			a, b := int32(i), c.J
			if a > b {
				// Keep the edge once: from the smaller end, or from the larger
				// end only when the smaller end does not list it.
				if RankOf(lists[b], a) != 0 {
					continue
				}
				a, b = b, a
			}
			edges = append(edges, edge{a, b, c.S})
		}
	}
	slices.SortFunc(edges, func(x, y edge) int {
		return cmp.Or(cmp.Compare(y.S, x.S), cmp.Compare(x.A, y.A), cmp.Compare(x.B, y.B))
	})
	taken := make([]bool, len(lists))
	var out []Soulmate
	for _, e := range edges {
		if taken[e.A] || taken[e.B] {
			continue
		}
		taken[e.A], taken[e.B] = true, true
		out = append(out, Soulmate{A: e.A, B: e.B, S: e.S, RankA: RankOf(lists[e.A], e.B), RankB: RankOf(lists[e.B], e.A)})
	}
	slices.SortFunc(out, func(x, y Soulmate) int { return cmp.Compare(x.A, y.A) })
	return out
}
