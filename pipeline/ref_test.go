package pipeline

import (
	"cmp"
	"math"
	"math/bits"
	"slices"
	"time"
)

// This file is the test-only reference: spec v1 written as directly as
// possible in plain float64, sharing no code with the pipeline.

type refKey struct {
	file string
	row  int64
}

type refMember struct {
	m   tMember
	id  int64
	age int
}

type refResult struct {
	rejects  map[refKey]string
	eligible map[int64]*refMember
	ids      []int64 // eligible ids, sorted
	blocked  map[[2]int64]bool
	w        [4]float64
}

// refAge is spec §2's age rule.
func refAge(birthDays int32, asOf time.Time) int {
	b := time.Unix(int64(birthDays)*86400, 0).UTC()
	age := asOf.Year() - b.Year()
	if asOf.Month() < b.Month() || (asOf.Month() == b.Month() && asOf.Day() < b.Day()) {
		age--
	}
	return age
}

// refReason returns the first failing check of spec §1 in column order, or "".
func refReason(m tMember, d, q int, asOf time.Time) string {
	inRange := func(p *int64, name string, lo, hi int64) string {
		if p == nil {
			return "null_" + name
		}
		if *p < lo || *p > hi {
			return name + "_out_of_range"
		}
		return ""
	}
	if r := inRange(m.Gender, "gender", 0, 2); r != "" {
		return r
	}
	if r := inRange(m.Seeking, "seeking", 1, 7); r != "" {
		return r
	}
	if m.Birth == nil {
		return "null_birth_date"
	}
	if int64(*m.Birth)*86400 > asOf.Unix() {
		return "birth_date_after_as_of"
	}
	if r := inRange(m.AgeMin, "age_min", 0, 255); r != "" {
		return r
	}
	if r := inRange(m.AgeMax, "age_max", 0, 255); r != "" {
		return r
	}
	if *m.AgeMin > *m.AgeMax {
		return "age_min_above_age_max"
	}
	if m.Lat == nil {
		return "null_lat"
	}
	if !(*m.Lat >= -90 && *m.Lat <= 90) { // NaN is not inside the range
		return "lat_out_of_range"
	}
	if m.Lon == nil {
		return "null_lon"
	}
	if !(*m.Lon >= -180 && *m.Lon <= 180) {
		return "lon_out_of_range"
	}
	if m.MaxKm == nil {
		return "null_max_km"
	}
	if mk := float64(*m.MaxKm); math.IsNaN(mk) || math.IsInf(mk, 0) || mk <= 0 {
		return "max_km_out_of_range"
	}
	if m.Trait == nil {
		return "null_trait"
	}
	if len(m.Trait) != d {
		return "trait_wrong_length"
	}
	var norm float64
	for _, x := range m.Trait {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return "trait_non_finite"
		}
		norm += float64(x) * float64(x)
	}
	if norm == 0 {
		return "trait_zero_norm"
	}
	if m.HLA != nil && len(m.HLA) != 32 {
		return "hla_wrong_length"
	}
	for _, c := range []struct {
		name string
		v    []byte
		max  byte
	}{{"answers", m.Ans, 8}, {"accept", m.Acc, 255}, {"importance", m.Imp, 4}} {
		if c.v == nil {
			return "null_" + c.name
		}
		if len(c.v) != q {
			return c.name + "_wrong_length"
		}
		for _, b := range c.v {
			if b > c.max {
				return c.name + "_out_of_range"
			}
		}
	}
	return ""
}

// refLoad applies spec §1's order of checks to files of rows.
func refLoad(files map[string][]tMember, suppress []int64, blocks [][2]int64, d, q int, asOf time.Time, w [4]float64) *refResult {
	res := &refResult{rejects: map[refKey]string{}, eligible: map[int64]*refMember{}, blocked: map[[2]int64]bool{}, w: w}
	sup := map[int64]bool{}
	for _, s := range suppress {
		sup[s] = true
	}
	type kept struct {
		key refKey
		m   tMember
		ok  bool
	}
	var rows []kept
	count := map[int64]int{}
	for file, ms := range files {
		for i, m := range ms {
			key := refKey{file, int64(i)}
			if m.ID == nil {
				res.rejects[key] = "null_user_id"
				continue
			}
			if sup[*m.ID] {
				continue
			}
			count[*m.ID]++
			if r := refReason(m, d, q, asOf); r != "" {
				res.rejects[key] = r
				continue
			}
			rows = append(rows, kept{key, m, true})
		}
	}
	for _, k := range rows {
		id := *k.m.ID
		if count[id] > 1 {
			res.rejects[k.key] = "duplicate_user_id"
			continue
		}
		if k.m.Consent == nil || !*k.m.Consent {
			continue
		}
		res.eligible[id] = &refMember{m: k.m, id: id, age: refAge(*k.m.Birth, asOf)}
		res.ids = append(res.ids, id)
	}
	slices.Sort(res.ids)
	for _, b := range blocks {
		res.blocked[[2]int64{b[0], b[1]}] = true
		res.blocked[[2]int64{b[1], b[0]}] = true
	}
	return res
}

func refHaversine(lat1, lon1, lat2, lon2 float64) float64 {
	const R = 6371.0088
	rad := math.Pi / 180
	dphi := (lat2 - lat1) * rad
	dlam := (lon2 - lon1) * rad
	a := math.Pow(math.Sin(dphi/2), 2) + math.Cos(lat1*rad)*math.Cos(lat2*rad)*math.Pow(math.Sin(dlam/2), 2)
	return 2 * R * math.Asin(math.Sqrt(math.Min(1, a)))
}

func refHealth(m tMember) bool {
	return m.Health != nil && *m.Health && m.HLA != nil
}

// refScore is spec §2 and §3 for eligible members a ≠ b.
type refScoreT struct {
	ok                     bool
	S, st, sq, sh, sd, dkm float64
	hasH                   bool
}

func (r *refResult) score(ai, bi int64) refScoreT {
	A, B := r.eligible[ai], r.eligible[bi]
	a, b := A.m, B.m
	if ai == bi {
		return refScoreT{}
	}
	if *a.Seeking&(1<<*b.Gender) == 0 || *b.Seeking&(1<<*a.Gender) == 0 {
		return refScoreT{}
	}
	if int64(B.age) < *a.AgeMin || int64(B.age) > *a.AgeMax || int64(A.age) < *b.AgeMin || int64(A.age) > *b.AgeMax {
		return refScoreT{}
	}
	lim := math.Min(float64(*a.MaxKm), float64(*b.MaxKm))
	d := refHaversine(*a.Lat, *a.Lon, *b.Lat, *b.Lon)
	if d > lim {
		return refScoreT{}
	}
	if r.blocked[[2]int64{ai, bi}] {
		return refScoreT{}
	}
	for q := range a.Ans {
		if a.Imp[q] == 4 && b.Ans[q] != 0 && a.Acc[q]&(1<<(b.Ans[q]-1)) == 0 {
			return refScoreT{}
		}
		if b.Imp[q] == 4 && a.Ans[q] != 0 && b.Acc[q]&(1<<(a.Ans[q]-1)) == 0 {
			return refScoreT{}
		}
	}
	out := refScoreT{ok: true, dkm: d}
	var dot, na, nb float64
	for i := range a.Trait {
		dot += float64(a.Trait[i]) * float64(b.Trait[i])
		na += float64(a.Trait[i]) * float64(a.Trait[i])
		nb += float64(b.Trait[i]) * float64(b.Trait[i])
	}
	out.st = (1 + dot/math.Sqrt(na*nb)) / 2
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
		out.sq = math.Max(0, math.Sqrt(satAB*satBA)-1/float64(C))
	}
	out.sd = 1 - d/lim
	W := r.w
	num := W[0]*out.st + W[1]*out.sq + W[3]*out.sd
	den := W[0] + W[1] + W[3]
	if refHealth(a) && refHealth(b) {
		x, o := 0, 0
		for i := range a.HLA {
			x += bits.OnesCount8(a.HLA[i] ^ b.HLA[i])
			o += bits.OnesCount8(a.HLA[i] | b.HLA[i])
		}
		out.sh = 0.5
		if o > 0 {
			out.sh = float64(x) / float64(o)
		}
		out.hasH = true
		num += W[2] * out.sh
		den += W[2]
	}
	out.S = num / den
	return out
}

// refSoulmates re-derives spec §4's greedy assignment from matches rows alone.
func refSoulmates(rows []MatchRow) []SoulmateRow {
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
	var out []SoulmateRow
	for _, x := range edges {
		if taken[x.a] || taken[x.b] {
			continue
		}
		taken[x.a], taken[x.b] = true, true
		out = append(out, SoulmateRow{UserA: x.a, UserB: x.b, Score: x.s, RankA: rank[[2]int64{x.a, x.b}], RankB: rank[[2]int64{x.b, x.a}]})
	}
	slices.SortFunc(out, func(x, y SoulmateRow) int { return cmp.Compare(x.UserA, y.UserA) })
	return out
}
