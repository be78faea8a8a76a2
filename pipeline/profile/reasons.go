package profile

// Reason is why a profile row was quarantined: the reason column of the
// rejects table and the key of the manifest's quarantined_by_reason.
type Reason string

// The reason codes, in the order validation checks them (spec §1: the
// first failing column in schema order is reported). Reasons lists them.
const (
	NullUserID       Reason = "null_user_id"
	UserIDOutOfRange Reason = "user_id_out_of_range"

	NullGender       Reason = "null_gender"
	GenderOutOfRange Reason = "gender_out_of_range"

	NullSeeking       Reason = "null_seeking"
	SeekingOutOfRange Reason = "seeking_out_of_range" // also 0: a member must seek someone

	NullBirthDate      Reason = "null_birth_date"
	BirthDateAfterAsOf Reason = "birth_date_after_as_of"

	NullAgeMin       Reason = "null_age_min"
	AgeMinOutOfRange Reason = "age_min_out_of_range"
	NullAgeMax       Reason = "null_age_max"
	AgeMaxOutOfRange Reason = "age_max_out_of_range"
	AgeMinAboveMax   Reason = "age_min_above_age_max"

	NullLat       Reason = "null_lat"
	LatOutOfRange Reason = "lat_out_of_range"
	NullLon       Reason = "null_lon"
	LonOutOfRange Reason = "lon_out_of_range"

	NullMaxKm       Reason = "null_max_km"
	MaxKmOutOfRange Reason = "max_km_out_of_range" // not finite, or not > 0 as a float32

	NullTrait        Reason = "null_trait" // the list, or one of its values
	TraitWrongLength Reason = "trait_wrong_length"
	TraitNonFinite   Reason = "trait_non_finite"
	TraitZeroNorm    Reason = "trait_zero_norm"
	TraitOutOfRange  Reason = "trait_out_of_range" // finite, but beyond float32

	HLAWrongLength Reason = "hla_wrong_length"

	NullAnswers           Reason = "null_answers"
	AnswersWrongLength    Reason = "answers_wrong_length"
	AnswersOutOfRange     Reason = "answers_out_of_range"
	NullAccept            Reason = "null_accept"
	AcceptWrongLength     Reason = "accept_wrong_length"
	NullImportance        Reason = "null_importance"
	ImportanceWrongLength Reason = "importance_wrong_length"
	ImportanceOutOfRange  Reason = "importance_out_of_range"

	// DuplicateUserID is every row of a user id that occurs on more than
	// one (unsuppressed) row, decided after validation.
	DuplicateUserID Reason = "duplicate_user_id"
)

// Reasons is every reason code, in the order of the checks.
var Reasons = []Reason{
	NullUserID, UserIDOutOfRange,
	NullGender, GenderOutOfRange, NullSeeking, SeekingOutOfRange,
	NullBirthDate, BirthDateAfterAsOf,
	NullAgeMin, AgeMinOutOfRange, NullAgeMax, AgeMaxOutOfRange, AgeMinAboveMax,
	NullLat, LatOutOfRange, NullLon, LonOutOfRange, NullMaxKm, MaxKmOutOfRange,
	NullTrait, TraitWrongLength, TraitNonFinite, TraitZeroNorm, TraitOutOfRange,
	HLAWrongLength,
	NullAnswers, AnswersWrongLength, AnswersOutOfRange,
	NullAccept, AcceptWrongLength,
	NullImportance, ImportanceWrongLength, ImportanceOutOfRange,
	DuplicateUserID,
}
