package synth

import (
	"context"
	"fmt"
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
	"golang.org/x/sync/errgroup"

	"github.com/osmosis/batchmatch/pipeline/failure"
	"github.com/osmosis/batchmatch/pipeline/profile"
)

// Options configure the realistic population generator (`batchmatch gen`).
type Options struct {
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
	// Night is the night of an evolving population GenerateNight writes
	// (0: the members Generate writes); Generate ignores it.
	Night int
	// Churn is the fraction of the members present that change each night
	// (GenerateNight).
	Churn float64
}

// Generate writes a synthetic population into o.Shards Parquet files under
// o.Out and returns their paths. Member i is the same whatever the shard count.
func Generate(ctx context.Context, o Options, workers int) ([]string, error) {
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
	w := newWorld(o, asOf)
	return w.writeShards(ctx, o.Out, o.N, w.row, workers)
}

// writeShards writes rows [0, n) (drawn by row) into o.Shards files
// profiles-SSSSS-of-NNNNN.parquet under dir, contiguous ranges of rows in
// file order, and returns their paths.
func (w *world) writeShards(ctx context.Context, dir string, n int, row func(i int) Member, workers int) ([]string, error) {
	o := w.o
	paths := make([]string, o.Shards)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(workers, 1))
	for s := range o.Shards {
		paths[s] = filepath.Join(dir, fmt.Sprintf("profiles-%05d-of-%05d.parquet", s, o.Shards))
		lo, hi := s*n/o.Shards, (s+1)*n/o.Shards
		g.Go(func() error { return w.writeShard(gctx, paths[s], lo, hi, row) })
	}
	return paths, g.Wait()
}

func (w *world) writeShard(ctx context.Context, path string, lo, hi int, row func(i int) Member) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
	if err != nil {
		return failure.IOf("creating %s: %w", tmp, err)
	}
	defer os.Remove(tmp)
	defer f.Close()
	sc := profile.Schema(w.o.D, w.o.Q, w.o.Variable)
	// One record batch per row group: arrow-go v18.8.0's FileWriter.Write
	// writes wrong fixed_size_list values when it splits a record larger
	// than the row-group length itself, so batch == row-group length.
	const batch = 1 << 14
	// No dictionary for the wide columns: their values are nearly all
	// distinct, so a dictionary fills up and falls back to PLAIN within a
	// row group, and arrow-go v18.8.0 then lists the chunk's two data
	// encodings in its footer in map order, which made two runs of the
	// same gen differ in a few footer bytes. With one encoding per chunk
	// gen is byte for byte reproducible.
	props := parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Zstd), parquet.WithMaxRowGroupLength(batch),
		parquet.WithDictionaryFor("trait.list.element", false),
		parquet.WithDictionaryFor(profile.HLA, false), parquet.WithDictionaryFor(profile.Answers, false),
		parquet.WithDictionaryFor(profile.Accept, false), parquet.WithDictionaryFor(profile.Importance, false))
	fw, err := pqarrow.NewFileWriter(sc, f, props, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		return failure.IOf("writing %s: %w", path, err)
	}
	for start := lo; start < hi; start += batch {
		if err := ctx.Err(); err != nil {
			fw.Close()
			return err
		}
		rec := record(sc, start, min(start+batch, hi), row)
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
func record(sc *arrow.Schema, lo, hi int, row func(i int) Member) arrow.RecordBatch {
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer b.Release()
	for i := lo; i < hi; i++ {
		m := row(i)
		appendMember(b, &m, false)
	}
	return b.NewRecordBatch()
}

// row draws member i as gen writes it: broken in one of the ways the spec
// lists for a share --invalid-ratio of the rows.
func (w *world) row(i int) Member {
	m := w.member(i)
	if w.o.InvalidRatio > 0 && rand.New(rand.NewPCG(w.o.Seed^0x2545f4914f6cdd1d, uint64(i))).Float64() < w.o.InvalidRatio {
		w.breakRow(&m, i)
	}
	return m
}
