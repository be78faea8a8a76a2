// Package synth generates synthetic profile populations: the realistic
// French population of `batchmatch gen` and the benchmark workloads of
// bench/ (Realistic, Generate), and the knob-driven random populations of
// the tests (Random: invalid rows of every kind, nulls in every column,
// float edges, clones, flat traits, …). Both draw Members, which the
// writers here turn into Parquet shards in every physical form the reader
// accepts.
package synth

import (
	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// Member is one profile row as written: raw values, possibly invalid. A
// nil pointer or slice is a null.
type Member struct {
	ID             *int64
	Consent        *bool
	Health         *bool
	Gender         *int64
	Seeking        *int64
	Birth          *int32 // days since epoch
	AgeMin, AgeMax *int64
	Lat, Lon       *float64
	MaxKm          *float32
	Trait          []float32
	HLA            []byte
	Ans, Acc, Imp  []byte
}

// Ptr returns a pointer to v.
func Ptr[T any](v T) *T { return &v }

// appendMember appends m to b, whose schema is profile.Schema (gender
// widened to uint16 when wideGender).
func appendMember(b *array.RecordBuilder, m *Member, wideGender bool) {
	fb := b.Fields()
	appendOpt(fb[0], m.ID, func(v int64) { fb[0].(*array.Int64Builder).Append(v) })
	appendOpt(fb[1], m.Consent, fb[1].(*array.BooleanBuilder).Append)
	appendOpt(fb[2], m.Health, fb[2].(*array.BooleanBuilder).Append)
	if wideGender {
		appendOpt(fb[3], m.Gender, func(v int64) { fb[3].(*array.Uint16Builder).Append(uint16(v)) })
	} else {
		appendOpt(fb[3], m.Gender, func(v int64) { fb[3].(*array.Uint8Builder).Append(uint8(v)) })
	}
	appendOpt(fb[4], m.Seeking, func(v int64) { fb[4].(*array.Uint8Builder).Append(uint8(v)) })
	appendOpt(fb[5], m.Birth, func(v int32) { fb[5].(*array.Date32Builder).Append(arrow.Date32(v)) })
	appendOpt(fb[6], m.AgeMin, func(v int64) { fb[6].(*array.Uint8Builder).Append(uint8(v)) })
	appendOpt(fb[7], m.AgeMax, func(v int64) { fb[7].(*array.Uint8Builder).Append(uint8(v)) })
	appendOpt(fb[8], m.Lat, fb[8].(*array.Float64Builder).Append)
	appendOpt(fb[9], m.Lon, fb[9].(*array.Float64Builder).Append)
	appendOpt(fb[10], m.MaxKm, fb[10].(*array.Float32Builder).Append)
	switch lb := fb[11].(type) {
	case *array.ListBuilder:
		if m.Trait == nil {
			lb.AppendNull()
		} else {
			lb.Append(true)
			lb.ValueBuilder().(*array.Float32Builder).AppendValues(m.Trait, nil)
		}
	case *array.FixedSizeListBuilder:
		if m.Trait == nil {
			lb.AppendNull()
		} else {
			lb.Append(true)
			lb.ValueBuilder().(*array.Float32Builder).AppendValues(m.Trait, nil)
		}
	}
	for k, v := range [][]byte{m.HLA, m.Ans, m.Acc, m.Imp} {
		fld := fb[12+k]
		if v == nil {
			fld.AppendNull()
		} else if b, ok := fld.(*array.BinaryBuilder); ok { // variable forms, and Q = 0
			b.Append(v)
		} else {
			fld.(*array.FixedSizeBinaryBuilder).Append(v)
		}
	}
}

func appendOpt[T any](b array.Builder, v *T, app func(T)) {
	if v == nil {
		b.AppendNull()
		return
	}
	app(*v)
}
