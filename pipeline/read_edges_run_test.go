package pipeline

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	pq "github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"

	"github.com/osmosis/batchmatch/pipeline/failure"
	"github.com/osmosis/batchmatch/pipeline/match"
	"github.com/osmosis/batchmatch/pipeline/profile"
	"github.com/osmosis/batchmatch/pipeline/synth"
)

// rewriteFooter decodes path's Parquet footer, lets edit change it and
// writes the file back with the new footer.
func rewriteFooter(t *testing.T, path string, edit func(md *format.FileMetaData)) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := int(binary.LittleEndian.Uint32(b[len(b)-8:]))
	start := len(b) - 8 - n
	var md format.FileMetaData
	if err := thrift.Unmarshal(new(thrift.CompactProtocol), b[start:len(b)-8], &md); err != nil {
		t.Fatal(err)
	}
	edit(&md)
	footer, err := thrift.Marshal(new(thrift.CompactProtocol), &md)
	if err != nil {
		t.Fatal(err)
	}
	out := append(append([]byte{}, b[:start]...), footer...)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(footer)))
	out = append(out, "PAR1"...)
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestFooterRowClaims: footers whose row counts the data does not hold are
// bad data naming the file, without allocating for the claim (a claim of
// 4e9 rows used to size the buffers and kill the process) and without a
// goroutine trace in the message.
func TestFooterRowClaims(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(md *format.FileMetaData)
	}{
		{"file claims 4e9 rows", func(md *format.FileMetaData) { md.NumRows = 4e9 }},
		{"file and row group claim 4e9 rows", func(md *format.FileMetaData) {
			md.NumRows = 4e9 + md.NumRows - md.RowGroups[0].NumRows
			md.RowGroups[0].NumRows = 4e9
		}},
		{"file claims 9e18 rows", func(md *format.FileMetaData) { md.NumRows = 9e18 }},
		{"row group claims 9e18 rows", func(md *format.FileMetaData) { md.RowGroups[0].NumRows = 9e18 }},
		{"row group claims fewer rows", func(md *format.FileMetaData) { md.RowGroups[0].NumRows--; md.NumRows-- }},
		{"negative row count", func(md *format.FileMetaData) { md.RowGroups[0].NumRows = -5 }},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			k := synth.DefaultKnobs(200)
			k.D = 2048 // a fixed width: reserving 4·D bytes per claimed row is what ran out of memory
			ms := synth.Random(3, k)
			for _, form := range []synth.Form{synth.ArrowFixed, synth.ArrowVariable} {
				p := synth.MustWriteProfiles(t, filepath.Join(dir, form.String()), ms, k.D, k.Q, 1, form)[0]
				rewriteFooter(t, p, c.edit)
				cfg := baseConfig(dir)
				cfg.Profiles, cfg.Out = []string{p}, filepath.Join(dir, "out-"+form.String())
				mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
				cfg.Alloc = mem
				_, err := Run(context.Background(), cfg, discard)
				if !errors.Is(err, failure.BadData) || !strings.Contains(err.Error(), p) {
					t.Fatalf("%s: got %v, want failure.BadData naming %s", form, err, p)
				}
				if strings.Contains(err.Error(), "goroutine") || strings.Contains(err.Error(), ".go:") {
					t.Errorf("%s: the message carries a stack trace: %v", form, err)
				}
				assertNothingPublished(t, cfg.Out)
				mem.AssertSize(t, 0)
			}
		})
	}
}

// TestFloatsCheckedAsStored: max_km and traits are checked as the job
// stores them (spec v1.1): a float64 max_km that rounds to 0 or overflows
// in float32 is invalid; float64 traits too small for float32 keep their
// direction (normalised in float64); a finite float64 trait value beyond
// float32's range is invalid.
func TestFloatsCheckedAsStored(t *testing.T) {
	type row struct {
		UserID  int64     `parquet:"user_id"`
		Consent bool      `parquet:"consent"`
		Gender  int32     `parquet:"gender"`
		Seeking int32     `parquet:"seeking"`
		Birth   int32     `parquet:"birth_date,date"`
		AgeMin  int32     `parquet:"age_min"`
		AgeMax  int32     `parquet:"age_max"`
		Lat     float64   `parquet:"lat"`
		Lon     float64   `parquet:"lon"`
		MaxKm   float64   `parquet:"max_km"`
		Trait   []float64 `parquet:"trait,list"`
		HLA     []byte    `parquet:"hla"`
		Ans     []byte    `parquet:"answers"`
		Acc     []byte    `parquet:"accept"`
		Imp     []byte    `parquet:"importance"`
	}
	dir := t.TempDir()
	dirn := []float64{1, -2, 3, 0.5}
	scaled := func(s float64) []float64 {
		v := make([]float64, len(dirn))
		for i := range v {
			v[i] = dirn[i] * s
		}
		return v
	}
	mk := func(id int64, maxKm float64, trait []float64) row {
		return row{id, true, 0, 7, synth.Days(synth.AsOf) - 30*365, 18, 99, 48.85, 2.35, maxKm, trait, make([]byte, 32), []byte{1}, []byte{1}, []byte{1}}
	}
	rows := []row{
		mk(1, 100, scaled(1)),
		mk(2, 100, scaled(1e-200)), // every value is 0 in float32
		mk(3, 100, scaled(1e-42)),  // float32 subnormals: 3 significant bits
		mk(4, 100, scaled(1e30)),
		mk(5, 1e-50, scaled(1)),    // rounds to 0 in float32
		mk(6, 1e300, scaled(1)),    // +Inf in float32
		mk(7, 100, scaled(1e300)),  // not a float32
		mk(8, 1e-44, scaled(1e-3)), // a float32 subnormal max_km: valid, matches only at distance 0
	}
	os.MkdirAll(filepath.Join(dir, "profiles"), 0o755)
	if err := pq.WriteFile(filepath.Join(dir, "profiles", "f64.parquet"), rows, synth.PlainBytes); err != nil {
		t.Fatal(err)
	}
	cfg := baseConfig(dir)
	cfg.MaxRejectRatio, cfg.K = 1, 10
	res, err := Run(context.Background(), cfg, discard)
	if err != nil {
		t.Fatal(err)
	}
	mem := memory.NewGoAllocator()
	want := map[int64]string{5: "max_km_out_of_range", 6: "max_km_out_of_range", 7: "trait_out_of_range"}
	rejects := readRejects(t, tablePath(res.Published, "rejects"), mem)
	if len(rejects) != len(want) {
		t.Fatalf("rejects %+v, want %v", rejects, want)
	}
	for _, r := range rejects {
		if want[*r.UserID] != r.Reason {
			t.Errorf("member %d rejected as %s, want %q", *r.UserID, r.Reason, want[*r.UserID])
		}
	}
	matches := readMatches(t, tablePath(res.Published, "matches"), mem)
	pairs := 0
	for _, m := range matches {
		if math.IsNaN(float64(m.Score)) {
			t.Fatalf("NaN score: %+v", m)
		}
		if m.UserID <= 4 && m.MatchID <= 4 {
			pairs++
			if math.Abs(float64(m.STrait)-1) > 1e-6 {
				t.Errorf("%d-%d: s_trait %v, want 1 (same direction at every scale)", m.UserID, m.MatchID, m.STrait)
			}
		}
	}
	if pairs != 12 {
		t.Errorf("%d matches among members 1-4, want all 12", pairs)
	}
	// member 8 (max_km 1e-44, a float32 subnormal) matches every member at
	// the same place, at distance 0: proximity 1.
	n8 := 0
	for _, m := range matches {
		if m.UserID == 8 {
			n8++
			if m.DistanceKm != 0 || m.SProximity != 1 {
				t.Errorf("member 8: distance %v, proximity %v", m.DistanceKm, m.SProximity)
			}
		}
	}
	if n8 != 4 {
		t.Errorf("member 8 has %d matches, want 4: %+v", n8, matches)
	}
}

// TestCorruptColumnIsNamed: a page of a fixed-width column that cannot be
// decoded fails naming the file and that column.
func TestCorruptColumnIsNamed(t *testing.T) {
	dir := t.TempDir()
	k := synth.DefaultKnobs(300)
	ms := synth.Random(4, k)
	sc := profile.Schema(k.D, k.Q, false)
	fields := sc.Fields()
	fields[3].Type = arrow.PrimitiveTypes.Uint16 // as writeArrow: gender as uint16
	sc = arrow.NewSchema(fields, nil)
	p := filepath.Join(dir, "p", "a.parquet")
	os.MkdirAll(filepath.Dir(p), 0o755)
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	w, err := pqarrow.NewFileWriter(sc, f, parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Snappy)), pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		t.Fatal(err)
	}
	rec := synth.Record(sc, ms, true)
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	rec.Release()
	w.Close()
	f.Close()
	// scribble over the middle of the lat column chunk's compressed data
	rf, _ := os.Open(p)
	pr, err := file.NewParquetReader(rf)
	if err != nil {
		t.Fatal(err)
	}
	cc, err := pr.MetaData().RowGroup(0).ColumnChunk(pr.MetaData().Schema.ColumnIndexByName("lat"))
	if err != nil {
		t.Fatal(err)
	}
	start, size := cc.DataPageOffset(), cc.TotalCompressedSize()
	pr.Close()
	b, _ := os.ReadFile(p)
	for i := start; i < start+size; i++ {
		b[i] ^= 0x5a
	}
	os.WriteFile(p, b, 0o644)
	_, err = Run(context.Background(), Config{Profiles: []string{filepath.Dir(p)}, Out: filepath.Join(dir, "out"), K: 3,
		AsOf: synth.AsOf, AsOfDate: "2026-11-24", Weights: match.DefaultWeights, Workers: 2, MaxRejectRatio: 1}, discard)
	if !errors.Is(err, failure.BadData) || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), `column "lat"`) {
		t.Fatalf("got %v, want failure.BadData naming %s and column lat", err, p)
	}
}
