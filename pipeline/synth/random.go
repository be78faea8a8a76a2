package synth

import (
	"math"
	"math/rand/v2"
	"time"

	"github.com/osmosis/batchmatch/pipeline/profile"
)

// Knobs shape a Random population.
type Knobs struct {
	N            int
	D, Q         int
	Centers      [][2]float64 // cities; members spread around them
	Spread       float64      // degrees
	MaxKm        [2]float32   // range
	AllSeekAll   bool         // everyone seeks every gender
	AgeSpan      [2]int       // ages drawn in this range
	WideAges     bool         // every member accepts ages 18..99
	Dealbreak    float64      // probability a question is a dealbreaker
	Answered     float64      // probability a question is answered
	HealthP      float64      // probability of health consent
	ConsentP     float64
	Clones       float64 // probability a member is a copy (new id) of an earlier one
	Invalid      float64 // probability a row is broken
	Dups         float64 // probability a row reuses an earlier id
	TraitCluster int     // number of trait clusters (0: iid)
	TraitNoise   float64 // spread around a cluster centre (0: 0.7; negative: none)
	TraitFlat    bool    // centres with equal components: the float32 running sum of a long dot product errs the same way at every step
	Nulls        float64 // probability a row has a null in one random column (any nullable position)
	FloatEdges   float64 // probability a row takes float extremes: tiny or huge traits, subnormal or maximal max_km
}

// DefaultKnobs are the knobs most tests start from: n members of D = 16,
// Q = 12 around three French cities.
func DefaultKnobs(n int) Knobs {
	return Knobs{
		N: n, D: 16, Q: 12,
		Centers: [][2]float64{{48.85, 2.35}, {45.76, 4.84}, {43.30, 5.37}},
		Spread:  0.6, MaxKm: [2]float32{20, 400}, AgeSpan: [2]int{18, 60},
		Dealbreak: 0.05, Answered: 0.8, HealthP: 0.7, ConsentP: 0.95, TraitCluster: 4,
	}
}

// AsOf is the date Random draws ages against (and the tests run at).
var AsOf = time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)

// Days is t as days since the epoch (the birth_date column).
func Days(t time.Time) int32 { return int32(t.Unix() / 86400) }

// Random draws a population from the knobs with a generator seeded by
// seed: the same seed and knobs give the same members.
func Random(seed uint64, k Knobs) []Member {
	r := rand.New(rand.NewPCG(seed, 77))
	var centers [][]float32
	for range k.TraitCluster {
		c := make([]float32, k.D)
		for j := range c {
			c[j] = float32(r.NormFloat64())
			if k.TraitFlat { // centre i: +1, the last i quarters -1
				c[j] = 1
				if j >= k.D-len(centers)*k.D/4 {
					c[j] = -1
				}
			}
		}
		centers = append(centers, c)
	}
	out := make([]Member, 0, k.N)
	for i := 0; i < k.N; i++ {
		if len(out) > 0 && r.Float64() < k.Clones {
			m := out[r.IntN(len(out))]
			m.ID = Ptr(int64(1000 + i))
			out = append(out, m)
			continue
		}
		m := Member{ID: Ptr(int64(1000 + i))}
		if len(out) > 0 && r.Float64() < k.Dups {
			m.ID = Ptr(*out[r.IntN(len(out))].ID)
		}
		m.Consent = Ptr(r.Float64() < k.ConsentP)
		m.Health = Ptr(r.Float64() < k.HealthP)
		if r.Float64() < 0.05 {
			m.Consent = nil
		}
		if r.Float64() < 0.05 {
			m.Health = nil
		}
		g := int64(r.IntN(3))
		m.Gender = &g
		s := int64(1 + r.IntN(7))
		if k.AllSeekAll {
			s = 7
		}
		m.Seeking = &s
		age := k.AgeSpan[0] + r.IntN(k.AgeSpan[1]-k.AgeSpan[0]+1)
		b := AsOf.AddDate(-age, 0, -r.IntN(365))
		if r.Float64() < 0.05 { // birthday on the as-of day or the day after: boundary of the age rule
			b = AsOf.AddDate(-age, 0, r.IntN(2))
		}
		m.Birth = Ptr(Days(b))
		if k.WideAges {
			m.AgeMin, m.AgeMax = Ptr(int64(18)), Ptr(int64(99))
		} else {
			lo := int64(age - 8 + r.IntN(5))
			hi := lo + int64(8+r.IntN(15))
			m.AgeMin, m.AgeMax = Ptr(min(lo, 255)), Ptr(min(hi, 255)) // the columns are uint8

		}
		c := k.Centers[r.IntN(len(k.Centers))]
		m.Lat = Ptr(math.Max(-90, math.Min(90, c[0]+r.NormFloat64()*k.Spread)))
		lon := c[1] + r.NormFloat64()*k.Spread
		for lon > 180 {
			lon -= 360
		}
		for lon < -180 {
			lon += 360
		}
		m.Lon = &lon
		m.MaxKm = Ptr(k.MaxKm[0] + r.Float32()*(k.MaxKm[1]-k.MaxKm[0]))
		m.Trait = make([]float32, k.D)
		var ctr []float32
		if len(centers) > 0 {
			ctr = centers[r.IntN(len(centers))]
		}
		noise := k.TraitNoise
		if noise == 0 {
			noise = 0.7
		}
		noise = max(noise, 0)
		for j := range m.Trait {
			v := r.NormFloat64()
			if ctr != nil {
				v = float64(ctr[j]) + noise*v
			}
			m.Trait[j] = float32(v)
		}
		if r.Float64() < 0.9 {
			m.HLA = make([]byte, profile.HLABytes)
			for range r.IntN(16) {
				a := r.IntN(256)
				m.HLA[a/8] |= 1 << (a % 8)
			}
		}
		m.Ans, m.Acc, m.Imp = make([]byte, k.Q), make([]byte, k.Q), make([]byte, k.Q)
		for q := range k.Q {
			if r.Float64() < k.Answered {
				m.Ans[q] = byte(1 + r.IntN(4))
			}
			m.Acc[q] = byte(r.IntN(256))
			m.Imp[q] = byte(r.IntN(4))
			if r.Float64() < k.Dealbreak {
				m.Imp[q] = 4
			}
		}
		if k.FloatEdges > 0 && r.Float64() < k.FloatEdges {
			floatEdge(r, &m)
		}
		if r.Float64() < k.Invalid {
			breakMember(r, &m)
		}
		if k.Nulls > 0 && r.Float64() < k.Nulls {
			nullOne(r, &m)
		}
		out = append(out, m)
	}
	return out
}

// breakMember makes a row invalid in one of the ways spec §1 lists.
func breakMember(r *rand.Rand, m *Member) {
	switch r.IntN(22) {
	case 0:
		m.Gender = nil
	case 1:
		m.Gender = Ptr(int64(3))
	case 2:
		m.Seeking = Ptr(int64(0))
	case 3:
		m.Seeking = Ptr(int64(8))
	case 4:
		m.AgeMin, m.AgeMax = Ptr(int64(40)), Ptr(int64(30))
	case 5:
		m.Lat = Ptr(90.5)
	case 6:
		m.Lon = Ptr(-180.25)
	case 7:
		m.MaxKm = Ptr(float32(0))
	case 8:
		m.MaxKm = Ptr(float32(math.Inf(1)))
	case 9:
		m.Trait[r.IntN(len(m.Trait))] = float32(math.NaN())
	case 10:
		m.Trait = make([]float32, len(m.Trait))
	case 11:
		m.Ans[r.IntN(len(m.Ans))] = 9
	case 12:
		m.Imp[r.IntN(len(m.Imp))] = 5
	case 13:
		m.Birth = Ptr(Days(AsOf) + 1)
	case 14:
		m.Trait = m.Trait[:len(m.Trait)-1]
	case 15:
		m.HLA = make([]byte, profile.HLABytes+1)
	case 16:
		m.Ans = nil
	case 17:
		m.ID = nil
	case 18:
		m.Gender = Ptr(int64(300)) // does not fit uint8
	case 19:
		m.Lat = nil
	case 20:
		m.Trait = nil
	case 21:
		m.Trait[0] = float32(math.Inf(-1))
	}
}

// floatEdge gives m valid float extremes: a trait scaled into float32's
// subnormal range or near its maximum, a max_km that is the smallest
// float32 above 0 or the largest float32.
func floatEdge(r *rand.Rand, m *Member) {
	switch r.IntN(4) {
	case 0:
		for j := range m.Trait {
			m.Trait[j] *= 1e-39 // many components subnormal; the norm is computed in float64
		}
	case 1:
		for j := range m.Trait {
			m.Trait[j] = float32(float64(m.Trait[j]) * 6e37) // |x| < 3.4e38 for |N(0,1)| < 5.6
		}
	case 2:
		m.MaxKm = Ptr(float32(math.SmallestNonzeroFloat32))
	case 3:
		m.MaxKm = Ptr(float32(math.MaxFloat32))
	}
}

// nullOne sets one random nullable column of m to null: any column of the
// profile schema can be null in a file (invalid for most, spec §1).
func nullOne(r *rand.Rand, m *Member) {
	switch r.IntN(16) {
	case 0:
		m.ID = nil
	case 1:
		m.Consent = nil
	case 2:
		m.Health = nil
	case 3:
		m.Gender = nil
	case 4:
		m.Seeking = nil
	case 5:
		m.Birth = nil
	case 6:
		m.AgeMin = nil
	case 7:
		m.AgeMax = nil
	case 8:
		m.Lat = nil
	case 9:
		m.Lon = nil
	case 10:
		m.MaxKm = nil
	case 11:
		m.Trait = nil
	case 12:
		m.HLA = nil
	case 13:
		m.Ans = nil
	case 14:
		m.Acc = nil
	case 15:
		m.Imp = nil
	}
}
