package pipeline

import (
	"math"
	"math/bits"

	"github.com/osmosis/batchmatch/kernels"
	"github.com/osmosis/batchmatch/pipeline/read"
)

// cosMargin is the band around a pair's distance threshold, in cosine
// space, where the unit-vector prefilter defers to the exact haversine test
// of Pair. Rounding in the unit vectors, the threshold and the haversine is
// below 1e-15 there; inside the band the exact test decides, so the
// prefilter never changes a result.
const cosMargin = 1e-11

// tiledPop is the population laid out for tile-by-tile scoring: members in
// blocking order, blockTile to a tile, traits packed k-major per tile (the
// panels kernels.DotTile reads, zero-padded to blockTile columns), and the
// hard-filter columns gathered per tile position pos = tile·blockTile + r.
type tiledPop struct {
	tiles    []tileSummary
	D        int
	panel    []float32 // tile t: panel[t·D·blockTile:], element k of member r at [k·blockTile + r]
	idx      []int32   // population index at pos, -1 for padding
	gen      []uint8
	seek     []uint8
	filt     []kernels.FilterCands // per tile: ages, unit vectors, cos(max_km/R) (-2 past the antipode)
	deal     []bool                // has a dealbreaker question
	tileDeal []bool                // per tile: some member has one
	// per position, gathered from the population so that the scoring loop
	// reads memory in tile order instead of jumping around by member index
	qbits  []uint64 // kernels.QMaskWords·QW per position
	hla    []uint64 // kernels.HLAWords per position
	health []bool
	geo    []kernels.GeoPoint
	havMax []float64
	maxKm  []float32
	// per tile: members of gender g, members seeking gender g
	genMask, seekMask [][3]uint64
}

func newTiledPop(p *read.Population, tiles []tileSummary) *tiledPop {
	T := len(tiles)
	n := T * blockTile
	tp := &tiledPop{
		tiles: tiles, D: p.D,
		panel: make([]float32, T*p.D*blockTile),
		idx:   make([]int32, n), gen: make([]uint8, n), seek: make([]uint8, n),
		filt: make([]kernels.FilterCands, T), deal: make([]bool, n), tileDeal: make([]bool, T),
		qbits: make([]uint64, n*kernels.QMaskWords*p.QW), hla: make([]uint64, n*kernels.HLAWords),
		health: make([]bool, n), geo: make([]kernels.GeoPoint, n), havMax: make([]float64, n), maxKm: make([]float32, n),
		genMask: make([][3]uint64, T), seekMask: make([][3]uint64, T),
	}
	QS := kernels.QMaskWords * p.QW
	rows := make([]float32, blockTile*p.D)
	for t := range tiles {
		f := &tp.filt[t]
		for r := range blockTile {
			tp.idx[t*blockTile+r] = -1
			f.AgeMin[r], f.AgeMax[r] = 1, 0 // padding: no age passes
		}
		for r, i := range tiles[t].members {
			pos := t*blockTile + r
			tp.idx[pos] = i
			tp.gen[pos], tp.seek[pos] = p.Gender[i], p.Seeking[i]
			f.Age[r], f.AgeMin[r], f.AgeMax[r] = int32(p.Age[i]), int32(p.AgeMin[i]), int32(p.AgeMax[i])
			u := unitVector(&p.Geo[i])
			f.X[r], f.Y[r], f.Z[r] = u[0], u[1], u[2]
			if theta := float64(p.MaxKm[i]) / kernels.EarthRadiusKm; theta < math.Pi {
				f.CosT[r] = math.Cos(theta)
			} else {
				f.CosT[r] = -2
			}
			if p.QW > 0 {
				db := p.QBits[int(i)*QS+(kernels.QImportanceMask+kernels.Dealbreaker)*p.QW : int(i)*QS+(kernels.QImportanceMask+kernels.Dealbreaker+1)*p.QW]
				for _, w := range db {
					tp.deal[pos] = tp.deal[pos] || w != 0
				}
				tp.tileDeal[t] = tp.tileDeal[t] || tp.deal[pos]
			}
			H := kernels.HLAWords
			copy(tp.qbits[pos*QS:(pos+1)*QS], p.QBits[int(i)*QS:(int(i)+1)*QS])
			copy(tp.hla[pos*H:(pos+1)*H], p.HLA[int(i)*H:(int(i)+1)*H])
			tp.health[pos], tp.geo[pos], tp.havMax[pos], tp.maxKm[pos] = p.Health[i], p.Geo[i], p.HavMax[i], p.MaxKm[i]
			tp.genMask[t][p.Gender[i]] |= 1 << r
			for g := range 3 {
				if p.Seeking[i]&(1<<g) != 0 {
					tp.seekMask[t][g] |= 1 << r
				}
			}
			copy(rows[r*p.D:(r+1)*p.D], p.Trait[int(i)*p.D:(int(i)+1)*p.D])
		}
		m := len(tiles[t].members)
		kernels.PackPanel(tp.panel[t*p.D*blockTile:(t+1)*p.D*blockTile], rows[:m*p.D], m, p.D)
	}
	return tp
}

// tileWork is one worker's scratch space for a query tile.
type tileWork struct {
	cols [blockTile / subTile]uint64 // per 16-row sub-block: the candidate columns it meets
	mask [blockTile]uint64           // candidates of the current tile passing the cheap filters
	sure [blockTile]uint64           // ... of which certainly within distance
	dots []float32                   // blockTile×blockTile dot products
	cand [blockTile]int32            // positions of one query's kept candidates
	srow [blockTile]float32          // trait-only scores of one row
	qs   [blockTile]kernels.QStats
	sd   [blockTile]float64 // proximity of each kept candidate (0 when not computed)
	far  [blockTile]bool    // ... beyond either member's max_km
	q    kernels.FilterQuery
}

// scoreTilePair scores tile a against tile b in the 16×16 sub-block pairs
// subs (bit x·4+y: sub-block x of a, y of b), fusing filter → score →
// top-K: orientation by per-tile bit masks, ages, distance by unit-vector dot products against the per-member
// threshold (exact haversine only inside the margin band or when proximity
// is weighted), trait dot products by the register-blocked DotTile on the
// 6×16 blocks that hold a passing pair, then blocks, dealbreakers and the
// remaining components for the survivors. Scores are bit-identical to
// Scorer.Pair (tested). For a == b every ordered pair of the tile is scored
// into hA; otherwise each unordered pair once, offered to hA (a's members)
// and hB (b's members), and counted as the two ordered pairs it stands for.
func (s *Scorer) scoreTilePair(tp *tiledPop, a, b int, subs uint16, hA, hB *tileHeaps, w *tileWork, st *ScoreStats) {
	p := s.P
	ta, tb := &tp.tiles[a], &tp.tiles[b]
	na := len(ta.members)
	// the candidate columns each 16-row sub-block of a meets (subs), and
	// the ordered pairs that makes
	per := int64(1) // ordered pairs per scored pair: 2 when both heaps get it
	if hB != nil {
		per = 2
	}
	for x := range w.cols {
		w.cols[x] = 0
	}
	for bit := subs; bit != 0; bit &= bit - 1 {
		k := bits.TrailingZeros16(bit)
		x, y := k/4, k%4
		if x >= len(ta.sub) || y >= len(tb.sub) {
			continue
		}
		nx, ny := min(subTile, na-subTile*x), min(subTile, len(tb.members)-subTile*y)
		w.cols[x] |= (uint64(1)<<ny - 1) << (subTile * y)
		st.PairsExamined += per * int64(nx*ny)
		if a == b && x == y {
			st.PairsExamined -= int64(nx)
		}
	}
	if allPass(&ta.bounds, &tb.bounds) { // every pair passes orientation, ages and distance
		for r := 0; r < na; r++ {
			m := w.cols[r/subTile]
			if a == b {
				m &^= 1 << r
			}
			w.mask[r], w.sure[r] = m, m
		}
	} else if !tp.filter(a, b, w) {
		return
	}

	if s.CountOnly {
		for r := 0; r < na; r++ {
			pi := a*blockTile + r
			st.PairsCompatible += per * int64(bits.OnesCount64(w.sure[r]))
			for m := w.mask[r] &^ w.sure[r]; m != 0; m &= m - 1 {
				pj := b*blockTile + bits.TrailingZeros64(m)
				if _, _, ok := distanceOf(&tp.geo[pi], &tp.geo[pj], tp.havMax[pi], tp.havMax[pj], tp.maxKm[pi], tp.maxKm[pj]); ok {
					st.PairsCompatible += per
				}
			}
		}
		return
	}
	// trait dot products on the 6×16 blocks holding a kept pair
	D := tp.D
	qa := tp.panel[a*D*blockTile : (a+1)*D*blockTile]
	cb := tp.panel[b*D*blockTile : (b+1)*D*blockTile]
	// Whole 16-row × 16-column blocks holding a kept pair; a dense tile in
	// one call. The panels are zero-padded to blockTile, so every block is
	// whole (padding results are never read).
	var blocks [blockTile / 16]uint8
	active := 0
	for rb := range blockTile / 16 {
		var u uint64
		for r := 16 * rb; r < min(16*rb+16, na); r++ {
			u |= w.mask[r]
		}
		for cb := range blockTile / 16 {
			if u>>(16*cb)&0xffff != 0 {
				blocks[rb] |= 1 << cb
				active++
			}
		}
	}
	if 4*active >= 3*len(blocks)*len(blocks) { // dense: one call for the tile
		kernels.DotTile(w.dots, blockTile, qa, cb, blockTile, blockTile, D)
	} else {
		for rb, bits := range blocks {
			for c := range blockTile / 16 {
				if bits&(1<<c) != 0 {
					kernels.DotTile(w.dots[16*rb*blockTile+16*c:], blockTile, qa[16*rb*D:], cb[16*c*D:], 16, 16, D)
				}
			}
		}
	}
	QS := kernels.QMaskWords * p.QW
	W := &s.W
	// The current minimum of every heap a pair may enter (tileHeaps.min)
	// lets the common case, a pair that beats neither, read no heap. A pair
	// equal to a minimum goes to offer, which breaks the tie.
	minB := &infRow // a tile against itself: no second heap
	if hB != nil {
		minB = &hB.min
	}
	// Trait-only fast path: with no weight on questions, biomarker or
	// proximity, no dealbreaker, block or distance test left, S depends on
	// the dot product alone: num = W_t·s_t exactly (the other terms are +0).
	traitOnly := W[1] == 0 && W[2] == 0 && W[3] == 0 && p.Blocked == nil
	den := W[0] + W[1] + W[3]
	for r := 0; r < na; r++ {
		m := w.mask[r]
		if m == 0 {
			continue
		}
		pi := a*blockTile + r
		i := int(tp.idx[pi])
		minA := hA.min[r]
		needQ := QS > 0 && (W[1] != 0 || tp.deal[pi] || tp.tileDeal[b])
		if traitOnly && !needQ {
			fast := m & w.sure[r]
			m &^= fast
			st.PairsCompatible += per * int64(bits.OnesCount64(fast))
			beat := fast & kernels.TraitScoreRow(&w.srow, (*[blockTile]float32)(w.dots[r*blockTile:(r+1)*blockTile]), W[0], den, minA, minB)
			for ; beat != 0; beat &= beat - 1 {
				c := bits.TrailingZeros64(beat)
				S := w.srow[c]
				j := int(tp.idx[b*blockTile+c])
				if S >= minA {
					hA.offer(r, Cand{J: int32(j), S: S})
					minA = hA.min[r]
				}
				if S >= minB[c] {
					hB.offer(c, Cand{J: int32(i), S: S})
				}
			}
			if m == 0 {
				continue
			}
		}
		// the kept candidates, and their questionnaire comparison in one
		// batch when it is needed (weighted, or a dealbreaker in play)
		n := 0
		for mm := m; mm != 0; mm &= mm - 1 {
			w.cand[n] = int32(b*blockTile + bits.TrailingZeros64(mm))
			n++
		}
		if needQ {
			kernels.QuestionsRows(w.qs[:n], tp.qbits[pi*QS:(pi+1)*QS], tp.qbits, w.cand[:n], p.QW)
		}
		// Distances first, in a pass of their own: its iterations are
		// independent and nearly branch-free, so the CPU overlaps the long
		// dependency chains (square root, asin series, divide) of
		// consecutive pairs instead of waiting for each.
		for k, pj32 := range w.cand[:n] {
			pj := int(pj32)
			c := pj - b*blockTile
			w.sd[k], w.far[k] = 0, false
			if W[3] != 0 || w.sure[r]&(1<<c) == 0 {
				d, limit, ok := distanceOf(&tp.geo[pi], &tp.geo[pj], tp.havMax[pi], tp.havMax[pj], tp.maxKm[pi], tp.maxKm[pj])
				w.sd[k], w.far[k] = proximity(d, limit), !ok
			}
		}
		for k, pj32 := range w.cand[:n] {
			pj := int(pj32)
			c := pj - b*blockTile
			j := int(tp.idx[pj])
			if w.far[k] {
				continue
			}
			sd := w.sd[k]
			if p.Blocked != nil && p.IsBlocked(i, j) {
				continue
			}
			var sq float64
			if needQ {
				if w.qs[k].Dealbreak {
					continue
				}
				sq = kernels.QuestionScore(w.qs[k])
			}
			st.PairsCompatible += per
			var sh float64
			hasH := tp.health[pi] && tp.health[pj]
			if hasH && W[2] != 0 {
				H := kernels.HLAWords
				x, o := kernels.XorOrCount(tp.hla[pi*H:(pi+1)*H], tp.hla[pj*H:(pj+1)*H])
				sh = kernels.HLAScore(x, o)
			}
			S := s.total(traitScore(w.dots[r*blockTile+c]), sq, sh, sd, hasH)
			if S != S { // never: ScoreStats.nanScores
				st.nanScores++
				st.nanPair = [2]int64{p.ID[i], p.ID[j]}
				continue
			}
			if S >= minA {
				hA.offer(r, Cand{J: int32(j), S: S})
				minA = hA.min[r]
			}
			if S >= minB[c] {
				hB.offer(c, Cand{J: int32(i), S: S})
			}
		}
	}
}

// infRow is minB for a tile scored against itself: no pair reaches it.
var infRow = func() (r [blockTile]float32) {
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

// filter fills w.mask and w.sure for tile a against b with the bit-mask
// orientation test and FilterTile, and reports whether any pair is kept.
func (tp *tiledPop) filter(a, b int, w *tileWork) bool {
	na := len(tp.tiles[a].members)
	any := false
	ga, gb := &tp.genMask[b], &tp.seekMask[b]
	for r := 0; r < na; r++ {
		pi := a*blockTile + r
		var m uint64
		sk := tp.seek[pi]
		for g := range 3 {
			if sk&(1<<g) != 0 {
				m |= ga[g]
			}
		}
		m &= gb[tp.gen[pi]] & w.cols[r/subTile]
		if a == b {
			m &^= 1 << r
		}
		var keep, sure uint64
		if m != 0 {
			fa := &tp.filt[a]
			// in w: a query on the stack would escape through the
			// dispatch variable and allocate once per row
			w.q = kernels.FilterQuery{Age: fa.Age[r], AgeMin: fa.AgeMin[r], AgeMax: fa.AgeMax[r], X: fa.X[r], Y: fa.Y[r], Z: fa.Z[r], CosT: fa.CosT[r]}
			keep, sure = kernels.FilterTile(&w.q, &tp.filt[b], cosMargin)
			keep &= m
			sure &= m
		}
		w.mask[r], w.sure[r] = keep, sure
		any = any || keep != 0
	}
	return any
}

// distance applies the distance filter of Pair exactly: the great-circle
// distance of i and j, the pair's limit, and whether d ≤ limit.
func distance(p *read.Population, i, j int) (d, limit float64, ok bool) {
	return distanceOf(&p.Geo[i], &p.Geo[j], p.HavMax[i], p.HavMax[j], p.MaxKm[i], p.MaxKm[j])
}

func distanceOf(gi, gj *kernels.GeoPoint, havI, havJ float64, maxI, maxJ float32) (d, limit float64, ok bool) {
	// sin² is monotone on [0, π/2], so a > min(HavMax) means d > the limit;
	// the margin leaves every borderline pair to the exact test below.
	ha := kernels.HaversineA(gi, gj)
	if ha > min(havI, havJ)*(1+1e-9)+1e-300 {
		return 0, 0, false
	}
	limit = float64(min(maxI, maxJ))
	d = kernels.DistanceFromA(ha)
	return d, limit, d <= limit
}

func proximity(d, limit float64) float64 { return min(max(1-d/limit, 0), 1) }

func traitScore(dot float32) float64 { return min(max((1+float64(dot))/2, 0), 1) }

// total combines the components with the weights (spec §3). Each product is
// rounded explicitly so that no compiler may fuse it into an FMA: Pair and
// the tiled loop must agree bit for bit, and a component whose weight is
// zero may be passed as 0 without changing the result.
func (s *Scorer) total(st, sq, sh, sd float64, hasH bool) float32 {
	num := float64(s.W[0]*st) + float64(s.W[1]*sq) + float64(s.W[3]*sd)
	den := s.W[0] + s.W[1] + s.W[3]
	if hasH {
		num += float64(s.W[2] * sh)
		den += s.W[2]
	}
	return float32(num / den)
}
