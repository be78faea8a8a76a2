package runtest

import (
	"context"
	"os"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/osmosis/batchmatch/pipeline/publish"
	"github.com/osmosis/batchmatch/pipeline/synth"
)

// ReadArrowTable reads a whole Parquet file with arrow-go (the library that
// did not write it) and calls fn for each record batch.
func ReadArrowTable(t testing.TB, path string, mem memory.Allocator, fn func(rec arrow.RecordBatch)) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pr, err := file.NewParquetReader(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	defer pr.Close()
	fr, err := pqarrow.NewFileReader(pr, pqarrow.ArrowReadProperties{BatchSize: 1000}, mem)
	if err != nil {
		t.Fatal(err)
	}
	if pr.NumRowGroups() == 0 {
		return
	}
	rr, err := fr.GetRecordReader(context.Background(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rr.Release()
	for rr.Next() {
		fn(rr.RecordBatch())
	}
	if err := rr.Err(); err != nil {
		t.Fatal(err)
	}
}

// Col is the column name of rec as the array type T (fatal when absent or
// of another type).
func Col[T arrow.Array](t testing.TB, rec arrow.RecordBatch, name string) T {
	t.Helper()
	idx := rec.Schema().FieldIndices(name)
	if len(idx) == 0 {
		t.Fatalf("output lacks column %q", name)
	}
	a := rec.Column(idx[0])
	v, ok := a.(T)
	if !ok {
		t.Fatalf("column %q has type %s", name, a.DataType())
	}
	return v
}

// ReadMatches reads a matches table back with arrow-go.
func ReadMatches(t testing.TB, path string, mem memory.Allocator) []publish.MatchRow {
	var out []publish.MatchRow
	ReadArrowTable(t, path, mem, func(rec arrow.RecordBatch) {
		uid, rank, mid := Col[*array.Int64](t, rec, "user_id"), Col[*array.Int32](t, rec, "rank"), Col[*array.Int64](t, rec, "match_id")
		sc, st, sq := Col[*array.Float32](t, rec, "score"), Col[*array.Float32](t, rec, "s_trait"), Col[*array.Float32](t, rec, "s_questions")
		sb, sp, dk := Col[*array.Float32](t, rec, "s_biomarker"), Col[*array.Float32](t, rec, "s_proximity"), Col[*array.Float32](t, rec, "distance_km")
		mu := Col[*array.Boolean](t, rec, "mutual")
		for i := 0; i < int(rec.NumRows()); i++ {
			r := publish.MatchRow{UserID: uid.Value(i), Rank: rank.Value(i), MatchID: mid.Value(i), Score: sc.Value(i),
				STrait: st.Value(i), SQuestions: sq.Value(i), SProximity: sp.Value(i), DistanceKm: dk.Value(i), Mutual: mu.Value(i)}
			if sb.IsValid(i) {
				r.SBiomarker = synth.Ptr(sb.Value(i))
			}
			out = append(out, r)
		}
	})
	return out
}

// ReadSoulmates reads a soulmates table back with arrow-go.
func ReadSoulmates(t testing.TB, path string, mem memory.Allocator) []publish.SoulmateRow {
	var out []publish.SoulmateRow
	ReadArrowTable(t, path, mem, func(rec arrow.RecordBatch) {
		a, b, s := Col[*array.Int64](t, rec, "user_a"), Col[*array.Int64](t, rec, "user_b"), Col[*array.Float32](t, rec, "score")
		ra, rb := Col[*array.Int32](t, rec, "rank_a"), Col[*array.Int32](t, rec, "rank_b")
		for i := 0; i < int(rec.NumRows()); i++ {
			out = append(out, publish.SoulmateRow{UserA: a.Value(i), UserB: b.Value(i), Score: s.Value(i), RankA: ra.Value(i), RankB: rb.Value(i)})
		}
	})
	return out
}

// ReadRejects reads a rejects table back with arrow-go.
func ReadRejects(t testing.TB, path string, mem memory.Allocator) []publish.RejectRow {
	var out []publish.RejectRow
	ReadArrowTable(t, path, mem, func(rec arrow.RecordBatch) {
		f, r, u, why := Col[*array.String](t, rec, "source_file"), Col[*array.Int64](t, rec, "row"), Col[*array.Int64](t, rec, "user_id"), Col[*array.String](t, rec, "reason")
		for i := 0; i < int(rec.NumRows()); i++ {
			row := publish.RejectRow{SourceFile: f.Value(i), Row: r.Value(i), Reason: why.Value(i)}
			if u.IsValid(i) {
				row.UserID = synth.Ptr(u.Value(i))
			}
			out = append(out, row)
		}
	})
	return out
}
