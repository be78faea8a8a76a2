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

func (w *world) writeShard(ctx context.Context, path string, lo, hi int) error {
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
func (w *world) record(sc *arrow.Schema, lo, hi int) arrow.RecordBatch {
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer b.Release()
	for i := lo; i < hi; i++ {
		m := w.member(i)
		if w.o.InvalidRatio > 0 && rand.New(rand.NewPCG(w.o.Seed^0x2545f4914f6cdd1d, uint64(i))).Float64() < w.o.InvalidRatio {
			w.breakRow(&m, i)
		}
		appendMember(b, &m, false)
	}
	return b.NewRecordBatch()
}
