package pipeline_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/osmosis/batchmatch/pipeline"
	"github.com/osmosis/batchmatch/pipeline/internal/runtest"
	"github.com/osmosis/batchmatch/pipeline/publish"
	"github.com/osmosis/batchmatch/pipeline/synth"
)

// TestExplain asks the questions support teams get about the golden fixture,
// whose answers were derived by hand (testdata/golden/README.md).
func TestExplain(t *testing.T) {
	cfg := goldenConfig(t)
	ask := func(ids ...int64) string {
		var b bytes.Buffer
		if err := pipeline.Explain(context.Background(), cfg, runtest.Quiet, &b, ids); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	cases := []struct {
		ids  []int64
		want []string
	}{
		{[]int64{101, 102}, []string{"pair 101 (A) – 102 (B): compatible", "score      0.691552", "biomarker  0.6667"}},
		{[]int64{104, 103}, []string{"NOT compatible", "FAIL A's age is in B's accepted range", "pass B's age is in A's accepted range"}},
		{[]int64{109, 103}, []string{"NOT compatible", "FAIL not blocked", "(had they been compatible)"}},
		{[]int64{104, 102}, []string{"compatible", "pass B passes A's dealbreakers (0 failed)", "score      0.505000"}},
		{[]int64{101, 103}, []string{"biomarker  not counted: one of them has no health consent", "pass within A's maximum distance (17.9 km apart)"}},
		{[]int64{104}, []string{"member 104", "soulmate: none", "102  score 0.505000  rank 1  taken: their soulmate 101 scored 0.691552 with them"}},
		{[]int64{103}, []string{"soulmate: none", "101  score 0.310789  rank 1  taken: their soulmate 102 scored 0.691552", `not compatible: fails ["not blocked"]`}},
		{[]int64{101}, []string{"soulmate: 102 (score 0.691552)", "102  score 0.691552  rank 1  became the soulmate",
			"103  score 0.310789  rank 2  the member was assigned first, to a soulmate scoring 0.691552"}},
		{[]int64{108}, []string{"member 108: not an eligible member"}}, // suppressed: indistinguishable
		{[]int64{106}, []string{"member 106: not an eligible member"}}, // no consent
		{[]int64{999}, []string{"member 999: not an eligible member"}}, // unknown
	}
	for _, c := range cases {
		out := ask(c.ids...)
		for _, w := range c.want {
			if !strings.Contains(out, w) {
				t.Errorf("explain %v lacks %q:\n%s", c.ids, w, out)
			}
		}
		// never a raw profile value: coordinates, trait components, ages
		for _, banned := range []string{"48.8566", "2.3522", "48.80", "0.6, 0.8", "age 3", "years"} {
			if strings.Contains(out, banned) {
				t.Errorf("explain %v prints %q:\n%s", c.ids, banned, out)
			}
		}
	}
	if err := pipeline.Explain(context.Background(), cfg, runtest.Quiet, &bytes.Buffer{}, []int64{1, 2, 3}); err == nil {
		t.Error("three ids accepted")
	}
}

// TestExplainPartition asks the same questions of the golden night once
// published, answered from its manifest and tables (and, for a member
// without a match and pairs outside both lists, its profiles), in plain
// sentences; locally and from object storage alike.
func TestExplainPartition(t *testing.T) {
	cfg := goldenConfig(t)
	for _, out := range []string{filepath.Join(t.TempDir(), "out"), "mem://explain/out"} {
		cfg.Out = out
		if _, err := pipeline.Run(context.Background(), cfg, runtest.Quiet); err != nil {
			t.Fatal(err)
		}
		part := out + "/dt=2026-11-24"
		cases := []struct {
			ids  []int64
			want []string
		}{
			{[]int64{101, 102}, []string{"Night of 2026-11-24", "each member's 2 best matches, weights trait 0.40, questions 0.35, biomarker 0.15, proximity 0.10",
				"102 is number 1 on 101's list, and 101 is number 1 on 102's list.", "score 0.6916: trait 0.80, questions 0.49, biomarker 0.67, proximity 1.00; 0.0 km apart",
				"The match is mutual.", "They are each other's soulmate (score 0.6916)."}},
			{[]int64{104, 102}, []string{"102 is number 1 on 104's list, and 104 is not on 102's list.", "score 0.5050",
				"Member 104 has no soulmate this night.", "Member 102's soulmate is member 101 (score 0.6916)."}},
			{[]int64{104, 103}, []string{"103 is not on 104's list, and 104 is not on 103's list.",
				"Recomputed with the night's settings, they are not compatible: 104's age is outside the ages 103 accepts; " +
					"they live 17.9 km apart, farther than 104's maximum distance; 103's answers fail 1 of 104's dealbreaker questions."}},
			{[]int64{109, 103}, []string{"not compatible: one of them blocked the other."}},
			{[]int64{104}, []string{"Member 104 has 1 matches this night, fewer than 2", "They have no soulmate this night",
				"1. member 102, score 0.5050", "Not mutual: 104 is not on their list; paired with member 101 (score 0.6916)."}},
			{[]int64{101}, []string{"Their soulmate is member 102 (score 0.6916).", "2. member 103, score 0.3108", "biomarker not counted"}},
			{[]int64{105}, []string{"Member 105 has no match this night", "Of the 5 other eligible members, 2 are ruled out by gender",
				"3 of the rest by age", "0 of the rest by distance", "0 of the rest are blocked", "the remaining 0 each fail a dealbreaker"}},
			{[]int64{108}, []string{"Member 108 is not an eligible member of this night"}}, // suppressed: indistinguishable
			{[]int64{106}, []string{"Member 106 is not an eligible member"}},               // no consent
			{[]int64{999, 101}, []string{"Member 999 is not an eligible member"}},          // unknown
		}
		for _, c := range cases {
			var b bytes.Buffer
			if err := pipeline.ExplainPartition(context.Background(), part, c.ids, &b, 2); err != nil {
				t.Fatal(err)
			}
			got := b.String()
			for _, w := range c.want {
				if !strings.Contains(got, w) {
					t.Errorf("%s: explain %v lacks %q:\n%s", out, c.ids, w, got)
				}
			}
			for _, banned := range []string{"48.8566", "2.3522", "years", "%!", "[]"} {
				if strings.Contains(got, banned) {
					t.Errorf("explain %v prints %q:\n%s", c.ids, banned, got)
				}
			}
		}
	}
}

// BenchmarkExplainPartition: one member with a full list and one pair,
// asked of a published night of 20 000 generated members (the 1 M figure
// is in bench/RESULTS.md).
func BenchmarkExplainPartition(b *testing.B) {
	dir := b.TempDir()
	o := synth.Options{N: 20000, Shards: 2, Seed: 8, D: 128, Q: 64, AsOf: "2026-11-24", Out: filepath.Join(dir, "profiles")}
	if _, err := synth.Generate(context.Background(), o, 2); err != nil {
		b.Fatal(err)
	}
	cfg := runtest.BaseConfig(dir)
	cfg.K = 10
	res, err := pipeline.Run(context.Background(), cfg, runtest.Quiet)
	if err != nil {
		b.Fatal(err)
	}
	pn, err := publish.OpenNight(context.Background(), res.Published)
	if err != nil {
		b.Fatal(err)
	}
	raw, err := pn.Table(context.Background(), "matches")
	if err != nil {
		b.Fatal(err)
	}
	lists, err := publish.ParseLists(raw, 10)
	if err != nil {
		b.Fatal(err)
	}
	member := lists.User[len(lists.User)/2]
	other := lists.User[len(lists.User)/3]
	for _, ids := range [][]int64{{member}, {member, other}} {
		b.Run(fmt.Sprint(len(ids), "-ids"), func(b *testing.B) {
			for b.Loop() {
				if err := pipeline.ExplainPartition(context.Background(), res.Published, ids, io.Discard, 2); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
