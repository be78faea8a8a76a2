package match

import (
	"math"
	"slices"
)

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

// offer offers c to member r's heap and refreshes its minimum.
func (th *tileHeaps) offer(r int, c Cand) {
	th.h[r].offer(c)
	th.min[r] = heapMin(&th.h[r])
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

// RankOf returns the 1-based rank of j in list, or 0.
func RankOf(list []Cand, j int32) int32 {
	for r, c := range list {
		if c.J == j {
			return int32(r + 1)
		}
	}
	return 0
}

// tileHeaps are the heaps of one tile's members and, side by side, the
// score each needs to beat (heapMin), so that the scoring loop reads a
// small array instead of every heap.
type tileHeaps struct {
	h   []topK
	min [tileSize]float32
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

// infRow is minB for a tile scored against itself: no pair reaches it.
var infRow = func() (r [tileSize]float32) {
	for i := range r {
		r[i] = float32(math.Inf(1))
	}
	return r
}()

// heapMin is the score a candidate must reach to enter h: the root's score
// once h is full, -Inf before.
func heapMin(h *topK) float32 {
	if len(h.h) < h.k {
		return float32(math.Inf(-1))
	}
	return h.h[0].S
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
