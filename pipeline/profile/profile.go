// Package profile is the vocabulary of the profile shards (spec §1) that
// every other package shares: the column names, the Arrow schema batchmatch
// writes them in, the bounds on the trait width and question count, and the
// reason codes of rejected rows. It holds no logic: reading and validating
// is pipeline/read's job, generating is pipeline/synth's.
package profile

import "github.com/apache/arrow-go/v18/arrow"

// Profile column names (spec §1).
const (
	UserID        = "user_id"
	Consent       = "consent"
	HealthConsent = "health_consent"
	Gender        = "gender"
	Seeking       = "seeking"
	BirthDate     = "birth_date"
	AgeMin        = "age_min"
	AgeMax        = "age_max"
	Lat           = "lat"
	Lon           = "lon"
	MaxKm         = "max_km"
	Trait         = "trait"
	HLA           = "hla"
	Answers       = "answers"
	Accept        = "accept"
	Importance    = "importance"
)

// HLABytes is the width of the hla column: a 256-allele bitset.
const HLABytes = 32

// MaxTraitDim and MaxQuestions bound D and Q, from any source (schema,
// flag or data): buffers are sized from them per member and per tile, so a
// file or flag claiming a width of 10^8 must be refused, not allocated.
const (
	MaxTraitDim  = 1 << 16
	MaxQuestions = 1 << 16
)

// Schema returns the Arrow schema of profile shards with trait width d and
// q questions, in the fixed-size forms or the variable-width ones (the
// forms DuckDB and pandas write).
func Schema(d, q int, variable bool) *arrow.Schema {
	trait := arrow.DataType(arrow.FixedSizeListOf(int32(d), arrow.PrimitiveTypes.Float32))
	var hla, qb arrow.DataType = &arrow.FixedSizeBinaryType{ByteWidth: HLABytes}, &arrow.FixedSizeBinaryType{ByteWidth: q}
	if variable {
		trait = arrow.ListOf(arrow.PrimitiveTypes.Float32)
		hla, qb = arrow.BinaryTypes.Binary, arrow.BinaryTypes.Binary
	}
	if q == 0 { // Parquet has no zero-width FIXED_LEN_BYTE_ARRAY: empty binary values
		qb = arrow.BinaryTypes.Binary
	}
	return arrow.NewSchema([]arrow.Field{
		{Name: UserID, Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: Consent, Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
		{Name: HealthConsent, Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
		{Name: Gender, Type: arrow.PrimitiveTypes.Uint8, Nullable: true},
		{Name: Seeking, Type: arrow.PrimitiveTypes.Uint8, Nullable: true},
		{Name: BirthDate, Type: arrow.FixedWidthTypes.Date32, Nullable: true},
		{Name: AgeMin, Type: arrow.PrimitiveTypes.Uint8, Nullable: true},
		{Name: AgeMax, Type: arrow.PrimitiveTypes.Uint8, Nullable: true},
		{Name: Lat, Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: Lon, Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: MaxKm, Type: arrow.PrimitiveTypes.Float32, Nullable: true},
		{Name: Trait, Type: trait, Nullable: true},
		{Name: HLA, Type: hla, Nullable: true},
		{Name: Answers, Type: qb, Nullable: true},
		{Name: Accept, Type: qb, Nullable: true},
		{Name: Importance, Type: qb, Nullable: true},
	}, nil)
}
