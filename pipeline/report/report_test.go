package report_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/osmosis/batchmatch/pipeline"
	"github.com/osmosis/batchmatch/pipeline/internal/runtest"
	"github.com/osmosis/batchmatch/pipeline/publish"
	"github.com/osmosis/batchmatch/pipeline/report"
	"github.com/osmosis/batchmatch/pipeline/synth"
)

func TestReport(t *testing.T) {
	dir := t.TempDir()
	o := synth.Options{N: 2500, Shards: 2, Seed: 9, D: 16, Q: 12, AsOf: "2026-11-24", InvalidRatio: 0.01, Out: filepath.Join(dir, "profiles")}
	if _, err := synth.Generate(context.Background(), o, 2); err != nil {
		t.Fatal(err)
	}
	cfg := runtest.BaseConfig(dir)
	cfg.K, cfg.Report = 10, true
	res, err := pipeline.Run(context.Background(), cfg, runtest.Quiet)
	if err != nil {
		t.Fatal(err)
	}
	m, c := res.Manifest, res.Manifest.Counts
	raw, err := os.ReadFile(publish.ListedPath(res.Published, report.File))
	if err != nil {
		t.Fatal(err)
	}
	html := string(raw)

	// every chart, as inline SVG, with its caption's numbers from the manifest
	for id, caption := range map[string]string{
		"chart-scores":             fmt.Sprintf("%d matches", c.Matches),
		"chart-matches-per-member": fmt.Sprintf("%d members without a match of %d eligible", c.MembersWithoutMatch, c.Eligible),
		"chart-mutual":             fmt.Sprintf("%d mutual of %d matches", c.MutualMatches, c.Matches),
		"chart-coverage-age":       fmt.Sprintf("%d of %d eligible members have a soulmate", 2*c.Soulmates, c.Eligible),
		"chart-coverage-region":    fmt.Sprintf("%d of %d eligible members have a soulmate", 2*c.Soulmates, c.Eligible),
		"chart-pairs":              fmt.Sprintf("%d ordered pairs examined, %d compatible", c.PairsExamined, c.PairsCompatible),
		"chart-rejects":            fmt.Sprintf("%d rows quarantined of %d read", c.RowsQuarantined, c.RowsRead),
		"chart-stages":             "scoring throughput",
	} {
		fig := regexp.MustCompile(`(?s)<figure id="` + id + `">(.*?)</figure>`).FindStringSubmatch(html)
		if fig == nil {
			t.Errorf("%s missing", id)
			continue
		}
		if !strings.Contains(fig[1], "<svg") || !strings.Contains(fig[1], "</svg>") {
			t.Errorf("%s has no inline SVG", id)
		}
		if !strings.Contains(fig[1], caption) {
			t.Errorf("%s caption lacks %q", id, caption)
		}
	}
	for _, row := range []struct {
		name string
		v    int64
	}{{"rows read", c.RowsRead}, {"eligible", c.Eligible}, {"matches", c.Matches}, {"soulmate pairs", c.Soulmates}} {
		if !strings.Contains(html, fmt.Sprintf("<th>%s</th><td>%d</td>", row.name, row.v)) {
			t.Errorf("summary row %q is not %d", row.name, row.v)
		}
	}
	if c.RowsQuarantined == 0 || c.Soulmates == 0 {
		t.Fatalf("scenario too thin: %+v", c)
	}
	// self-contained: nothing to fetch when opened
	for _, ext := range []string{"<script", "<link", "src=", "url(", "@import"} {
		if strings.Contains(html, ext) {
			t.Errorf("report references %q", ext)
		}
	}
	// coverage aggregates agree with the counts
	for name, rows := range map[string][]publish.CoverageRow{"age": m.Coverage.ByAgeBand, "region": m.Coverage.ByRegion} {
		var el, wm, ws int64
		for _, r := range rows {
			el, wm, ws = el+r.Eligible, wm+r.WithMatch, ws+r.WithSoulmate
			if name == "region" && r.Eligible < publish.MinCellMembers && !strings.HasPrefix(r.Group, "other") {
				t.Errorf("region cell %s has only %d members", r.Group, r.Eligible)
			}
		}
		if el != c.Eligible || wm != c.Eligible-c.MembersWithoutMatch || ws != 2*c.Soulmates {
			t.Errorf("coverage by %s sums to %d/%d/%d, counts say %d/%d/%d", name, el, wm, ws, c.Eligible, c.Eligible-c.MembersWithoutMatch, 2*c.Soulmates)
		}
	}
	// the report command on the published partition gives the same page
	var b strings.Builder
	if err := report.WritePartition(&b, res.Published); err != nil || b.String() != html {
		t.Errorf("report of the published partition differs (%v)", err)
	}
}

// TestReportHistory: over four evolving nights run with --report (the last
// two incrementally), the last report compares the night with the one
// before (churn table and lost-soulmate reasons as the manifest counts
// them, the stability certificate) and draws the history of all four from
// their manifests; the report command on the published partition gives the
// same page.
func TestReportHistory(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	var last *pipeline.Result
	for k := range 4 {
		asOf := synth.AsOf.AddDate(0, 0, k)
		o := synth.Options{N: 1500, Shards: 2, Seed: 4, D: 16, Q: 12, AsOf: asOf.Format("2006-01-02"), Night: k, Churn: 0.05,
			Out: filepath.Join(dir, fmt.Sprint("n", k))}
		nf, err := synth.GenerateNight(context.Background(), o, 2)
		if err != nil {
			t.Fatal(err)
		}
		cfg := runtest.BaseConfig(dir)
		cfg.Profiles, cfg.Suppress, cfg.Blocks = []string{filepath.Dir(nf.Profiles[0])}, []string{nf.Suppress}, []string{nf.Blocks}
		cfg.Out, cfg.AsOf, cfg.K, cfg.Report, cfg.Incremental = out, asOf, 5, true, k >= 2
		if last, err = pipeline.Run(context.Background(), cfg, runtest.Quiet); err != nil {
			t.Fatal(err)
		}
	}
	m := last.Manifest
	if m.Night.Mode != "incremental" || m.Churn == nil || m.Stability == nil {
		t.Fatalf("night %+v, churn %v, stability %v", m.Night, m.Churn, m.Stability)
	}
	raw, err := os.ReadFile(publish.ListedPath(last.Published, report.File))
	if err != nil {
		t.Fatal(err)
	}
	html := string(raw)
	c := m.Churn
	for _, want := range []string{
		fmt.Sprintf("<th>soulmate pairs kept</th><td>%d</td>", c.SoulmatePairsKept),
		fmt.Sprintf("<th>soulmate pairs broken</th><td>%d</td>", c.SoulmatePairsBroken),
		fmt.Sprintf("<th>soulmate pairs new</th><td>%d</td>", c.SoulmatePairsNew),
		fmt.Sprintf("<th>members whose top-K changed</th><td>%d</td>", c.TopKChanged),
		fmt.Sprintf("<th>the partner left</th><td>%d</td>", c.LostSoulmate[publish.LostPartnerLeft]),
		fmt.Sprintf("<th>out-scored</th><td>%d</td>", c.LostSoulmate[publish.LostOutScored]),
		fmt.Sprintf("%d blocking pairs in the whole compatible graph", m.Stability.BlockingPairs),
		fmt.Sprintf("Lists computed incrementally from %s: %d members rescored", m.Night.From, m.Night.MembersRescored),
		"History of the last 4 nights",
	} {
		if !strings.Contains(html, want) {
			t.Errorf("the report lacks %q", want)
		}
	}
	for _, id := range []string{"chart-topk-changes", "chart-history-soulmates", "chart-history-lost", "chart-history-topk",
		"chart-history-stability", "chart-history-runs", "chart-history-seconds"} {
		fig := regexp.MustCompile(`(?s)<figure id="` + id + `">(.*?)</figure>`).FindStringSubmatch(html)
		if fig == nil || !strings.Contains(fig[1], "<svg") {
			t.Errorf("%s missing", id)
		}
	}
	var b strings.Builder
	if err := report.WritePartition(&b, last.Published); err != nil || b.String() != html {
		t.Errorf("report of the published partition differs (%v)", err)
	}
}
