package match

import (
	"math"
	"math/bits"
	"unsafe"

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
	// per tile, gathered from the population structure-of-arrays, so that
	// the scoring loop reads memory in tile order and eight lanes at once:
	// what the pair score needs of each member (location, max_km, HLA,
	// health), and the bit-sliced questionnaires when they fit one word
	// (Q ≤ 64; else per position, QMaskWords·QW words each, in qbits)
	ptile []kernels.PairTile
	qtile []kernels.QTile
	qbits []uint64
	// per tile: members of gender g, members seeking gender g
	genMask, seekMask [][3]uint64
}

// newTiledPop lays p out for tile-by-tile scoring. With adopt, the trait
// rows and questionnaire bits are not copied: adoptColumns rearranges the
// population's own arrays into the tiled layout afterwards.
func newTiledPop(p *read.Population, tiles []tileSummary, adopt bool) *tiledPop {
	return newTiledPopFrom(&Scorer{P: p}, tiles, adopt)
}

// newTiledCopy lays s's population out in tiles (a subset's, for
// ScoreSubset and Stability), copying the trait rows and questionnaires
// from the population or, once a TopK released them, from its tiles.
func (s *Scorer) newTiledCopy(tiles []tileSummary) *tiledPop {
	return newTiledPopFrom(s, tiles, false)
}

// newTiledPopFrom is newTiledPop reading the traits and questionnaires
// through src (Scorer.trait and qbits).
func newTiledPopFrom(src *Scorer, tiles []tileSummary, adopt bool) *tiledPop {
	p := src.P
	if adopt && (p.Trait == nil || p.QBits == nil && p.QW > 0) {
		panic("match: adopting columns already released")
	}
	var tbuf []float32
	var qbuf []uint64
	T := len(tiles)
	n := T * tileSize
	tp := &tiledPop{
		tiles: tiles, D: p.D,
		idx: make([]int32, n), gen: make([]uint8, n), seek: make([]uint8, n),
		filt: make([]kernels.FilterCands, T), deal: make([]bool, n), tileDeal: make([]bool, T),
		ptile:   make([]kernels.PairTile, T),
		genMask: make([][3]uint64, T), seekMask: make([][3]uint64, T),
	}
	if !adopt {
		tp.panel = make([]float32, T*p.D*tileSize)
		if p.QW == 1 {
			tp.qtile = make([]kernels.QTile, T)
		} else {
			tp.qbits = make([]uint64, n*kernels.QMaskWords*p.QW)
		}
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
				qbuf = src.qbits(int(i), qbuf[:0])
				db := qbuf[(kernels.QImportanceMask+kernels.Dealbreaker)*p.QW : (kernels.QImportanceMask+kernels.Dealbreaker+1)*p.QW]
				for _, w := range db {
					tp.deal[pos] = tp.deal[pos] || w != 0
				}
				tp.tileDeal[t] = tp.tileDeal[t] || tp.deal[pos]
			}
			switch {
			case adopt:
			case tp.qtile != nil:
				tp.qtile[t].Set(r, src.qbits(int(i), qbuf[:0]))
			default:
				copy(tp.qbits[pos*QS:(pos+1)*QS], src.qbits(int(i), qbuf[:0]))
			}
			m := memberOf(p, int(i))
			tp.ptile[t].Set(r, &m)
			tp.genMask[t][p.Gender[i]] |= 1 << r
			for g := range 3 {
				if p.Seeking[i]&(1<<g) != 0 {
					tp.seekMask[t][g] |= 1 << r
				}
			}
			if !adopt {
				tbuf = src.trait(int(i), tbuf[:0])
				copy(rows[r*p.D:(r+1)*p.D], tbuf)
			}
		}
		if !adopt {
			m := len(tiles[t].members)
			kernels.PackPanel(tp.panel[t*p.D*tileSize:(t+1)*p.D*tileSize], rows[:m*p.D], m, p.D)
		}
	}
	if adopt {
		tp.adoptColumns(p)
	}
	return tp
}

// The tiles are the population's row groups: read leaves room for whole
// ones in the trait and questionnaire arrays.
const _ = uint(tileSize-read.RowGroup) + uint(read.RowGroup-tileSize)

// adoptColumns rearranges the population's trait rows and questionnaire
// bits, in place, into the tiled layout, and takes them over (p.Trait and
// p.QBits become nil): the rows are permuted into tile order by following
// the permutation's cycles, then each tile is repacked as its panel (and,
// for Q ≤ 64, its word-major questionnaire tile) through one tile of
// scratch. No second copy of either column is ever made.
func (tp *tiledPop) adoptColumns(p *read.Population) {
	T := len(tp.tiles)
	rows := T * tileSize
	perm := make([]int32, rows) // position → the row it takes
	next := int32(p.N)          // padding takes the spare rows past N
	for pos, i := range tp.idx {
		if i >= 0 {
			perm[pos] = i
		} else {
			perm[pos] = next
			next++
		}
	}
	D := p.D
	trait := p.Trait[:rows*D]
	clear(trait[p.N*D:])
	read.PermuteRows(trait, D, perm)
	scratch := make([]float32, tileSize*D)
	for t := range T {
		tile := trait[t*tileSize*D : (t+1)*tileSize*D]
		copy(scratch, tile)
		m := len(tp.tiles[t].members)
		kernels.PackPanel(tile, scratch[:m*D], m, D)
	}
	tp.panel = trait
	QS := kernels.QMaskWords * p.QW
	qb := p.QBits[:rows*QS]
	clear(qb[p.N*QS:])
	read.PermuteRows(qb, QS, perm)
	if p.QW == 1 {
		var rowsOf [tileSize][kernels.QMaskWords]uint64
		for t := range T {
			tile := qb[t*tileSize*QS : (t+1)*tileSize*QS]
			for r := range tileSize {
				copy(rowsOf[r][:], tile[r*QS:(r+1)*QS])
			}
			qt := (*kernels.QTile)(unsafe.Pointer(&tile[0]))
			for r := range tileSize {
				qt.Set(r, rowsOf[r][:])
			}
		}
		tp.qtile = unsafe.Slice((*kernels.QTile)(unsafe.Pointer(unsafe.SliceData(qb))), T)
	} else {
		tp.qbits = qb
	}
	p.Trait, p.QBits = nil, nil
}

// tileWork is one worker's scratch space for a query tile.
type tileWork struct {
	cols   [subTiles]uint64           // per sub-tile of rows: the candidate columns it meets
	mask   [tileSize]uint64           // candidates of the current tile passing the cheap filters
	sure   [tileSize]uint64           // ... of which certainly within distance
	dots   []float32                  // tileSize×tileSize dot products
	cand   [tileSize]int32            // positions of one query's kept candidates (Q > 64)
	srow   [tileSize]float32          // scores of one row
	qs     [tileSize]kernels.QStats   // questionnaire sums of the kept candidates (Q > 64)
	ql     kernels.QLanes             // ... lane by lane
	qa     [kernels.QMaskWords]uint64 // the query's masks (Q ≤ 64)
	pq     kernels.PairMember         // the query
	params kernels.ScoreRowParams
	q      kernels.FilterQuery
}

// examine is the start of a tile pair's work, shared by scoring and
// counting: the candidate columns each sub-tile of rows of a meets (subs,
// bit x·subTiles+y: sub-tile x of a, y of b), the ordered pairs that makes
// (added to st.PairsExamined), and the pairs passing orientation by
// per-tile bit masks, ages, and distance by unit-vector dot products
// against the per-member threshold, in w.mask (kept) and w.sure (kept and
// certainly within distance). It returns how many ordered pairs a scored
// pair stands for (2 for two distinct tiles, whose unordered pairs are
// scored once) and whether any pair is kept.
func (tp *tiledPop) examine(a, b int, subs subMask, w *tileWork, st *ScoreStats) (per int64, kept bool) {
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
		k := bits.TrailingZeros64(uint64(bit))
		x, y := k/subTiles, k%subTiles
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
func (tp *tiledPop) countTilePair(a, b int, subs subMask, w *tileWork, st *ScoreStats) {
	per, kept := tp.examine(a, b, subs, w, st)
	if !kept {
		return
	}
	for r := 0; r < len(tp.tiles[a].members); r++ {
		st.PairsCompatible += per * int64(bits.OnesCount64(w.sure[r]))
		q := tp.ptile[a].Member(r)
		for m := w.mask[r] &^ w.sure[r]; m != 0; m &= m - 1 {
			c := tp.ptile[b].Member(bits.TrailingZeros64(m))
			if _, _, ok := kernels.PairDistance(&q, &c); ok {
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
func (s *Scorer) scoreTilePair(tp *tiledPop, a, b int, subs subMask, hA, hB *tileHeaps, w *tileWork, st *ScoreStats) {
	per, kept := tp.examine(a, b, subs, w, st)
	if !kept {
		return
	}
	p := s.P
	na := len(tp.tiles[a].members)
	tp.dotCells(a, b, na, w)
	QS := kernels.QMaskWords * p.QW
	W := &s.W
	w.params.W = W.kernel()
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
		// blocked pairs leave the row first (rare: a lookup per kept pair)
		if p.Blocked != nil {
			for mm := m; mm != 0; mm &= mm - 1 {
				c := bits.TrailingZeros64(mm)
				if p.IsBlocked(i, int(tp.idx[b*tileSize+c])) {
					m &^= 1 << c
				}
			}
			if m == 0 {
				continue
			}
		}
		// the questionnaire sums of the kept candidates, lane by lane, when
		// they are needed (weighted, or a dealbreaker in play)
		if needQ {
			tp.questionLanes(a, b, r, m, p.QW, w)
		}
		// the whole pair across the row's candidates (kernels.ScoreRow):
		// distance, dealbreakers, every component and the total, and the
		// lanes that may enter a heap
		w.params.UseQ = needQ
		w.pq = tp.ptile[a].Member(r)
		ok, beat, nan := kernels.ScoreRow(&w.srow, &w.params, &w.pq, &tp.ptile[b], (*[tileSize]float32)(w.dots[r*tileSize:(r+1)*tileSize]), &w.ql, m, minA, minB)
		st.PairsCompatible += per * int64(bits.OnesCount64(ok))
		if nan != 0 { // never: ScoreStats.nanScores
			st.nanScores += int64(bits.OnesCount64(nan))
			st.nanPair = [2]int64{p.ID[i], p.ID[tp.idx[b*tileSize+bits.TrailingZeros64(nan)]]}
		}
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

// dotCells computes the trait dot products of tile a (its first na rows)
// against tile b into w.dots on the 16×16 dot cells (16 rows of a, 16
// columns of b) that hold a pair kept in w.mask; a dense tile in one call.
// The panels are zero-padded to tileSize, so every cell is whole (padding
// results are never read).
func (tp *tiledPop) dotCells(a, b, na int, w *tileWork) {
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
		return
	}
	for rc, row := range cells {
		for cc := range tileSize / dotCell {
			if row&(1<<cc) != 0 {
				kernels.DotTile(w.dots[dotCell*rc*tileSize+dotCell*cc:], tileSize, qa[dotCell*rc*D:], cb[dotCell*cc*D:], dotCell, dotCell, D)
			}
		}
	}
}

// questionLanes fills w.ql with the questionnaire sums of row r of tile a
// against the candidates m of tile b (QuestionsTile for Q ≤ 64, else the
// bit-sliced rows).
func (tp *tiledPop) questionLanes(a, b, r int, m uint64, QW int, w *tileWork) {
	if tp.qtile != nil {
		qt := &tp.qtile[a]
		for k := range kernels.QMaskWords {
			w.qa[k] = qt[k][r]
		}
		kernels.QuestionsTile(&w.ql, &w.qa, &tp.qtile[b], m)
		return
	}
	QS := kernels.QMaskWords * QW
	pi := a*tileSize + r
	n := 0
	for mm := m; mm != 0; mm &= mm - 1 {
		w.cand[n] = int32(b*tileSize + bits.TrailingZeros64(mm))
		n++
	}
	kernels.QuestionsRows(w.qs[:n], tp.qbits[pi*QS:(pi+1)*QS], tp.qbits, w.cand[:n], QW)
	w.ql.Dealbreak = 0
	for k, pj := range w.cand[:n] {
		c, q := int(pj)-b*tileSize, &w.qs[k]
		w.ql.NumAB[c], w.ql.DenAB[c], w.ql.NumBA[c], w.ql.DenBA[c], w.ql.Common[c] = q.NumAB, q.DenAB, q.NumBA, q.DenBA, q.Common
		if q.Dealbreak {
			w.ql.Dealbreak |= 1 << c
		}
	}
}
