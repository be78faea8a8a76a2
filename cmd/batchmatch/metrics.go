package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/push"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/spf13/pflag"

	"github.com/osmosis/batchmatch/pipeline"
	"github.com/osmosis/batchmatch/pipeline/match"
	"github.com/osmosis/batchmatch/pipeline/publish"
)

// Metrics follow Prometheus's conventions for batch jobs. Every outcome of
// run, commit and night is reported when a target is configured, usage
// errors included (the targets are found on the command line before its
// flags are parsed: invocation). Counts are written only by a run that
// counted them (pipeline.Result.Counted). A success replaces every series;
// a failure replaces only those it writes, so that
// batchmatch_last_success_timestamp_seconds, and the counts it did not
// compute, keep the values of the last run that wrote them: on the
// Pushgateway a success is a PUT of its group and a failure a POST, and the
// textfile is rewritten the same way (a failure merges with the file there).

// MetricsOptions say where a run's metrics go. Both are optional.
type MetricsOptions struct {
	PushURL  string // Prometheus Pushgateway base URL
	Textfile string // node-exporter textfile collector file (*.prom)

	// the Pushgateway group, set by the command once its flags are
	// checked (groupBy); unset, the one found on the command line
	instance, shard string
	grouped         bool
}

// AddFlags registers the metrics flags.
func (o *MetricsOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.PushURL, "metrics-push", "", `push the outcome to this Prometheus Pushgateway URL (job "batchmatch", grouped by instance = the --out location and, for a shard, shard = its index)`)
	fs.StringVar(&o.Textfile, "metrics-textfile", "", "write the outcome to this file (mode 0640) for node-exporter's textfile collector")
}

// configured reports whether the metrics go anywhere.
func (o MetricsOptions) configured() bool { return o.PushURL != "" || o.Textfile != "" }

// groupBy sets the Pushgateway group: the output location out and, for a
// shard of a sharded run, its index.
func (o *MetricsOptions) groupBy(out string, shard match.ShardSpec) {
	o.instance, o.shard, o.grouped = metricsInstance(out), "", true
	if shard.Count > 1 {
		o.shard = strconv.Itoa(shard.Index)
	}
}

// metricsGroup is a Pushgateway group below job "batchmatch": the same
// every night for the same output (and shard), so that each night
// replaces the series of the one before.
type metricsGroup struct {
	Instance string // the output location (metricsInstance); "" when unknown
	Shard    string // the shard index of a shard run; "" for a whole run or a commit
}

// metricsInstance is the instance label of an output location: a local
// path made absolute and clean, a URL without credentials, query or
// fragment ("" when out is "").
func metricsInstance(out string) string {
	if out == "" {
		return ""
	}
	if scheme, _, ok := strings.Cut(out, "://"); ok && !strings.ContainsAny(scheme, "/.") {
		u, err := url.Parse(out)
		if err != nil {
			base, _, _ := strings.Cut(out, "?")
			_, hostPath, _ := strings.Cut(base, "://")
			if _, hp, ok := strings.Cut(hostPath, "@"); ok {
				hostPath = hp
			}
			return scheme + "://" + hostPath
		}
		u.User, u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = nil, "", false, "", ""
		return strings.TrimSuffix(u.String(), "/")
	}
	if abs, err := filepath.Abs(out); err == nil {
		return abs
	}
	return filepath.Clean(out)
}

// outcome is what a command reports: its exit code and, when it got that
// far, its manifest and which of its counts were counted.
type outcome struct {
	Manifest *publish.Manifest // nil: it failed before it had one
	Counted  pipeline.Counted
	ExitCode int
	// Started is when the process started (the duration of a run that has
	// no manifest); Finished when it ended.
	Started, Finished time.Time
}

// outcomeOf is the outcome of a run or commit that returned res and err.
func outcomeOf(res *pipeline.Result, code int, started time.Time) outcome {
	o := outcome{ExitCode: code, Started: started, Finished: time.Now()}
	if res != nil {
		o.Manifest, o.Counted = res.Manifest, res.Counted
	}
	return o
}

// metricFamilies are the metrics of an outcome, sorted by name.
func metricFamilies(o outcome) ([]*dto.MetricFamily, error) {
	reg := prometheus.NewRegistry()
	gauge := func(name, help string, v float64) {
		g := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "batchmatch", Name: name, Help: help})
		g.Set(v)
		reg.MustRegister(g)
	}
	vec := func(name, help, label string, values map[string]float64) {
		if len(values) == 0 {
			return
		}
		g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "batchmatch", Name: name, Help: help}, []string{label})
		for k, v := range values {
			g.WithLabelValues(k).Set(v)
		}
		reg.MustRegister(g)
	}
	ok := 0.0
	if o.ExitCode == 0 {
		ok = 1
		gauge("last_success_timestamp_seconds", "Unix time the last successful run finished (alert when it is older than a day).", unixSeconds(o.Finished))
	}
	gauge("last_run_success", "1 if the last run published its output (or found it published by the same run), else 0.", ok)
	gauge("last_run_exit_code", "Exit code of the last run (sysexits; README.md).", float64(o.ExitCode))
	gauge("last_run_timestamp_seconds", "Unix time the last run finished.", unixSeconds(o.Finished))
	started := o.Started
	if m := o.Manifest; m != nil && !m.StartedAt.IsZero() {
		started = m.StartedAt
	}
	if !started.IsZero() {
		gauge("last_run_duration_seconds", "Wall time of the last run.", o.Finished.Sub(started).Seconds())
	}
	if m := o.Manifest; m != nil {
		c := m.Counts
		if o.Counted.Rows {
			vec("last_run_rows", "Profile rows of the last run that read them, by stage.", "stage", map[string]float64{
				"read": float64(c.RowsRead), "suppressed": float64(c.RowsSuppressed), "quarantined": float64(c.RowsQuarantined),
				"valid": float64(c.RowsValid), "no_consent": float64(c.IneligibleNoConsent), "eligible": float64(c.Eligible)})
			reasons := map[string]float64{}
			for r, v := range c.QuarantinedByReason {
				reasons[r] = float64(v)
			}
			vec("last_run_quarantined_rows", "Quarantined rows of the last run that read them, by reason.", "reason", reasons)
		}
		if o.Counted.Pairs {
			gauge("last_run_pairs_examined", "Ordered (query, candidate) pairs examined by the last run that scored (a shard: by its tasks).", float64(c.PairsExamined))
			gauge("last_run_pairs_compatible", "Ordered pairs that passed every hard filter, of the last run that scored (a shard: of its tasks).", float64(c.PairsCompatible))
		}
		if o.Counted.Outputs {
			gauge("last_run_matches", "Rows of the matches table, of the last run that wrote the tables.", float64(c.Matches))
			gauge("last_run_soulmates", "Rows of the soulmates table, of the last run that wrote the tables.", float64(c.Soulmates))
			gauge("last_run_members_without_match", "Eligible members with no compatible candidate, of the last run that wrote the tables.", float64(c.MembersWithoutMatch))
			nightMetrics(reg, m, gauge)
		}
		stages := map[string]float64{}
		for s, ms := range m.TimingsMs {
			stages[s] = float64(ms) / 1000
		}
		vec("last_run_stage_seconds", "Wall time of each stage the last run completed.", "stage", stages)
	}
	return reg.Gather()
}

// unixSeconds is t as Unix time in seconds, to the millisecond.
func unixSeconds(t time.Time) float64 { return float64(t.UnixMilli()) / 1000 }

// PublishMetrics writes the outcome where o says, the Pushgateway group g.
// It is called for failed runs too, so that alerting sees failures. It uses
// its own timeout, not the run's context, which may be cancelled already.
func PublishMetrics(o MetricsOptions, g metricsGroup, out outcome) error {
	if !o.configured() {
		return nil
	}
	fams, err := metricFamilies(out)
	if err != nil {
		return err
	}
	replace := out.ExitCode == 0
	var errs []error
	if o.Textfile != "" {
		if err := writeTextfile(o.Textfile, fams, replace); err != nil {
			errs = append(errs, fmt.Errorf("metrics textfile: %w", err))
		}
	}
	if o.PushURL != "" {
		if err := pushMetrics(o.PushURL, g, fams, replace); err != nil {
			errs = append(errs, fmt.Errorf("metrics push: %w", err))
		}
	}
	return errors.Join(errs...)
}

// pushMetrics pushes fams to the Pushgateway at base, group g: replacing
// the group (PUT) or only the metrics of the names in fams (POST).
func pushMetrics(base string, g metricsGroup, fams []*dto.MetricFamily, replace bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p := push.New(base, "batchmatch").Gatherer(prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) { return fams, nil }))
	if g.Instance != "" {
		p = p.Grouping("instance", g.Instance)
	}
	if g.Shard != "" {
		p = p.Grouping("shard", g.Shard)
	}
	if replace {
		return p.PushContext(ctx)
	}
	return p.AddContext(ctx)
}

// writeTextfile writes fams in the text format to path, through a
// temporary file in the same directory renamed into place (the collector
// never reads half a file), with mode 0640 like every other file the job
// writes. Unless replace, the metrics of the file there whose names fams
// does not have are kept (a failure leaves the last success's
// batchmatch_last_success_timestamp_seconds); a file there that cannot be
// parsed is replaced and reported.
func writeTextfile(path string, fams []*dto.MetricFamily, replace bool) error {
	byName := map[string]*dto.MetricFamily{}
	var keepErr error
	if !replace {
		old, err := readTextfile(path)
		if err != nil {
			keepErr = fmt.Errorf("the previous metrics in %s are lost: %w", path, err)
		}
		maps.Copy(byName, old)
	}
	for _, mf := range fams {
		byName[mf.GetName()] = mf
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // gone once renamed
	err = f.Chmod(0o640)
	for _, name := range slices.Sorted(maps.Keys(byName)) {
		if err == nil {
			_, err = expfmt.MetricFamilyToText(f, byName[name])
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	return errors.Join(err, keepErr)
}

// readTextfile parses the metrics file at path (none: nil).
func readTextfile(path string) (map[string]*dto.MetricFamily, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(f)
}

// metricsReport reports the outcome of one process to the metrics targets
// of its command line: each time a command publishes its metrics
// (publishMetrics), and, at the end (final), the exit code when it differs
// from the last one reported (a usage error, a panic, a night that failed
// after its shard's run).
type metricsReport struct {
	opts    MetricsOptions // as found on the command line (scanFlags)
	group   metricsGroup   // likewise
	started time.Time
	last    int // exit code last reported; -1: none yet
}

// publishMetrics publishes the metrics of a run or commit (res may be nil:
// one that failed before it had a manifest) with its exit code, grouped as
// mo says (the group found on the command line if the command set none);
// a failure is logged.
func publishMetrics(ctx context.Context, mo MetricsOptions, res *pipeline.Result, err error, log *slog.Logger) {
	code := exitCodeFor(ctx, err)
	inv := invocationOf(ctx)
	g := metricsGroup{Instance: mo.instance, Shard: mo.shard}
	started := time.Now()
	if inv.metrics != nil {
		inv.metrics.last = code
		started = inv.metrics.started
		if !mo.grouped {
			g.Instance = inv.metrics.group.Instance
		}
	}
	if merr := PublishMetrics(mo, g, outcomeOf(res, code, started)); merr != nil {
		log.Warn("publishing metrics failed", "error", merr)
	}
}

// final reports the process's exit code if no command reported it.
func (r *metricsReport) final(code int, log *slog.Logger) {
	if r == nil || r.last == code {
		return
	}
	r.last = code
	if err := PublishMetrics(r.opts, r.group, outcome{ExitCode: code, Started: r.started, Finished: time.Now()}); err != nil {
		log.Warn("publishing metrics failed", "error", err)
	}
}

// nightMetrics are the gauges of a night against the one before (issue
// 16): how the lists were computed, churn and the stability certificate.
// Those the night has no figure for (no earlier night) are left out.
func nightMetrics(reg *prometheus.Registry, m *publish.Manifest, gauge func(name, help string, v float64)) {
	if n := m.Night; n != nil {
		inc := 0.0
		if n.Mode == "incremental" {
			inc = 1
		}
		gauge("last_run_incremental", "1 if the last run computed its lists incrementally from an earlier night, else 0.", inc)
		gauge("last_run_members_rescored", "Members the last run scored against everyone.", float64(n.MembersRescored))
	}
	if c := m.Churn; c != nil {
		pairs := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "batchmatch", Name: "last_run_soulmate_pairs_changed",
			Help: "Soulmate pairs of the last run against the night before: kept, broken, new."}, []string{"change"})
		pairs.WithLabelValues("kept").Set(float64(c.SoulmatePairsKept))
		pairs.WithLabelValues("broken").Set(float64(c.SoulmatePairsBroken))
		pairs.WithLabelValues("new").Set(float64(c.SoulmatePairsNew))
		reg.MustRegister(pairs)
		lost := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "batchmatch", Name: "last_run_lost_soulmate",
			Help: "Members who lost their soulmate since the night before, by reason."}, []string{"reason"})
		for r, v := range c.LostSoulmate {
			lost.WithLabelValues(r).Set(float64(v))
		}
		reg.MustRegister(lost)
		gauge("last_run_topk_changed", "Members whose top-K list changed since the night before.", float64(c.TopKChanged))
		gauge("last_run_score_drift_mean_abs", "Mean absolute score change of the (member, match) pairs listed both nights.", c.Drift.MeanAbs)
	}
	if st := m.Stability; st != nil {
		gauge("last_run_blocking_pairs", "Blocking pairs of the soulmate assignment in the whole compatible graph.", float64(st.BlockingPairs))
		gauge("last_run_stability_members_checked", "Members the stability certificate had to check against each other.", float64(st.MembersChecked))
	}
}
