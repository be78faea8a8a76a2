package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/push"
	"github.com/prometheus/common/expfmt"
	"github.com/spf13/pflag"

	"github.com/osmosis/batchmatch/pipeline/publish"
)

// MetricsOptions say where a run's metrics go. Both are optional.
type MetricsOptions struct {
	PushURL  string // Prometheus Pushgateway base URL
	Textfile string // node-exporter textfile collector file (*.prom)
}

// AddFlags registers the metrics flags.
func (o *MetricsOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.PushURL, "metrics-push", "", "push run metrics to this Prometheus Pushgateway URL (job \"batchmatch\")")
	fs.StringVar(&o.Textfile, "metrics-textfile", "", "write run metrics to this file for node-exporter's textfile collector")
}

// metricsRegistry builds the gauges of one run. m may be nil (a run that
// failed before it had a manifest); exitCode is the process exit code.
func metricsRegistry(m *publish.Manifest, exitCode int, finished time.Time) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	gauge := func(name, help string, v float64) {
		g := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "batchmatch", Name: name, Help: help})
		g.Set(v)
		reg.MustRegister(g)
	}
	ok := 0.0
	if exitCode == 0 {
		ok = 1
	}
	gauge("last_run_success", "1 if the last run published its output, else 0.", ok)
	gauge("last_run_exit_code", "Exit code of the last run (sysexits).", float64(exitCode))
	gauge("last_run_timestamp_seconds", "Unix time the last run finished.", float64(finished.Unix()))
	if m == nil {
		return reg
	}
	if !m.StartedAt.IsZero() {
		gauge("last_run_duration_seconds", "Wall time of the last run.", finished.Sub(m.StartedAt).Seconds())
	}
	rows := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "batchmatch", Name: "last_run_rows",
		Help: "Profile rows of the last run by stage."}, []string{"stage"})
	c := m.Counts
	for stage, v := range map[string]int64{"read": c.RowsRead, "suppressed": c.RowsSuppressed, "quarantined": c.RowsQuarantined,
		"valid": c.RowsValid, "no_consent": c.IneligibleNoConsent, "eligible": c.Eligible} {
		rows.WithLabelValues(stage).Set(float64(v))
	}
	reg.MustRegister(rows)
	rejects := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "batchmatch", Name: "last_run_quarantined_rows",
		Help: "Quarantined rows of the last run by reason."}, []string{"reason"})
	for r, v := range c.QuarantinedByReason {
		rejects.WithLabelValues(r).Set(float64(v))
	}
	reg.MustRegister(rejects)
	gauge("last_run_pairs_examined", "Ordered (query, candidate) pairs examined.", float64(c.PairsExamined))
	gauge("last_run_pairs_compatible", "Ordered pairs that passed every hard filter.", float64(c.PairsCompatible))
	gauge("last_run_matches", "Rows of the matches table.", float64(c.Matches))
	gauge("last_run_soulmates", "Rows of the soulmates table.", float64(c.Soulmates))
	gauge("last_run_members_without_match", "Eligible members with no compatible candidate.", float64(c.MembersWithoutMatch))
	nightMetrics(reg, m, gauge)
	stages := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "batchmatch", Name: "last_run_stage_seconds",
		Help: "Wall time of each stage of the last run."}, []string{"stage"})
	for s, ms := range m.TimingsMs {
		stages.WithLabelValues(s).Set(float64(ms) / 1000)
	}
	reg.MustRegister(stages)
	return reg
}

// PublishMetrics writes the run's metrics where o says. It is called for
// failed runs too (m may be nil), so that alerting sees failures. It uses
// its own timeout, not the run's context, which may be cancelled already.
func PublishMetrics(o MetricsOptions, m *publish.Manifest, exitCode int, instance string) error {
	if o.PushURL == "" && o.Textfile == "" {
		return nil
	}
	reg := metricsRegistry(m, exitCode, time.Now())
	var errs []error
	if o.Textfile != "" {
		if err := writeTextfile(o.Textfile, reg); err != nil {
			errs = append(errs, fmt.Errorf("metrics textfile: %w", err))
		}
	}
	if o.PushURL != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		p := push.New(o.PushURL, "batchmatch").Gatherer(reg).Grouping("instance", instance)
		if err := p.PushContext(ctx); err != nil {
			errs = append(errs, fmt.Errorf("metrics push: %w", err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%v", errs)
	}
	return nil
}

// writeTextfile writes the registry's metrics in the text format to path,
// through a temporary file in the same directory renamed into place (the
// collector never reads half a file), with mode 0640 like every other file
// the job writes (prometheus.WriteToTextfile makes it 0644).
func writeTextfile(path string, reg *prometheus.Registry) error {
	mfs, err := reg.Gather()
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // gone once renamed
	err = f.Chmod(0o640)
	for _, mf := range mfs {
		if err == nil {
			_, err = expfmt.MetricFamilyToText(f, mf)
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
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
