package read_test

import (
	"context"
	"encoding/binary"
	"errors"
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
	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"

	"github.com/osmosis/batchmatch/pipeline"
	"github.com/osmosis/batchmatch/pipeline/failure"
	"github.com/osmosis/batchmatch/pipeline/internal/runtest"
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
				cfg := runtest.BaseConfig(dir)
				cfg.Profiles, cfg.Out = []string{p}, filepath.Join(dir, "out-"+form.String())
				mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
				env := pipeline.Env{Log: runtest.Discard, Alloc: mem}
				_, err := pipeline.Run(context.Background(), cfg, env)
				if !errors.Is(err, failure.BadData) || !strings.Contains(err.Error(), p) {
					t.Fatalf("%s: got %v, want failure.BadData naming %s", form, err, p)
				}
				if strings.Contains(err.Error(), "goroutine") || strings.Contains(err.Error(), ".go:") {
					t.Errorf("%s: the message carries a stack trace: %v", form, err)
				}
				runtest.AssertNothingPublished(t, cfg.Out)
				mem.AssertSize(t, 0)
			}
		})
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
	_, err = pipeline.Run(context.Background(), pipeline.Config{Profiles: []string{filepath.Dir(p)}, Out: filepath.Join(dir, "out"), K: 3,
		AsOf: synth.AsOf, Weights: match.DefaultWeights, Workers: 2, MaxRejectRatio: 1}, runtest.Quiet)
	if !errors.Is(err, failure.BadData) || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), `column "lat"`) {
		t.Fatalf("got %v, want failure.BadData naming %s and column lat", err, p)
	}
}
