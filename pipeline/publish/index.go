package publish

import (
	"cmp"
	"math/bits"
	"slices"
)

// Index finds a position by id among many ids in constant expected time:
// the ids sorted, cut into buckets by their high bits over the ids' range,
// and a short search inside the bucket. Nights join tonight's members with
// the previous night's tables by id millions of times; a plain binary
// search over a million ids misses the cache at every probe.
type Index struct {
	ids   []int64 // sorted
	pos   []int32 // position of ids[k] in the slice indexed (nil: ids were sorted)
	lo    int64
	shift uint
	start []int32 // bucket b holds ids[start[b]:start[b+1]]
}

// NewIndex indexes ids (any order, no repeats): Of(ids[k]) is k.
func NewIndex(ids []int64) *Index {
	x := &Index{}
	if slices.IsSorted(ids) {
		x.ids = ids
	} else {
		order := make([]int32, len(ids))
		for k := range order {
			order[k] = int32(k)
		}
		slices.SortFunc(order, func(a, b int32) int { return cmp.Compare(ids[a], ids[b]) })
		x.ids, x.pos = make([]int64, len(ids)), order
		for k, o := range order {
			x.ids[k] = ids[o]
		}
	}
	n := len(x.ids)
	if n == 0 {
		return x
	}
	x.lo = x.ids[0]
	span := uint64(x.ids[n-1] - x.lo)
	nb := max(1, n/4)
	x.shift = uint(max(0, bits.Len64(span)-bits.Len(uint(nb))))
	buckets := int(span>>x.shift) + 1
	x.start = make([]int32, buckets+1)
	for _, id := range x.ids {
		x.start[uint64(id-x.lo)>>x.shift+1]++
	}
	for b := 1; b <= buckets; b++ {
		x.start[b] += x.start[b-1]
	}
	return x
}

// Of returns the position of id, or -1.
func (x *Index) Of(id int64) int {
	if len(x.ids) == 0 || id < x.lo || id > x.ids[len(x.ids)-1] {
		return -1
	}
	b := uint64(id-x.lo) >> x.shift
	lo, hi := int(x.start[b]), int(x.start[b+1])
	k, ok := slices.BinarySearch(x.ids[lo:hi], id)
	if !ok {
		return -1
	}
	if x.pos != nil {
		return int(x.pos[lo+k])
	}
	return lo + k
}
