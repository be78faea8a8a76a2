package main

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"

	"github.com/osmosis/batchmatch/pipeline"
	"github.com/osmosis/batchmatch/pipeline/match"
	"github.com/osmosis/batchmatch/pipeline/publish"
)

// TestNightMetrics: the gauges of a night against the one before are the
// manifest's figures, and absent when the manifest has none.
func TestNightMetrics(t *testing.T) {
	full := &publish.Manifest{Night: &publish.NightInfo{Mode: "full", MembersRescored: 900}}
	inc := &publish.Manifest{
		Night: &publish.NightInfo{Mode: "incremental", MembersRescored: 42},
		Churn: &publish.Churn{SoulmatePairsKept: 400, SoulmatePairsBroken: 7, SoulmatePairsNew: 6, TopKChanged: 55,
			LostSoulmate: map[string]int64{publish.LostPartnerLeft: 2, publish.LostOutScored: 9},
			Drift:        publish.ScoreDrift{MeanAbs: 0.25}},
		Stability: &match.Certificate{BlockingPairs: 31, MembersChecked: 120},
	}
	for _, c := range []struct {
		name   string
		m      *publish.Manifest
		want   []string
		absent []string
	}{
		{"full, first night", full, []string{"batchmatch_last_run_incremental 0", "batchmatch_last_run_members_rescored 900"},
			[]string{"batchmatch_last_run_soulmate_pairs_changed", "batchmatch_last_run_blocking_pairs"}},
		{"incremental", inc, []string{"batchmatch_last_run_incremental 1", "batchmatch_last_run_members_rescored 42",
			`batchmatch_last_run_soulmate_pairs_changed{change="kept"} 400`, `batchmatch_last_run_soulmate_pairs_changed{change="broken"} 7`,
			`batchmatch_last_run_soulmate_pairs_changed{change="new"} 6`, `batchmatch_last_run_lost_soulmate{reason="partner_left"} 2`,
			`batchmatch_last_run_lost_soulmate{reason="out_scored"} 9`, "batchmatch_last_run_topk_changed 55",
			"batchmatch_last_run_score_drift_mean_abs 0.25", "batchmatch_last_run_blocking_pairs 31",
			"batchmatch_last_run_stability_members_checked 120"}, nil},
	} {
		now := time.Now()
		mfs, err := metricFamilies(outcome{Manifest: c.m, Counted: pipeline.Counted{Rows: true, Pairs: true, Outputs: true}, Started: now, Finished: now})
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for _, mf := range mfs {
			if _, err := expfmt.MetricFamilyToText(&b, mf); err != nil {
				t.Fatal(err)
			}
		}
		for _, w := range c.want {
			if !strings.Contains(b.String(), w+"\n") {
				t.Errorf("%s: no %q in\n%s", c.name, w, b.String())
			}
		}
		for _, a := range c.absent {
			if strings.Contains(b.String(), a) {
				t.Errorf("%s: %s without a figure", c.name, a)
			}
		}
	}
}
