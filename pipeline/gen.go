package pipeline

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/osmosis/batchmatch/pipeline/failure"
	"github.com/spf13/pflag"
	"golang.org/x/sync/errgroup"
)

// GenOptions configure the synthetic population generator.
type GenOptions struct {
	N            int
	Shards       int
	Seed         uint64
	Out          string
	D, Q         int
	InvalidRatio float64
	AsOf         string
	Variable     bool // write list/binary forms instead of fixed-size types
	// Open makes every pair compatible (the benchmark workloads of bench/):
	// everyone consents and seeks every gender, accepts ages 18–99 and any
	// distance (max_km 20 040 ≥ half the circumference), and no question
	// is a dealbreaker. Locations, traits, answers and biomarkers are drawn
	// as usual.
	Open bool
}

// AddFlags registers the generator's flags.
func (o *GenOptions) AddFlags(fs *pflag.FlagSet) {
	fs.IntVar(&o.N, "n", 10000, "members to generate")
	fs.IntVar(&o.Shards, "shards", 4, "Parquet files to spread them over")
	fs.Uint64Var(&o.Seed, "seed", 1, "random seed; the same seed gives the same population")
	fs.StringVar(&o.Out, "out", "", "output directory for the profile shards")
	fs.IntVar(&o.D, "trait-dim", 128, "trait embedding width D")
	fs.IntVar(&o.Q, "questions", 64, "question count Q")
	fs.Float64Var(&o.InvalidRatio, "invalid-ratio", 0, "fraction of rows made invalid, of every kind the spec lists")
	fs.StringVar(&o.AsOf, "as-of", "", "date ages are drawn against, YYYY-MM-DD (default: today, UTC)")
	fs.BoolVar(&o.Variable, "variable-width", false, "write trait as list<float32> and byte columns as binary (the forms DuckDB and pandas write)")
	fs.BoolVar(&o.Open, "open", false, "make every pair compatible: all consent, seek every gender, accept ages 18-99 and any distance, no dealbreakers (benchmark workloads)")
}

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

// genWorld holds the population-wide structure shared by all members.
type genWorld struct {
	o         GenOptions
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

func newGenWorld(o GenOptions, asOf time.Time) *genWorld {
	r := rand.New(rand.NewPCG(o.Seed, 0x9e3779b97f4a7c15))
	w := &genWorld{o: o, asOf: asOf}
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

// member is one generated profile row, before it is appended to builders.
type member struct {
	id              int64
	idNull          bool
	consent, health bool
	healthNull      bool
	gender, seeking int64
	genderNull      bool
	birth           int32
	ageMin, ageMax  int64
	lat, lon        float64
	latNull         bool
	maxKm           float32
	trait           []float32
	traitNull       bool
	hla             []byte // nil = null
	ans, acc, imp   []byte
}

func (w *genWorld) member(i int) member {
	o := w.o
	r := rand.New(rand.NewPCG(o.Seed^0xd1b54a32d192ed03, uint64(i)))
	m := member{id: genID(o.Seed, i)}
	m.consent = r.Float64() < 0.97
	m.health = r.Float64() < 0.80
	// gender and orientation
	switch u := r.Float64(); {
	case u < 0.49:
		m.gender = 0
		m.seeking = pickMask(r, []int64{2, 1, 3, 7}, []float64{0.85, 0.06, 0.07, 0.02})
	case u < 0.97:
		m.gender = 1
		m.seeking = pickMask(r, []int64{1, 2, 3, 7}, []float64{0.87, 0.06, 0.05, 0.02})
	default:
		m.gender = 2
		m.seeking = pickMask(r, []int64{7, 4, 3}, []float64{0.6, 0.1, 0.3})
	}
	// age: most members 22–45, a tail to 75
	var age int
	if r.Float64() < 0.7 {
		age = 22 + r.IntN(24)
	} else {
		age = 18 + r.IntN(58)
	}
	birth := w.asOf.AddDate(-age, 0, -r.IntN(365))
	m.birth = int32(birth.Unix() / 86400)
	lo, hi := age-3, age+8
	if m.gender == 1 {
		lo, hi = age-10, age+3
	}
	lo += r.IntN(5) - 2
	hi += r.IntN(5) - 2
	lo, hi = max(lo, 18), min(max(hi, max(lo, 18)), 99)
	m.ageMin, m.ageMax = int64(lo), int64(hi)
	// location around a city
	c := cities[pick(r, w.cityCDF)]
	spread := 0.02 * math.Sqrt(c.weight/100) // degrees: Paris σ ≈ 25 km, small cities a few km
	m.lat = c.lat + r.NormFloat64()*spread
	m.lon = c.lon + r.NormFloat64()*spread/math.Cos(c.lat*math.Pi/180)
	m.maxKm = maxKmChoices[r.IntN(len(maxKmChoices))]
	if c.name == "Paris" && m.maxKm > 50 && r.Float64() < 0.5 {
		m.maxKm /= 4
	}
	// clustered trait
	center := w.centers[r.IntN(len(w.centers))]
	m.trait = make([]float32, o.D)
	for j := range m.trait {
		m.trait[j] = center[j] + float32(0.9*r.NormFloat64())
	}
	// HLA: about 12 of 256 alleles
	if m.health || r.Float64() < 0.5 {
		m.hla = make([]byte, HLABytes)
		for range 12 {
			a := pick(r, w.alleleCDF)
			m.hla[a/8] |= 1 << (a % 8)
		}
	}
	// questionnaire
	m.ans, m.acc, m.imp = make([]byte, o.Q), make([]byte, o.Q), make([]byte, o.Q)
	open := 0.25 + 0.5*r.Float64()
	for q := range o.Q {
		if r.Float64() < 0.75 {
			m.ans[q] = byte(1 + pick(r, w.optCDF[q]))
		}
		var acc byte
		for a := range w.nOpts[q] {
			if byte(a+1) == m.ans[q] || r.Float64() < open {
				acc |= 1 << a
			}
		}
		if acc == 0 {
			acc = 1 << r.IntN(w.nOpts[q])
		}
		m.acc[q] = acc
		m.imp[q] = byte(pick(r, impCDF))
	}
	if o.Open {
		m.consent, m.seeking, m.ageMin, m.ageMax, m.maxKm = true, 7, 18, 99, 20040
		for q, v := range m.imp {
			m.imp[q] = min(v, 3)
		}
	}
	return m
}

var impCDF = cdf([]float64{0.15, 0.30, 0.30, 0.235, 0.015})

func pickMask(r *rand.Rand, v []int64, p []float64) int64 {
	return v[pick(r, cdf(p))]
}

// invalidKinds are the ways the generator breaks a row; the wrong-length
// kinds need the variable-width forms.
var invalidKinds = []string{
	"null_gender", "gender_out_of_range", "seeking_zero", "seeking_out_of_range", "age_min_above_age_max",
	"lat_out_of_range", "lon_out_of_range", "max_km_zero", "max_km_nan", "trait_nan", "trait_inf",
	"trait_zero_norm", "answers_out_of_range", "importance_out_of_range",
	"birth_date_after_as_of", "null_lat", "null_user_id", "duplicate_user_id",
	// Only in the variable-width forms: arrow-go cannot write a null
	// fixed-size list, and fixed-size types cannot hold a wrong length.
	"null_trait", "trait_wrong_length", "hla_wrong_length",
}

func (w *genWorld) breakRow(m *member, i int) {
	r := rand.New(rand.NewPCG(w.o.Seed^0x94d049bb133111eb, uint64(i)))
	kinds := invalidKinds
	if !w.o.Variable {
		kinds = kinds[:len(kinds)-3]
	}
	switch kinds[r.IntN(len(kinds))] {
	case "null_gender":
		m.genderNull = true
	case "gender_out_of_range":
		m.gender = 3
	case "seeking_zero":
		m.seeking = 0
	case "seeking_out_of_range":
		m.seeking = 9
	case "age_min_above_age_max":
		m.ageMin, m.ageMax = m.ageMax+1, m.ageMin
	case "lat_out_of_range":
		m.lat = 91 + r.Float64()
	case "lon_out_of_range":
		m.lon = -181 - r.Float64()
	case "max_km_zero":
		m.maxKm = 0
	case "max_km_nan":
		m.maxKm = float32(math.NaN())
	case "trait_nan":
		m.trait[r.IntN(len(m.trait))] = float32(math.NaN())
	case "trait_inf":
		m.trait[r.IntN(len(m.trait))] = float32(math.Inf(1))
	case "trait_zero_norm":
		clear(m.trait)
	case "null_trait":
		m.traitNull = true
	case "answers_out_of_range":
		if len(m.ans) > 0 {
			m.ans[r.IntN(len(m.ans))] = 9
		}
	case "importance_out_of_range":
		if len(m.imp) > 0 {
			m.imp[r.IntN(len(m.imp))] = 5
		}
	case "birth_date_after_as_of":
		m.birth = int32(w.asOf.Unix()/86400) + 1 + int32(r.IntN(300))
	case "null_lat":
		m.latNull = true
	case "null_user_id":
		m.idNull = true
	case "duplicate_user_id":
		m.id = genID(w.o.Seed, r.IntN(w.o.N))
	case "trait_wrong_length":
		m.trait = m.trait[:len(m.trait)-1]
	case "hla_wrong_length":
		m.hla = make([]byte, HLABytes-1)
	}
}

// ProfileSchema returns the Arrow schema of profile shards with trait width
// d and q questions, in the fixed-size forms or the variable-width ones.
func ProfileSchema(d, q int, variable bool) *arrow.Schema {
	trait := arrow.DataType(arrow.FixedSizeListOf(int32(d), arrow.PrimitiveTypes.Float32))
	var hla, qb arrow.DataType = &arrow.FixedSizeBinaryType{ByteWidth: HLABytes}, &arrow.FixedSizeBinaryType{ByteWidth: q}
	if variable {
		trait = arrow.ListOf(arrow.PrimitiveTypes.Float32)
		hla, qb = arrow.BinaryTypes.Binary, arrow.BinaryTypes.Binary
	}
	if q == 0 { // Parquet has no zero-width FIXED_LEN_BYTE_ARRAY: empty binary values
		qb = arrow.BinaryTypes.Binary
	}
	return arrow.NewSchema([]arrow.Field{
		{Name: colUserID, Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: colConsent, Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
		{Name: colHealthConsent, Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
		{Name: colGender, Type: arrow.PrimitiveTypes.Uint8, Nullable: true},
		{Name: colSeeking, Type: arrow.PrimitiveTypes.Uint8, Nullable: true},
		{Name: colBirthDate, Type: arrow.FixedWidthTypes.Date32, Nullable: true},
		{Name: colAgeMin, Type: arrow.PrimitiveTypes.Uint8, Nullable: true},
		{Name: colAgeMax, Type: arrow.PrimitiveTypes.Uint8, Nullable: true},
		{Name: colLat, Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: colLon, Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: colMaxKm, Type: arrow.PrimitiveTypes.Float32, Nullable: true},
		{Name: colTrait, Type: trait, Nullable: true},
		{Name: colHLA, Type: hla, Nullable: true},
		{Name: colAnswers, Type: qb, Nullable: true},
		{Name: colAccept, Type: qb, Nullable: true},
		{Name: colImportance, Type: qb, Nullable: true},
	}, nil)
}

// Generate writes a synthetic population into o.Shards Parquet files under
// o.Out and returns their paths. Member i is the same whatever the shard count.
func Generate(ctx context.Context, o GenOptions, workers int) ([]string, error) {
	if o.N < 0 || o.Shards < 1 || o.D < 1 || o.Q < 0 || !(o.InvalidRatio >= 0 && o.InvalidRatio <= 1) || o.Out == "" {
		return nil, failure.Usagef("gen: need --out, --n ≥ 0, --shards ≥ 1, --trait-dim ≥ 1, --questions ≥ 0 and --invalid-ratio in [0, 1]")
	}
	asOf := time.Now().UTC().Truncate(24 * time.Hour)
	if o.AsOf != "" {
		t, err := time.Parse(time.DateOnly, o.AsOf)
		if err != nil {
			return nil, failure.Usagef("--as-of must be YYYY-MM-DD, got %q", o.AsOf)
		}
		asOf = t
	}
	if err := os.MkdirAll(o.Out, 0o750); err != nil {
		return nil, failure.IOf("creating %s: %w", o.Out, err)
	}
	w := newGenWorld(o, asOf)
	paths := make([]string, o.Shards)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(workers, 1))
	for s := range o.Shards {
		paths[s] = filepath.Join(o.Out, fmt.Sprintf("profiles-%05d-of-%05d.parquet", s, o.Shards))
		lo, hi := s*o.N/o.Shards, (s+1)*o.N/o.Shards
		g.Go(func() error { return w.writeShard(gctx, paths[s], lo, hi) })
	}
	return paths, g.Wait()
}

func (w *genWorld) writeShard(ctx context.Context, path string, lo, hi int) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
	if err != nil {
		return failure.IOf("creating %s: %w", tmp, err)
	}
	defer os.Remove(tmp)
	defer f.Close()
	sc := ProfileSchema(w.o.D, w.o.Q, w.o.Variable)
	// One record batch per row group: arrow-go v18.8.0's FileWriter.Write
	// writes wrong fixed_size_list values when it splits a record larger
	// than the row-group length itself, so batch == row-group length.
	const batch = 1 << 14
	props := parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Zstd), parquet.WithMaxRowGroupLength(batch))
	fw, err := pqarrow.NewFileWriter(sc, f, props, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		return failure.IOf("writing %s: %w", path, err)
	}
	for start := lo; start < hi; start += batch {
		if err := ctx.Err(); err != nil {
			fw.Close()
			return err
		}
		rec := w.record(sc, start, min(start+batch, hi))
		err := fw.Write(rec)
		rec.Release()
		if err != nil {
			fw.Close()
			return failure.IOf("writing %s: %w", path, err)
		}
	}
	if err := fw.Close(); err != nil {
		return failure.IOf("closing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return failure.IOf("renaming %s: %w", tmp, err)
	}
	return nil
}

// record builds the rows [lo, hi) as one Arrow record batch.
func (w *genWorld) record(sc *arrow.Schema, lo, hi int) arrow.RecordBatch {
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer b.Release()
	for i := lo; i < hi; i++ {
		m := w.member(i)
		if w.o.InvalidRatio > 0 && rand.New(rand.NewPCG(w.o.Seed^0x2545f4914f6cdd1d, uint64(i))).Float64() < w.o.InvalidRatio {
			w.breakRow(&m, i)
		}
		appendMember(b, &m, w.o.Variable)
	}
	return b.NewRecordBatch()
}

func appendMember(b *array.RecordBuilder, m *member, variable bool) {
	fb := b.Fields()
	if m.idNull {
		fb[0].AppendNull()
	} else {
		fb[0].(*array.Int64Builder).Append(m.id)
	}
	fb[1].(*array.BooleanBuilder).Append(m.consent)
	fb[2].(*array.BooleanBuilder).Append(m.health)
	if m.genderNull {
		fb[3].AppendNull()
	} else {
		fb[3].(*array.Uint8Builder).Append(uint8(m.gender))
	}
	fb[4].(*array.Uint8Builder).Append(uint8(m.seeking))
	fb[5].(*array.Date32Builder).Append(arrow.Date32(m.birth))
	fb[6].(*array.Uint8Builder).Append(uint8(m.ageMin))
	fb[7].(*array.Uint8Builder).Append(uint8(m.ageMax))
	if m.latNull {
		fb[8].AppendNull()
	} else {
		fb[8].(*array.Float64Builder).Append(m.lat)
	}
	fb[9].(*array.Float64Builder).Append(m.lon)
	fb[10].(*array.Float32Builder).Append(m.maxKm)
	if m.traitNull {
		fb[11].AppendNull()
	} else if variable {
		lb := fb[11].(*array.ListBuilder)
		lb.Append(true)
		lb.ValueBuilder().(*array.Float32Builder).AppendValues(m.trait, nil)
	} else {
		lb := fb[11].(*array.FixedSizeListBuilder)
		lb.Append(true)
		lb.ValueBuilder().(*array.Float32Builder).AppendValues(m.trait, nil)
	}
	for k, v := range [][]byte{m.hla, m.ans, m.acc, m.imp} {
		fld := fb[12+k]
		if v == nil {
			fld.AppendNull()
		} else if b, ok := fld.(*array.BinaryBuilder); ok { // variable forms, and Q = 0
			b.Append(v)
		} else {
			fld.(*array.FixedSizeBinaryBuilder).Append(v)
		}
	}
}
