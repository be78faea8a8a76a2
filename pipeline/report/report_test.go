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
