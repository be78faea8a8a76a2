package pipeline

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	pq "github.com/parquet-go/parquet-go"
)

// tMember is one profile row as a test writes it: raw values, possibly
// invalid. A nil pointer or slice is a null.
type tMember struct {
	ID             *int64
	Consent        *bool
	Health         *bool
	Gender         *int64
	Seeking        *int64
	Birth          *int32 // days since epoch
	AgeMin, AgeMax *int64
	Lat, Lon       *float64
	MaxKm          *float32
	Trait          []float32
	HLA            []byte
	Ans, Acc, Imp  []byte
}

func ptr[T any](v T) *T { return &v }

// popKnobs shape a random test population.
type popKnobs struct {
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

func defaultKnobs(n int) popKnobs {
	return popKnobs{
		N: n, D: 16, Q: 12,
		Centers: [][2]float64{{48.85, 2.35}, {45.76, 4.84}, {43.30, 5.37}},
		Spread:  0.6, MaxKm: [2]float32{20, 400}, AgeSpan: [2]int{18, 60},
		Dealbreak: 0.05, Answered: 0.8, HealthP: 0.7, ConsentP: 0.95, TraitCluster: 4,
	}
}

var testAsOf = time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)

func daysOf(t time.Time) int32 { return int32(t.Unix() / 86400) }

// genTestPop draws a population from knobs with the seeded generator.
func genTestPop(seed uint64, k popKnobs) []tMember {
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
	out := make([]tMember, 0, k.N)
	for i := 0; i < k.N; i++ {
		if len(out) > 0 && r.Float64() < k.Clones {
			m := out[r.IntN(len(out))]
			m.ID = ptr(int64(1000 + i))
			out = append(out, m)
			continue
		}
		m := tMember{ID: ptr(int64(1000 + i))}
		if len(out) > 0 && r.Float64() < k.Dups {
			m.ID = ptr(*out[r.IntN(len(out))].ID)
		}
		m.Consent = ptr(r.Float64() < k.ConsentP)
		m.Health = ptr(r.Float64() < k.HealthP)
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
		b := testAsOf.AddDate(-age, 0, -r.IntN(365))
		if r.Float64() < 0.05 { // birthday on the as-of day or the day after: boundary of the age rule
			b = testAsOf.AddDate(-age, 0, r.IntN(2))
		}
		m.Birth = ptr(daysOf(b))
		if k.WideAges {
			m.AgeMin, m.AgeMax = ptr(int64(18)), ptr(int64(99))
		} else {
			lo := int64(age - 8 + r.IntN(5))
			hi := lo + int64(8+r.IntN(15))
			m.AgeMin, m.AgeMax = ptr(min(lo, 255)), ptr(min(hi, 255)) // the columns are uint8

		}
		c := k.Centers[r.IntN(len(k.Centers))]
		m.Lat = ptr(math.Max(-90, math.Min(90, c[0]+r.NormFloat64()*k.Spread)))
		lon := c[1] + r.NormFloat64()*k.Spread
		for lon > 180 {
			lon -= 360
		}
		for lon < -180 {
			lon += 360
		}
		m.Lon = &lon
		m.MaxKm = ptr(k.MaxKm[0] + r.Float32()*(k.MaxKm[1]-k.MaxKm[0]))
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
			m.HLA = make([]byte, HLABytes)
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
func breakMember(r *rand.Rand, m *tMember) {
	switch r.IntN(22) {
	case 0:
		m.Gender = nil
	case 1:
		m.Gender = ptr(int64(3))
	case 2:
		m.Seeking = ptr(int64(0))
	case 3:
		m.Seeking = ptr(int64(8))
	case 4:
		m.AgeMin, m.AgeMax = ptr(int64(40)), ptr(int64(30))
	case 5:
		m.Lat = ptr(90.5)
	case 6:
		m.Lon = ptr(-180.25)
	case 7:
		m.MaxKm = ptr(float32(0))
	case 8:
		m.MaxKm = ptr(float32(math.Inf(1)))
	case 9:
		m.Trait[r.IntN(len(m.Trait))] = float32(math.NaN())
	case 10:
		m.Trait = make([]float32, len(m.Trait))
	case 11:
		m.Ans[r.IntN(len(m.Ans))] = 9
	case 12:
		m.Imp[r.IntN(len(m.Imp))] = 5
	case 13:
		m.Birth = ptr(daysOf(testAsOf) + 1)
	case 14:
		m.Trait = m.Trait[:len(m.Trait)-1]
	case 15:
		m.HLA = make([]byte, HLABytes+1)
	case 16:
		m.Answers(nil)
	case 17:
		m.ID = nil
	case 18:
		m.Gender = ptr(int64(300)) // does not fit uint8
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
func floatEdge(r *rand.Rand, m *tMember) {
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
		m.MaxKm = ptr(float32(math.SmallestNonzeroFloat32))
	case 3:
		m.MaxKm = ptr(float32(math.MaxFloat32))
	}
}

// nullOne sets one random nullable column of m to null: any column of the
// profile schema can be null in a file (invalid for most, spec §1).
func nullOne(r *rand.Rand, m *tMember) {
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

// Answers sets the answers column (nil: null).
func (m *tMember) Answers(a []byte) { m.Ans = a }

// writeForm is a physical layout of profile shards.
type writeForm int

const (
	formArrowFixed     writeForm = iota // arrow-go, fixed_size_list / fixed_size_binary
	formArrowVariable                   // arrow-go, list<float32> / binary
	formParquetGo                       // parquet-go, list<float32>, binary, other integer widths
	formParquetGoFixed                  // parquet-go, fixed_size_binary from Go arrays, uint64 ids (Q = 12 only)
)

func (f writeForm) String() string {
	return [...]string{"arrow-fixed", "arrow-variable", "parquet-go", "parquet-go-fixed"}[f]
}

// canHold reports whether the form can represent every row of ms (fixed
// forms cannot hold wrong lengths, arrow cannot write a null fixed-size list).
func (f writeForm) canHold(ms []tMember, d, q int) bool {
	if f == formParquetGoFixed {
		if q != pqgoFixedQ {
			return false
		}
		for _, m := range ms {
			if m.Trait == nil || (m.HLA != nil && len(m.HLA) != HLABytes) || (m.ID != nil && *m.ID < 0) ||
				(m.Ans != nil && len(m.Ans) != q) || (m.Acc != nil && len(m.Acc) != q) || (m.Imp != nil && len(m.Imp) != q) {
				return false
			}
		}
		return true
	}
	if f == formParquetGo {
		for _, m := range ms {
			if m.Trait == nil { // parquet-go writes a nil slice as an empty list
				return false
			}
		}
	}
	if f != formArrowFixed {
		return true
	}
	if q == 0 { // arrow-go cannot write fixed_size_binary[0]
		return false
	}
	for _, m := range ms {
		if m.Trait == nil || len(m.Trait) != d || (m.HLA != nil && len(m.HLA) != HLABytes) ||
			(m.Ans != nil && len(m.Ans) != q) || (m.Acc != nil && len(m.Acc) != q) || (m.Imp != nil && len(m.Imp) != q) {
			return false
		}
	}
	return true
}

// writeProfiles writes ms into nShards files under dir in the given form.
func writeProfiles(t testing.TB, dir string, ms []tMember, d, q, nShards int, form writeForm) []string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var paths []string
	for s := 0; s < nShards; s++ {
		lo, hi := s*len(ms)/nShards, (s+1)*len(ms)/nShards
		p := filepath.Join(dir, "shard-"+string(rune('a'+s))+".parquet")
		switch form {
		case formParquetGo:
			writeParquetGo(t, p, ms[lo:hi], plainBytes)
		case formParquetGoFixed:
			writeParquetGoFixed(t, p, ms[lo:hi])
		default:
			writeArrow(t, p, ms[lo:hi], d, q, form == formArrowVariable)
		}
		paths = append(paths, p)
	}
	return paths
}

func writeArrow(t testing.TB, path string, ms []tMember, d, q int, variable bool) {
	t.Helper()
	sc := ProfileSchema(d, q, variable)
	// Gender as uint16 here so that the out-of-uint8-range case is representable.
	fields := sc.Fields()
	fields[3].Type = arrow.PrimitiveTypes.Uint16
	sc = arrow.NewSchema(fields, nil)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// Row groups of 7 rows so that readers cross row-group boundaries. Each
	// record is at most one row group: arrow-go v18.8.0's FileWriter.Write
	// repeats the first slice's fixed_size_list values in every row group
	// when it has to split a larger record itself.
	const rg = 7
	w, err := pqarrow.NewFileWriter(sc, f, parquet.NewWriterProperties(parquet.WithMaxRowGroupLength(rg)),
		pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		t.Fatal(err)
	}
	for lo := 0; lo < len(ms) || lo == 0; lo += rg {
		rec := arrowRecord(sc, ms[lo:min(lo+rg, len(ms))], variable)
		err := w.Write(rec)
		rec.Release()
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func arrowRecord(sc *arrow.Schema, ms []tMember, variable bool) arrow.RecordBatch {
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer b.Release()
	fb := b.Fields()
	for _, m := range ms {
		appendOpt(fb[0], m.ID, func(v int64) { fb[0].(*array.Int64Builder).Append(v) })
		appendOpt(fb[1], m.Consent, fb[1].(*array.BooleanBuilder).Append)
		appendOpt(fb[2], m.Health, fb[2].(*array.BooleanBuilder).Append)
		appendOpt(fb[3], m.Gender, func(v int64) { fb[3].(*array.Uint16Builder).Append(uint16(v)) })
		appendOpt(fb[4], m.Seeking, func(v int64) { fb[4].(*array.Uint8Builder).Append(uint8(v)) })
		appendOpt(fb[5], m.Birth, func(v int32) { fb[5].(*array.Date32Builder).Append(arrow.Date32(v)) })
		appendOpt(fb[6], m.AgeMin, func(v int64) { fb[6].(*array.Uint8Builder).Append(uint8(v)) })
		appendOpt(fb[7], m.AgeMax, func(v int64) { fb[7].(*array.Uint8Builder).Append(uint8(v)) })
		appendOpt(fb[8], m.Lat, fb[8].(*array.Float64Builder).Append)
		appendOpt(fb[9], m.Lon, fb[9].(*array.Float64Builder).Append)
		appendOpt(fb[10], m.MaxKm, fb[10].(*array.Float32Builder).Append)
		switch {
		case m.Trait == nil:
			fb[11].AppendNull()
		case variable:
			fb[11].(*array.ListBuilder).Append(true)
			fb[11].(*array.ListBuilder).ValueBuilder().(*array.Float32Builder).AppendValues(m.Trait, nil)
		default:
			fb[11].(*array.FixedSizeListBuilder).Append(true)
			fb[11].(*array.FixedSizeListBuilder).ValueBuilder().(*array.Float32Builder).AppendValues(m.Trait, nil)
		}
		for k, v := range [][]byte{m.HLA, m.Ans, m.Acc, m.Imp} {
			switch {
			case v == nil:
				fb[12+k].AppendNull()
			case variable:
				fb[12+k].(*array.BinaryBuilder).Append(v)
			default:
				fb[12+k].(*array.FixedSizeBinaryBuilder).Append(v)
			}
		}
	}
	return b.NewRecordBatch()
}

func appendOpt[T any](b array.Builder, v *T, app func(T)) {
	if v == nil {
		b.AppendNull()
		return
	}
	app(*v)
}

// pqgoRow is the parquet-go form: other integer widths and signedness,
// repeated float lists, byte arrays.
type pqgoRow struct {
	UserID  *int64    `parquet:"user_id,optional"`
	Consent *bool     `parquet:"consent,optional"`
	Health  *bool     `parquet:"health_consent,optional"`
	Gender  *int32    `parquet:"gender,optional"`
	Seeking *int16    `parquet:"seeking,optional"`
	Birth   *int32    `parquet:"birth_date,optional,date"`
	AgeMin  *int32    `parquet:"age_min,optional"`
	AgeMax  *uint32   `parquet:"age_max,optional"`
	Lat     *float64  `parquet:"lat,optional"`
	Lon     *float64  `parquet:"lon,optional"`
	MaxKm   *float32  `parquet:"max_km,optional"`
	Trait   []float32 `parquet:"trait,list"`
	HLA     *[]byte   `parquet:"hla,optional"`
	Ans     *[]byte   `parquet:"answers,optional"`
	Acc     *[]byte   `parquet:"accept,optional"`
	Imp     *[]byte   `parquet:"importance,optional"`
}

// plainBytes writes byte arrays PLAIN: arrow-go v18.8.0's DELTA_BINARY_PACKED
// decoder (used for parquet-go's default DELTA_LENGTH_BYTE_ARRAY) never frees
// its bit-width buffer, which the checked allocator would report.
// TestReadDeltaEncodedBinary covers the default encoding without that check.
var plainBytes = pq.DefaultEncodingFor(pq.ByteArray, &pq.Plain)

func writeParquetGo(t testing.TB, path string, ms []tMember, opts ...pq.WriterOption) {
	t.Helper()
	rows := make([]pqgoRow, len(ms))
	for i, m := range ms {
		r := pqgoRow{UserID: m.ID, Consent: m.Consent, Health: m.Health, Birth: m.Birth, Lat: m.Lat, Lon: m.Lon, MaxKm: m.MaxKm, Trait: m.Trait}
		if m.Gender != nil {
			r.Gender = ptr(int32(*m.Gender))
		}
		if m.Seeking != nil {
			r.Seeking = ptr(int16(*m.Seeking))
		}
		if m.AgeMin != nil {
			r.AgeMin = ptr(int32(*m.AgeMin))
		}
		if m.AgeMax != nil {
			r.AgeMax = ptr(uint32(*m.AgeMax))
		}
		bp := func(b []byte) *[]byte {
			if b == nil {
				return nil
			}
			return &b
		}
		r.HLA, r.Ans, r.Acc, r.Imp = bp(m.HLA), bp(m.Ans), bp(m.Acc), bp(m.Imp)
		rows[i] = r
	}
	if err := pq.WriteFile(path, rows, append([]pq.WriterOption{pq.MaxRowsPerRowGroup(5)}, opts...)...); err != nil {
		t.Fatal(err)
	}
}

// pqgoFixedQ is the question count of the parquet-go fixed form (Go arrays
// need a compile-time length).
const pqgoFixedQ = 12

// pqgoFixedRow writes the byte columns as FIXED_LEN_BYTE_ARRAY, which
// arrow-go reads as fixed_size_binary, and user_id as an unsigned 64-bit
// integer.
type pqgoFixedRow struct {
	UserID  *uint64           `parquet:"user_id,optional"`
	Consent *bool             `parquet:"consent,optional"`
	Health  *bool             `parquet:"health_consent,optional"`
	Gender  *int64            `parquet:"gender,optional"`
	Seeking *uint8            `parquet:"seeking,optional"`
	Birth   *int32            `parquet:"birth_date,optional,date"`
	AgeMin  *int16            `parquet:"age_min,optional"`
	AgeMax  *int64            `parquet:"age_max,optional"`
	Lat     *float64          `parquet:"lat,optional"`
	Lon     *float64          `parquet:"lon,optional"`
	MaxKm   *float32          `parquet:"max_km,optional"`
	Trait   []float32         `parquet:"trait,list"`
	HLA     *[HLABytes]byte   `parquet:"hla,optional"`
	Ans     *[pqgoFixedQ]byte `parquet:"answers,optional"`
	Acc     *[pqgoFixedQ]byte `parquet:"accept,optional"`
	Imp     *[pqgoFixedQ]byte `parquet:"importance,optional"`
}

func writeParquetGoFixed(t testing.TB, path string, ms []tMember) {
	t.Helper()
	rows := make([]pqgoFixedRow, len(ms))
	for i, m := range ms {
		r := pqgoFixedRow{Consent: m.Consent, Health: m.Health, Gender: m.Gender, Birth: m.Birth, AgeMax: m.AgeMax,
			Lat: m.Lat, Lon: m.Lon, MaxKm: m.MaxKm, Trait: m.Trait}
		if m.ID != nil {
			r.UserID = ptr(uint64(*m.ID))
		}
		if m.Seeking != nil {
			r.Seeking = ptr(uint8(*m.Seeking))
		}
		if m.AgeMin != nil {
			r.AgeMin = ptr(int16(*m.AgeMin))
		}
		if m.HLA != nil {
			r.HLA = (*[HLABytes]byte)(m.HLA)
		}
		if m.Ans != nil {
			r.Ans = (*[pqgoFixedQ]byte)(m.Ans)
		}
		if m.Acc != nil {
			r.Acc = (*[pqgoFixedQ]byte)(m.Acc)
		}
		if m.Imp != nil {
			r.Imp = (*[pqgoFixedQ]byte)(m.Imp)
		}
		rows[i] = r
	}
	if err := pq.WriteFile(path, rows, pq.MaxRowsPerRowGroup(6), plainBytes); err != nil {
		t.Fatal(err)
	}
}
