package read

import (
	"fmt"
	"math"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/osmosis/batchmatch/pipeline/profile"
)

// Accessors that read one value of any accepted physical form. They are
// built once per record batch, so the type switch is not paid per row.

// intGetter returns the value of row i and whether it fits in an int64.
type intGetter func(i int) (v int64, fits bool)

func intAccessor(a arrow.Array) (intGetter, error) {
	switch a := a.(type) {
	case *array.Int8:
		return func(i int) (int64, bool) { return int64(a.Value(i)), true }, nil
	case *array.Int16:
		return func(i int) (int64, bool) { return int64(a.Value(i)), true }, nil
	case *array.Int32:
		return func(i int) (int64, bool) { return int64(a.Value(i)), true }, nil
	case *array.Int64:
		return func(i int) (int64, bool) { return a.Value(i), true }, nil
	case *array.Uint8:
		return func(i int) (int64, bool) { return int64(a.Value(i)), true }, nil
	case *array.Uint16:
		return func(i int) (int64, bool) { return int64(a.Value(i)), true }, nil
	case *array.Uint32:
		return func(i int) (int64, bool) { return int64(a.Value(i)), true }, nil
	case *array.Uint64:
		return func(i int) (int64, bool) {
			v := a.Value(i)
			return int64(v), v <= math.MaxInt64
		}, nil
	}
	return nil, fmt.Errorf("has type %s, want an integer", a.DataType())
}

func floatAccessor(a arrow.Array) (func(i int) float64, error) {
	switch a := a.(type) {
	case *array.Float32:
		return func(i int) float64 { return float64(a.Value(i)) }, nil
	case *array.Float64:
		return a.Value, nil
	}
	return nil, fmt.Errorf("has type %s, want float32 or float64", a.DataType())
}

// dateAccessor returns days since the Unix epoch (floor for timestamps).
func dateAccessor(a arrow.Array) (func(i int) int64, error) {
	switch a := a.(type) {
	case *array.Date32:
		return func(i int) int64 { return int64(a.Value(i)) }, nil
	case *array.Date64:
		return func(i int) int64 { return floorDiv(int64(a.Value(i)), 86_400_000) }, nil
	case *array.Timestamp:
		unit := a.DataType().(*arrow.TimestampType).Unit
		perDay := int64(86_400) * int64(1e9/unit.Multiplier())
		return func(i int) int64 { return floorDiv(int64(a.Value(i)), perDay) }, nil
	}
	return nil, fmt.Errorf("has type %s, want date32, date64 or a timestamp", a.DataType())
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// bytesAccessor returns the bytes of row i (valid until the batch is released).
func bytesAccessor(a arrow.Array) (func(i int) []byte, error) {
	switch a := a.(type) {
	case *array.FixedSizeBinary:
		return a.Value, nil
	case *array.Binary:
		return a.Value, nil
	case *array.LargeBinary:
		return a.Value, nil
	}
	return nil, fmt.Errorf("has type %s, want fixed_size_binary or binary", a.DataType())
}

// floatList reads list-like float columns of any accepted form.
type floatList struct {
	list   array.ListLike
	f32    []float32
	f64    []float64
	values arrow.Array
}

func newFloatList(a arrow.Array) (*floatList, error) {
	l, ok := a.(array.ListLike)
	if !ok {
		return nil, fmt.Errorf("has type %s, want a list of float32", a.DataType())
	}
	fl := &floatList{list: l, values: l.ListValues()}
	switch v := fl.values.(type) {
	case *array.Float32:
		fl.f32 = v.Float32Values()
	case *array.Float64:
		fl.f64 = v.Float64Values()
	default:
		return nil, fmt.Errorf("has element type %s, want float32 or float64", fl.values.DataType())
	}
	return fl, nil
}

// read writes row i, normalised to unit length, into dst when its length
// is len(dst), and reports the reason the value is invalid, or "" when it
// is usable. The norm is computed in float64 from the values as written
// (spec v1.1: traits are normalised in float64 before they are stored as
// float32), so float64 traits too small or too large for float32 keep
// their direction; a finite float64 value beyond float32's range is still
// invalid (the spec's trait type is float32).
func (fl *floatList) read(i int, dst []float32) profile.Reason {
	start, end := fl.list.ValueOffsets(i)
	if int(end-start) != len(dst) {
		return profile.TraitWrongLength
	}
	if fl.values.NullN() > 0 {
		for j := start; j < end; j++ {
			if fl.values.IsNull(int(j)) {
				return profile.NullTrait
			}
		}
	}
	if fl.f32 != nil {
		var s float64
		for _, x := range fl.f32[start:end] {
			f := float64(x)
			if math.IsNaN(f) || math.IsInf(f, 0) {
				return profile.TraitNonFinite
			}
			s += f * f
		}
		if s == 0 {
			return profile.TraitZeroNorm
		}
		inv := 1 / math.Sqrt(s)
		for k, x := range fl.f32[start:end] {
			dst[k] = float32(float64(x) * inv)
		}
		return ""
	}
	v := fl.f64[start:end]
	for _, x := range v {
		if !math.IsInf(x, 0) && !math.IsNaN(x) && math.Abs(x) > math.MaxFloat32 {
			return profile.TraitOutOfRange // finite, but not a float32 (the spec's trait type)
		}
	}
	var s, m float64
	for _, x := range v {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return profile.TraitNonFinite
		}
		s += x * x
		m = max(m, math.Abs(x))
	}
	if m == 0 {
		return profile.TraitZeroNorm
	}
	if s >= 0x1p-900 { // no square that matters underflowed: as for float32 input
		inv := 1 / math.Sqrt(s)
		for k, x := range v {
			dst[k] = float32(x * inv)
		}
		return ""
	}
	// Tiny values: scale by the largest first, so the squares do not vanish.
	s = 0
	for _, x := range v {
		s += (x / m) * (x / m)
	}
	inv := 1 / math.Sqrt(s)
	for k, x := range v {
		dst[k] = float32((x / m) * inv)
	}
	return ""
}

// length returns the length of row i's list.
func (fl *floatList) length(i int) int {
	s, e := fl.list.ValueOffsets(i)
	return int(e - s)
}
