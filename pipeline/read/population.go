package read

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math"
	"slices"
	"unsafe"

	"github.com/osmosis/batchmatch/kernels"
	"github.com/osmosis/batchmatch/pipeline/profile"
)

// Population is the eligible members of a run in structure-of-arrays form,
// sorted by user id, so member index order is id order. Traits are
// normalized to unit length; HLA sets are 4 words per member.
type Population struct {
	N, D, Q int
	ID      []int64
	Gender  []uint8
	Seeking []uint8
	Age     []uint16 // whole years at the as-of date (not clamped: may exceed 255)
	AgeMin  []uint16 // accepted range, from the uint8 columns; uint16 so comparisons with Age never clamp
	AgeMax  []uint16
	Geo     []kernels.GeoPoint
	MaxKm   []float32
	HavMax  []float64 // haversine term of MaxKm: sin²(min(MaxKm, πR)/2R), for a trig-free distance prefilter
	Trait   []float32 // N·D, unit norm
	Health  []bool    // biomarker usable: health consent and an hla value
	HLA     []uint64  // N·kernels.HLAWords
	QW      int       // kernels.QWords(Q)
	QBits   []uint64  // N·kernels.QMaskWords·QW: the questionnaire, bit-sliced (kernels.PackQuestions; lossless)
	Blocked [][]int32 // per member, sorted indices of members blocked either way
}

// Index returns the member index of id, or -1.
func (p *Population) Index(id int64) int {
	i, ok := slices.BinarySearch(p.ID, id)
	if !ok {
		return -1
	}
	return i
}

// IsBlocked reports whether members i and j are blocked (either direction).
func (p *Population) IsBlocked(i, j int) bool {
	if p.Blocked == nil || len(p.Blocked[i]) == 0 {
		return false
	}
	_, found := slices.BinarySearch(p.Blocked[i], int32(j))
	return found
}

// buildStats are the counts of the merge step.
type buildStats struct {
	Duplicates int64 // rows rejected as duplicate user ids
	NoConsent  int64 // valid, unique rows without consent
}

type rowRef struct {
	id    int64
	chunk int32
	pos   int32 // index among the chunk's valid rows, or -1 for a rejected row
}

// buildPopulation merges the chunks: a user id on more than one row (valid
// or not) sends every copy to rejects; of the rest, consenting members form
// the population. Rejects are returned sorted by file and row.
// sharedTraits is the array the chunks' traits were appended to: chunk f's
// rows start at row regions[f] (Load).
type sharedTraits struct {
	rows    []float32
	regions []int
}

// inPlace reports whether every chunk's traits still lie in its region of
// st (a file that held more rows than reserved grew its own array).
func (st *sharedTraits) inPlace(chunks []*chunk, D int) bool {
	if st == nil || D == 0 {
		return false
	}
	for f, c := range chunks {
		start, end := st.regions[f]*D, st.regions[f+1]*D
		if len(c.trait) == 0 {
			continue
		}
		if end-start < len(c.trait) || &c.trait[0] != &st.rows[start] {
			return false
		}
	}
	return true
}

func buildPopulation(ctx context.Context, chunks []*chunk, paths []string, d widths, shared *sharedTraits) (*Population, []Reject, buildStats, error) {
	var st buildStats
	var refs []rowRef
	var rejects []Reject
	for ci, c := range chunks {
		for pos, id := range c.id {
			refs = append(refs, rowRef{id, int32(ci), int32(pos)})
		}
		for _, r := range c.rejects {
			if r.UserID != nil {
				refs = append(refs, rowRef{*r.UserID, int32(ci), -1})
			}
		}
		rejects = append(rejects, c.rejects...)
	}
	slices.SortFunc(refs, func(a, b rowRef) int {
		return cmp.Or(cmp.Compare(a.id, b.id), cmp.Compare(a.chunk, b.chunk), cmp.Compare(a.pos, b.pos))
	})
	// Keep the first-sorted occurrence of unique ids that are valid and consenting.
	var keep []rowRef
	for i := 0; i < len(refs); {
		j := i + 1
		for j < len(refs) && refs[j].id == refs[i].id {
			j++
		}
		if j-i > 1 {
			for _, r := range refs[i:j] {
				if r.pos >= 0 {
					c := chunks[r.chunk]
					id := r.id
					rejects = append(rejects, Reject{File: paths[c.file], Row: c.rows[r.pos], UserID: &id, Reason: profile.DuplicateUserID})
					st.Duplicates++
				}
			}
		} else if r := refs[i]; r.pos >= 0 {
			if chunks[r.chunk].consent[r.pos] {
				keep = append(keep, r)
			} else {
				st.NoConsent++
			}
		}
		i = j
		if i%(1<<16) == 0 && ctx.Err() != nil {
			return nil, nil, st, ctx.Err()
		}
	}
	slices.SortFunc(rejects, func(a, b Reject) int {
		return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Row, b.Row))
	})

	n := len(keep)
	p := &Population{
		N: n, D: d.D, Q: d.Q,
		ID: make([]int64, n), Gender: make([]uint8, n), Seeking: make([]uint8, n),
		Age: make([]uint16, n), AgeMin: make([]uint16, n), AgeMax: make([]uint16, n),
		Geo: make([]kernels.GeoPoint, n), MaxKm: make([]float32, n), HavMax: make([]float64, n),
		Health: make([]bool, n), HLA: make([]uint64, n*kernels.HLAWords),
		QW: kernels.QWords(d.Q),
	}
	// The traits are put in population order in place, in the array every
	// file appended them to (Load), so that there is never a second copy
	// of them (512 MB at 1 M members, D = 128); a file that outgrew its
	// region is copied instead. The questionnaires are gathered after
	// them and each chunk's copy dropped, so that they are not held twice
	// together with the traits. The trait and
	// questionnaire rows get room for whole tiles of RowGroup rows, so that
	// scoring can rearrange them in place (match.Scorer.ReleaseColumns).
	rows := (n + RowGroup - 1) / RowGroup * RowGroup
	// In place only while the kept rows fill at least three quarters of
	// the shared array: it stays alive as long as the population's traits
	// do, so with many rows not kept (suppressed, rejected, without
	// consent) a copy of exactly the kept rows holds less.
	if shared.inPlace(chunks, d.D) && 4*rows*d.D >= 3*len(shared.rows) {
		// The kept rows are moved to their population positions within the
		// shared array: position i takes the row of keep[i]; the positions
		// after n take the rows nobody keeps, in order, so that the moves
		// are a permutation (PermuteRows: one row of scratch).
		all := len(shared.rows) / d.D
		perm := make([]int32, all)
		used := make([]uint64, (all+63)/64)
		for i, r := range keep {
			src := shared.regions[r.chunk] + int(r.pos)
			perm[i] = int32(src)
			used[src/64] |= 1 << (src % 64)
		}
		j := n
		for src := range all {
			if used[src/64]&(1<<(src%64)) == 0 {
				perm[j] = int32(src)
				j++
			}
		}
		PermuteRows(shared.rows, d.D, perm)
		p.Trait = shared.rows[: n*d.D : rows*d.D]
	} else {
		p.Trait = make([]float32, n*d.D, rows*d.D)
		for i, r := range keep {
			c, k := chunks[r.chunk], int(r.pos)
			copy(p.Trait[i*d.D:(i+1)*d.D], c.trait[k*d.D:(k+1)*d.D])
		}
	}
	for _, c := range chunks {
		c.trait = nil
	}
	qs := kernels.QMaskWords * p.QW
	p.QBits = make([]uint64, n*qs, rows*qs)
	for i, r := range keep {
		c, k := chunks[r.chunk], int(r.pos)
		kernels.PackQuestions(p.QBits[i*qs:(i+1)*qs], c.ans[k*d.Q:(k+1)*d.Q], c.acc[k*d.Q:(k+1)*d.Q], c.imp[k*d.Q:(k+1)*d.Q])
	}
	for _, c := range chunks {
		c.ans, c.acc, c.imp = nil, nil, nil
	}
	for i, r := range keep { // keep is sorted by id
		c, k := chunks[r.chunk], int(r.pos)
		p.ID[i] = r.id
		p.Gender[i], p.Seeking[i], p.Age[i] = c.gender[k], c.seeking[k], c.age[k]
		p.AgeMin[i], p.AgeMax[i] = uint16(c.ageMin[k]), uint16(c.ageMax[k])
		p.Geo[i] = kernels.NewGeoPoint(c.lat[k], c.lon[k])
		p.MaxKm[i] = c.maxKm[k]
		half := math.Min(float64(c.maxKm[k])/(2*kernels.EarthRadiusKm), math.Pi/2)
		p.HavMax[i] = math.Sin(half) * math.Sin(half)
		p.Health[i] = c.health[k]
		if p.Health[i] {
			packHLA(p.HLA[i*kernels.HLAWords:(i+1)*kernels.HLAWords], c.hla[k*profile.HLABytes:(k+1)*profile.HLABytes])
		}
	}
	return p, rejects, st, nil
}

// PermuteRows rearranges the rows of width w of a so that row j becomes
// the row perm[j] was (a bijection on the rows), in place, one cycle of
// the permutation at a time with one row of scratch.
func PermuteRows[T any](a []T, w int, perm []int32) {
	if w == 0 {
		return
	}
	done := make([]uint64, (len(perm)+63)/64)
	tmp := make([]T, w)
	for start := range perm {
		if done[start/64]&(1<<(start%64)) != 0 {
			continue
		}
		if int(perm[start]) == start {
			done[start/64] |= 1 << (start % 64)
			continue
		}
		copy(tmp, a[start*w:(start+1)*w])
		j := start
		for {
			done[j/64] |= 1 << (j % 64)
			k := int(perm[j])
			if k == start {
				copy(a[j*w:(j+1)*w], tmp)
				break
			}
			copy(a[j*w:(j+1)*w], a[k*w:(k+1)*w])
			j = k
		}
	}
}

// RowGroup is the number of members whose trait and questionnaire rows
// scoring rearranges together (a blocking tile): Population.Trait and
// QBits have room for a whole number of them.
const RowGroup = 64

// packHLA packs 32 bitset bytes (bit i of the panel is bit i%8 of byte i/8)
// into 4 little-endian words; popcounts do not depend on the bit order.
func packHLA(dst []uint64, b []byte) {
	for w := range dst {
		var v uint64
		for k := 0; k < 8; k++ {
			v |= uint64(b[w*8+k]) << (8 * k)
		}
		dst[w] = v
	}
}

// setBlocks records blocked pairs given as id pairs; ids not in the
// population are ignored.
func (p *Population) setBlocks(pairs [][2]int64) {
	if len(pairs) == 0 {
		return
	}
	p.Blocked = make([][]int32, p.N)
	for _, pr := range pairs {
		i, j := p.Index(pr[0]), p.Index(pr[1])
		if i < 0 || j < 0 || i == j {
			continue
		}
		p.Blocked[i] = append(p.Blocked[i], int32(j))
		p.Blocked[j] = append(p.Blocked[j], int32(i))
	}
	for i := range p.Blocked {
		slices.Sort(p.Blocked[i])
		p.Blocked[i] = slices.Compact(p.Blocked[i])
	}
}

// Fingerprint is a SHA-256 over everything scoring reads: dimensions, every
// column in member (id) order and the block lists. It does not depend on how
// the input was sharded or ordered, so with the configuration hash it
// identifies the computation: equal fingerprints give equal tables.
func (p *Population) Fingerprint() string {
	h := sha256.New()
	var hdr [24]byte
	binary.LittleEndian.PutUint64(hdr[0:], uint64(p.N))
	binary.LittleEndian.PutUint64(hdr[8:], uint64(p.D))
	binary.LittleEndian.PutUint64(hdr[16:], uint64(p.Q))
	h.Write(hdr[:])
	h.Write(asBytes(p.ID))
	h.Write(p.Gender)
	h.Write(p.Seeking)
	h.Write(asBytes(p.Age))
	h.Write(asBytes(p.AgeMin))
	h.Write(asBytes(p.AgeMax))
	h.Write(asBytes(p.Geo))
	h.Write(asBytes(p.MaxKm))
	h.Write(asBytes(p.Trait))
	h.Write(asBytes(p.Health))
	h.Write(asBytes(p.HLA))
	h.Write(asBytes(p.QBits))
	for i, b := range p.Blocked {
		if len(b) > 0 {
			var k [8]byte
			binary.LittleEndian.PutUint32(k[0:], uint32(i))
			binary.LittleEndian.PutUint32(k[4:], uint32(len(b)))
			h.Write(k[:])
			h.Write(asBytes(b))
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// asBytes views a slice of fixed-size values as its bytes (little-endian on
// every platform Go targets that we build for; the fingerprint is only
// compared between runs of the same build).
func asBytes[T any](s []T) []byte {
	if len(s) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), len(s)*int(unsafe.Sizeof(s[0])))
}

// Questionnaire returns member i's answers, accept masks and importance
// levels, unpacked from the bit-sliced form the population keeps.
func (p *Population) Questionnaire(i int) (ans, acc, imp []byte) {
	ans, acc, imp = make([]byte, p.Q), make([]byte, p.Q), make([]byte, p.Q)
	qs := kernels.QMaskWords * p.QW
	kernels.UnpackQuestions(ans, acc, imp, p.QBits[i*qs:(i+1)*qs])
	return ans, acc, imp
}
