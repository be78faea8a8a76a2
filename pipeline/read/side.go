package read

import (
	"context"
	"errors"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/osmosis/batchmatch/pipeline/failure"
)

// Side inputs: the suppression list (user_id) and the blocked pairs
// (user_id, blocked_id), integer id columns of any width.

// colBlockedID is the second column of a blocks file.
const colBlockedID = "blocked_id"

// readSideInput reads the id columns cols of the side input at path, calling
// fn for every row (ok false for a null or out-of-range id), and returns the
// file's fingerprint for the manifest.
func readSideInput(ctx context.Context, path string, cols []string, mem memory.Allocator, fn func(v []int64, ok bool)) (InputFile, error) {
	pf, err := openParquet(ctx, path, mem)
	if err != nil {
		return InputFile{}, err
	}
	defer pf.Close()
	sum, err := pf.sha256(ctx)
	if err != nil {
		return InputFile{}, err
	}
	var rows int64
	err = readIDColumns(ctx, pf, cols, func(_ int64, v []int64, ok bool) {
		rows++
		fn(v, ok)
	})
	if err == nil {
		err = pf.checkUnchanged()
	}
	return InputFile{Path: path, Size: pf.size, SHA256: sum, Rows: rows}, err
}

// readIDColumns reads integer id columns (blocks, suppress side inputs) of a
// file and calls fn for each row with the values; a null or out-of-range value
// is reported with ok=false.
func readIDColumns(ctx context.Context, pf *parquetFile, cols []string, fn func(row int64, vals []int64, ok bool)) error {
	for _, c := range cols {
		i, ok := pf.fields[c]
		if !ok {
			return failure.FileError(failure.BadData, pf.path, c, errors.New("column is missing"))
		}
		if _, err := checkType(kindInt, pf.schema.Field(i).Type); err != nil {
			return failure.FileError(failure.BadData, pf.path, c, err)
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
				return failure.FileError(failure.BadData, pf.path, c, err)
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
