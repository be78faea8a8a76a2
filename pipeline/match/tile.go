package match

import (
	"math"
	"math/bits"

	"github.com/osmosis/batchmatch/kernels"
	"github.com/osmosis/batchmatch/pipeline/read"
)

// dotCell is the side of the cells a tile pair's dot products are computed
// in: one DotTile call per 16×16 cell that holds a kept pair.
const dotCell = 16

// cosMargin is the band around a pair's distance threshold, in cosine
// space, where the unit-vector prefilter defers to the exact haversine test
// of Pair. Rounding in the unit vectors, the threshold and the haversine is
// below 1e-15 there; inside the band the exact test decides, so the
// prefilter never changes a result.
const cosMargin = 1e-11

// tiledPop is the population laid out for tile-by-tile scoring: members in
// blocking order, tileSize to a tile, traits packed k-major per tile (the
// panels kernels.DotTile reads, zero-padded to tileSize columns), and the
// hard-filter columns gathered per tile position pos = tile·tileSize + r.
type tiledPop struct {
	tiles    []tileSummary
	D        int
	panel    []float32 // tile t: panel[t·D·tileSize:], element k of member r at [k·tileSize + r]
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
	n := T * tileSize
	tp := &tiledPop{
		tiles: tiles, D: p.D,
		panel: make([]float32, T*p.D*tileSize),
		idx:   make([]int32, n), gen: make([]uint8, n), seek: make([]uint8, n),
		filt: make([]kernels.FilterCands, T), deal: make([]bool, n), tileDeal: make([]bool, T),
		qbits: make([]uint64, n*kernels.QMaskWords*p.QW), hla: make([]uint64, n*kernels.HLAWords),
		health: make([]bool, n), geo: make([]kernels.GeoPoint, n), havMax: make([]float64, n), maxKm: make([]float32, n),
		genMask: make([][3]uint64, T), seekMask: make([][3]uint64, T),
	}
	QS := kernels.QMaskWords * p.QW
	rows := make([]float32, tileSize*p.D)
	for t := range tiles {
		f := &tp.filt[t]
		for r := range tileSize {
			tp.idx[t*tileSize+r] = -1
			f.AgeMin[r], f.AgeMax[r] = 1, 0 // padding: no age passes
		}
		for r, i := range tiles[t].members {
			pos := t*tileSize + r
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
		kernels.PackPanel(tp.panel[t*p.D*tileSize:(t+1)*p.D*tileSize], rows[:m*p.D], m, p.D)
	}
	return tp
}

// tileWork is one worker's scratch space for a query tile.
type tileWork struct {
	cols [tileSize / subTileSize]uint64 // per 16-row sub-tile: the candidate columns it meets
	mask [tileSize]uint64               // candidates of the current tile passing the cheap filters
	sure [tileSize]uint64               // ... of which certainly within distance
	dots []float32                      // tileSize×tileSize dot products
	cand [tileSize]int32                // positions of one query's kept candidates
	srow [tileSize]float32              // trait-only scores of one row
	qs   [tileSize]kernels.QStats
	sd   [tileSize]float64 // proximity of each kept candidate (0 when not computed)
	far  [tileSize]bool    // ... beyond either member's max_km
	q    kernels.FilterQuery
}

// examine is the start of a tile pair's work, shared by scoring and
// counting: the candidate columns each 16-row sub-tile of a meets (subs,
// bit x·4+y: sub-tile x of a, y of b), the ordered pairs that makes
// (added to st.PairsExamined), and the pairs passing orientation by
// per-tile bit masks, ages, and distance by unit-vector dot products
// against the per-member threshold, in w.mask (kept) and w.sure (kept and
// certainly within distance). It returns how many ordered pairs a scored
// pair stands for (2 for two distinct tiles, whose unordered pairs are
// scored once) and whether any pair is kept.
func (tp *tiledPop) examine(a, b int, subs uint16, w *tileWork, st *ScoreStats) (per int64, kept bool) {
	ta, tb := &tp.tiles[a], &tp.tiles[b]
	na := len(ta.members)
	per = 1 // ordered pairs per scored pair: 2 when both members' heaps get it
	if a != b {
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
		nx, ny := min(subTileSize, na-subTileSize*x), min(subTileSize, len(tb.members)-subTileSize*y)
		w.cols[x] |= (uint64(1)<<ny - 1) << (subTileSize * y)
		st.PairsExamined += per * int64(nx*ny)
		if a == b && x == y {
			st.PairsExamined -= int64(nx)
		}
	}
	if allPass(&ta.bounds, &tb.bounds) { // every pair passes orientation, ages and distance
		for r := 0; r < na; r++ {
			m := w.cols[r/subTileSize]
			if a == b {
				m &^= 1 << r
			}
			w.mask[r], w.sure[r] = m, m
		}
		return per, true
	}
	return per, tp.filter(a, b, w)
}

// countTilePair counts the ordered pairs of tiles a and b (in the sub-tile
// pairs subs) that pass orientation, ages and distance, computing no score
// (CountCompatible).
func (tp *tiledPop) countTilePair(a, b int, subs uint16, w *tileWork, st *ScoreStats) {
	per, kept := tp.examine(a, b, subs, w, st)
	if !kept {
		return
	}
	for r := 0; r < len(tp.tiles[a].members); r++ {
		pi := a*tileSize + r
		st.PairsCompatible += per * int64(bits.OnesCount64(w.sure[r]))
		for m := w.mask[r] &^ w.sure[r]; m != 0; m &= m - 1 {
			pj := b*tileSize + bits.TrailingZeros64(m)
			if _, _, ok := distanceOf(&tp.geo[pi], &tp.geo[pj], tp.havMax[pi], tp.havMax[pj], tp.maxKm[pi], tp.maxKm[pj]); ok {
				st.PairsCompatible += per
			}
		}
	}
}

// scoreTilePair scores tile a against tile b in the sub-tile pairs subs,
// fusing filter → score → top-K: the filters of examine (exact haversine
// only inside the margin band or when proximity is weighted), trait dot
// products by the register-blocked DotTile on the 16×16 dot cells that hold
// a kept pair, then blocked pairs, dealbreakers and the remaining
// components for the survivors, each pair's score computed by total as
// Pair computes it (bit-identical, tested). For a == b every ordered pair
// of the tile is scored into hA; otherwise each unordered pair once,
// offered to hA (a's members) and hB (b's members), and counted as the two
// ordered pairs it stands for.
func (s *Scorer) scoreTilePair(tp *tiledPop, a, b int, subs uint16, hA, hB *tileHeaps, w *tileWork, st *ScoreStats) {
	per, kept := tp.examine(a, b, subs, w, st)
	if !kept {
		return
	}
	p := s.P
	na := len(tp.tiles[a].members)
	// Trait dot products on the 16×16 dot cells (16 rows of a, 16 columns
	// of b) holding a kept pair; a dense tile in one call. The panels are
	// zero-padded to tileSize, so every cell is whole (padding results are
	// never read).
	D := tp.D
	qa := tp.panel[a*D*tileSize : (a+1)*D*tileSize]
	cb := tp.panel[b*D*tileSize : (b+1)*D*tileSize]
	var cells [tileSize / dotCell]uint8 // per row of cells: bit c for column of cells c
	active := 0
	for rc := range tileSize / dotCell {
		var u uint64
		for r := dotCell * rc; r < min(dotCell*rc+dotCell, na); r++ {
			u |= w.mask[r]
		}
		for cc := range tileSize / dotCell {
			if u>>(dotCell*cc)&(1<<dotCell-1) != 0 {
				cells[rc] |= 1 << cc
				active++
			}
		}
	}
	if 4*active >= 3*len(cells)*len(cells) { // dense: one call for the tile
		kernels.DotTile(w.dots, tileSize, qa, cb, tileSize, tileSize, D)
	} else {
		for rc, row := range cells {
			for cc := range tileSize / dotCell {
				if row&(1<<cc) != 0 {
					kernels.DotTile(w.dots[dotCell*rc*tileSize+dotCell*cc:], tileSize, qa[dotCell*rc*D:], cb[dotCell*cc*D:], dotCell, dotCell, D)
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
	// proximity, no dealbreaker, blocked pair or distance test left, S
	// depends on the dot product alone: num = W_t·s_t exactly (the other
	// terms are +0), which kernels.TraitScoreRow computes as total does.
	traitOnly := W.Questions == 0 && W.Biomarker == 0 && W.Proximity == 0 && p.Blocked == nil
	den := W.Trait + W.Questions + W.Proximity
	for r := 0; r < na; r++ {
		m := w.mask[r]
		if m == 0 {
			continue
		}
		pi := a*tileSize + r
		i := int(tp.idx[pi])
		minA := hA.min[r]
		needQ := QS > 0 && (W.Questions != 0 || tp.deal[pi] || tp.tileDeal[b])
		if traitOnly && !needQ {
			fast := m & w.sure[r]
			m &^= fast
			st.PairsCompatible += per * int64(bits.OnesCount64(fast))
			beat := fast & kernels.TraitScoreRow(&w.srow, (*[tileSize]float32)(w.dots[r*tileSize:(r+1)*tileSize]), W.Trait, den, minA, minB)
			for ; beat != 0; beat &= beat - 1 {
				c := bits.TrailingZeros64(beat)
				S := w.srow[c]
				j := int(tp.idx[b*tileSize+c])
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
			w.cand[n] = int32(b*tileSize + bits.TrailingZeros64(mm))
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
			c := pj - b*tileSize
			w.sd[k], w.far[k] = 0, false
			if W.Proximity != 0 || w.sure[r]&(1<<c) == 0 {
				d, limit, ok := distanceOf(&tp.geo[pi], &tp.geo[pj], tp.havMax[pi], tp.havMax[pj], tp.maxKm[pi], tp.maxKm[pj])
				w.sd[k], w.far[k] = proximity(d, limit), !ok
			}
		}
		for k, pj32 := range w.cand[:n] {
			pj := int(pj32)
			c := pj - b*tileSize
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
			if hasH && W.Biomarker != 0 {
				H := kernels.HLAWords
				x, o := kernels.XorOrCount(tp.hla[pi*H:(pi+1)*H], tp.hla[pj*H:(pj+1)*H])
				sh = kernels.HLAScore(x, o)
			}
			S := s.total(traitScore(w.dots[r*tileSize+c]), sq, sh, sd, hasH)
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

// filter fills w.mask and w.sure for tile a against b with the bit-mask
// orientation test and FilterTile, and reports whether any pair is kept.
func (tp *tiledPop) filter(a, b int, w *tileWork) bool {
	na := len(tp.tiles[a].members)
	any := false
	ga, gb := &tp.genMask[b], &tp.seekMask[b]
	for r := 0; r < na; r++ {
		pi := a*tileSize + r
		var m uint64
		sk := tp.seek[pi]
		for g := range 3 {
			if sk&(1<<g) != 0 {
				m |= ga[g]
			}
		}
		m &= gb[tp.gen[pi]] & w.cols[r/subTileSize]
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
