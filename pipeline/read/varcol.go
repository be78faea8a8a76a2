package read

import (
	"errors"
	"fmt"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/schema"
)

// Variable-width columns (the trait list and the byte columns) are decoded
// here, row by row, from the column's definition and repetition levels,
// instead of by pqarrow's list assembly. arrow-go v18.8.0 counts every
// entry that continues a list as an element, whatever its definition level
// (file.DefRepLevelsToListInfo), while its leaf reader keeps only the
// entries that hold an element; DuckDB writes a NULL FLOAT[4] as four
// entries of definition level 0 (one starting the row, three continuing
// it), so the list offsets ran past the child values and every later row
// of the file was shifted (docs/upstream/arrow-go-list-offsets.md). The
// rule here is the Dremel one, the same for every writer: a row starts at
// repetition level 0; it is null when its first definition level is below
// the list's, empty when it equals it, and otherwise each entry whose
// definition level reaches the repeated node is one element (null below
// the leaf's maximum). Entries that continue a null or empty list without
// an element are padding and ignored; an element continuing a null or empty
// list, or a gap inside a non-empty one, is an inconsistent file.

// levelBatch is the number of levels read from a column chunk at a time.
const levelBatch = 4096

// varKind is what a variable-width column holds.
type varKind int

const (
	varFloatList varKind = iota // a list of float32 or float64
	varBytes                    // binary or fixed-size binary values
)

// varColumn decodes one variable-width top-level column of a file.
type varColumn struct {
	name    string
	kind    varKind
	leaf    int   // the Parquet leaf column index
	f64     bool  // a list of float64 (else float32)
	maxDef  int16 // definition level of a present leaf value
	listDef int16 // lists: the level at which the list is present (not null)
	elemDef int16 // lists: the level at which an element exists
	listTy  arrow.DataType
	cur     *leafCursor // the current row group's reader
}

// newVarColumn describes the leaf of top-level field f of pf.
func newVarColumn(pf *parquetFile, name string, kind varKind) (*varColumn, error) {
	idx, ok := pf.fields[name]
	if !ok {
		return nil, nil
	}
	leaves := appendLeaves(nil, &pf.fr.Manifest.Fields[idx])
	if len(leaves) != 1 {
		return nil, fmt.Errorf("has %d leaf columns, want 1", len(leaves))
	}
	vc := &varColumn{name: name, kind: kind, leaf: leaves[0]}
	col := pf.pr.MetaData().Schema.Column(vc.leaf)
	vc.maxDef = col.MaxDefinitionLevel()
	switch kind {
	case varFloatList:
		if col.MaxRepetitionLevel() != 1 {
			return nil, fmt.Errorf("a list nested %d deep, want 1", col.MaxRepetitionLevel())
		}
		switch col.PhysicalType() {
		case parquet.Types.Float:
			vc.listTy = arrow.LargeListOf(arrow.PrimitiveTypes.Float32)
		case parquet.Types.Double:
			vc.f64 = true
			vc.listTy = arrow.LargeListOf(arrow.PrimitiveTypes.Float64)
		default:
			return nil, fmt.Errorf("list of physical type %s, want FLOAT or DOUBLE", col.PhysicalType())
		}
		// Walk from the root to the leaf: optional and repeated nodes each
		// add a definition level; the repeated one is the list's.
		var path []schema.Node
		for n := col.SchemaNode(); n != nil && n.Parent() != nil; n = n.Parent() {
			path = append(path, n)
		}
		var def int16
		for i := len(path) - 1; i >= 0; i-- {
			switch path[i].RepetitionType() {
			case parquet.Repetitions.Optional:
				def++
			case parquet.Repetitions.Repeated:
				vc.listDef, vc.elemDef = def, def+1
				def++
			}
		}
		if vc.elemDef == 0 || def != vc.maxDef {
			return nil, errors.New("list levels do not add up")
		}
	case varBytes:
		if col.MaxRepetitionLevel() != 0 {
			return nil, errors.New("a repeated byte column, want binary")
		}
		switch col.PhysicalType() {
		case parquet.Types.ByteArray, parquet.Types.FixedLenByteArray:
		default:
			return nil, fmt.Errorf("physical type %s, want BYTE_ARRAY", col.PhysicalType())
		}
	}
	return vc, nil
}

// startRowGroup opens the column chunk of row group rg.
func (vc *varColumn) startRowGroup(rg *file.RowGroupReader) error {
	cr, err := rg.Column(vc.leaf)
	if err != nil {
		return err
	}
	vc.cur = &leafCursor{cr: cr}
	switch cr := cr.(type) {
	case *file.Float32ColumnChunkReader:
		vc.cur.read = func(n int64) (int64, int, error) {
			vc.cur.f32 = grow(vc.cur.f32, int(n))
			return cr.ReadBatch(n, vc.cur.f32, vc.cur.def, vc.cur.rep)
		}
	case *file.Float64ColumnChunkReader:
		vc.cur.read = func(n int64) (int64, int, error) {
			vc.cur.f64 = grow(vc.cur.f64, int(n))
			return cr.ReadBatch(n, vc.cur.f64, vc.cur.def, vc.cur.rep)
		}
	case *file.ByteArrayColumnChunkReader:
		vc.cur.read = func(n int64) (int64, int, error) {
			vc.cur.ba = grow(vc.cur.ba, int(n))
			return cr.ReadBatch(n, vc.cur.ba, vc.cur.def, vc.cur.rep)
		}
	case *file.FixedLenByteArrayColumnChunkReader:
		vc.cur.read = func(n int64) (int64, int, error) {
			flba := grow(vc.cur.flba, int(n))
			vc.cur.flba = flba
			total, nv, err := cr.ReadBatch(n, flba, vc.cur.def, vc.cur.rep)
			vc.cur.ba = grow(vc.cur.ba, nv)
			for i := 0; i < nv; i++ {
				vc.cur.ba[i] = parquet.ByteArray(flba[i])
			}
			return total, nv, err
		}
	default:
		return fmt.Errorf("unexpected column reader %T", cr)
	}
	return nil
}

// leafCursor buffers the levels and values of one column chunk.
type leafCursor struct {
	cr       file.ColumnChunkReader
	read     func(n int64) (levels int64, values int, err error)
	def, rep []int16
	f32      []float32
	f64      []float64
	ba       []parquet.ByteArray
	flba     []parquet.FixedLenByteArray
	pos, n   int // next level, buffered levels
	vpos, nv int // next value, buffered values
	eof      bool
}

// peek makes sure a level is buffered and reports whether one is.
func (c *leafCursor) peek() (bool, error) {
	if c.pos < c.n {
		return true, nil
	}
	if c.eof {
		return false, nil
	}
	if c.vpos != c.nv {
		return false, fmt.Errorf("levels used %d of %d values", c.vpos, c.nv)
	}
	if c.def == nil {
		c.def, c.rep = make([]int16, levelBatch), make([]int16, levelBatch)
	}
	n, nv, err := c.read(levelBatch)
	if err != nil {
		return false, err
	}
	if n == 0 {
		c.eof = true
		return false, c.cr.Err()
	}
	c.pos, c.n, c.vpos, c.nv = 0, int(n), 0, nv
	return true, nil
}

func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// next decodes the next n rows of the current row group into an Arrow
// array: a large_list of float32/float64 or a large_binary, built on Go
// buffers (nothing to release to an allocator).
func (vc *varColumn) next(n int) (arrow.Array, error) {
	c := vc.cur
	valid := make([]byte, bitutil.BytesForBits(int64(n)))
	offsets := make([]int64, n+1)
	var f32 []float32
	var f64 []float64
	var elemValid []bool
	var data []byte
	nulls, elemNulls := 0, 0
	var count int64 // elements or bytes so far
	for r := 0; r < n; r++ {
		ok, err := c.peek()
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("column chunk ends after %d of the batch's %d rows", r, n)
		}
		if c.rep[c.pos] != 0 {
			return nil, fmt.Errorf("a row starts with repetition level %d", c.rep[c.pos])
		}
		switch vc.kind {
		case varBytes:
			if c.def[c.pos] >= vc.maxDef {
				bitutil.SetBit(valid, r)
				data = append(data, c.ba[c.vpos]...)
				c.vpos++
			} else {
				nulls++
			}
			c.pos++
			count = int64(len(data))
		case varFloatList:
			first := true
			present, nonEmpty := false, false
			for {
				d := c.def[c.pos]
				if first {
					present, nonEmpty = d >= vc.listDef, d >= vc.elemDef
				} else if d >= vc.elemDef && !nonEmpty {
					return nil, errors.New("an element continues a null or empty list")
				} else if d < vc.elemDef && nonEmpty {
					return nil, errors.New("a list element without a definition level")
				}
				if d >= vc.elemDef {
					v := d >= vc.maxDef
					if v {
						if vc.f64 {
							f64 = append(f64, c.f64[c.vpos])
						} else {
							f32 = append(f32, c.f32[c.vpos])
						}
						c.vpos++
					} else {
						if vc.f64 {
							f64 = append(f64, 0)
						} else {
							f32 = append(f32, 0)
						}
						if elemValid == nil {
							elemValid = make([]bool, int(count), int(count)+1)
							for i := range elemValid {
								elemValid[i] = true
							}
						}
						elemNulls++
					}
					if elemValid != nil {
						elemValid = append(elemValid, v)
					}
					count++
				}
				c.pos++
				first = false
				ok, err := c.peek()
				if err != nil {
					return nil, err
				}
				if !ok || c.rep[c.pos] == 0 {
					break
				}
			}
			if present {
				bitutil.SetBit(valid, r)
			} else {
				nulls++
			}
		}
		if c.vpos > c.nv {
			return nil, fmt.Errorf("levels ask for more than the %d values decoded", c.nv)
		}
		offsets[r+1] = count
	}
	offBuf := memory.NewBufferBytes(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(offsets))), len(offsets)*8))
	validBuf := memory.NewBufferBytes(valid)
	if vc.kind == varBytes {
		d := array.NewData(arrow.BinaryTypes.LargeBinary, n, []*memory.Buffer{validBuf, offBuf, memory.NewBufferBytes(data)}, nil, nulls, 0)
		defer d.Release()
		return array.NewLargeBinaryData(d), nil
	}
	var childBuf *memory.Buffer
	var childType arrow.DataType = arrow.PrimitiveTypes.Float32
	var nChild int
	if vc.f64 {
		childType, nChild = arrow.PrimitiveTypes.Float64, len(f64)
		childBuf = memory.NewBufferBytes(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(f64))), len(f64)*8))
	} else {
		nChild = len(f32)
		childBuf = memory.NewBufferBytes(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(f32))), len(f32)*4))
	}
	var childValid *memory.Buffer
	if elemValid != nil {
		bm := make([]byte, bitutil.BytesForBits(int64(nChild)))
		for i, v := range elemValid {
			if v {
				bitutil.SetBit(bm, i)
			}
		}
		childValid = memory.NewBufferBytes(bm)
	}
	child := array.NewData(childType, nChild, []*memory.Buffer{childValid, childBuf}, nil, elemNulls, 0)
	defer child.Release()
	d := array.NewData(vc.listTy, n, []*memory.Buffer{validBuf, offBuf}, []arrow.ArrayData{child}, nulls, 0)
	defer d.Release()
	return array.NewLargeListData(d), nil
}

// finishRowGroup checks that the column chunk holds no rows beyond the row
// group's.
func (vc *varColumn) finishRowGroup() error {
	ok, err := vc.cur.peek()
	if err != nil {
		return err
	}
	if ok {
		return errors.New("the column chunk holds more rows than its row group")
	}
	vc.cur = nil
	return nil
}

// checkOffsets verifies that a list or binary array's offsets are
// monotonic and stay within its values: the invariant that keeps a row's
// value from being read out of another row. It runs on every such array the
// reader hands to validation, whichever decoder produced it.
func checkOffsets(a arrow.Array) error {
	n := a.Len()
	bad := func(i int, s, e, limit int64) error {
		return fmt.Errorf("row %d: offsets [%d, %d) outside [0, %d] or decreasing", i, s, e, limit)
	}
	switch a := a.(type) {
	case *array.FixedSizeList:
		w := int64(a.DataType().(*arrow.FixedSizeListType).Len())
		if end := int64(a.Data().Offset()+n) * w; end > int64(a.ListValues().Len()) {
			return bad(n-1, end-w, end, int64(a.ListValues().Len()))
		}
	case array.ListLike:
		limit := int64(a.ListValues().Len())
		prev := int64(0)
		for i := 0; i < n; i++ {
			s, e := a.ValueOffsets(i)
			if s < 0 || e < s || e > limit || (i > 0 && s < prev) {
				return bad(i, s, e, limit)
			}
			prev = e
		}
	case *array.Binary:
		return checkOffsetBuffer[int32](a.Data(), bad)
	case *array.LargeBinary:
		return checkOffsetBuffer[int64](a.Data(), bad)
	case *array.FixedSizeBinary:
		w := int64(a.DataType().(*arrow.FixedSizeBinaryType).ByteWidth)
		if end := int64(a.Data().Offset()+n) * w; end > int64(a.Data().Buffers()[1].Len()) {
			return bad(n-1, end-w, end, int64(a.Data().Buffers()[1].Len()))
		}
	}
	return nil
}

// checkOffsetBuffer checks the raw offsets of a binary array against its
// data buffer (the typed accessors would slice with them first).
func checkOffsetBuffer[T int32 | int64](d arrow.ArrayData, bad func(i int, s, e, limit int64) error) error {
	bufs := d.Buffers()
	if len(bufs) < 3 || bufs[1] == nil {
		return nil
	}
	var limit int64
	if bufs[2] != nil {
		limit = int64(bufs[2].Len())
	}
	raw := bufs[1].Bytes()
	all := unsafe.Slice((*T)(unsafe.Pointer(unsafe.SliceData(raw))), len(raw)/int(unsafe.Sizeof(T(0))))
	if d.Offset()+d.Len()+1 > len(all) {
		return fmt.Errorf("%d offsets for %d rows", len(all), d.Offset()+d.Len())
	}
	off := all[d.Offset() : d.Offset()+d.Len()+1]
	for i := 0; i+1 < len(off); i++ {
		s, e := int64(off[i]), int64(off[i+1])
		if s < 0 || e < s || e > limit {
			return bad(i, s, e, limit)
		}
	}
	return nil
}
