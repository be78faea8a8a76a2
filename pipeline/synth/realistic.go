package synth

import (
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/osmosis/batchmatch/pipeline/profile"
)

// city is a population centre members are spread around.
type city struct {
	name     string
	lat, lon float64
	weight   float64 // metro population, thousands
}

// cities are French metro areas weighted by population, Paris first.
var cities = []city{
	{"Paris", 48.8566, 2.3522, 12300}, {"Lyon", 45.7640, 4.8357, 2300}, {"Marseille", 43.2965, 5.3698, 1900},
	{"Lille", 50.6292, 3.0573, 1500}, {"Toulouse", 43.6047, 1.4442, 1450}, {"Bordeaux", 44.8378, -0.5792, 1350},
	{"Nantes", 47.2184, -1.5536, 1000}, {"Nice", 43.7102, 7.2620, 1000}, {"Strasbourg", 48.5734, 7.7521, 850},
	{"Montpellier", 43.6108, 3.8767, 800}, {"Rennes", 48.1173, -1.6778, 750}, {"Grenoble", 45.1885, 5.7245, 700},
	{"Rouen", 49.4432, 1.0999, 650}, {"Toulon", 43.1242, 5.9280, 600}, {"Saint-Étienne", 45.4397, 4.3872, 520},
	{"Tours", 47.3941, 0.6848, 500}, {"Clermont-Ferrand", 45.7772, 3.0870, 500}, {"Angers", 47.4784, -0.5632, 430},
	{"Caen", 49.1829, -0.3707, 420}, {"Metz", 49.1193, 6.1757, 390}, {"Dijon", 47.3220, 5.0415, 380},
	{"Reims", 49.2583, 4.0317, 330}, {"Le Havre", 49.4944, 0.1079, 330}, {"Perpignan", 42.6887, 2.8948, 330},
	{"Brest", 48.3904, -4.4861, 320}, {"Limoges", 45.8336, 1.2611, 300}, {"Pau", 43.2951, -0.3708, 250},
	{"Ajaccio", 41.9192, 8.7386, 90},
}

var maxKmChoices = []float32{5, 10, 15, 20, 25, 30, 40, 50, 75, 100, 150, 200, 300}

// world holds the population-wide structure shared by all members of a
// realistic population.
type world struct {
	o         Options
	asOf      time.Time
	cityCDF   []float64
	centers   [][]float32 // trait clusters
	nOpts     []int       // options per question
	optCDF    [][]float64 // answer popularity per question
	alleleCDF []float64   // HLA allele frequencies
}

func cdf(w []float64) []float64 {
	out := make([]float64, len(w))
	var s float64
	for i, x := range w {
		s += x
		out[i] = s
	}
	for i := range out {
		out[i] /= s
	}
	return out
}

func pick(r *rand.Rand, c []float64) int {
	u := r.Float64()
	lo, hi := 0, len(c)-1
	for lo < hi {
		m := (lo + hi) / 2
		if c[m] < u {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

func newWorld(o Options, asOf time.Time) *world {
	r := rand.New(rand.NewPCG(o.Seed, 0x9e3779b97f4a7c15))
	w := &world{o: o, asOf: asOf}
	cw := make([]float64, len(cities))
	for i, c := range cities {
		cw[i] = c.weight
	}
	w.cityCDF = cdf(cw)
	w.centers = make([][]float32, 24)
	for k := range w.centers {
		w.centers[k] = make([]float32, o.D)
		for j := range w.centers[k] {
			w.centers[k][j] = float32(r.NormFloat64())
		}
	}
	w.nOpts = make([]int, o.Q)
	w.optCDF = make([][]float64, o.Q)
	for q := range o.Q {
		w.nOpts[q] = 2 + r.IntN(7)
		pw := make([]float64, w.nOpts[q])
		for a := range pw {
			pw[a] = r.ExpFloat64()
		}
		w.optCDF[q] = cdf(pw)
	}
	aw := make([]float64, 256)
	for i := range aw {
		aw[i] = 1 / math.Pow(float64(i+1), 0.8) // Zipf-like allele frequencies
	}
	r.Shuffle(len(aw), func(i, j int) { aw[i], aw[j] = aw[j], aw[i] })
	w.alleleCDF = cdf(aw)
	return w
}

// genID maps a member index to a unique positive pseudonymous id: an odd
// multiplier plus an offset is a bijection modulo 2^62.
func genID(seed uint64, i int) int64 {
	return int64((uint64(i)*0x9E3779B97F4A7C15 + seed*0xBF58476D1CE4E5B9) & (1<<62 - 1))
}

// member draws member i: the same whatever the shard count.
func (w *world) member(i int) Member {
	o := w.o
	r := rand.New(rand.NewPCG(o.Seed^0xd1b54a32d192ed03, uint64(i)))
	m := Member{ID: Ptr(genID(o.Seed, i))}
	m.Consent = Ptr(r.Float64() < 0.97)
	m.Health = Ptr(r.Float64() < 0.80)
	// gender and orientation
	var gender, seeking int64
	switch u := r.Float64(); {
	case u < 0.49:
		gender = 0
		seeking = pickMask(r, []int64{2, 1, 3, 7}, []float64{0.85, 0.06, 0.07, 0.02})
	case u < 0.97:
		gender = 1
		seeking = pickMask(r, []int64{1, 2, 3, 7}, []float64{0.87, 0.06, 0.05, 0.02})
	default:
		gender = 2
		seeking = pickMask(r, []int64{7, 4, 3}, []float64{0.6, 0.1, 0.3})
	}
	m.Gender, m.Seeking = &gender, &seeking
	// age: most members 22–45, a tail to 75
	var age int
	if r.Float64() < 0.7 {
		age = 22 + r.IntN(24)
	} else {
		age = 18 + r.IntN(58)
	}
	birth := w.asOf.AddDate(-age, 0, -r.IntN(365))
	m.Birth = Ptr(int32(birth.Unix() / 86400))
	lo, hi := age-3, age+8
	if gender == 1 {
		lo, hi = age-10, age+3
	}
	lo += r.IntN(5) - 2
	hi += r.IntN(5) - 2
	lo, hi = max(lo, 18), min(max(hi, max(lo, 18)), 99)
	m.AgeMin, m.AgeMax = Ptr(int64(lo)), Ptr(int64(hi))
	// location around a city
	c := cities[pick(r, w.cityCDF)]
	spread := 0.02 * math.Sqrt(c.weight/100) // degrees: Paris σ ≈ 25 km, small cities a few km
	m.Lat = Ptr(c.lat + r.NormFloat64()*spread)
	m.Lon = Ptr(c.lon + r.NormFloat64()*spread/math.Cos(c.lat*math.Pi/180))
	maxKm := maxKmChoices[r.IntN(len(maxKmChoices))]
	if c.name == "Paris" && maxKm > 50 && r.Float64() < 0.5 {
		maxKm /= 4
	}
	m.MaxKm = &maxKm
	// clustered trait
	center := w.centers[r.IntN(len(w.centers))]
	m.Trait = make([]float32, o.D)
	for j := range m.Trait {
		m.Trait[j] = center[j] + float32(0.9*r.NormFloat64())
	}
	// HLA: about 12 of 256 alleles
	if *m.Health || r.Float64() < 0.5 {
		m.HLA = make([]byte, profile.HLABytes)
		for range 12 {
			a := pick(r, w.alleleCDF)
			m.HLA[a/8] |= 1 << (a % 8)
		}
	}
	// questionnaire
	m.Ans, m.Acc, m.Imp = make([]byte, o.Q), make([]byte, o.Q), make([]byte, o.Q)
	open := 0.25 + 0.5*r.Float64()
	for q := range o.Q {
		if r.Float64() < 0.75 {
			m.Ans[q] = byte(1 + pick(r, w.optCDF[q]))
		}
		var acc byte
		for a := range w.nOpts[q] {
			if byte(a+1) == m.Ans[q] || r.Float64() < open {
				acc |= 1 << a
			}
		}
		if acc == 0 {
			acc = 1 << r.IntN(w.nOpts[q])
		}
		m.Acc[q] = acc
		m.Imp[q] = byte(pick(r, impCDF))
	}
	if o.Open {
		m.Consent, m.Seeking, m.AgeMin, m.AgeMax, m.MaxKm = Ptr(true), Ptr(int64(7)), Ptr(int64(18)), Ptr(int64(99)), Ptr(float32(20040))
		for q, v := range m.Imp {
			m.Imp[q] = min(v, 3)
		}
	}
	return m
}

var impCDF = cdf([]float64{0.15, 0.30, 0.30, 0.235, 0.015})

func pickMask(r *rand.Rand, v []int64, p []float64) int64 {
	return v[pick(r, cdf(p))]
}

// breakage is one way the generator makes a row invalid: what it does, and
// the reason validation gives the row.
type breakage struct {
	name   string
	reason profile.Reason
	apply  func(w *world, m *Member, r *rand.Rand)
}

// breakages are the ways the generator breaks a row (--invalid-ratio),
// every kind spec §1 lists; the last three only in the variable-width forms
// (arrow-go cannot write a null fixed-size list, and fixed-size types
// cannot hold a wrong length). The order is part of the seed's meaning: a
// row's kind is drawn as an index into this list.
var breakages = []breakage{
	{"null gender", profile.NullGender, func(w *world, m *Member, r *rand.Rand) { m.Gender = nil }},
	{"gender 3", profile.GenderOutOfRange, func(w *world, m *Member, r *rand.Rand) { m.Gender = Ptr(int64(3)) }},
	{"seeking 0", profile.SeekingOutOfRange, func(w *world, m *Member, r *rand.Rand) { m.Seeking = Ptr(int64(0)) }},
	{"seeking 9", profile.SeekingOutOfRange, func(w *world, m *Member, r *rand.Rand) { m.Seeking = Ptr(int64(9)) }},
	{"age_min above age_max", profile.AgeMinAboveMax, func(w *world, m *Member, r *rand.Rand) {
		m.AgeMin, m.AgeMax = Ptr(*m.AgeMax+1), Ptr(*m.AgeMin)
	}},
	{"lat above 90", profile.LatOutOfRange, func(w *world, m *Member, r *rand.Rand) { m.Lat = Ptr(91 + r.Float64()) }},
	{"lon below -180", profile.LonOutOfRange, func(w *world, m *Member, r *rand.Rand) { m.Lon = Ptr(-181 - r.Float64()) }},
	{"max_km 0", profile.MaxKmOutOfRange, func(w *world, m *Member, r *rand.Rand) { m.MaxKm = Ptr(float32(0)) }},
	{"max_km NaN", profile.MaxKmOutOfRange, func(w *world, m *Member, r *rand.Rand) { m.MaxKm = Ptr(float32(math.NaN())) }},
	{"a NaN trait value", profile.TraitNonFinite, func(w *world, m *Member, r *rand.Rand) {
		m.Trait[r.IntN(len(m.Trait))] = float32(math.NaN())
	}},
	{"an infinite trait value", profile.TraitNonFinite, func(w *world, m *Member, r *rand.Rand) {
		m.Trait[r.IntN(len(m.Trait))] = float32(math.Inf(1))
	}},
	{"a zero trait", profile.TraitZeroNorm, func(w *world, m *Member, r *rand.Rand) { clear(m.Trait) }},
	{"answer 9", profile.AnswersOutOfRange, func(w *world, m *Member, r *rand.Rand) {
		if len(m.Ans) > 0 {
			m.Ans[r.IntN(len(m.Ans))] = 9
		}
	}},
	{"importance 5", profile.ImportanceOutOfRange, func(w *world, m *Member, r *rand.Rand) {
		if len(m.Imp) > 0 {
			m.Imp[r.IntN(len(m.Imp))] = 5
		}
	}},
	{"born after the as-of date", profile.BirthDateAfterAsOf, func(w *world, m *Member, r *rand.Rand) {
		m.Birth = Ptr(int32(w.asOf.Unix()/86400) + 1 + int32(r.IntN(300)))
	}},
	{"null lat", profile.NullLat, func(w *world, m *Member, r *rand.Rand) { m.Lat = nil }},
	{"null user_id", profile.NullUserID, func(w *world, m *Member, r *rand.Rand) { m.ID = nil }},
	{"another member's user_id", profile.DuplicateUserID, func(w *world, m *Member, r *rand.Rand) {
		m.ID = Ptr(genID(w.o.Seed, r.IntN(w.o.N)))
	}},
	// Only in the variable-width forms.
	{"null trait", profile.NullTrait, func(w *world, m *Member, r *rand.Rand) { m.Trait = nil }},
	{"a trait one short", profile.TraitWrongLength, func(w *world, m *Member, r *rand.Rand) { m.Trait = m.Trait[:len(m.Trait)-1] }},
	{"hla one byte short", profile.HLAWrongLength, func(w *world, m *Member, r *rand.Rand) { m.HLA = make([]byte, profile.HLABytes-1) }},
}

// variableOnly is how many breakages (the last ones) need the
// variable-width forms.
const variableOnly = 3

// BreakReasons are the reasons of the rows Generate breaks with
// --invalid-ratio in the fixed-size forms or, with variable, the
// variable-width ones: every one of them shows up in a large enough
// population.
func BreakReasons(variable bool) []profile.Reason {
	kinds := breakages
	if !variable {
		kinds = kinds[:len(kinds)-variableOnly]
	}
	var rs []profile.Reason
	for _, b := range kinds {
		if !slices.Contains(rs, b.reason) {
			rs = append(rs, b.reason)
		}
	}
	return rs
}

func (w *world) breakRow(m *Member, i int) {
	r := rand.New(rand.NewPCG(w.o.Seed^0x94d049bb133111eb, uint64(i)))
	kinds := breakages
	if !w.o.Variable {
		kinds = kinds[:len(kinds)-variableOnly]
	}
	kinds[r.IntN(len(kinds))].apply(w, m, r)
}
