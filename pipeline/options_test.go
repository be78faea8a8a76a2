package pipeline

import (
	"errors"
	"testing"
	"time"

	"github.com/osmosis/batchmatch/pipeline/failure"
	"github.com/osmosis/batchmatch/pipeline/match"
	"github.com/osmosis/batchmatch/pipeline/profile"
)

// TestOptionsBounds: flags that would size buffers past any machine, or
// weights whose sums overflow or underflow, are usage errors (64), not an
// out-of-memory crash or scores of 0 or NaN.
func TestOptionsBounds(t *testing.T) {
	now := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	base := func() Options {
		return Options{Profiles: []string{"p"}, Out: "o", K: 10, Workers: 2, MaxRejectRatio: 0.001, Weights: defaultWeights[:]}
	}
	for _, c := range []struct {
		name string
		edit func(o *Options)
		ok   bool
	}{
		{"defaults", func(o *Options) {}, true},
		{"D at the maximum", func(o *Options) { o.TraitDim = profile.MaxTraitDim }, true},
		{"D of 10^8", func(o *Options) { o.TraitDim = 100_000_000 }, false},
		{"Q of 2^63-1", func(o *Options) { o.Questions = 1<<63 - 1 }, false},
		{"K at the maximum", func(o *Options) { o.K = MaxK }, true},
		{"K of 2e9", func(o *Options) { o.K = 2_000_000_000 }, false},
		{"weights summing past float64", func(o *Options) { o.Weights = []float64{1e308, 1e308, 0, 0} }, false},
		{"a subnormal weight", func(o *Options) { o.Weights = []float64{5e-324, 0, 0, 0} }, false},
		{"weights at the bounds", func(o *Options) { o.Weights = []float64{match.MaxWeight, match.MinWeight, 0, 1} }, true},
		{"a zero weight", func(o *Options) { o.Weights = []float64{1, 0, 0, 0} }, true},
		{"negative weight", func(o *Options) { o.Weights = []float64{1, -1, 0, 0} }, false},
		{"no weight on trait, questions or proximity", func(o *Options) { o.Weights = []float64{0, 0, 1, 0} }, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := base()
			c.edit(&o)
			_, err := o.Config(now, true)
			if c.ok && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !c.ok && !errors.Is(err, failure.Usage) {
				t.Fatalf("got %v, want a usage error", err)
			}
		})
	}
}
