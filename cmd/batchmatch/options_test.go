package main

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/osmosis/batchmatch/pipeline/failure"
	"github.com/osmosis/batchmatch/pipeline/match"
	"github.com/osmosis/batchmatch/pipeline/profile"
	"github.com/osmosis/batchmatch/pipeline/publish"
	"github.com/osmosis/batchmatch/pipeline/synth"
)

// TestOptionsBounds: flags that would size buffers past any machine, or
// weights whose sums overflow or underflow, are usage errors (64), not an
// out-of-memory crash or scores of 0 or NaN.
func TestOptionsBounds(t *testing.T) {
	now := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	base := func() JobOptions {
		return JobOptions{Profiles: []string{"p"}, Out: "o", K: 10, Workers: 2, MaxRejectRatio: 0.001, Weights: defaultWeights[:]}
	}
	for _, c := range []struct {
		name string
		edit func(o *JobOptions)
		ok   bool
	}{
		{"defaults", func(o *JobOptions) {}, true},
		{"D at the maximum", func(o *JobOptions) { o.TraitDim = profile.MaxTraitDim }, true},
		{"D of 10^8", func(o *JobOptions) { o.TraitDim = 100_000_000 }, false},
		{"Q of 2^63-1", func(o *JobOptions) { o.Questions = 1<<63 - 1 }, false},
		{"K at the maximum", func(o *JobOptions) { o.K = match.MaxK }, true},
		{"K of 2e9", func(o *JobOptions) { o.K = 2_000_000_000 }, false},
		{"weights summing past float64", func(o *JobOptions) { o.Weights = []float64{1e308, 1e308, 0, 0} }, false},
		{"a subnormal weight", func(o *JobOptions) { o.Weights = []float64{5e-324, 0, 0, 0} }, false},
		{"weights at the bounds", func(o *JobOptions) { o.Weights = []float64{match.MaxWeight, match.MinWeight, 0, 1} }, true},
		{"a zero weight", func(o *JobOptions) { o.Weights = []float64{1, 0, 0, 0} }, true},
		{"negative weight", func(o *JobOptions) { o.Weights = []float64{1, -1, 0, 0} }, false},
		{"no weight on trait, questions or proximity", func(o *JobOptions) { o.Weights = []float64{0, 0, 1, 0} }, false},
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

// TestCheckPartition: --partition takes a conservative character set.
func TestCheckPartition(t *testing.T) {
	for name, ok := range map[string]bool{
		"dt=2026-11-24": true, "run=nightly": true, "latest": true, "v1.2_x-y": true, "A": true,
		"": false, " ": false, "\n": false, "dt=2026 11 24": false, "con*": false, "a/b": false, "..": false,
		"a..b": false, ".hidden": false, "_temporary": false, "-x": false, "=x": false, "é": false,
		"a\\b": false, "x?": false, "a:b": false, strings.Repeat("a", 128): true, strings.Repeat("a", 129): false,
	} {
		err := publish.CheckPartition(name)
		if ok != (err == nil) {
			t.Errorf("publish.CheckPartition(%q) = %v", name, err)
		}
		if err != nil && !errors.Is(err, failure.Usage) {
			t.Errorf("publish.CheckPartition(%q): %v is not a usage error", name, err)
		}
		o := JobOptions{Profiles: []string{"p"}, Out: "o", K: 1, Workers: 1, Weights: defaultWeights[:], AsOf: "2026-11-24", Partition: name}
		if _, err := o.Config(synth.AsOf, true); name != "" && ok != (err == nil) {
			t.Errorf("--partition %q: %v", name, err)
		}
	}
}

// TestPartitionFlag: --partition defaults to dt=<as-of> and refuses names
// that are not safe (a run into a chosen partition: TestPartitionDir).
func TestPartitionFlag(t *testing.T) {
	for _, tc := range []struct {
		flag, want string
		ok         bool
	}{{"", "dt=2026-11-24", true}, {"date=2026-11-24", "date=2026-11-24", true}, {"latest", "latest", true},
		{"a/b", "", false}, {"..", "", false}, {"_temporary", "", false}, {".hidden", "", false}} {
		o := JobOptions{Profiles: []string{"p"}, Out: "o", K: 1, Workers: 1, Weights: defaultWeights[:], AsOf: "2026-11-24", Partition: tc.flag}
		c, err := o.Config(synth.AsOf, true)
		if tc.ok != (err == nil) || (tc.ok && c.Partition != tc.want) {
			t.Errorf("--partition %q: %q, %v", tc.flag, c.Partition, err)
		}
	}
}

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{"4GiB": 4 << 30, "512MiB": 512 << 20, "3G": 3 << 30, "1000000": 1e6, "2.5GB": 2.5e9} {
		if got, err := ParseBytes(in); err != nil || got != want {
			t.Errorf("%q: %d, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "lots", "-1G", "0"} {
		if _, err := ParseBytes(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
