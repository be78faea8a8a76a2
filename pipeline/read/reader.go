package read

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/osmosis/batchmatch/pipeline/failure"
	"github.com/osmosis/batchmatch/pipeline/store"
)

// readBatchRows is the number of rows decoded per Arrow record batch.
const readBatchRows = 1 << 15

// parquetFile is one open Parquet input with its Arrow schema.
type parquetFile struct {
	path   string
	size   int64
	src    Source      // what pr reads: the manifest's hash is taken from it too
	opened fs.FileInfo // a local file's fstat at open (checkUnchanged)
	pr     *file.Reader
	fr     *pqarrow.FileReader
	schema *arrow.Schema
	fields map[string]int // top-level field index by name
	// only, when set, limits records to these row groups (explain reads
	// the row groups that hold the members it explains), and keep the rows
	// readProfileFile validates to these ids.
	only map[int]bool
	keep map[int64]bool
}

// openParquet opens path and reads its footer and Arrow schema. Corrupt or
// non-Parquet files are failure.BadData naming the file.
func openParquet(ctx context.Context, path string, mem memory.Allocator) (pf *parquetFile, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = failure.FileError(failure.BadData, path, "", fmt.Errorf("corrupt Parquet footer: %v", r))
		}
	}()
	src, size, err := OpenSource(ctx, path)
	if err != nil {
		return nil, err
	}
	pr, err := file.NewParquetReader(src)
	if err != nil {
		src.Close()
		if kind := readErrKind(err); kind != failure.BadData {
			return nil, failure.FileError(kind, path, "", err)
		}
		return nil, failure.FileError(failure.BadData, path, "", fmt.Errorf("not a readable Parquet file: %w", err))
	}
	// The row groups must hold the rows the footer claims, before anything
	// is sized from either (a claim of 4e9 rows used to size the buffers).
	var rgRows int64
	for i := 0; i < pr.NumRowGroups(); i++ {
		n := pr.MetaData().RowGroup(i).NumRows()
		if n < 0 || rgRows+n < rgRows {
			pr.Close()
			return nil, failure.FileError(failure.BadData, path, "", fmt.Errorf("row group %d claims %d rows", i, n))
		}
		rgRows += n
	}
	if rgRows != pr.NumRows() {
		pr.Close()
		return nil, failure.FileError(failure.BadData, path, "", fmt.Errorf("the footer claims %d rows, its row groups %d", pr.NumRows(), rgRows))
	}
	if kv := pr.MetaData().KeyValueMetadata(); kv != nil {
		if sch := kv.FindValue("ARROW:schema"); sch != nil {
			if err := checkArrowSchema(*sch); err != nil {
				pr.Close()
				return nil, failure.FileError(failure.BadData, path, "", err)
			}
		}
	}
	fr, err := pqarrow.NewFileReader(pr, pqarrow.ArrowReadProperties{BatchSize: readBatchRows}, mem)
	if err != nil {
		pr.Close()
		return nil, failure.FileError(failure.BadData, path, "", fmt.Errorf("reading Arrow schema: %w", err))
	}
	sc, err := fr.Schema()
	if err != nil {
		pr.Close()
		return nil, failure.FileError(failure.BadData, path, "", fmt.Errorf("reading Arrow schema: %w", err))
	}
	pf = &parquetFile{path: path, size: size, src: src, opened: statOf(src), pr: pr, fr: fr, schema: sc, fields: map[string]int{}}
	for i, f := range sc.Fields() {
		if _, dup := pf.fields[f.Name]; dup {
			pf.Close()
			return nil, failure.FileError(failure.BadData, path, f.Name, errors.New("column appears twice"))
		}
		pf.fields[f.Name] = i
	}
	return pf, nil
}

// Source is what a Parquet reader reads: a local file or an object.
type Source interface {
	io.ReaderAt
	io.Seeker
	io.Closer
}

// OpenSource opens a local file or, for an s3://, gs://, file:// or mem://
// URL, a range reader of the object. A missing file is failure.NoInput; an
// object store that keeps failing is failure.IO.
func OpenSource(ctx context.Context, path string) (Source, int64, error) {
	if store.IsURL(path) {
		r, err := store.Default().Open(ctx, path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, 0, failure.FileError(failure.NoInput, path, "", err)
		}
		if err != nil {
			return nil, 0, failure.FileError(failure.IO, path, "", err)
		}
		return r, r.Size(), nil
	}
	// O_NONBLOCK: a FIFO put in place of a checked file must not block
	// the open (it is refused just below); regular files ignore the flag.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, 0, failure.FileError(failure.OSKind(err, failure.NoInput), path, "", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, failure.FileError(failure.OSKind(err, failure.IO), path, "", err)
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, 0, failure.FileError(failure.NoInput, path, "", fmt.Errorf("not a regular file (%s): refused, reading it could block", fileKind(st.Mode())))
	}
	return f, st.Size(), nil
}

// statOf is a local file's fstat, or nil for an object.
func statOf(src Source) fs.FileInfo {
	if f, ok := src.(*os.File); ok {
		if st, err := f.Stat(); err == nil {
			return st
		}
	}
	return nil
}

// checkUnchanged fails when a local file was modified in place while it
// was read (size, modification or change time differ from the open's): its
// hash and its rows might describe different bytes. A file renamed over
// the path does not matter (the descriptor still reads the old one). The
// next run reads a settled file: failure.IO, retry.
func (pf *parquetFile) checkUnchanged() error {
	if pf.opened == nil {
		return nil
	}
	now := statOf(pf.src)
	if now == nil {
		return failure.FileError(failure.IO, pf.path, "", errors.New("cannot stat the open file"))
	}
	same := now.Size() == pf.opened.Size() && now.ModTime().Equal(pf.opened.ModTime())
	if a, ok := now.Sys().(*syscall.Stat_t); ok {
		if b, ok := pf.opened.Sys().(*syscall.Stat_t); ok {
			same = same && a.Ctim == b.Ctim
		}
	}
	if !same {
		return failure.FileError(failure.IO, pf.path, "", errors.New("the file was modified while it was read (retry once its writer is done)"))
	}
	return nil
}

// sha256 hashes the file's bytes through the descriptor (or object reader)
// the decoder reads, so the manifest describes what was read even if the
// path is replaced during the run.
func (pf *parquetFile) sha256(ctx context.Context) (string, error) {
	h := sha256.New()
	buf := make([]byte, 4<<20) // large ranges: one GET each on object storage
	var off int64
	for off < pf.size {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		n, err := pf.src.ReadAt(buf[:min(int64(len(buf)), pf.size-off)], off)
		h.Write(buf[:n])
		off += int64(n)
		if err != nil && !(errors.Is(err, io.EOF) && off == pf.size) {
			return "", failure.FileError(readErrKind(err), pf.path, "", fmt.Errorf("hashing: %w", err))
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
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
// batches to fn, which must not keep the batch, one row group after the
// other. Fixed-width columns are decoded by pqarrow; list and binary
// columns by varColumn from their levels (see varcol.go), in step with
// them. Every row group must hold the rows its metadata claims in every
// column, and the row groups those of the footer; the offsets of every list
// and binary array are checked before fn sees them. A panic in the decoder
// (a corrupt page) becomes failure.BadData naming the file.
func (pf *parquetFile) records(ctx context.Context, columns []string, fn func(rec arrow.RecordBatch) error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = failure.FileError(failure.BadData, pf.path, "", fmt.Errorf("decoder panic (corrupt data?): %v", r))
		}
	}()
	var leaves []int
	var vars []*varColumn
	for _, name := range columns {
		i, ok := pf.fields[name]
		if !ok {
			continue
		}
		if kind, ok := varKindOf(pf.schema.Field(i).Type); ok {
			vc, err := newVarColumn(pf, name, kind)
			if err != nil {
				return failure.FileError(failure.BadData, pf.path, name, err)
			}
			vars = append(vars, vc)
			continue
		}
		leaves = appendLeaves(leaves, &pf.fr.Manifest.Fields[i])
	}
	if len(leaves) == 0 && len(vars) == 0 {
		return nil
	}
	md := pf.pr.MetaData()
	var total int64
	for rg := 0; rg < pf.pr.NumRowGroups(); rg++ {
		if pf.only != nil && !pf.only[rg] {
			total += md.RowGroup(rg).NumRows()
			continue
		}
		rgRows := md.RowGroup(rg).NumRows()
		if rgRows < 0 {
			return failure.FileError(failure.BadData, pf.path, "", fmt.Errorf("row group %d claims %d rows", rg, rgRows))
		}
		rgr := pf.pr.RowGroup(rg)
		for _, vc := range vars {
			if err := vc.startRowGroup(rgr); err != nil {
				return failure.FileError(readErrKind(err), pf.path, vc.name, fmt.Errorf("row group %d: %w", rg, err))
			}
		}
		var done int64
		emit := func(flat arrow.RecordBatch, n int) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			if done+int64(n) > rgRows {
				return failure.FileError(failure.BadData, pf.path, "", fmt.Errorf("row group %d holds more than the %d rows its metadata claims", rg, rgRows))
			}
			var fields []arrow.Field
			var cols []arrow.Array
			if flat != nil {
				fields, cols = flat.Schema().Fields(), flat.Columns()
			}
			for _, vc := range vars {
				a, err := vc.next(n)
				if err != nil {
					return failure.FileError(readErrKind(err), pf.path, vc.name, fmt.Errorf("row group %d, row %d: %w", rg, done, err))
				}
				defer a.Release()
				fields = append(fields, arrow.Field{Name: vc.name, Type: a.DataType(), Nullable: true})
				cols = append(cols, a)
			}
			for k, a := range cols {
				if err := checkOffsets(a); err != nil {
					return failure.FileError(failure.Internal, pf.path, fields[k].Name, fmt.Errorf("row group %d: the decoder produced inconsistent offsets (a reader bug, not bad data): %w", rg, err))
				}
			}
			rec := array.NewRecordBatch(arrow.NewSchema(fields, nil), cols, int64(n))
			defer rec.Release()
			done += int64(n)
			return fn(rec)
		}
		if len(leaves) > 0 {
			if err := pf.flatRowGroup(ctx, leaves, rg, emit); err != nil {
				return err
			}
		} else {
			for done < rgRows {
				if err := emit(nil, int(min(readBatchRows, rgRows-done))); err != nil {
					return err
				}
			}
		}
		if done != rgRows {
			return failure.FileError(failure.BadData, pf.path, "", fmt.Errorf("row group %d: decoded %d rows, its metadata claims %d", rg, done, rgRows))
		}
		for _, vc := range vars {
			if err := vc.finishRowGroup(); err != nil {
				return failure.FileError(readErrKind(err), pf.path, vc.name, fmt.Errorf("row group %d: %w", rg, err))
			}
		}
		total += done
	}
	if total != pf.numRows() {
		return failure.FileError(failure.BadData, pf.path, "", fmt.Errorf("row groups hold %d rows, the footer claims %d", total, pf.numRows()))
	}
	return ctx.Err()
}

// flatRowGroup decodes the fixed-width leaves of row group rg with pqarrow
// and hands each batch to emit.
func (pf *parquetFile) flatRowGroup(ctx context.Context, leaves []int, rg int, emit func(arrow.RecordBatch, int) error) error {
	rr, err := pf.fr.GetRecordReader(ctx, leaves, []int{rg})
	if err != nil {
		return failure.FileError(failure.BadData, pf.path, "", err)
	}
	defer rr.Release()
	for rr.Next() {
		rec := rr.RecordBatch()
		if err := emit(rec, int(rec.NumRows())); err != nil {
			return err
		}
	}
	if err := rr.Err(); err != nil && !errors.Is(err, context.Canceled) {
		return failure.FileError(readErrKind(err), pf.path, pf.failingLeaf(ctx, leaves, rg), fmt.Errorf("row group %d: decoding: %w", rg, err))
	}
	return ctx.Err()
}

// failingLeaf names the column whose decoding fails in row group rg, by
// decoding the leaves one at a time (only after a failure), or "".
func (pf *parquetFile) failingLeaf(ctx context.Context, leaves []int, rg int) (name string) {
	defer func() {
		if recover() != nil {
			name = ""
		}
	}()
	for _, leaf := range leaves {
		rr, err := pf.fr.GetRecordReader(ctx, []int{leaf}, []int{rg})
		if err != nil {
			continue
		}
		for rr.Next() {
		}
		err = rr.Err()
		rr.Release()
		if err != nil {
			return pf.pr.MetaData().Schema.Column(leaf).ColumnPath()[0]
		}
	}
	return ""
}

// readErrKind is the kind of an error met while decoding a file: the
// store's or the file system's when reading failed, else bad data.
func readErrKind(err error) error {
	var errno syscall.Errno
	switch {
	case errors.Is(err, store.ErrUnavailable), errors.Is(err, store.ErrChanged):
		return failure.IO // a retry of the job (reading a settled object) can help
	case errors.As(err, &errno):
		return failure.OSKind(err, failure.IO)
	}
	return failure.BadData
}

// varKindOf tells whether columns of type dt are decoded by varColumn.
func varKindOf(dt arrow.DataType) (varKind, bool) {
	switch dt.ID() {
	case arrow.LIST, arrow.LARGE_LIST, arrow.FIXED_SIZE_LIST:
		return varFloatList, true
	case arrow.BINARY, arrow.LARGE_BINARY, arrow.FIXED_SIZE_BINARY:
		return varBytes, true
	}
	return 0, false
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
