package synth

import (
	"os"
	"path/filepath"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	pq "github.com/parquet-go/parquet-go"

	"github.com/osmosis/batchmatch/pipeline/profile"
)

// Form is a physical layout of profile shards.
type Form int

const (
	ArrowFixed     Form = iota // arrow-go, fixed_size_list / fixed_size_binary
	ArrowVariable              // arrow-go, list<float32> / binary
	ParquetGo                  // parquet-go, list<float32>, binary, other integer widths
	ParquetGoFixed             // parquet-go, fixed_size_binary from Go arrays, uint64 ids (Q = 12 only)
)

// String names the form.
func (f Form) String() string {
	return [...]string{"arrow-fixed", "arrow-variable", "parquet-go", "parquet-go-fixed"}[f]
}

// CanHold reports whether the form can represent every row of ms (fixed
// forms cannot hold wrong lengths, arrow cannot write a null fixed-size list).
func (f Form) CanHold(ms []Member, d, q int) bool {
	if f == ParquetGoFixed {
		if q != ParquetGoFixedQ {
			return false
		}
		for _, m := range ms {
			if m.Trait == nil || (m.HLA != nil && len(m.HLA) != profile.HLABytes) || (m.ID != nil && *m.ID < 0) ||
				(m.Ans != nil && len(m.Ans) != q) || (m.Acc != nil && len(m.Acc) != q) || (m.Imp != nil && len(m.Imp) != q) {
				return false
			}
		}
		return true
	}
	if f == ParquetGo {
		for _, m := range ms {
			if m.Trait == nil { // parquet-go writes a nil slice as an empty list
				return false
			}
		}
	}
	if f != ArrowFixed {
		return true
	}
	if q == 0 { // arrow-go cannot write fixed_size_binary[0]
		return false
	}
	for _, m := range ms {
		if m.Trait == nil || len(m.Trait) != d || (m.HLA != nil && len(m.HLA) != profile.HLABytes) ||
			(m.Ans != nil && len(m.Ans) != q) || (m.Acc != nil && len(m.Acc) != q) || (m.Imp != nil && len(m.Imp) != q) {
			return false
		}
	}
	return true
}

// WriteProfiles writes ms into nShards files under dir in the given form
// (shard-a.parquet, shard-b.parquet, …) and returns their paths. The
// arrow-go forms write row groups of 7 rows and the parquet-go forms of 5
// or 6, so that readers cross row-group boundaries.
func WriteProfiles(dir string, ms []Member, d, q, nShards int, form Form) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var paths []string
	for s := 0; s < nShards; s++ {
		lo, hi := s*len(ms)/nShards, (s+1)*len(ms)/nShards
		p := filepath.Join(dir, "shard-"+string(rune('a'+s))+".parquet")
		var err error
		switch form {
		case ParquetGo:
			err = WriteParquetGo(p, ms[lo:hi], PlainBytes)
		case ParquetGoFixed:
			err = WriteParquetGoFixed(p, ms[lo:hi])
		default:
			err = WriteArrow(p, ms[lo:hi], d, q, form == ArrowVariable)
		}
		if err != nil {
			return nil, err
		}
		paths = append(paths, p)
	}
	return paths, nil
}

// WriteArrow writes ms to path with arrow-go in the schema of
// profile.Schema, with gender as uint16 so that values beyond uint8 are
// representable, in row groups of 7 rows (one empty record batch when ms
// is empty).
func WriteArrow(path string, ms []Member, d, q int, variable bool) error {
	sc := profile.Schema(d, q, variable)
	// Gender as uint16 here so that the out-of-uint8-range case is representable.
	fields := sc.Fields()
	fields[3].Type = arrow.PrimitiveTypes.Uint16
	sc = arrow.NewSchema(fields, nil)
	f, err := os.Create(path)
	if err != nil {
		return err
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
		return err
	}
	for lo := 0; lo < len(ms) || lo == 0; lo += rg {
		rec := Record(sc, ms[lo:min(lo+rg, len(ms))], true)
		err := w.Write(rec)
		rec.Release()
		if err != nil {
			return err
		}
	}
	return w.Close()
}

// Record builds one Arrow record batch of ms in sc, profile.Schema with
// gender widened to uint16 when wideGender (as WriteArrow writes it).
func Record(sc *arrow.Schema, ms []Member, wideGender bool) arrow.RecordBatch {
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer b.Release()
	for i := range ms {
		appendMember(b, &ms[i], wideGender)
	}
	return b.NewRecordBatch()
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

// PlainBytes writes byte arrays PLAIN: arrow-go v18.8.0's DELTA_BINARY_PACKED
// decoder (used for parquet-go's default DELTA_LENGTH_BYTE_ARRAY) never frees
// its bit-width buffer, which the checked allocator would report.
// TestReadDeltaEncodedBinary covers the default encoding without that check.
var PlainBytes = pq.DefaultEncodingFor(pq.ByteArray, &pq.Plain)

// WriteParquetGo writes ms to path with parquet-go: other integer widths
// and signedness, repeated float lists, byte arrays (parquet-go's default
// encodings unless opts say otherwise), row groups of 5 rows.
func WriteParquetGo(path string, ms []Member, opts ...pq.WriterOption) error {
	rows := make([]pqgoRow, len(ms))
	for i, m := range ms {
		r := pqgoRow{UserID: m.ID, Consent: m.Consent, Health: m.Health, Birth: m.Birth, Lat: m.Lat, Lon: m.Lon, MaxKm: m.MaxKm, Trait: m.Trait}
		if m.Gender != nil {
			r.Gender = Ptr(int32(*m.Gender))
		}
		if m.Seeking != nil {
			r.Seeking = Ptr(int16(*m.Seeking))
		}
		if m.AgeMin != nil {
			r.AgeMin = Ptr(int32(*m.AgeMin))
		}
		if m.AgeMax != nil {
			r.AgeMax = Ptr(uint32(*m.AgeMax))
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
	return pq.WriteFile(path, rows, append([]pq.WriterOption{pq.MaxRowsPerRowGroup(5)}, opts...)...)
}

// ParquetGoFixedQ is the question count of the parquet-go fixed form (Go arrays
// need a compile-time length).
const ParquetGoFixedQ = 12

// pqgoFixedRow writes the byte columns as FIXED_LEN_BYTE_ARRAY, which
// arrow-go reads as fixed_size_binary, and user_id as an unsigned 64-bit
// integer.
type pqgoFixedRow struct {
	UserID  *uint64                 `parquet:"user_id,optional"`
	Consent *bool                   `parquet:"consent,optional"`
	Health  *bool                   `parquet:"health_consent,optional"`
	Gender  *int64                  `parquet:"gender,optional"`
	Seeking *uint8                  `parquet:"seeking,optional"`
	Birth   *int32                  `parquet:"birth_date,optional,date"`
	AgeMin  *int16                  `parquet:"age_min,optional"`
	AgeMax  *int64                  `parquet:"age_max,optional"`
	Lat     *float64                `parquet:"lat,optional"`
	Lon     *float64                `parquet:"lon,optional"`
	MaxKm   *float32                `parquet:"max_km,optional"`
	Trait   []float32               `parquet:"trait,list"`
	HLA     *[profile.HLABytes]byte `parquet:"hla,optional"`
	Ans     *[ParquetGoFixedQ]byte  `parquet:"answers,optional"`
	Acc     *[ParquetGoFixedQ]byte  `parquet:"accept,optional"`
	Imp     *[ParquetGoFixedQ]byte  `parquet:"importance,optional"`
}

// WriteParquetGoFixed writes ms to path with parquet-go, the byte columns
// as FIXED_LEN_BYTE_ARRAY and user_id as uint64, in row groups of 6 rows
// (Q must be ParquetGoFixedQ).
func WriteParquetGoFixed(path string, ms []Member) error {
	rows := make([]pqgoFixedRow, len(ms))
	for i, m := range ms {
		r := pqgoFixedRow{Consent: m.Consent, Health: m.Health, Gender: m.Gender, Birth: m.Birth, AgeMax: m.AgeMax,
			Lat: m.Lat, Lon: m.Lon, MaxKm: m.MaxKm, Trait: m.Trait}
		if m.ID != nil {
			r.UserID = Ptr(uint64(*m.ID))
		}
		if m.Seeking != nil {
			r.Seeking = Ptr(uint8(*m.Seeking))
		}
		if m.AgeMin != nil {
			r.AgeMin = Ptr(int16(*m.AgeMin))
		}
		if m.HLA != nil {
			r.HLA = (*[profile.HLABytes]byte)(m.HLA)
		}
		if m.Ans != nil {
			r.Ans = (*[ParquetGoFixedQ]byte)(m.Ans)
		}
		if m.Acc != nil {
			r.Acc = (*[ParquetGoFixedQ]byte)(m.Acc)
		}
		if m.Imp != nil {
			r.Imp = (*[ParquetGoFixedQ]byte)(m.Imp)
		}
		rows[i] = r
	}
	return pq.WriteFile(path, rows, pq.MaxRowsPerRowGroup(6), PlainBytes)
}

// TB is the part of testing.TB the Must helpers use (so that this package,
// which `batchmatch gen` links, does not import testing).
type TB interface {
	Helper()
	Fatal(args ...any)
}

// MustWriteProfiles is WriteProfiles for tests: a failure is fatal.
func MustWriteProfiles(t TB, dir string, ms []Member, d, q, nShards int, form Form) []string {
	t.Helper()
	paths, err := WriteProfiles(dir, ms, d, q, nShards, form)
	if err != nil {
		t.Fatal(err)
	}
	return paths
}

// MustWriteArrow is WriteArrow for tests: a failure is fatal.
func MustWriteArrow(t TB, path string, ms []Member, d, q int, variable bool) {
	t.Helper()
	if err := WriteArrow(path, ms, d, q, variable); err != nil {
		t.Fatal(err)
	}
}

// MustWriteParquetGo is WriteParquetGo for tests: a failure is fatal.
func MustWriteParquetGo(t TB, path string, ms []Member, opts ...pq.WriterOption) {
	t.Helper()
	if err := WriteParquetGo(path, ms, opts...); err != nil {
		t.Fatal(err)
	}
}
