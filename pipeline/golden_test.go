package pipeline_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	pq "github.com/parquet-go/parquet-go"

	"github.com/osmosis/batchmatch/pipeline"
	"github.com/osmosis/batchmatch/pipeline/internal/runtest"
	"github.com/osmosis/batchmatch/pipeline/profile"
	"github.com/osmosis/batchmatch/pipeline/publish"
	"github.com/osmosis/batchmatch/pipeline/synth"
)

// goldenDir holds the hand-built fixture and its hand-derived outputs.
const goldenDir = "../testdata/golden"

type goldenMember struct {
	UserID        int64     `json:"user_id"`
	Consent       bool      `json:"consent"`
	HealthConsent bool      `json:"health_consent"`
	Gender        int64     `json:"gender"`
	Seeking       int64     `json:"seeking"`
	BirthDate     string    `json:"birth_date"`
	AgeMin        int64     `json:"age_min"`
	AgeMax        int64     `json:"age_max"`
	Lat           float64   `json:"lat"`
	Lon           float64   `json:"lon"`
	MaxKm         float32   `json:"max_km"`
	Trait         []float32 `json:"trait"`
	HLAAlleles    []int     `json:"hla_alleles"` // null: no hla value
	Answers       []byte    `json:"answers"`     // JSON number arrays decode into []byte
	Accept        []byte    `json:"accept"`
	Importance    []byte    `json:"importance"`
}

func readCSV(t *testing.T, name string) [][]string {
	t.Helper()
	f, err := os.Open(filepath.Join(goldenDir, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return rows[1:]
}

// goldenConfig writes the golden fixture (profiles, blocks, suppression list)
// under a temporary directory and returns a K=2 run configuration over it.
func goldenConfig(t *testing.T) pipeline.Config {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(goldenDir, "profiles.json"))
	if err != nil {
		t.Fatal(err)
	}
	var fx struct {
		Members  []goldenMember `json:"members"`
		Blocks   [][2]int64     `json:"blocks"`
		Suppress []int64        `json:"suppress"`
	}
	if err := json.Unmarshal(raw, &fx); err != nil {
		t.Fatal(err)
	}
	var ms []synth.Member
	for _, g := range fx.Members {
		b, err := time.Parse(time.DateOnly, g.BirthDate)
		if err != nil {
			t.Fatal(err)
		}
		m := synth.Member{ID: synth.Ptr(g.UserID), Consent: synth.Ptr(g.Consent), Health: synth.Ptr(g.HealthConsent), Gender: synth.Ptr(g.Gender),
			Seeking: synth.Ptr(g.Seeking), Birth: synth.Ptr(synth.Days(b)), AgeMin: synth.Ptr(g.AgeMin), AgeMax: synth.Ptr(g.AgeMax),
			Lat: synth.Ptr(g.Lat), Lon: synth.Ptr(g.Lon), MaxKm: synth.Ptr(g.MaxKm), Trait: g.Trait, Ans: g.Answers, Acc: g.Accept, Imp: g.Importance}
		if g.HLAAlleles != nil {
			m.HLA = make([]byte, profile.HLABytes)
			for _, a := range g.HLAAlleles {
				m.HLA[a/8] |= 1 << (a % 8)
			}
		}
		ms = append(ms, m)
	}
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "profiles"), 0o755)
	synth.MustWriteArrow(t, filepath.Join(dir, "profiles", "golden.parquet"), ms, 2, 2, false)
	type blk struct {
		UserID    int64 `parquet:"user_id"`
		BlockedID int64 `parquet:"blocked_id"`
	}
	type sup struct {
		UserID int64 `parquet:"user_id"`
	}
	var blocks []blk
	for _, b := range fx.Blocks {
		blocks = append(blocks, blk{b[0], b[1]})
	}
	var sups []sup
	for _, s := range fx.Suppress {
		sups = append(sups, sup{s})
	}
	pq.WriteFile(filepath.Join(dir, "blocks.parquet"), blocks)
	pq.WriteFile(filepath.Join(dir, "suppress.parquet"), sups)
	cfg := runtest.BaseConfig(dir)
	cfg.K = 2
	cfg.Blocks = []string{filepath.Join(dir, "blocks.parquet")}
	cfg.Suppress = []string{filepath.Join(dir, "suppress.parquet")}
	return cfg
}

func TestGolden(t *testing.T) {
	cfg := goldenConfig(t)
	res, err := pipeline.Run(context.Background(), cfg, runtest.Quiet)
	if err != nil {
		t.Fatal(err)
	}
	matches := runtest.ReadMatches(t, publish.TablePath(res.Published, "matches"), nil)
	souls := runtest.ReadSoulmates(t, publish.TablePath(res.Published, "soulmates"), nil)
	rejects := runtest.ReadRejects(t, publish.TablePath(res.Published, "rejects"), nil)

	f := func(s string) float64 {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	near := func(what string, got float32, want string, tol float64) {
		if math.Abs(float64(got)-f(want)) > tol {
			t.Errorf("%s: got %v, want %s", what, got, want)
		}
	}
	want := readCSV(t, "expected_matches.csv")
	if len(matches) != len(want) {
		t.Fatalf("%d matches, want %d: %+v", len(matches), len(want), matches)
	}
	for i, w := range want {
		m := matches[i]
		if strconv.FormatInt(m.UserID, 10) != w[0] || strconv.Itoa(int(m.Rank)) != w[1] || strconv.FormatInt(m.MatchID, 10) != w[2] ||
			strconv.FormatBool(m.Mutual) != w[9] {
			t.Errorf("row %d: got %d,%d,%d mutual=%v, want %v", i, m.UserID, m.Rank, m.MatchID, m.Mutual, w)
		}
		near("score", m.Score, w[3], 1e-6)
		near("s_trait", m.STrait, w[4], 1e-6)
		near("s_questions", m.SQuestions, w[5], 1e-6)
		if (w[6] == "") != (m.SBiomarker == nil) {
			t.Errorf("row %d: s_biomarker %v, want %q", i, m.SBiomarker, w[6])
		} else if m.SBiomarker != nil {
			near("s_biomarker", *m.SBiomarker, w[6], 1e-6)
		}
		near("s_proximity", m.SProximity, w[7], 1e-6)
		near("distance_km", m.DistanceKm, w[8], 1e-3)
	}
	wantS := readCSV(t, "expected_soulmates.csv")
	if len(souls) != len(wantS) {
		t.Fatalf("soulmates %+v, want %v", souls, wantS)
	}
	for i, w := range wantS {
		s := souls[i]
		if strconv.FormatInt(s.UserA, 10) != w[0] || strconv.FormatInt(s.UserB, 10) != w[1] ||
			strconv.Itoa(int(s.RankA)) != w[3] || strconv.Itoa(int(s.RankB)) != w[4] {
			t.Errorf("soulmate %d: got %+v, want %v", i, s, w)
		}
		near("soulmate score", s.Score, w[2], 1e-6)
	}
	wantR := readCSV(t, "expected_rejects.csv")
	if len(rejects) != len(wantR) {
		t.Fatalf("rejects %+v, want %v", rejects, wantR)
	}
	for i, w := range wantR {
		r := rejects[i]
		if strconv.FormatInt(r.Row, 10) != w[0] || r.UserID == nil || strconv.FormatInt(*r.UserID, 10) != w[1] || r.Reason != w[2] {
			t.Errorf("reject %d: got %+v, want %v", i, r, w)
		}
	}
	c := res.Manifest.Counts
	if c.RowsRead != 9 || c.RowsSuppressed != 1 || c.IneligibleNoConsent != 1 || c.Eligible != 6 || c.MembersWithoutMatch != 1 || c.PairsCompatible != 8 {
		t.Errorf("manifest counts %+v", c)
	}
}
