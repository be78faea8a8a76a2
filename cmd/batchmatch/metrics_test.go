package main

import (
	"bytes"
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// executeIn runs a command line in this process as main does (final line,
// metrics of every outcome) and returns its exit code and stderr.
func executeIn(args ...string) (int, string) {
	var stdout, stderr bytes.Buffer
	code := newInvocation(args, &stdout, &stderr).execute(context.Background(), args)
	return code, stderr.String()
}

// The metric names the tests look for.
const (
	mSuccess     = "batchmatch_last_run_success"
	mExitCode    = "batchmatch_last_run_exit_code"
	mTimestamp   = "batchmatch_last_run_timestamp_seconds"
	mDuration    = "batchmatch_last_run_duration_seconds"
	mLastSuccess = "batchmatch_last_success_timestamp_seconds"
	mRows        = "batchmatch_last_run_rows"
	mQuarantined = "batchmatch_last_run_quarantined_rows"
	mExamined    = "batchmatch_last_run_pairs_examined"
	mCompatible  = "batchmatch_last_run_pairs_compatible"
	mMatches     = "batchmatch_last_run_matches"
	mSoulmates   = "batchmatch_last_run_soulmates"
	mNoMatch     = "batchmatch_last_run_members_without_match"
	mStages      = "batchmatch_last_run_stage_seconds"
)

// familyText is a family in the text format ("" for none).
func familyText(t *testing.T, mf *dto.MetricFamily) string {
	if mf == nil {
		return ""
	}
	var b strings.Builder
	if _, err := expfmt.MetricFamilyToText(&b, mf); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// gauge is the value of a family's only (or first) gauge.
func gauge(fams map[string]*dto.MetricFamily, name string) (float64, bool) {
	mf := fams[name]
	if mf == nil || len(mf.Metric) == 0 {
		return 0, false
	}
	return mf.Metric[0].GetGauge().GetValue(), true
}

// readProm parses a metrics textfile, checking that it is 0640.
func readProm(t *testing.T, path string) map[string]*dto.MetricFamily {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o640 {
		t.Errorf("%s is %v, want 0640", path, st.Mode().Perm())
	}
	fams, err := readTextfile(path)
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

// TestMetricsOutcomes runs every kind of outcome of run, commit and night
// with a fake Pushgateway and a textfile, in order over one output: each
// process reports once, to the group of its output (and shard); a success
// replaces every series (PUT, the textfile rewritten) and sets
// batchmatch_last_success_timestamp_seconds; a failure writes only what it
// computed (POST, the textfile merged) and leaves everything else, that
// timestamp included, as it was; usage errors are reported too.
func TestMetricsOutcomes(t *testing.T) {
	gw := newFakePushgateway(t)
	dir := t.TempDir()
	profiles := filepath.Join(dir, "profiles")
	if code, stderr := executeIn("gen", "--out", profiles, "--n", "300", "--shards", "2", "--as-of", "2026-11-24", "--invalid-ratio", "0.05"); code != 0 {
		t.Fatalf("gen: %d\n%s", code, stderr)
	}
	out := filepath.Join(dir, "out")
	prom := filepath.Join(dir, "metrics", "batchmatch.prom")
	os.MkdirAll(filepath.Dir(prom), 0o755)
	metrics := []string{"--metrics-push", gw.URL, "--metrics-textfile", prom, "--log-format", "json"}
	runOn := func(asOf string, extra ...string) []string {
		return slices.Concat([]string{"run", "--profiles", profiles, "--out", out, "--as-of", asOf, "--max-reject-ratio", "1"}, metrics, extra)
	}
	run := func(extra ...string) []string { return runOn("2026-11-24", extra...) }
	commit := func(asOf string) []string {
		return slices.Concat([]string{"commit", "--out", out, "--as-of", asOf}, metrics)
	}
	night := func(asOf, index string) []string {
		return slices.Concat([]string{"night", "--profiles", profiles, "--out", out, "--as-of", asOf, "--shard-index", index, "--shard-count", "2", "--max-reject-ratio", "1"}, metrics)
	}
	whole := map[string]string{"job": "batchmatch", "instance": out}
	shard := func(i string) map[string]string {
		return map[string]string{"job": "batchmatch", "instance": out, "shard": i}
	}
	outcome := []string{mSuccess, mExitCode, mTimestamp, mDuration}
	counts := []string{mRows, mExamined, mCompatible, mMatches, mSoulmates, mNoMatch}
	type pushed struct {
		group  map[string]string
		method string
		wrote  []string // the push (and the textfile) has these
		not    []string // and not these, which keep their values on a POST
	}
	failedBeforeReading := pushed{whole, "POST", outcome, append([]string{mLastSuccess, mStages}, counts...)}
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		pushes []pushed
	}{
		{"published", run(), 0, []pushed{{whole, "PUT", slices.Concat(outcome, []string{mLastSuccess, mStages}, counts), nil}}},
		{"already published by the same run: the published counts", run(), 0,
			[]pushed{{whole, "PUT", slices.Concat(outcome, []string{mLastSuccess}, counts), nil}}},
		{"refused re-run (73): rows only, it did not score", run("--k", "5"), exitCantCreat,
			[]pushed{{whole, "POST", append(outcome, mRows, mStages), []string{mLastSuccess, mExamined, mCompatible, mMatches, mSoulmates, mNoMatch}}}},
		{"reject ratio exceeded (65): rows and reasons", run("--max-reject-ratio", "0", "--overwrite"), exitDataErr,
			[]pushed{{whole, "POST", append(outcome, mRows, mQuarantined), []string{mLastSuccess, mExamined, mCompatible, mMatches, mSoulmates, mNoMatch}}}},
		{"input missing (66)", slices.Concat([]string{"run", "--profiles", filepath.Join(dir, "nope"), "--out", out}, metrics), exitNoInput,
			[]pushed{failedBeforeReading}},
		{"unknown flag (64)", run("--frobnicate"), exitUsage, []pushed{failedBeforeReading}},
		{"bad weights (64)", run("--weights", "1,2"), exitUsage, []pushed{failedBeforeReading}},
		{"bad log format (64)", run("--log-format", "XML"), exitUsage, []pushed{failedBeforeReading}},
		{"shard 0 of 2: no tables, so no table counts", runOn("2026-11-25", "--shard-index", "0", "--shard-count", "2"), 0,
			[]pushed{{shard("0"), "PUT", slices.Concat(outcome, []string{mLastSuccess, mStages, mRows, mExamined, mCompatible}), []string{mMatches, mSoulmates, mNoMatch}}}},
		{"commit before every part is there (75)", commit("2026-11-25"), exitTempFail,
			[]pushed{{whole, "POST", outcome, append([]string{mLastSuccess}, counts...)}}},
		{"shard 1 of 2", runOn("2026-11-25", "--shard-index", "1", "--shard-count", "2"), 0,
			[]pushed{{shard("1"), "PUT", slices.Concat(outcome, []string{mLastSuccess, mRows, mExamined, mCompatible}), []string{mMatches, mSoulmates, mNoMatch}}}},
		{"commit", commit("2026-11-25"), 0,
			[]pushed{{whole, "PUT", slices.Concat(outcome, []string{mLastSuccess, mStages}, counts), nil}}},
		{"night, shard 0: its part only", night("2026-11-26", "0"), 0,
			[]pushed{{shard("0"), "PUT", slices.Concat(outcome, []string{mLastSuccess, mRows, mExamined}), []string{mMatches, mSoulmates, mNoMatch}}}},
		{"night, shard 1: its part, then the commit", night("2026-11-26", "1"), 0, []pushed{
			{shard("1"), "PUT", slices.Concat(outcome, []string{mLastSuccess, mRows, mExamined}), []string{mMatches}},
			{whole, "PUT", slices.Concat(outcome, []string{mLastSuccess}, counts), nil}}},
		{"night without a date from the schedule (64)", slices.Concat([]string{"night", "--profiles", profiles, "--out", out, "--shard-index", "0", "--shard-count", "2"}, metrics), exitUsage,
			[]pushed{{shard("0"), "POST", outcome, append([]string{mLastSuccess}, counts...)}}},
		{"usage error without --out (64): a group of its own", slices.Concat([]string{"run", "--profiles", profiles}, metrics), exitUsage,
			[]pushed{{map[string]string{"job": "batchmatch"}, "POST", outcome, append([]string{mLastSuccess}, counts...)}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			groupsBefore := map[string]map[string]*dto.MetricFamily{}
			for _, p := range tc.pushes {
				groupsBefore[groupKey(p.group)] = gw.group(p.group)
			}
			promBefore, _ := readTextfile(prom)
			_, n0 := gw.last()
			code, stderr := executeIn(tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\n%s", code, tc.code, stderr)
			}
			gw.mu.Lock()
			got := slices.Clone(gw.pushes[n0:])
			gw.mu.Unlock()
			if len(got) != len(tc.pushes) {
				t.Fatalf("%d pushes, want %d: %+v\n%s", len(got), len(tc.pushes), got, stderr)
			}
			for i, want := range tc.pushes {
				p := got[i]
				if p.Method != want.method || groupKey(p.Group) != groupKey(want.group) {
					t.Errorf("push %d: %s to %v, want %s to %v", i, p.Method, p.Group, want.method, want.group)
				}
				for _, name := range want.wrote {
					if !slices.Contains(p.Names, name) {
						t.Errorf("push %d lacks %s: %v", i, name, p.Names)
					}
				}
				group := gw.group(want.group)
				if v, _ := gauge(group, mExitCode); int(v) != tc.code && i == len(tc.pushes)-1 {
					t.Errorf("group %v: exit code %v, want %d", want.group, v, tc.code)
				}
				for _, name := range want.not {
					if slices.Contains(p.Names, name) {
						t.Errorf("push %d has %s, which this run did not compute", i, name)
					}
					// a POST leaves what it does not push as it was; a PUT removes it
					before := familyText(t, groupsBefore[groupKey(want.group)][name])
					if want.method == "PUT" {
						before = ""
					}
					if after := familyText(t, group[name]); after != before {
						t.Errorf("group %v: %s changed by a run that did not write it:\nbefore %s\nafter  %s", want.group, name, before, after)
					}
				}
			}
			// The textfile holds the last process's outcome, merged as the
			// group of its last push is.
			last := tc.pushes[len(tc.pushes)-1]
			fams := readProm(t, prom)
			if v, _ := gauge(fams, mExitCode); int(v) != tc.code {
				t.Errorf("textfile: exit code %v, want %d", v, tc.code)
			}
			for _, name := range last.wrote {
				if fams[name] == nil {
					t.Errorf("textfile lacks %s", name)
				}
			}
			for _, name := range last.not {
				before := familyText(t, promBefore[name])
				if last.method == "PUT" {
					before = ""
				}
				if after := familyText(t, fams[name]); after != before {
					t.Errorf("textfile: %s changed by a run that did not write it:\nbefore %s\nafter  %s", name, before, after)
				}
			}
			if tc.code == 0 {
				ts, _ := gauge(fams, mTimestamp)
				if ls, ok := gauge(fams, mLastSuccess); !ok || ls != ts {
					t.Errorf("textfile: last success %v, want the run's own timestamp %v", ls, ts)
				}
			} else if ls, ok := gauge(fams, mLastSuccess); !ok || ls == 0 {
				t.Errorf("textfile: the last success's timestamp was lost (%v, %v)", ls, ok)
			}
		})
	}
}

// TestMetricsPushFailure: a Pushgateway that cannot be reached is logged
// and does not change the exit code.
func TestMetricsPushFailure(t *testing.T) {
	dir := t.TempDir()
	profiles := genSample(t, dir, "200")
	closed := httptest.NewServer(nil)
	closed.Close()
	code, stderr := executeIn("run", "--profiles", profiles, "--out", filepath.Join(dir, "out"), "--as-of", "2026-11-24",
		"--log-format", "json", "--metrics-push", closed.URL)
	if code != 0 || !strings.Contains(stderr, "publishing metrics failed") {
		t.Fatalf("exit %d, want 0 with the push failure logged\n%s", code, stderr)
	}
}

// TestMetricsTextfileMode: the metrics textfile is 0640 like every file
// the job writes (prometheus.WriteToTextfile made it 0644), also where a
// 0644 file was; nothing temporary is left.
func TestMetricsTextfileMode(t *testing.T) {
	prom := filepath.Join(t.TempDir(), "batchmatch.prom")
	if err := os.WriteFile(prom, []byte("# an earlier version's file\nbatchmatch_last_run_success 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := PublishMetrics(MetricsOptions{Textfile: prom}, metricsGroup{}, outcome{ExitCode: 74}); err != nil {
		t.Fatal(err)
	}
	fams := readProm(t, prom)
	if v, _ := gauge(fams, mExitCode); v != 74 {
		t.Fatalf("textfile exit code %v", v)
	}
	ents, _ := os.ReadDir(filepath.Dir(prom))
	if len(ents) != 1 {
		t.Fatalf("temporary files left: %v", ents)
	}
}

// TestMetricsInstance: the instance label is the output location, stable
// from night to night: absolute, without credentials, query or fragment.
func TestMetricsInstance(t *testing.T) {
	wd, _ := os.Getwd()
	for _, tc := range []struct{ out, want string }{
		{"", ""},
		{"/data/out", "/data/out"},
		{"/data/out/", "/data/out"},
		{"out", filepath.Join(wd, "out")},
		{"s3://osmosis-matches/", "s3://osmosis-matches"},
		{"s3://osmosis-matches/nightly?endpoint=http://minio:9000&use_path_style=true", "s3://osmosis-matches/nightly"},
		{"s3://AKIAEXAMPLE:secret@bucket/p#frag", "s3://bucket/p"},
		{"gs://bucket/a/b/", "gs://bucket/a/b"},
		{"file:///srv/out", "file:///srv/out"},
		{"mem://name/prefix", "mem://name/prefix"},
	} {
		if got := metricsInstance(tc.out); got != tc.want {
			t.Errorf("metricsInstance(%q) = %q, want %q", tc.out, got, tc.want)
		}
	}
}
