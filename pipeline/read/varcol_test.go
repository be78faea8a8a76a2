package read

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/schema"

	"github.com/osmosis/batchmatch/pipeline/failure"
)

// listRow is one row of a test column: null, or values (floats for a
// list, bytes for a binary column), some list elements possibly null.
type listRow struct {
	null     bool
	vals     []float32
	elemNull []bool // nil: no null element
	bytes    []byte
}

// levelLayout is one way writers encode a list or binary column in Parquet:
// the schema and the definition and repetition levels they emit.
type levelLayout int

const (
	layoutStandard       levelLayout = iota // optional group (LIST) { repeated group list { optional float element } }
	layoutPadded                            // the same schema; null and empty lists padded with level-only continuation entries, as DuckDB writes FLOAT[D]
	layoutRequiredElem                      // optional group (LIST) { repeated group list { required float element } }
	layoutLegacy2                           // optional group (LIST) { repeated float element } (two-level)
	layoutBareRepeated                      // repeated float trait (no null list)
	layoutBinary                            // optional BYTE_ARRAY
	layoutFixedBinary                       // optional FIXED_LEN_BYTE_ARRAY(4)
	layoutRequiredBinary                    // required BYTE_ARRAY
	numLayouts
)

func (l levelLayout) String() string {
	return [...]string{"standard", "padded", "required-element", "legacy-2-level", "bare-repeated",
		"binary", "fixed-binary", "required-binary"}[l]
}

func (l levelLayout) isList() bool { return l < layoutBinary }

// canHold reports whether the layout can represent the rows.
func (l levelLayout) canHold(rows []listRow) bool {
	for _, r := range rows {
		switch {
		case r.null && (l == layoutBareRepeated || l == layoutRequiredBinary):
			return false
		case r.elemNull != nil && slices.Contains(r.elemNull, true) && (l == layoutRequiredElem || l == layoutLegacy2 || l == layoutBareRepeated):
			return false
		case l == layoutFixedBinary && !r.null && len(r.bytes) != 4:
			return false
		}
	}
	return true
}

// writeLevelFile writes rows as a "user_id" int64 column (the row number)
// and a "trait" (list layouts) or "hla" (binary layouts) column with the
// given layout, in rowGroups row groups, with arrow-go's low-level column
// writers: the levels are exactly the ones constructed here.
func writeLevelFile(t testing.TB, path string, rows []listRow, layout levelLayout, rowGroups, pad int) {
	t.Helper()
	must := func(n schema.Node, err error) schema.Node {
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	idNode := must(schema.NewPrimitiveNode("user_id", parquet.Repetitions.Required, parquet.Types.Int64, -1, -1))
	var col schema.Node
	var listDef, elemDef, maxDef int16
	switch layout {
	case layoutStandard, layoutPadded, layoutRequiredElem:
		rep := parquet.Repetitions.Optional
		if layout == layoutRequiredElem {
			rep = parquet.Repetitions.Required
		}
		elem := must(schema.NewPrimitiveNode("element", rep, parquet.Types.Float, -1, -1))
		list := must(schema.NewGroupNode("list", parquet.Repetitions.Repeated, schema.FieldList{elem}, -1))
		col = must(schema.NewGroupNodeLogical("trait", parquet.Repetitions.Optional, schema.FieldList{list}, schema.ListLogicalType{}, -1))
		listDef, elemDef, maxDef = 1, 2, 3
		if layout == layoutRequiredElem {
			maxDef = 2
		}
	case layoutLegacy2:
		elem := must(schema.NewPrimitiveNode("element", parquet.Repetitions.Repeated, parquet.Types.Float, -1, -1))
		col = must(schema.NewGroupNodeLogical("trait", parquet.Repetitions.Optional, schema.FieldList{elem}, schema.ListLogicalType{}, -1))
		listDef, elemDef, maxDef = 1, 2, 2
	case layoutBareRepeated:
		col = must(schema.NewPrimitiveNode("trait", parquet.Repetitions.Repeated, parquet.Types.Float, -1, -1))
		listDef, elemDef, maxDef = 0, 1, 1
	case layoutBinary:
		col = must(schema.NewPrimitiveNode("hla", parquet.Repetitions.Optional, parquet.Types.ByteArray, -1, -1))
		maxDef = 1
	case layoutFixedBinary:
		col = must(schema.NewPrimitiveNode("hla", parquet.Repetitions.Optional, parquet.Types.FixedLenByteArray, -1, 4))
		maxDef = 1
	case layoutRequiredBinary:
		col = must(schema.NewPrimitiveNode("hla", parquet.Repetitions.Required, parquet.Types.ByteArray, -1, -1))
	}
	root, err := schema.NewGroupNode("schema", parquet.Repetitions.Required, schema.FieldList{idNode, col}, -1)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w := file.NewParquetWriter(&buf, root)
	for g := 0; g < rowGroups; g++ {
		lo, hi := g*len(rows)/rowGroups, (g+1)*len(rows)/rowGroups
		rgw := w.AppendRowGroup()
		cw, err := rgw.NextColumn()
		if err != nil {
			t.Fatal(err)
		}
		ids := make([]int64, hi-lo)
		for i := range ids {
			ids[i] = int64(lo + i)
		}
		if _, err := cw.(*file.Int64ColumnChunkWriter).WriteBatch(ids, nil, nil); err != nil {
			t.Fatal(err)
		}
		if err := cw.Close(); err != nil {
			t.Fatal(err)
		}
		cw, err = rgw.NextColumn()
		if err != nil {
			t.Fatal(err)
		}
		var def, rep []int16
		var f32 []float32
		var ba []parquet.ByteArray
		var flba []parquet.FixedLenByteArray
		for _, r := range rows[lo:hi] {
			if !layout.isList() {
				if r.null {
					def = append(def, 0)
				} else {
					def = append(def, maxDef)
					ba = append(ba, parquet.ByteArray(r.bytes))
					flba = append(flba, parquet.FixedLenByteArray(r.bytes))
				}
				rep = append(rep, 0)
				continue
			}
			switch {
			case r.null || len(r.vals) == 0:
				d := listDef
				if r.null {
					d = listDef - 1
				}
				def, rep = append(def, d), append(rep, 0)
				if layout == layoutPadded {
					for range pad - 1 {
						def, rep = append(def, d), append(rep, 1)
					}
				}
			default:
				for k, v := range r.vals {
					rep = append(rep, min(int16(k), 1))
					if r.elemNull != nil && r.elemNull[k] {
						def = append(def, elemDef)
					} else {
						def = append(def, maxDef)
						f32 = append(f32, v)
					}
				}
			}
		}
		if layout == layoutRequiredBinary {
			def = nil
		}
		switch cw := cw.(type) {
		case *file.Float32ColumnChunkWriter:
			_, err = cw.WriteBatch(f32, def, rep)
		case *file.ByteArrayColumnChunkWriter:
			_, err = cw.WriteBatch(ba, def, nil)
		case *file.FixedLenByteArrayColumnChunkWriter:
			_, err = cw.WriteBatch(flba, def, nil)
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := cw.Close(); err != nil {
			t.Fatal(err)
		}
		if err := rgw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// readLevelFile reads a file written by writeLevelFile through the
// reader's records, with a checked allocator, and returns its rows.
func readLevelFile(t testing.TB, path string, layout levelLayout) ([]listRow, error) {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	pf, err := openParquet(context.Background(), path, mem)
	if err != nil {
		return nil, err
	}
	defer pf.Close()
	name := "trait"
	if !layout.isList() {
		name = "hla"
	}
	var out []listRow
	err = pf.records(context.Background(), []string{"user_id", name}, func(rec arrow.RecordBatch) error {
		ids := column(rec, "user_id").(*array.Int64)
		a := column(rec, name)
		for i := 0; i < int(rec.NumRows()); i++ {
			if int(ids.Value(i)) != len(out) {
				return fmt.Errorf("user_id %d at row %d: columns out of step", ids.Value(i), len(out))
			}
			r := listRow{null: a.IsNull(i)}
			if !r.null {
				if layout.isList() {
					l := a.(array.ListLike)
					s, e := l.ValueOffsets(i)
					vals := l.ListValues().(*array.Float32)
					for k := s; k < e; k++ {
						r.vals = append(r.vals, vals.Value(int(k)))
						if vals.IsNull(int(k)) {
							if r.elemNull == nil {
								r.elemNull = make([]bool, k-s)
							}
						}
						if r.elemNull != nil {
							r.elemNull = append(r.elemNull, vals.IsNull(int(k)))
						}
					}
				} else {
					get, err := bytesAccessor(a)
					if err != nil {
						return err
					}
					r.bytes = slices.Clone(get(i))
				}
			}
			out = append(out, r)
		}
		return nil
	})
	return out, err
}

// sameRows compares rows as a reader must return them (null element values
// are not compared).
func sameRows(want, got []listRow, list bool) error {
	if len(want) != len(got) {
		return fmt.Errorf("%d rows, want %d", len(got), len(want))
	}
	for i := range want {
		w, g := want[i], got[i]
		if w.null != g.null {
			return fmt.Errorf("row %d: null %v, want %v", i, g.null, w.null)
		}
		if w.null {
			continue
		}
		if !list {
			if !bytes.Equal(w.bytes, g.bytes) {
				return fmt.Errorf("row %d: %x, want %x", i, g.bytes, w.bytes)
			}
			continue
		}
		if len(w.vals) != len(g.vals) {
			return fmt.Errorf("row %d: %d elements, want %d", i, len(g.vals), len(w.vals))
		}
		for k := range w.vals {
			wn := w.elemNull != nil && w.elemNull[k]
			gn := g.elemNull != nil && g.elemNull[k]
			if wn != gn || (!wn && math.Float32bits(w.vals[k]) != math.Float32bits(g.vals[k])) {
				return fmt.Errorf("row %d element %d: %v (null %v), want %v (null %v)", i, k, g.vals[k], gn, w.vals[k], wn)
			}
		}
	}
	return nil
}

// randomListRows draws n rows: about a fifth null, some empty, some with
// null elements, widths around d.
func randomListRows(r *rand.Rand, n, d int) []listRow {
	rows := make([]listRow, n)
	for i := range rows {
		switch x := r.IntN(10); {
		case x < 2:
			rows[i].null = true
		case x == 2:
			rows[i].vals = []float32{}
			rows[i].bytes = []byte{}
		default:
			w := d
			if r.IntN(4) == 0 {
				w = max(1, d+r.IntN(3)-1)
			}
			rows[i].vals = make([]float32, w)
			for k := range rows[i].vals {
				rows[i].vals[k] = float32(r.NormFloat64())
			}
			if r.IntN(8) == 0 {
				rows[i].elemNull = make([]bool, w)
				rows[i].elemNull[r.IntN(w)] = true
			}
			rows[i].bytes = make([]byte, 4)
			for k := range rows[i].bytes {
				rows[i].bytes[k] = byte(r.IntN(256))
			}
		}
	}
	return rows
}

// TestVarColumnLayouts: every way writers lay out list and binary columns
// (DuckDB's padded nulls among them), across row groups and batches, reads
// back exactly, in step with the fixed-width column beside it.
func TestVarColumnLayouts(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	duck := []listRow{{vals: []float32{1, 0, 0, 0}}, {null: true}, {vals: []float32{0, 1, 0, 0}}, {vals: []float32{1, 0, 0, 0}}}
	sets := map[string][]listRow{
		"duckdb repro":  duck,
		"random":        randomListRows(r, 500, 4),
		"long":          randomListRows(r, readBatchRows+700, 3), // more than one batch per row group
		"all null":      {{null: true}, {null: true}, {null: true}},
		"leading empty": {{vals: []float32{}}, {null: true}, {vals: []float32{5}}},
	}
	for name, rows := range sets {
		for layout := range numLayouts {
			if !layout.canHold(rows) {
				continue
			}
			for _, groups := range []int{1, 3} {
				t.Run(fmt.Sprintf("%s/%s/%d-row-groups", name, layout, groups), func(t *testing.T) {
					if len(rows) < groups {
						t.Skip()
					}
					path := filepath.Join(t.TempDir(), "f.parquet")
					writeLevelFile(t, path, rows, layout, groups, 4)
					got, err := readLevelFile(t, path, layout)
					if err != nil {
						t.Fatal(err)
					}
					if err := sameRows(rows, got, layout.isList()); err != nil {
						t.Fatal(err)
					}
				})
			}
		}
	}
}

// TestVarColumnInconsistentLevels: level streams no writer may produce (an
// element continuing a null list, a gap in a list, a row starting mid-list)
// fail with failure.BadData naming the file and the column.
func TestVarColumnInconsistentLevels(t *testing.T) {
	for _, c := range []struct {
		name     string
		def, rep []int16
		vals     []float32
	}{
		{"element after a null list", []int16{3, 3, 0, 3}, []int16{0, 1, 0, 1}, []float32{1, 2, 3}},
		{"element after an empty list", []int16{1, 3}, []int16{0, 1}, []float32{1}},
		{"gap inside a list", []int16{3, 0, 3}, []int16{0, 1, 1}, []float32{1, 2}},
	} {
		t.Run(c.name, func(t *testing.T) {
			elem, _ := schema.NewPrimitiveNode("element", parquet.Repetitions.Optional, parquet.Types.Float, -1, -1)
			list, _ := schema.NewGroupNode("list", parquet.Repetitions.Repeated, schema.FieldList{elem}, -1)
			col, _ := schema.NewGroupNodeLogical("trait", parquet.Repetitions.Optional, schema.FieldList{list}, schema.ListLogicalType{}, -1)
			root, _ := schema.NewGroupNode("schema", parquet.Repetitions.Required, schema.FieldList{col}, -1)
			var buf bytes.Buffer
			w := file.NewParquetWriter(&buf, root)
			rgw := w.AppendRowGroup()
			cw, _ := rgw.NextColumn()
			if _, err := cw.(*file.Float32ColumnChunkWriter).WriteBatch(c.vals, c.def, c.rep); err != nil {
				t.Fatal(err)
			}
			cw.Close()
			rgw.Close()
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "bad.parquet")
			os.WriteFile(path, buf.Bytes(), 0o644)
			_, err := readLevelFile(t, path, layoutStandard)
			if !errors.Is(err, failure.BadData) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), `"trait"`) {
				t.Fatalf("got %v, want failure.BadData naming %s and column trait", err, path)
			}
		})
	}
}

// FuzzVarColumn: rows drawn from the input, in a drawn layout, row-group
// split and padding, read back exactly as written.
func FuzzVarColumn(f *testing.F) {
	f.Add(uint8(layoutPadded), uint8(1), uint8(4), []byte{3, 2, 0, 3, 3, 1, 9, 9})
	f.Add(uint8(layoutStandard), uint8(2), uint8(1), []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	f.Add(uint8(layoutBinary), uint8(3), uint8(0), []byte{0, 0, 1, 4, 4, 4, 4})
	f.Fuzz(func(t *testing.T, layout8, groups8, pad8 uint8, data []byte) {
		layout := levelLayout(layout8 % uint8(numLayouts))
		var rows []listRow
		for i := 0; i < len(data) && len(rows) < 200; {
			op := data[i]
			i++
			var row listRow
			switch op % 4 {
			case 0:
				row.null = true
			case 1:
				row.vals, row.bytes = []float32{}, []byte{}
			default:
				n := int(op/4)%6 + 1
				for k := 0; k < n && i < len(data); k++ {
					row.vals = append(row.vals, float32(data[i])-100)
					if op%4 == 3 && data[i]%5 == 0 {
						if row.elemNull == nil {
							row.elemNull = make([]bool, k)
						}
					}
					if row.elemNull != nil {
						row.elemNull = append(row.elemNull, op%4 == 3 && data[i]%5 == 0)
					}
					i++
				}
				row.bytes = make([]byte, 4)
				for k := range row.bytes {
					row.bytes[k] = byte(len(row.vals) + k)
				}
			}
			rows = append(rows, row)
		}
		groups := int(groups8%4) + 1
		if len(rows) < groups || !layout.canHold(rows) {
			return
		}
		path := filepath.Join(t.TempDir(), "f.parquet")
		writeLevelFile(t, path, rows, layout, groups, int(pad8%8)+1)
		got, err := readLevelFile(t, path, layout)
		if err != nil {
			t.Fatal(err)
		}
		if err := sameRows(rows, got, layout.isList()); err != nil {
			t.Fatal(err)
		}
	})
}

// TestCheckOffsets: offsets past the values, decreasing or negative are
// caught in every list and binary type; consistent arrays pass.
func TestCheckOffsets(t *testing.T) {
	floats := memory.NewBufferBytes(make([]byte, 12*4))
	child := array.NewData(arrow.PrimitiveTypes.Float32, 12, []*memory.Buffer{nil, floats}, nil, 0, 0)
	defer child.Release()
	offs := func(o ...int64) *memory.Buffer {
		return memory.NewBufferBytes(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(o))), len(o)*8))
	}
	offs32 := func(o ...int32) *memory.Buffer {
		return memory.NewBufferBytes(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(o))), len(o)*4))
	}
	for _, c := range []struct {
		name string
		arr  arrow.Array
		ok   bool
	}{
		{"list ok", array.NewLargeListData(array.NewData(arrow.LargeListOf(arrow.PrimitiveTypes.Float32), 4, []*memory.Buffer{nil, offs(0, 4, 4, 8, 12)}, []arrow.ArrayData{child}, 0, 0)), true},
		{"list past the values (arrow-go on DuckDB's file)", array.NewLargeListData(array.NewData(arrow.LargeListOf(arrow.PrimitiveTypes.Float32), 4, []*memory.Buffer{nil, offs(0, 4, 7, 11, 15)}, []arrow.ArrayData{child}, 0, 0)), false},
		{"list decreasing", array.NewLargeListData(array.NewData(arrow.LargeListOf(arrow.PrimitiveTypes.Float32), 3, []*memory.Buffer{nil, offs(0, 8, 4, 12)}, []arrow.ArrayData{child}, 0, 0)), false},
		{"list negative", array.NewLargeListData(array.NewData(arrow.LargeListOf(arrow.PrimitiveTypes.Float32), 1, []*memory.Buffer{nil, offs(-4, 4)}, []arrow.ArrayData{child}, 0, 0)), false},
		{"binary ok", array.NewBinaryData(array.NewData(arrow.BinaryTypes.Binary, 2, []*memory.Buffer{nil, offs32(0, 3, 5), memory.NewBufferBytes(make([]byte, 5))}, nil, 0, 0)), true},
		// (arrow-go's binary constructors refuse a last offset past the data)
		{"binary decreasing", array.NewBinaryData(array.NewData(arrow.BinaryTypes.Binary, 3, []*memory.Buffer{nil, offs32(0, 4, 2, 5), memory.NewBufferBytes(make([]byte, 5))}, nil, 0, 0)), false},
		{"large binary decreasing", array.NewLargeBinaryData(array.NewData(arrow.BinaryTypes.LargeBinary, 3, []*memory.Buffer{nil, offs(0, 4, 2, 5), memory.NewBufferBytes(make([]byte, 5))}, nil, 0, 0)), false},
		{"fixed binary short", array.NewFixedSizeBinaryData(array.NewData(&arrow.FixedSizeBinaryType{ByteWidth: 4}, 3, []*memory.Buffer{nil, memory.NewBufferBytes(make([]byte, 10))}, nil, 0, 0)), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			defer c.arr.Release()
			if err := checkOffsets(c.arr); (err == nil) != c.ok {
				t.Fatalf("checkOffsets = %v, want ok=%v", err, c.ok)
			}
		})
	}
}

// FuzzCheckOffsets: any offsets buffer, for a list and a binary array over
// fixed values: checkOffsets never panics, and when it accepts, every row's
// range lies inside the values.
func FuzzCheckOffsets(f *testing.F) {
	f.Add([]byte{0, 4, 7, 11, 15}, uint8(12))
	f.Add([]byte{0, 4, 4, 8, 12}, uint8(12))
	f.Fuzz(func(t *testing.T, raw []byte, nvals uint8) {
		if len(raw) == 0 {
			return
		}
		o := make([]int64, len(raw))
		for i, b := range raw {
			o[i] = int64(int8(b))
		}
		n := len(o) - 1
		buf := memory.NewBufferBytes(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(o))), len(o)*8))
		child := array.NewData(arrow.PrimitiveTypes.Float32, int(nvals), []*memory.Buffer{nil, memory.NewBufferBytes(make([]byte, 4*int(nvals)))}, nil, 0, 0)
		defer child.Release()
		binary := func() (a arrow.Array) {
			defer func() { recover() }() // arrow-go refuses a last offset past the data
			return array.NewLargeBinaryData(array.NewData(arrow.BinaryTypes.LargeBinary, n, []*memory.Buffer{nil, buf, memory.NewBufferBytes(make([]byte, nvals))}, nil, 0, 0))
		}
		for _, a := range []arrow.Array{
			array.NewLargeListData(array.NewData(arrow.LargeListOf(arrow.PrimitiveTypes.Float32), n, []*memory.Buffer{nil, buf}, []arrow.ArrayData{child}, 0, 0)),
			binary(),
		} {
			if a == nil {
				continue
			}
			if checkOffsets(a) == nil {
				for i := 0; i < n; i++ {
					if o[i] < 0 || o[i+1] < o[i] || o[i+1] > int64(nvals) {
						t.Fatalf("%s: accepted row %d with offsets [%d, %d) over %d values", a.DataType(), i, o[i], o[i+1], nvals)
					}
				}
			}
			a.Release()
		}
	})
}
