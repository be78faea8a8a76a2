package publish

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/parquet-go/parquet-go"

	"github.com/osmosis/batchmatch/pipeline/failure"
	"github.com/osmosis/batchmatch/pipeline/read"
)

// MatchRow is one row of the matches table (spec §4).
type MatchRow struct {
	UserID     int64    `parquet:"user_id"`
	Rank       int32    `parquet:"rank"`
	MatchID    int64    `parquet:"match_id"`
	Score      float32  `parquet:"score"`
	STrait     float32  `parquet:"s_trait"`
	SQuestions float32  `parquet:"s_questions"`
	SBiomarker *float32 `parquet:"s_biomarker,optional"`
	SProximity float32  `parquet:"s_proximity"`
	DistanceKm float32  `parquet:"distance_km"`
	Mutual     bool     `parquet:"mutual"`
}

// SoulmateRow is one row of the soulmates table (spec §4).
type SoulmateRow struct {
	UserA int64   `parquet:"user_a"`
	UserB int64   `parquet:"user_b"`
	Score float32 `parquet:"score"`
	RankA int32   `parquet:"rank_a"`
	RankB int32   `parquet:"rank_b"`
}

// RejectRow is one row of the rejects table (spec §4).
type RejectRow struct {
	SourceFile string `parquet:"source_file,dict"`
	Row        int64  `parquet:"row"`
	UserID     *int64 `parquet:"user_id,optional"`
	Reason     string `parquet:"reason,dict"`
}

// StateRow is one row of the state table: a member's output id and the
// digest of everything scoring read of the member (read.Digest). It is what
// the next night's incremental run compares its members against.
type StateRow struct {
	UserID int64                 `parquet:"user_id"`
	Digest [read.DigestSize]byte `parquet:"digest"`
}

// writeBatchRows is how many rows are handed to the Parquet writer at once.
const writeBatchRows = 1 << 14

// tableLayout is how one output table is laid out for analytics readers.
type tableLayout struct {
	sortedBy []string // sorting_columns recorded in every row group, ascending
	bloom    []string // columns with split-block bloom filters (10 bits/value, ~1 % FPP)
	rgRows   int64    // rows per row group: about 128 MiB of uncompressed values
}

// Layouts of the output tables. Row widths: matches 45 B, soulmates 28 B,
// rejects about 100 B uncompressed.
var (
	matchesLayout   = tableLayout{sortedBy: []string{"user_id", "rank"}, bloom: []string{"user_id", "match_id"}, rgRows: 3 << 20}
	soulmatesLayout = tableLayout{sortedBy: []string{"user_a"}, bloom: []string{"user_a", "user_b"}, rgRows: 4 << 20}
	rejectsLayout   = tableLayout{sortedBy: []string{"source_file", "row"}, rgRows: 1 << 20}
	stateLayout     = tableLayout{sortedBy: []string{"user_id"}, bloom: []string{"user_id"}, rgRows: 4 << 20}
)

func (l tableLayout) options() []parquet.WriterOption {
	var opts []parquet.WriterOption
	if len(l.sortedBy) > 0 {
		cols := make([]parquet.SortingColumn, len(l.sortedBy))
		for i, c := range l.sortedBy {
			cols[i] = parquet.Ascending(c)
		}
		opts = append(opts, parquet.SortingWriterConfig(parquet.SortingColumns(cols...)))
	}
	if len(l.bloom) > 0 {
		bf := make([]parquet.BloomFilterColumn, len(l.bloom))
		for i, c := range l.bloom {
			bf[i] = parquet.SplitBlockFilter(10, c)
		}
		opts = append(opts, parquet.BloomFilters(bf...))
	}
	if l.rgRows > 0 {
		opts = append(opts, parquet.MaxRowsPerRowGroup(l.rgRows))
	}
	return opts
}

// tableWriter streams rows of one table into a single Parquet file with
// zstd compression, then fsyncs and closes it.
type tableWriter[T any] struct {
	path  string
	hooks *Hooks
	f     *os.File
	w     *parquet.GenericWriter[T]
	buf   []T
	rows  int64
}

func newTableWriter[T any](path string, meta map[string]string, layout tableLayout, h *Hooks) (*tableWriter[T], error) {
	if err := h.fault("mkdir", filepath.Dir(path)); err != nil {
		return nil, fsError(err, "creating", filepath.Dir(path))
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fsError(err, "creating", filepath.Dir(path))
	}
	if err := h.fault("create", path); err != nil {
		return nil, fsError(err, "creating", path)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY|syscall.O_NOFOLLOW, 0o640)
	if err != nil {
		return nil, fsError(err, "creating", path)
	}
	opts := []parquet.WriterOption{
		parquet.Compression(&parquet.Zstd),
		createdBy(Build().CreatedBy()),
		parquet.DataPageVersion(1),
	}
	for _, k := range slices.Sorted(maps.Keys(meta)) { // sorted: deterministic bytes
		opts = append(opts, parquet.KeyValueMetadata(k, meta[k]))
	}
	opts = append(opts, layout.options()...)
	return &tableWriter[T]{path: path, hooks: h, f: f, w: parquet.NewGenericWriter[T](f, opts...), buf: make([]T, 0, writeBatchRows)}, nil
}

func (t *tableWriter[T]) add(r T) error {
	t.buf = append(t.buf, r)
	if len(t.buf) == cap(t.buf) {
		return t.flush()
	}
	return nil
}

func (t *tableWriter[T]) flush() error {
	if len(t.buf) == 0 {
		return nil
	}
	if _, err := t.w.Write(t.buf); err != nil {
		return failure.IOf("writing %s: %w", t.path, err)
	}
	t.rows += int64(len(t.buf))
	t.buf = t.buf[:0]
	return nil
}

// close flushes, writes the footer, fsyncs and closes the file.
func (t *tableWriter[T]) close() error {
	if err := t.flush(); err != nil {
		t.f.Close()
		return err
	}
	if err := t.w.Close(); err != nil {
		t.f.Close()
		return failure.IOf("finishing %s: %w", t.path, err)
	}
	if err := t.hooks.fault("sync", t.path); err != nil {
		t.f.Close()
		return fsError(err, "syncing", t.path)
	}
	if err := t.f.Sync(); err != nil {
		t.f.Close()
		return fsError(err, "syncing", t.path)
	}
	if err := t.f.Close(); err != nil {
		return failure.IOf("closing %s: %w", t.path, err)
	}
	return nil
}

// abort closes the file without finishing it; the staging area is removed later.
func (t *tableWriter[T]) abort() { t.f.Close() }

// writeTable writes all rows produced by gen (called with an add function) to path.
func writeTable[T any](path string, meta map[string]string, layout tableLayout, h *Hooks, gen func(add func(T) error) error) (int64, error) {
	t, err := newTableWriter[T](path, meta, layout, h)
	if err != nil {
		return 0, err
	}
	if err := gen(t.add); err != nil {
		t.abort()
		return 0, err
	}
	if err := t.close(); err != nil {
		return 0, err
	}
	return t.rows, nil
}

// PartFile is the file name of the single part each table has today,
// before the attempt id a publish tags it with (taggedName); partitions of
// earlier versions have it as it is.
const PartFile = "part-00000.parquet"

// taggedName is name with tag before its extension ("part-00000.parquet",
// "a1" → "part-00000-a1.parquet"), or name when tag is empty.
func taggedName(name, tag string) string {
	if tag == "" {
		return name
	}
	ext := filepath.Ext(name)
	return strings.TrimSuffix(name, ext) + "-" + tag + ext
}

// createdBy sets the footer's created_by as it is: parquet.CreatedBy writes
// "<app> version <v>(build <b>)", without the space readers expect and with
// an empty "(build )" when there is no revision.
type createdBy string

// ConfigureWriter implements parquet.WriterOption.
func (c createdBy) ConfigureWriter(w *parquet.WriterConfig) { w.CreatedBy = string(c) }
