package profile

import "testing"

// TestReasons pins the reason codes: they are written in the rejects table
// and the manifest, so consumers key on them. Each is listed once.
func TestReasons(t *testing.T) {
	want := []string{
		"null_user_id", "user_id_out_of_range", "null_gender", "gender_out_of_range", "null_seeking", "seeking_out_of_range",
		"null_birth_date", "birth_date_after_as_of", "null_age_min", "age_min_out_of_range", "null_age_max", "age_max_out_of_range",
		"age_min_above_age_max", "null_lat", "lat_out_of_range", "null_lon", "lon_out_of_range", "null_max_km", "max_km_out_of_range",
		"null_trait", "trait_wrong_length", "trait_non_finite", "trait_zero_norm", "trait_out_of_range", "hla_wrong_length",
		"null_answers", "answers_wrong_length", "answers_out_of_range", "null_accept", "accept_wrong_length",
		"null_importance", "importance_wrong_length", "importance_out_of_range", "duplicate_user_id",
	}
	if len(Reasons) != len(want) {
		t.Fatalf("%d reasons, want %d", len(Reasons), len(want))
	}
	seen := map[Reason]bool{}
	for i, r := range Reasons {
		if string(r) != want[i] || seen[r] {
			t.Errorf("reason %d is %q, want %q once", i, r, want[i])
		}
		seen[r] = true
	}
}
