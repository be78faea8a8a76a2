package read_test

import (
	"bytes"
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"
	pq "github.com/parquet-go/parquet-go"

	"github.com/osmosis/batchmatch/pipeline"
	"github.com/osmosis/batchmatch/pipeline/internal/runtest"
	"github.com/osmosis/batchmatch/pipeline/publish"
	"github.com/osmosis/batchmatch/pipeline/synth"
)

// float64Row is a profile row with a list<float64> trait, written with
// parquet-go (the form of a writer that keeps doubles).
type float64Row struct {
	UserID  int64     `parquet:"user_id"`
	Consent bool      `parquet:"consent"`
	Health  bool      `parquet:"health_consent"`
	Gender  int32     `parquet:"gender"`
	Seeking int32     `parquet:"seeking"`
	Birth   int32     `parquet:"birth_date,date"`
	AgeMin  int32     `parquet:"age_min"`
	AgeMax  int32     `parquet:"age_max"`
	Lat     float64   `parquet:"lat"`
	Lon     float64   `parquet:"lon"`
	MaxKm   float64   `parquet:"max_km"`
	Trait   []float64 `parquet:"trait,list"`
	HLA     []byte    `parquet:"hla"`
	Ans     []byte    `parquet:"answers"`
	Acc     []byte    `parquet:"accept"`
	Imp     []byte    `parquet:"importance"`
}

// TestFloat64Traits: list<float64> traits (spec §1) give the same tables as
// the float32 form of the same members; a finite value beyond float32 is
// quarantined as trait_out_of_range.
func TestFloat64Traits(t *testing.T) {
	k := synth.DefaultKnobs(200)
	k.ConsentP, k.HealthP = 1, 1
	var ms []synth.Member
	for _, m := range synth.Random(31, k) { // fully populated rows only: this form has no nulls
		if m.Consent != nil && m.Health != nil && m.HLA != nil {
			ms = append(ms, m)
		}
	}
	dir := t.TempDir()
	synth.MustWriteProfiles(t, filepath.Join(dir, "f32"), ms, k.D, k.Q, 1, synth.ArrowVariable)
	rows := make([]float64Row, len(ms))
	for i, m := range ms {
		tr := make([]float64, len(m.Trait))
		for j, x := range m.Trait {
			tr[j] = float64(x)
		}
		rows[i] = float64Row{*m.ID, *m.Consent, *m.Health, int32(*m.Gender), int32(*m.Seeking), *m.Birth, int32(*m.AgeMin), int32(*m.AgeMax),
			*m.Lat, *m.Lon, float64(*m.MaxKm), tr, m.HLA, m.Ans, m.Acc, m.Imp}
	}
	rows[0].Trait[1] = 1e300 // finite, not a float32
	os.MkdirAll(filepath.Join(dir, "f64"), 0o755)
	if err := pq.WriteFile(filepath.Join(dir, "f64", "a.parquet"), rows, synth.PlainBytes); err != nil {
		t.Fatal(err)
	}
	var out [2]*pipeline.Result
	for v, sub := range []string{"f32", "f64"} {
		cfg := runtest.BaseConfig(dir)
		cfg.Profiles, cfg.Out = []string{filepath.Join(dir, sub)}, filepath.Join(dir, "out-"+sub)
		res, err := pipeline.Run(context.Background(), cfg, runtest.Quiet)
		if err != nil {
			t.Fatal(err)
		}
		out[v] = res
	}
	if got := out[1].Manifest.Counts.QuarantinedByReason["trait_out_of_range"]; got != 1 {
		t.Fatalf("trait_out_of_range: %d, want 1 (%v)", got, out[1].Manifest.Counts.QuarantinedByReason)
	}
	// the float64 run lost member 0; compare against a float32 run without it
	ms2 := ms[1:]
	synth.MustWriteProfiles(t, filepath.Join(dir, "f32b"), ms2, k.D, k.Q, 1, synth.ArrowVariable)
	cfg := runtest.BaseConfig(dir)
	cfg.Profiles, cfg.Out = []string{filepath.Join(dir, "f32b")}, filepath.Join(dir, "out-f32b")
	ref, err := pipeline.Run(context.Background(), cfg, runtest.Quiet)
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range []string{"matches", "soulmates"} {
		a, _ := os.ReadFile(publish.TablePath(ref.Published, tb))
		b, _ := os.ReadFile(publish.TablePath(out[1].Published, tb))
		if len(a) == 0 || !bytes.Equal(a, b) {
			t.Errorf("%s from float64 traits differs from the float32 form", tb)
		}
	}
}

// TestFloatsCheckedAsStored: max_km and traits are checked as the job
// stores them (spec v1.1): a float64 max_km that rounds to 0 or overflows
// in float32 is invalid; float64 traits too small for float32 keep their
// direction (normalised in float64); a finite float64 trait value beyond
// float32's range is invalid.
func TestFloatsCheckedAsStored(t *testing.T) {
	dir := t.TempDir()
	dirn := []float64{1, -2, 3, 0.5}
	scaled := func(s float64) []float64 {
		v := make([]float64, len(dirn))
		for i := range v {
			v[i] = dirn[i] * s
		}
		return v
	}
	mk := func(id int64, maxKm float64, trait []float64) float64Row {
		return float64Row{id, true, false, 0, 7, synth.Days(synth.AsOf) - 30*365, 18, 99, 48.85, 2.35, maxKm, trait, make([]byte, 32), []byte{1}, []byte{1}, []byte{1}}
	}
	rows := []float64Row{
		mk(1, 100, scaled(1)),
		mk(2, 100, scaled(1e-200)), // every value is 0 in float32
		mk(3, 100, scaled(1e-42)),  // float32 subnormals: 3 significant bits
		mk(4, 100, scaled(1e30)),
		mk(5, 1e-50, scaled(1)),    // rounds to 0 in float32
		mk(6, 1e300, scaled(1)),    // +Inf in float32
		mk(7, 100, scaled(1e300)),  // not a float32
		mk(8, 1e-44, scaled(1e-3)), // a float32 subnormal max_km: valid, matches only at distance 0
	}
	os.MkdirAll(filepath.Join(dir, "profiles"), 0o755)
	if err := pq.WriteFile(filepath.Join(dir, "profiles", "f64.parquet"), rows, synth.PlainBytes); err != nil {
		t.Fatal(err)
	}
	cfg := runtest.BaseConfig(dir)
	cfg.MaxRejectRatio, cfg.K = 1, 10
	res, err := pipeline.Run(context.Background(), cfg, runtest.Quiet)
	if err != nil {
		t.Fatal(err)
	}
	mem := memory.NewGoAllocator()
	want := map[int64]string{5: "max_km_out_of_range", 6: "max_km_out_of_range", 7: "trait_out_of_range"}
	rejects := runtest.ReadRejects(t, publish.TablePath(res.Published, "rejects"), mem)
	if len(rejects) != len(want) {
		t.Fatalf("rejects %+v, want %v", rejects, want)
	}
	for _, r := range rejects {
		if want[*r.UserID] != r.Reason {
			t.Errorf("member %d rejected as %s, want %q", *r.UserID, r.Reason, want[*r.UserID])
		}
	}
	matches := runtest.ReadMatches(t, publish.TablePath(res.Published, "matches"), mem)
	pairs := 0
	for _, m := range matches {
		if math.IsNaN(float64(m.Score)) {
			t.Fatalf("NaN score: %+v", m)
		}
		if m.UserID <= 4 && m.MatchID <= 4 {
			pairs++
			if math.Abs(float64(m.STrait)-1) > 1e-6 {
				t.Errorf("%d-%d: s_trait %v, want 1 (same direction at every scale)", m.UserID, m.MatchID, m.STrait)
			}
		}
	}
	if pairs != 12 {
		t.Errorf("%d matches among members 1-4, want all 12", pairs)
	}
	// member 8 (max_km 1e-44, a float32 subnormal) matches every member at
	// the same place, at distance 0: proximity 1.
	n8 := 0
	for _, m := range matches {
		if m.UserID == 8 {
			n8++
			if m.DistanceKm != 0 || m.SProximity != 1 {
				t.Errorf("member 8: distance %v, proximity %v", m.DistanceKm, m.SProximity)
			}
		}
	}
	if n8 != 4 {
		t.Errorf("member 8 has %d matches, want 4: %+v", n8, matches)
	}
}
