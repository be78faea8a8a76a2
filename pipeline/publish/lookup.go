package publish

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/parquet-go/parquet-go"

	"github.com/osmosis/batchmatch/pipeline/failure"
	"github.com/osmosis/batchmatch/pipeline/read"
)

// Lookups of one member in a published night's tables, reading only what
// holds the member: a row group whose bloom filter on the id says no is
// skipped, and in the others only the pages whose min/max (the page index)
// bracket the id are read. The tables are sorted by user_id (matches,
// state) and user_a (soulmates), so a member's rows are one run of rows.

// TableFile is an open table of a published night.
type TableFile struct {
	f   *parquet.File
	src read.Source
}

// OpenTable opens a table of the night without reading its pages.
func (n *PublishedNight) OpenTable(ctx context.Context, table string) (*TableFile, error) {
	t, ok := n.Manifest.Outputs[table]
	if !ok || t.Path == "" {
		return nil, fmt.Errorf("%w: the manifest of %s lists no %s table", failure.BadData, RedactURL(n.Loc), table)
	}
	src, size, err := read.OpenSource(ctx, joinLoc(n.Loc, t.Path))
	if err != nil {
		return nil, err
	}
	f, err := parquet.OpenFile(src, size)
	if err != nil {
		src.Close()
		return nil, fmt.Errorf("%w: %s: %w", failure.BadData, RedactURL(joinLoc(n.Loc, t.Path)), err)
	}
	return &TableFile{f: f, src: src}, nil
}

// Close closes the table.
func (t *TableFile) Close() error { return t.src.Close() }

// rowsOf returns the rows of the file (numbered from its first) whose
// int64 column col equals id: in each row group that the column's bloom
// filter does not rule out, only the pages of col whose min ≤ id ≤ max
// (the page index) are decoded.
func (t *TableFile) rowsOf(col string, id int64) ([]int64, error) {
	leaf, ok := t.f.Schema().Lookup(col)
	if !ok {
		return nil, fmt.Errorf("%w: no column %s", failure.BadData, col)
	}
	v := parquet.Int64Value(id)
	var out []int64
	var base int64
	for _, rg := range t.f.RowGroups() {
		n := rg.NumRows()
		cc := rg.ColumnChunks()[leaf.ColumnIndex]
		start := base
		base += n
		if bf := cc.BloomFilter(); bf != nil {
			if has, err := bf.Check(v); err == nil && !has {
				continue
			}
		}
		type span struct{ from, to int64 }
		spans := []span{{0, n}} // no page index: the whole row group
		ci, err1 := cc.ColumnIndex()
		oi, err2 := cc.OffsetIndex()
		if err1 == nil && err2 == nil && ci.NumPages() == oi.NumPages() && ci.NumPages() > 0 {
			spans = spans[:0]
			for p := range ci.NumPages() {
				if ci.NullPage(p) || ci.MinValue(p).Int64() > id || ci.MaxValue(p).Int64() < id {
					continue
				}
				to := n
				if p+1 < oi.NumPages() {
					to = oi.FirstRowIndex(p + 1)
				}
				spans = append(spans, span{oi.FirstRowIndex(p), to})
			}
		}
		for _, sp := range spans {
			err := func() error {
				pages := cc.Pages()
				defer pages.Close()
				if err := pages.SeekToRow(sp.from); err != nil {
					return err
				}
				var vals []int64
				for row := sp.from; row < sp.to; {
					p, err := pages.ReadPage()
					if errors.Is(err, io.EOF) {
						break
					}
					if err != nil {
						return err
					}
					r, ok := p.Values().(parquet.Int64Reader)
					if !ok {
						parquet.Release(p)
						return fmt.Errorf("column %s is not int64", col)
					}
					vals, err = appendPage(vals[:0], int(p.NumValues()), 1, r.ReadInt64s)
					parquet.Release(p)
					if err != nil {
						return err
					}
					for k, x := range vals {
						if x == id && row+int64(k) < sp.to {
							out = append(out, start+row+int64(k))
						}
					}
					row += int64(len(vals))
				}
				return nil
			}()
			if err != nil {
				return nil, fmt.Errorf("%w: %s: %w", failure.BadData, col, err)
			}
		}
	}
	return out, nil
}

// rowsWhere returns the rows of the table (as T) whose int64 column col
// equals id, reading only those rows (in runs) after rowsOf found them.
func rowsWhere[T any](t *TableFile, col string, id int64) ([]T, error) {
	rows, err := t.rowsOf(col, id)
	if err != nil {
		return nil, err
	}
	var out []T
	for k := 0; k < len(rows); {
		e := k + 1
		for e < len(rows) && rows[e] == rows[e-1]+1 {
			e++
		}
		rd := parquet.NewGenericReader[T](t.f)
		buf := make([]T, e-k)
		err := rd.SeekToRow(rows[k])
		got := 0
		for err == nil && got < len(buf) {
			var n int
			n, err = rd.Read(buf[got:])
			got += n
			if errors.Is(err, io.EOF) {
				err = nil
				break
			}
		}
		rd.Close()
		if err != nil {
			return nil, fmt.Errorf("%w: %w", failure.BadData, err)
		}
		out = append(out, buf[:got]...)
		k = e
	}
	return out, nil
}

// MatchesOf returns member u's rows of a matches table, by rank.
func (t *TableFile) MatchesOf(u int64) ([]MatchRow, error) {
	return rowsWhere[MatchRow](t, "user_id", u)
}

// SoulmatesOf returns the soulmates-table rows of the members ids, by
// member: as user_a from the sorted column (page index), as user_b from
// one pass over the user_b column and the rows it points at.
func (t *TableFile) SoulmatesOf(ids ...int64) (map[int64]SoulmateRow, error) {
	out := map[int64]SoulmateRow{}
	want := map[int64]bool{}
	for _, u := range ids {
		want[u] = true
		rows, err := rowsWhere[SoulmateRow](t, "user_a", u)
		if err != nil {
			return nil, err
		}
		if len(rows) > 0 {
			out[u] = rows[0]
		}
	}
	bs, err := int64Column(t.f, "user_b")
	if err != nil {
		return nil, err
	}
	for pos, b := range bs {
		if !want[b] {
			continue
		}
		rd := parquet.NewGenericReader[SoulmateRow](t.f)
		row := make([]SoulmateRow, 1)
		err := rd.SeekToRow(int64(pos))
		if err == nil {
			_, err = rd.Read(row)
		}
		rd.Close()
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: %w", failure.BadData, err)
		}
		out[b] = row[0]
	}
	return out, nil
}

// HasState reports whether member u is in a state table: an eligible
// member of the night.
func (t *TableFile) HasState(u int64) (bool, error) {
	rows, err := t.rowsOf("user_id", u)
	return len(rows) > 0, err
}

// StateIDs reads the user_id column of a state table: every eligible
// member of the night, sorted.
func (t *TableFile) StateIDs() ([]int64, error) { return int64Column(t.f, "user_id") }
