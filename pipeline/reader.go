package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime/debug"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/osmosis/batchmatch/pipeline/store"
)

// readBatchRows is the number of rows decoded per Arrow record batch.
const readBatchRows = 1 << 15

// parquetFile is one open Parquet input with its Arrow schema.
type parquetFile struct {
	path   string
	size   int64
	pr     *file.Reader
	fr     *pqarrow.FileReader
	schema *arrow.Schema
	fields map[string]int // top-level field index by name
}

// openParquet opens path and reads its footer and Arrow schema. Corrupt or
// non-Parquet files are ErrBadData naming the file.
func openParquet(ctx context.Context, path string, mem memory.Allocator) (pf *parquetFile, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fileError(ErrBadData, path, "", fmt.Errorf("corrupt Parquet footer: %v", r))
		}
	}()
	src, size, err := openSource(ctx, path)
	if err != nil {
		return nil, err
	}
	pr, err := file.NewParquetReader(src)
	if err != nil {
		src.Close()
		if errors.Is(err, store.ErrUnavailable) {
			return nil, fileError(ErrIO, path, "", err)
		}
		return nil, fileError(ErrBadData, path, "", fmt.Errorf("not a readable Parquet file: %w", err))
	}
	if kv := pr.MetaData().KeyValueMetadata(); kv != nil {
		if sch := kv.FindValue("ARROW:schema"); sch != nil {
			if err := checkArrowSchema(*sch); err != nil {
				pr.Close()
				return nil, fileError(ErrBadData, path, "", err)
			}
		}
	}
	fr, err := pqarrow.NewFileReader(pr, pqarrow.ArrowReadProperties{BatchSize: readBatchRows}, mem)
	if err != nil {
		pr.Close()
		return nil, fileError(ErrBadData, path, "", fmt.Errorf("reading Arrow schema: %w", err))
	}
	sc, err := fr.Schema()
	if err != nil {
		pr.Close()
		return nil, fileError(ErrBadData, path, "", fmt.Errorf("reading Arrow schema: %w", err))
	}
	pf = &parquetFile{path: path, size: size, pr: pr, fr: fr, schema: sc, fields: map[string]int{}}
	for i, f := range sc.Fields() {
		if _, dup := pf.fields[f.Name]; dup {
			pf.Close()
			return nil, fileError(ErrBadData, path, f.Name, errors.New("column appears twice"))
		}
		pf.fields[f.Name] = i
	}
	return pf, nil
}

// source is what a Parquet reader reads: a local file or an object.
type source interface {
	io.ReaderAt
	io.Seeker
	io.Closer
}

// openSource opens a local file or, for an s3://, gs://, file:// or mem://
// URL, a range reader of the object. A missing file is ErrNoInput; an
// object store that keeps failing is ErrIO.
func openSource(ctx context.Context, path string) (source, int64, error) {
	if store.IsURL(path) {
		r, err := store.Default().Open(ctx, path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, 0, fileError(ErrNoInput, path, "", err)
		}
		if err != nil {
			return nil, 0, fileError(ErrIO, path, "", err)
		}
		return r, r.Size(), nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, fileError(ErrNoInput, path, "", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fileError(ErrNoInput, path, "", err)
	}
	return f, st.Size(), nil
}

// Close releases the file.
func (pf *parquetFile) Close() {
	if pf.pr != nil {
		pf.pr.Close() // closes the underlying *os.File too
		pf.pr = nil
	}
}

// numRows is the row count recorded in the footer.
func (pf *parquetFile) numRows() int64 { return pf.pr.NumRows() }

// records streams the named top-level columns (those present) as record
// batches to fn, which must not keep the batch. A panic in the decoder (a
// corrupt page) becomes ErrBadData naming the file.
func (pf *parquetFile) records(ctx context.Context, columns []string, fn func(rec arrow.RecordBatch) error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fileError(ErrBadData, pf.path, "", fmt.Errorf("decoder panic (corrupt data?): %v\n%s", r, debug.Stack()))
		}
	}()
	var leaves []int
	for _, name := range columns {
		i, ok := pf.fields[name]
		if !ok {
			continue
		}
		leaves = appendLeaves(leaves, &pf.fr.Manifest.Fields[i])
	}
	if len(leaves) == 0 || pf.pr.NumRowGroups() == 0 {
		return nil
	}
	rr, err := pf.fr.GetRecordReader(ctx, leaves, nil)
	if err != nil {
		return fileError(ErrBadData, pf.path, "", err)
	}
	defer rr.Release()
	for rr.Next() {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(rr.RecordBatch()); err != nil {
			return err
		}
	}
	if err := rr.Err(); err != nil && !errors.Is(err, context.Canceled) {
		if errors.Is(err, store.ErrUnavailable) {
			return fileError(ErrIO, pf.path, "", err)
		}
		return fileError(ErrBadData, pf.path, "", fmt.Errorf("decoding: %w", err))
	}
	return ctx.Err()
}

func appendLeaves(dst []int, f *pqarrow.SchemaField) []int {
	if f.IsLeaf() {
		return append(dst, f.ColIndex)
	}
	for i := range f.Children {
		dst = appendLeaves(dst, &f.Children[i])
	}
	return dst
}

// column returns the named column of rec, or nil when absent.
func column(rec arrow.RecordBatch, name string) arrow.Array {
	idx := rec.Schema().FieldIndices(name)
	if len(idx) == 0 {
		return nil
	}
	return rec.Column(idx[0])
}

// readIDColumns reads integer id columns (blocks, suppress side inputs) of a
// file and calls fn for each row with the values; a null or out-of-range value
// is reported with ok=false.
func readIDColumns(ctx context.Context, pf *parquetFile, cols []string, fn func(row int64, vals []int64, ok bool)) error {
	for _, c := range cols {
		i, ok := pf.fields[c]
		if !ok {
			return fileError(ErrBadData, pf.path, c, errors.New("column is missing"))
		}
		if _, err := checkType(kindInt, pf.schema.Field(i).Type); err != nil {
			return fileError(ErrBadData, pf.path, c, err)
		}
	}
	var row int64
	vals := make([]int64, len(cols))
	return pf.records(ctx, cols, func(rec arrow.RecordBatch) error {
		gets := make([]intGetter, len(cols))
		arrs := make([]arrow.Array, len(cols))
		for k, c := range cols {
			arrs[k] = column(rec, c)
			g, err := intAccessor(arrs[k])
			if err != nil {
				return fileError(ErrBadData, pf.path, c, err)
			}
			gets[k] = g
		}
		for r := 0; r < int(rec.NumRows()); r++ {
			ok := true
			for k := range cols {
				if arrs[k].IsNull(r) {
					ok = false
					continue
				}
				v, fits := gets[k](r)
				ok = ok && fits
				vals[k] = v
			}
			fn(row, vals, ok)
			row++
		}
		return nil
	})
}
