package pipeline_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/osmosis/batchmatch/pipeline"
	"github.com/osmosis/batchmatch/pipeline/internal/runtest"
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
