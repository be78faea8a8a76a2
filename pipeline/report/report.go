// Package report writes the HTML report of a published run: key counts,
// score distribution, matches per member, mutual matches, soulmate
// coverage, pair counts, reject reasons and stage timings, as one
// self-contained page with SVG charts drawn by gonum/plot. It reads only
// the manifest and the matches table, never member data.
package report

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"image/color"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/parquet-go/parquet-go"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/osmosis/batchmatch/pipeline/failure"
	"github.com/osmosis/batchmatch/pipeline/publish"
	"github.com/osmosis/batchmatch/pipeline/read"
	"github.com/osmosis/batchmatch/pipeline/store"
)

// File is the name of the report inside a partition (`run --report`).
const File = "report.html"

// scoreBins is the number of score histogram bins over [0, 1].
const scoreBins = 50

// reportStats are what the report needs from the matches table.
type reportStats struct {
	scoreHist  [scoreBins]float64
	perMember  map[int]int64 // matches per member → members
	mutual     int64
	oneSided   int64
	matchCount int64
}

// readReportStats streams the matches table once.
func readReportStats(path string, eligible int64) (*reportStats, error) {
	f, _, err := read.OpenSource(context.Background(), path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st := &reportStats{perMember: map[int]int64{}}
	r := parquet.NewGenericReader[publish.MatchRow](f)
	defer r.Close()
	buf := make([]publish.MatchRow, 4096)
	var cur int64
	run, members := 0, int64(0)
	for {
		n, err := r.Read(buf)
		for _, m := range buf[:n] {
			b := min(int(m.Score*scoreBins), scoreBins-1)
			st.scoreHist[max(b, 0)]++
			if m.Mutual {
				st.mutual++
			} else {
				st.oneSided++
			}
			if run > 0 && m.UserID != cur {
				st.perMember[run]++
				members++
				run = 0
			}
			cur = m.UserID
			run++
			st.matchCount++
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: reading %s: %w", failure.BadData, path, err)
		}
	}
	if run > 0 {
		st.perMember[run]++
		members++
	}
	st.perMember[0] = eligible - members
	return st, nil
}

type chart struct {
	ID, Title, Caption string
	SVG                template.HTML
}

// svg renders a plot as an inline SVG element.
func svg(p *plot.Plot, w, h vg.Length) (template.HTML, error) {
	wt, err := p.WriterTo(w, h, "svg")
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	if _, err := wt.WriteTo(&b); err != nil {
		return "", err
	}
	s := b.Bytes()
	if i := bytes.Index(s, []byte("<svg")); i > 0 { // drop the XML prolog: inline SVG
		s = s[i:]
	}
	return template.HTML(s), nil
}

// bars draws a bar chart of values with category labels.
func bars(title, xlabel, ylabel string, labels []string, values []float64, horizontal, logY bool) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text, p.X.Label.Text, p.Y.Label.Text = title, xlabel, ylabel
	vs := make(plotter.Values, len(values))
	copy(vs, values)
	if logY { // log10 of the values on a linear axis (gonum's log axis cannot start bars at 0)
		for i := range vs {
			vs[i] = math.Log10(max(vs[i], 1))
		}
	}
	// Vertical charts are about 400 points wide; horizontal ones get 0.6 cm
	// (17 points) of height per bar.
	width := vg.Points(min(48, max(3, 300/float64(max(len(vs), 1)))))
	if horizontal {
		width = vg.Points(11)
	}
	b, err := plotter.NewBarChart(vs, width)
	if err != nil {
		return nil, err
	}
	b.Horizontal = horizontal
	b.LineStyle.Width = 0
	b.Color = plotterColor
	p.Add(b)
	if horizontal {
		p.NominalY(labels...)
	} else {
		p.NominalX(labels...)
	}
	return p, nil
}

// WritePartition writes the HTML report of a published partition (a
// directory or an object-store URL). It reads the manifest _SUCCESS names
// (manifest.json when it names none) and the matches table the manifest
// lists.
func WritePartition(w io.Writer, partition string) (err error) {
	join := func(dir string, elem ...string) string { return filepath.Join(append([]string{dir}, elem...)...) }
	readFile := os.ReadFile
	if store.IsURL(partition) { // a partition published to object storage
		if err := store.CheckEnv(); err != nil {
			return fmt.Errorf("%w: %w", failure.Usage, err)
		}
		join = store.Join
		readFile = func(loc string) ([]byte, error) { return store.Default().ReadFile(context.Background(), loc) }
	}
	kind := func(err error) error {
		if errors.Is(err, store.ErrUnavailable) {
			return failure.OSKind(err, failure.IO)
		}
		return failure.OSKind(err, failure.NoInput)
	}
	manifest := publish.ManifestFile
	if body, err := readFile(join(partition, publish.SuccessFile)); err == nil {
		manifest = publish.ParseSuccess(body).ManifestName()
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %w", kind(err), err)
	}
	raw, err := readFile(join(partition, manifest))
	if err != nil {
		return fmt.Errorf("%w: %w", kind(err), err)
	}
	var m publish.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return fmt.Errorf("%w: %s: %w", failure.BadData, join(partition, manifest), err)
	}
	matches := filepath.ToSlash(m.Outputs["matches"].Path)
	if matches == "" {
		matches = "matches/" + publish.PartFile
	}
	parent := filepath.Dir(filepath.Clean(partition))
	if store.IsURL(partition) {
		parent = store.Parent(partition)
	}
	history, err := History(context.Background(), parent, m.AsOf)
	if err != nil {
		return err
	}
	return Write(w, &m, join(partition, matches), history)
}

// HistoryNights is how many nights the history section covers, this one
// included.
const HistoryNights = 30

// History reads the manifests of the nights published under out before
// the date asOf (YYYY-MM-DD), the latest HistoryNights-1 of them, oldest
// first: the history section of a report. Only manifests are read, no
// member data. A night whose manifest cannot be read is left out.
func History(ctx context.Context, out, asOf string) ([]*publish.Manifest, error) {
	names, err := publish.ListNights(ctx, out)
	if err != nil {
		return nil, err
	}
	var before []string
	for _, n := range names {
		if n < publish.DefaultPartitionName(asOf) {
			before = append(before, n)
		}
	}
	before = before[max(0, len(before)-(HistoryNights-1)):]
	var ms []*publish.Manifest
	for _, n := range before {
		loc := filepath.Join(out, n)
		if store.IsURL(out) {
			loc = store.Join(out, n)
		}
		pn, err := publish.OpenNight(ctx, loc)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			continue
		}
		ms = append(ms, pn.Manifest)
	}
	return ms, nil
}

// Write writes the report of the run m whose matches table is at
// matches (a path or an object URL), with the manifests of the nights
// before it (oldest first) for the history section. The plotting library
// panics on some inputs; a panic becomes an internal error.
func Write(w io.Writer, m *publish.Manifest, matches string, history []*publish.Manifest) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: building the report: panic: %v", failure.Internal, r)
		}
	}()
	st, err := readReportStats(matches, m.Counts.Eligible)
	if err != nil {
		return err
	}
	c := m.Counts
	var charts []chart
	addChart := func(id, title, caption string, p *plot.Plot, err error, h vg.Length) error {
		if err != nil {
			return fmt.Errorf("chart %s: %w", id, err)
		}
		s, err := svg(p, 16*vg.Centimeter, h)
		if err != nil {
			return fmt.Errorf("chart %s: %w", id, err)
		}
		charts = append(charts, chart{ID: id, Title: title, Caption: caption, SVG: s})
		return nil
	}

	labels := make([]string, scoreBins)
	for i := range labels {
		if i%10 == 0 {
			labels[i] = fmt.Sprintf("%.1f", float64(i)/scoreBins)
		}
	}
	p, err := bars("", "score", "matches", labels, st.scoreHist[:], false, false)
	if err := addChart("chart-scores", "Score distribution", fmt.Sprintf("%d matches", st.matchCount), p, err, 7*vg.Centimeter); err != nil {
		return err
	}

	k := 0
	for n := range st.perMember {
		k = max(k, n)
	}
	pl, pv := make([]string, k+1), make([]float64, k+1)
	for n := 0; n <= k; n++ {
		pl[n], pv[n] = fmt.Sprint(n), float64(st.perMember[n])
	}
	p, err = bars("", "matches per member", "members", pl, pv, false, false)
	if err := addChart("chart-matches-per-member", "Matches per member", fmt.Sprintf("%d members without a match of %d eligible", st.perMember[0], c.Eligible), p, err, 7*vg.Centimeter); err != nil {
		return err
	}

	rate := 0.0
	if c.Matches > 0 {
		rate = float64(st.mutual) / float64(c.Matches)
	}
	p, err = bars("", "", "matches", []string{"mutual", "one-sided"}, []float64{float64(st.mutual), float64(st.oneSided)}, false, false)
	if err := addChart("chart-mutual", "Mutual matches", fmt.Sprintf("%d mutual of %d matches (%.1f %%)", st.mutual, c.Matches, 100*rate), p, err, 6*vg.Centimeter); err != nil {
		return err
	}

	cover := func(id, title string, rows []publish.CoverageRow, horizontal bool) error {
		var ls []string
		var vs []float64
		var with, all int64
		for _, r := range rows {
			ls = append(ls, fmt.Sprintf("%s (%d)", r.Group, r.Eligible))
			v := 0.0
			if r.Eligible > 0 {
				v = 100 * float64(r.WithSoulmate) / float64(r.Eligible)
			}
			vs = append(vs, v)
			with, all = with+r.WithSoulmate, all+r.Eligible
		}
		h := 7 * vg.Centimeter
		if horizontal {
			h = vg.Length(2+0.6*float64(len(rows))) * vg.Centimeter
		}
		xl, yl := "", "% with a soulmate"
		if horizontal {
			xl, yl = "% with a soulmate", ""
		}
		p, err := bars("", xl, yl, ls, vs, horizontal, false)
		return addChart(id, title, fmt.Sprintf("%d of %d eligible members have a soulmate", with, all), p, err, h)
	}
	var byAge, byRegion []publish.CoverageRow
	if m.Coverage != nil {
		byAge, byRegion = m.Coverage.ByAgeBand, m.Coverage.ByRegion
	}
	if err := cover("chart-coverage-age", "match.Soulmate coverage by age band", byAge, false); err != nil {
		return err
	}
	if err := cover("chart-coverage-region", "match.Soulmate coverage by region (2°×2° cells)", byRegion, true); err != nil {
		return err
	}

	p, err = bars("", "", "log10(pairs)", []string{"examined", "compatible", "matches", "soulmate pairs"},
		[]float64{float64(c.PairsExamined), float64(c.PairsCompatible), float64(c.Matches), float64(c.Soulmates)}, false, true)
	if err := addChart("chart-pairs", "Pairs", fmt.Sprintf("%d ordered pairs examined, %d compatible", c.PairsExamined, c.PairsCompatible), p, err, 7*vg.Centimeter); err != nil {
		return err
	}

	reasons := slices.Sorted(func(yield func(string) bool) {
		for r := range c.QuarantinedByReason {
			if !yield(r) {
				return
			}
		}
	})
	slices.SortStableFunc(reasons, func(a, b string) int { return cmp.Compare(c.QuarantinedByReason[b], c.QuarantinedByReason[a]) })
	rv := make([]float64, len(reasons))
	for i, r := range reasons {
		rv[i] = float64(c.QuarantinedByReason[r])
	}
	if len(reasons) == 0 {
		reasons, rv = []string{"(none)"}, []float64{0}
	}
	p, err = bars("", "rows", "", reasons, rv, true, false)
	if err := addChart("chart-rejects", "Quarantined rows by reason", fmt.Sprintf("%d rows quarantined of %d read", c.RowsQuarantined, c.RowsRead), p, err, vg.Length(2+0.6*float64(len(reasons)))*vg.Centimeter); err != nil {
		return err
	}

	stages := slices.Sorted(func(yield func(string) bool) {
		for s := range m.TimingsMs {
			if !yield(s) {
				return
			}
		}
	})
	sv := make([]float64, len(stages))
	for i, s := range stages {
		sv[i] = float64(m.TimingsMs[s]) / 1000
	}
	thr := 0.0
	if ms := m.TimingsMs["score_topk"]; ms > 0 {
		thr = float64(c.PairsExamined) / (float64(ms) / 1000)
	}
	p, err = bars("", "seconds", "", stages, sv, true, false)
	if err := addChart("chart-stages", "Stage timings", fmt.Sprintf("scoring throughput %.3g ordered pairs/s", thr), p, err, vg.Length(2+0.6*float64(len(stages)))*vg.Centimeter); err != nil {
		return err
	}

	nightCharts, err := nightCharts(m)
	if err != nil {
		return err
	}
	histCharts, err := historyCharts(append(slices.Clip(history), m))
	if err != nil {
		return err
	}
	return reportTemplate.Execute(w, struct {
		M       *publish.Manifest
		Charts  []chart
		Night   []chart
		History []chart
		Nights  int
		Lost    []lostRow
	}{m, charts, nightCharts, histCharts, len(history) + 1, lostRows(m)})
}

var reportTemplate = template.Must(template.New("report").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>batchmatch run {{.M.AsOf}}</title>
<style>
body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;color:#222}
table{border-collapse:collapse}td,th{padding:.2rem .8rem;border-bottom:1px solid #ddd;text-align:right}
th{text-align:left}figure{margin:2rem 0}figcaption{color:#555}
</style></head><body>
<h1>batchmatch run of {{.M.AsOf}}</h1>
<p>run {{.M.RunID}} · attempt {{.M.AttemptID}} · batchmatch {{.M.Version}} · spec v{{.M.SpecVersion}}</p>
<table id="summary">
<tr><th>rows read</th><td>{{.M.Counts.RowsRead}}</td></tr>
<tr><th>suppressed</th><td>{{.M.Counts.RowsSuppressed}}</td></tr>
<tr><th>quarantined</th><td>{{.M.Counts.RowsQuarantined}}</td></tr>
<tr><th>eligible</th><td>{{.M.Counts.Eligible}}</td></tr>
<tr><th>pairs examined</th><td>{{.M.Counts.PairsExamined}}</td></tr>
<tr><th>pairs compatible</th><td>{{.M.Counts.PairsCompatible}}</td></tr>
<tr><th>matches</th><td>{{.M.Counts.Matches}}</td></tr>
<tr><th>mutual matches</th><td>{{.M.Counts.MutualMatches}}</td></tr>
<tr><th>soulmate pairs</th><td>{{.M.Counts.Soulmates}}</td></tr>
<tr><th>members without a match</th><td>{{.M.Counts.MembersWithoutMatch}}</td></tr>
</table>
{{range .Charts}}<figure id="{{.ID}}"><h2>{{.Title}}</h2>{{.SVG}}<figcaption>{{.Caption}}</figcaption></figure>
{{end}}<section id="night"><h2>This night against the one before</h2>
{{with .M.Night}}<p id="night-mode">Lists computed {{if eq .Mode "incremental"}}incrementally from {{.From}}: {{.MembersRescored}} members rescored against everyone ({{.Changed}} changed, {{.Repaired}} whose list lost a candidate), {{.Carried}} carried over{{else}}in full{{if .FullReason}} (incremental run not possible: {{.FullReason}}){{end}}{{end}}.</p>{{end}}
{{with .M.Churn}}<table id="churn">
<tr><th>compared with</th><td>{{.From}}</td></tr>
<tr><th>soulmate pairs kept</th><td>{{.SoulmatePairsKept}}</td></tr>
<tr><th>soulmate pairs broken</th><td>{{.SoulmatePairsBroken}}</td></tr>
<tr><th>soulmate pairs new</th><td>{{.SoulmatePairsNew}}</td></tr>
<tr><th>members compared</th><td>{{.MembersCompared}}</td></tr>
<tr><th>members whose top-K changed</th><td>{{.TopKChanged}}</td></tr>
<tr><th>pairs listed both nights</th><td>{{.Drift.PairsInBoth}}</td></tr>
<tr><th>of which with another score</th><td>{{.Drift.PairsChanged}}</td></tr>
<tr><th>mean best score, before → now</th><td>{{printf "%.4f" .Drift.MeanTop1Before}} → {{printf "%.4f" .Drift.MeanTop1}}</td></tr>
</table>
<table id="lost-soulmate"><tr><th>members who lost their soulmate, because</th><th></th></tr>
{{range $.Lost}}<tr><th>{{.Why}}</th><td>{{.N}}</td></tr>
{{end}}</table>{{else}}<p>No earlier night to compare with.</p>{{end}}
{{with .M.Stability}}<p id="stability">Stability certificate: {{.BlockingPairs}} blocking pairs in the whole compatible graph (pairs of compatible members who both score higher together than with their soulmates), involving {{.MembersInBlockingPairs}} members; {{.MembersChecked}} members checked, the others certified by their own lists.</p>{{end}}
{{range .Night}}<figure id="{{.ID}}"><h3>{{.Title}}</h3>{{.SVG}}<figcaption>{{.Caption}}</figcaption></figure>
{{end}}</section>
<section id="history"><h2>History of the last {{.Nights}} nights</h2>
<p>From the nights' manifests only.</p>
{{range .History}}<figure id="{{.ID}}"><h3>{{.Title}}</h3>{{.SVG}}<figcaption>{{.Caption}}</figcaption></figure>
{{end}}</section></body></html>
`))

// plotterColor is the bars' colour.
var plotterColor = color.RGBA{R: 0x3b, G: 0x6e, B: 0xa8, A: 0xff}

// lostRow is one reason members lost their soulmate, for the table.
type lostRow struct {
	Why string
	N   int64
}

func lostRows(m *publish.Manifest) []lostRow {
	if m.Churn == nil {
		return nil
	}
	var rows []lostRow
	for _, r := range []struct{ key, why string }{
		{publish.LostPartnerLeft, "the partner left"}, {publish.LostPartnerErased, "the partner was erased"},
		{publish.LostIncompatible, "the pair became incompatible"}, {publish.LostOutScored, "out-scored"},
	} {
		rows = append(rows, lostRow{r.why, m.Churn.LostSoulmate[r.key]})
	}
	return rows
}

// render turns a plot into a chart.
func render(id, title, caption string, p *plot.Plot, h vg.Length) (chart, error) {
	s, err := svg(p, 16*vg.Centimeter, h)
	if err != nil {
		return chart{}, fmt.Errorf("chart %s: %w", id, err)
	}
	return chart{ID: id, Title: title, Caption: caption, SVG: s}, nil
}

// nightCharts are the charts of this night against the one before.
func nightCharts(m *publish.Manifest) ([]chart, error) {
	c := m.Churn
	if c == nil {
		return nil, nil
	}
	labels := make([]string, len(c.TopKPlacesChanged))
	vals := make([]float64, len(c.TopKPlacesChanged))
	for i, v := range c.TopKPlacesChanged {
		labels[i], vals[i] = fmt.Sprint(i), float64(v)
	}
	p, err := bars("", "places of the top-K holding someone else than the night before", "members (log10)", labels, vals, false, true)
	if err != nil {
		return nil, err
	}
	ch, err := render("chart-topk-changes", "How much the lists moved",
		fmt.Sprintf("%d of %d members compared have a list that changed", c.TopKChanged, c.MembersCompared), p, 7*vg.Centimeter)
	return []chart{ch}, err
}

// series is one line of a history chart.
type series struct {
	name string
	v    func(m *publish.Manifest) (float64, bool)
}

// lines draws one line per series over the nights (x labelled by date).
func lines(nights []*publish.Manifest, ylabel string, ss ...series) (*plot.Plot, error) {
	p := plot.New()
	p.Y.Label.Text = ylabel
	labels := make([]string, len(nights))
	step := max(1, len(nights)/8)
	for i, m := range nights {
		if i%step == 0 || i == len(nights)-1 {
			labels[i] = strings.TrimPrefix(m.AsOf, m.AsOf[:min(5, len(m.AsOf))])
		}
	}
	p.NominalX(labels...)
	p.Legend.Top = true
	for k, s := range ss {
		var xys plotter.XYs
		for i, m := range nights {
			if v, ok := s.v(m); ok {
				xys = append(xys, plotter.XY{X: float64(i), Y: v})
			}
		}
		if len(xys) == 0 {
			continue
		}
		l, pts, err := plotter.NewLinePoints(xys)
		if err != nil {
			return nil, err
		}
		col := palette[k%len(palette)]
		l.Color, pts.Color = col, col
		p.Add(l, pts)
		p.Legend.Add(s.name, l, pts)
	}
	return p, nil
}

var palette = []color.Color{plotterColor, color.RGBA{R: 0xd0, G: 0x6b, B: 0x2c, A: 0xff}, color.RGBA{R: 0x3a, G: 0x9a, B: 0x4b, A: 0xff},
	color.RGBA{R: 0x8e, G: 0x4b, B: 0xa8, A: 0xff}}

func churnOf(f func(c *publish.Churn) float64) func(m *publish.Manifest) (float64, bool) {
	return func(m *publish.Manifest) (float64, bool) {
		if m.Churn == nil {
			return 0, false
		}
		return f(m.Churn), true
	}
}

// historyCharts are the charts of the history section, one point a night.
func historyCharts(nights []*publish.Manifest) ([]chart, error) {
	var out []chart
	add := func(id, title, caption, ylabel string, ss ...series) error {
		p, err := lines(nights, ylabel, ss...)
		if err != nil {
			return fmt.Errorf("chart %s: %w", id, err)
		}
		ch, err := render(id, title, caption, p, 7*vg.Centimeter)
		out = append(out, ch)
		return err
	}
	n := len(nights)
	if err := add("chart-history-soulmates", "Soulmate pairs, night to night", fmt.Sprintf("%d nights", n), "pairs",
		series{"kept", churnOf(func(c *publish.Churn) float64 { return float64(c.SoulmatePairsKept) })},
		series{"broken", churnOf(func(c *publish.Churn) float64 { return float64(c.SoulmatePairsBroken) })},
		series{"new", churnOf(func(c *publish.Churn) float64 { return float64(c.SoulmatePairsNew) })}); err != nil {
		return nil, err
	}
	reason := func(k string) func(m *publish.Manifest) (float64, bool) {
		return churnOf(func(c *publish.Churn) float64 { return float64(c.LostSoulmate[k]) })
	}
	if err := add("chart-history-lost", "Why members lost their soulmate", "members who lost their soulmate, by reason", "members",
		series{"partner left", reason(publish.LostPartnerLeft)}, series{"partner erased", reason(publish.LostPartnerErased)},
		series{"incompatible", reason(publish.LostIncompatible)}, series{"out-scored", reason(publish.LostOutScored)}); err != nil {
		return nil, err
	}
	if err := add("chart-history-topk", "Lists that changed", "share of the members compared whose top-K changed", "%",
		series{"top-K changed", churnOf(func(c *publish.Churn) float64 {
			return 100 * float64(c.TopKChanged) / math.Max(1, float64(c.MembersCompared))
		})}); err != nil {
		return nil, err
	}
	if err := add("chart-history-stability", "Stability certificate", "blocking pairs in the whole compatible graph, and members checked", "",
		series{"blocking pairs", func(m *publish.Manifest) (float64, bool) {
			if m.Stability == nil {
				return 0, false
			}
			return float64(m.Stability.BlockingPairs), true
		}},
		series{"members checked", func(m *publish.Manifest) (float64, bool) {
			if m.Stability == nil {
				return 0, false
			}
			return float64(m.Stability.MembersChecked), true
		}}); err != nil {
		return nil, err
	}
	if err := add("chart-history-runs", "Runs", "eligible members, members rescored against everyone, and wall time", "",
		series{"eligible", func(m *publish.Manifest) (float64, bool) { return float64(m.Counts.Eligible), true }},
		series{"rescored", func(m *publish.Manifest) (float64, bool) {
			if m.Night == nil {
				return 0, false
			}
			return float64(m.Night.MembersRescored), true
		}}); err != nil {
		return nil, err
	}
	if err := add("chart-history-seconds", "Wall time", "seconds from start to publish, a point a night", "seconds",
		series{"wall time", func(m *publish.Manifest) (float64, bool) {
			if m.FinishedAt.IsZero() || m.StartedAt.IsZero() {
				return 0, false
			}
			return m.FinishedAt.Sub(m.StartedAt).Seconds(), true
		}}); err != nil {
		return nil, err
	}
	return out, nil
}
