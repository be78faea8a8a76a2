package read

import (
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/osmosis/batchmatch/pipeline/profile"
)

type colKind int

const (
	kindInt       colKind = iota // any integer width or signedness
	kindBool                     // bool
	kindFloat                    // float32 or float64
	kindDate                     // date32, date64 or timestamp
	kindFloatList                // fixed_size_list, list or large_list of float32/float64
	kindBytes                    // fixed_size_binary, binary or large_binary
)

func (k colKind) String() string {
	return [...]string{
		"an integer", "bool", "float32 or float64", "date32, date64 or a timestamp",
		"fixed_size_list<float32> (or list<float32|float64>)",
		"fixed_size_binary (or binary)",
	}[k]
}

type colSpec struct {
	name     string
	kind     colKind
	optional bool // the column may be missing altogether
}

// profileColumns lists the profile schema in the spec's order; validation
// reports the first failing column in this order.
var profileColumns = []colSpec{
	{profile.UserID, kindInt, false},
	{profile.Consent, kindBool, false},
	{profile.HealthConsent, kindBool, true},
	{profile.Gender, kindInt, false},
	{profile.Seeking, kindInt, false},
	{profile.BirthDate, kindDate, false},
	{profile.AgeMin, kindInt, false},
	{profile.AgeMax, kindInt, false},
	{profile.Lat, kindFloat, false},
	{profile.Lon, kindFloat, false},
	{profile.MaxKm, kindFloat, false},
	{profile.Trait, kindFloatList, false},
	{profile.HLA, kindBytes, false},
	{profile.Answers, kindBytes, false},
	{profile.Accept, kindBytes, false},
	{profile.Importance, kindBytes, false},
}

// checkType reports whether dt is an accepted physical form of kind k, and
// for fixed-size forms the fixed length (0 when variable).
func checkType(k colKind, dt arrow.DataType) (fixed int, err error) {
	bad := fmt.Errorf("has type %s, want %s", dt, k)
	switch k {
	case kindInt:
		if !arrow.IsInteger(dt.ID()) {
			return 0, bad
		}
	case kindBool:
		if dt.ID() != arrow.BOOL {
			return 0, bad
		}
	case kindFloat:
		if dt.ID() != arrow.FLOAT32 && dt.ID() != arrow.FLOAT64 {
			return 0, bad
		}
	case kindDate:
		switch dt.ID() {
		case arrow.DATE32, arrow.DATE64, arrow.TIMESTAMP:
		default:
			return 0, bad
		}
	case kindFloatList:
		var elem arrow.DataType
		switch t := dt.(type) {
		case *arrow.FixedSizeListType:
			elem, fixed = t.Elem(), int(t.Len())
		case *arrow.ListType:
			elem = t.Elem()
		case *arrow.LargeListType:
			elem = t.Elem()
		default:
			return 0, bad
		}
		if elem.ID() != arrow.FLOAT32 && elem.ID() != arrow.FLOAT64 {
			return 0, bad
		}
	case kindBytes:
		switch t := dt.(type) {
		case *arrow.FixedSizeBinaryType:
			fixed = t.ByteWidth
		case *arrow.BinaryType, *arrow.LargeBinaryType:
		default:
			return 0, bad
		}
	}
	return fixed, nil
}
