// Package reference is the tests' float64 reference implementation of the
// spec: v1.1 written as directly as possible, sharing no code with the
// pipeline (only the vocabulary of pipeline/profile and the rows of
// pipeline/synth). It is imported by tests only.
package reference

import (
	"cmp"
	"math"
	"math/bits"
	"slices"
	"time"

	"github.com/osmosis/batchmatch/pipeline/profile"
	"github.com/osmosis/batchmatch/pipeline/synth"
)

// Key is a row of an input file.
type Key struct {
	File string
	Row  int64
}

// Member is an eligible member with its age.
type Member struct {
	M   synth.Member
	ID  int64
	Age int
}

// Weights are the component weights (spec §3); the same fields as
// match.Weights, so that one converts to the other.
type Weights struct {
	Trait, Questions, Biomarker, Proximity float64
}

// Result is the reference's view of an input: its rejects, its eligible
// members and its blocked pairs, with the weights to score them with.
type Result struct {
	Rejects  map[Key]profile.Reason
	Eligible map[int64]*Member
	IDs      []int64 // eligible ids, sorted
	Blocked  map[[2]int64]bool
	W        Weights
}

// Age is spec §2's age rule.
func Age(birthDays int32, asOf time.Time) int {
	b := time.Unix(int64(birthDays)*86400, 0).UTC()
	age := asOf.Year() - b.Year()
	if asOf.Month() < b.Month() || (asOf.Month() == b.Month() && asOf.Day() < b.Day()) {
		age--
	}
	return age
}

// Reason returns the first failing check of spec §1 in column order, or "".
func Reason(m synth.Member, d, q int, asOf time.Time) profile.Reason {
	inRange := func(p *int64, null, outOfRange profile.Reason, lo, hi int64) profile.Reason {
		if p == nil {
			return null
		}
		if *p < lo || *p > hi {
			return outOfRange
		}
		return ""
	}
	if r := inRange(m.Gender, profile.NullGender, profile.GenderOutOfRange, 0, 2); r != "" {
		return r
	}
	if r := inRange(m.Seeking, profile.NullSeeking, profile.SeekingOutOfRange, 1, 7); r != "" {
		return r
	}
	if m.Birth == nil {
		return profile.NullBirthDate
	}
	if int64(*m.Birth)*86400 > asOf.Unix() {
		return profile.BirthDateAfterAsOf
	}
	if r := inRange(m.AgeMin, profile.NullAgeMin, profile.AgeMinOutOfRange, 0, 255); r != "" {
		return r
	}
	if r := inRange(m.AgeMax, profile.NullAgeMax, profile.AgeMaxOutOfRange, 0, 255); r != "" {
		return r
	}
	if *m.AgeMin > *m.AgeMax {
		return profile.AgeMinAboveMax
	}
	if m.Lat == nil {
		return profile.NullLat
	}
	if !(*m.Lat >= -90 && *m.Lat <= 90) { // NaN is not inside the range
		return profile.LatOutOfRange
	}
	if m.Lon == nil {
		return profile.NullLon
	}
	if !(*m.Lon >= -180 && *m.Lon <= 180) {
		return profile.LonOutOfRange
	}
	if m.MaxKm == nil {
		return profile.NullMaxKm
	}
	if mk := float64(*m.MaxKm); math.IsNaN(mk) || math.IsInf(mk, 0) || mk <= 0 {
		return profile.MaxKmOutOfRange
	}
	if m.Trait == nil {
		return profile.NullTrait
	}
	if len(m.Trait) != d {
		return profile.TraitWrongLength
	}
	var norm float64
	for _, x := range m.Trait {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return profile.TraitNonFinite
		}
		norm += float64(x) * float64(x)
	}
	if norm == 0 {
		return profile.TraitZeroNorm
	}
	if m.HLA != nil && len(m.HLA) != 32 {
		return profile.HLAWrongLength
	}
	for _, c := range []struct {
		v                             []byte
		max                           byte
		null, wrongLength, outOfRange profile.Reason
	}{
		{m.Ans, 8, profile.NullAnswers, profile.AnswersWrongLength, profile.AnswersOutOfRange},
		{m.Acc, 255, profile.NullAccept, profile.AcceptWrongLength, ""}, // every byte is a valid mask
		{m.Imp, 4, profile.NullImportance, profile.ImportanceWrongLength, profile.ImportanceOutOfRange},
	} {
		if c.v == nil {
			return c.null
		}
		if len(c.v) != q {
			return c.wrongLength
		}
		for _, b := range c.v {
			if b > c.max {
				return c.outOfRange
			}
		}
	}
	return ""
}

// Load applies spec §1's order of checks to files of rows.
func Load(files map[string][]synth.Member, suppress []int64, blocks [][2]int64, d, q int, asOf time.Time, w Weights) *Result {
	res := &Result{Rejects: map[Key]profile.Reason{}, Eligible: map[int64]*Member{}, Blocked: map[[2]int64]bool{}, W: w}
	sup := map[int64]bool{}
	for _, s := range suppress {
		sup[s] = true
	}
	type kept struct {
		key Key
		m   synth.Member
		ok  bool
	}
	var rows []kept
	count := map[int64]int{}
	for file, ms := range files {
		for i, m := range ms {
			key := Key{file, int64(i)}
			if m.ID == nil {
				res.Rejects[key] = profile.NullUserID
				continue
			}
			if sup[*m.ID] {
				continue
			}
			count[*m.ID]++
			if r := Reason(m, d, q, asOf); r != "" {
				res.Rejects[key] = r
				continue
			}
			rows = append(rows, kept{key, m, true})
		}
	}
	for _, k := range rows {
		id := *k.m.ID
		if count[id] > 1 {
			res.Rejects[k.key] = profile.DuplicateUserID
			continue
		}
		if k.m.Consent == nil || !*k.m.Consent {
			continue
		}
		res.Eligible[id] = &Member{M: k.m, ID: id, Age: Age(*k.m.Birth, asOf)}
		res.IDs = append(res.IDs, id)
	}
	slices.Sort(res.IDs)
	for _, b := range blocks {
		res.Blocked[[2]int64{b[0], b[1]}] = true
		res.Blocked[[2]int64{b[1], b[0]}] = true
	}
	return res
}

// Haversine is the great-circle distance in km (spec §2).
func Haversine(lat1, lon1, lat2, lon2 float64) float64 {
	const R = 6371.0088
	rad := math.Pi / 180
	dphi := (lat2 - lat1) * rad
	dlam := (lon2 - lon1) * rad
	a := math.Pow(math.Sin(dphi/2), 2) + math.Cos(lat1*rad)*math.Cos(lat2*rad)*math.Pow(math.Sin(dlam/2), 2)
	return 2 * R * math.Asin(math.Sqrt(math.Min(1, a)))
}

// Health reports whether m's biomarker counts: health consent and an hla value.
func Health(m synth.Member) bool {
	return m.Health != nil && *m.Health && m.HLA != nil
}

// Score is a pair's compatibility (OK), score and components.
type Score struct {
	OK                     bool
	S, ST, SQ, SH, SD, DKm float64
	HasH                   bool
}

// Score is spec §2 and §3 for eligible members a ≠ b.
func (r *Result) Score(ai, bi int64) Score {
	A, B := r.Eligible[ai], r.Eligible[bi]
	a, b := A.M, B.M
	if ai == bi {
		return Score{}
	}
	if *a.Seeking&(1<<*b.Gender) == 0 || *b.Seeking&(1<<*a.Gender) == 0 {
		return Score{}
	}
	if int64(B.Age) < *a.AgeMin || int64(B.Age) > *a.AgeMax || int64(A.Age) < *b.AgeMin || int64(A.Age) > *b.AgeMax {
		return Score{}
	}
	lim := math.Min(float64(*a.MaxKm), float64(*b.MaxKm))
	d := Haversine(*a.Lat, *a.Lon, *b.Lat, *b.Lon)
	if d > lim {
		return Score{}
	}
	if r.Blocked[[2]int64{ai, bi}] {
		return Score{}
	}
	for q := range a.Ans {
		if a.Imp[q] == 4 && b.Ans[q] != 0 && a.Acc[q]&(1<<(b.Ans[q]-1)) == 0 {
			return Score{}
		}
		if b.Imp[q] == 4 && a.Ans[q] != 0 && b.Acc[q]&(1<<(a.Ans[q]-1)) == 0 {
			return Score{}
		}
	}
	out := Score{OK: true, DKm: d}
	var dot, na, nb float64
	for i := range a.Trait {
		dot += float64(a.Trait[i]) * float64(b.Trait[i])
		na += float64(a.Trait[i]) * float64(a.Trait[i])
		nb += float64(b.Trait[i]) * float64(b.Trait[i])
	}
	out.ST = (1 + dot/math.Sqrt(na*nb)) / 2
	w := []float64{0, 1, 10, 50, 250}
	var numAB, denAB, numBA, denBA float64
	C := 0
	for q := range a.Ans {
		if a.Ans[q] == 0 || b.Ans[q] == 0 {
			continue
		}
		C++
		denAB += w[a.Imp[q]]
		if a.Acc[q]&(1<<(b.Ans[q]-1)) != 0 {
			numAB += w[a.Imp[q]]
		}
		denBA += w[b.Imp[q]]
		if b.Acc[q]&(1<<(a.Ans[q]-1)) != 0 {
			numBA += w[b.Imp[q]]
		}
	}
	if C > 0 {
		satAB, satBA := 1.0, 1.0
		if denAB > 0 {
			satAB = numAB / denAB
		}
		if denBA > 0 {
			satBA = numBA / denBA
		}
		out.SQ = math.Max(0, math.Sqrt(satAB*satBA)-1/float64(C))
	}
	out.SD = 1 - d/lim
	W := r.W
	num := W.Trait*out.ST + W.Questions*out.SQ + W.Proximity*out.SD
	den := W.Trait + W.Questions + W.Proximity
	if Health(a) && Health(b) {
		x, o := 0, 0
		for i := range a.HLA {
			x += bits.OnesCount8(a.HLA[i] ^ b.HLA[i])
			o += bits.OnesCount8(a.HLA[i] | b.HLA[i])
		}
		out.SH = 0.5
		if o > 0 {
			out.SH = float64(x) / float64(o)
		}
		out.HasH = true
		num += W.Biomarker * out.SH
		den += W.Biomarker
	}
	out.S = num / den
	return out
}

// Match is a row of the matches table, as far as the soulmate rule reads it.
type Match struct {
	UserID, MatchID int64
	Rank            int32
	Score           float32
}

// Soulmate is a row of the soulmates table.
type Soulmate struct {
	UserA, UserB int64
	Score        float32
	RankA, RankB int32
}

// Soulmates re-derives spec §4's greedy assignment from matches rows alone.
func Soulmates(rows []Match) []Soulmate {
	type e struct {
		a, b int64
		s    float32
	}
	seen := map[[2]int64]bool{}
	rank := map[[2]int64]int32{}
	var edges []e
	for _, r := range rows {
		rank[[2]int64{r.UserID, r.MatchID}] = r.Rank
		a, b := min(r.UserID, r.MatchID), max(r.UserID, r.MatchID)
		if !seen[[2]int64{a, b}] {
			seen[[2]int64{a, b}] = true
			edges = append(edges, e{a, b, r.Score})
		}
	}
	slices.SortFunc(edges, func(x, y e) int {
		return cmp.Or(cmp.Compare(y.s, x.s), cmp.Compare(x.a, y.a), cmp.Compare(x.b, y.b))
	})
	taken := map[int64]bool{}
	var out []Soulmate
	for _, x := range edges {
		if taken[x.a] || taken[x.b] {
			continue
		}
		taken[x.a], taken[x.b] = true, true
		out = append(out, Soulmate{UserA: x.a, UserB: x.b, Score: x.s, RankA: rank[[2]int64{x.a, x.b}], RankB: rank[[2]int64{x.b, x.a}]})
	}
	slices.SortFunc(out, func(x, y Soulmate) int { return cmp.Compare(x.UserA, y.UserA) })
	return out
}
