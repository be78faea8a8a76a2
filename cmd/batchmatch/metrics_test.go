package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/osmosis/batchmatch/pipeline"
	"github.com/osmosis/batchmatch/pipeline/failure"
	"github.com/osmosis/batchmatch/pipeline/match"
	"github.com/osmosis/batchmatch/pipeline/synth"
)

func TestPublishMetrics(t *testing.T) {
	var mu sync.Mutex
	var bodies []string
	var paths []string
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies, paths = append(bodies, string(b)), append(paths, r.Method+" "+r.URL.Path)
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	defer gw.Close()

	dir := t.TempDir()
	k := synth.DefaultKnobs(200)
	k.Invalid = 0.1
	synth.MustWriteProfiles(t, filepath.Join(dir, "profiles"), synth.Random(11, k), 16, 12, 2, synth.ArrowVariable)
	prom := filepath.Join(dir, "batchmatch.prom")
	o := MetricsOptions{PushURL: gw.URL, Textfile: prom}

	// a successful run
	cfg := pipeline.Config{
		Profiles: []string{filepath.Join(dir, "profiles")}, Out: filepath.Join(dir, "out"),
		K: 3, AsOf: synth.AsOf, Weights: match.DefaultWeights, Workers: 2, MaxRejectRatio: 1,
	}
	quiet := pipeline.Env{Log: slog.New(slog.DiscardHandler)}
	res, err := pipeline.Run(context.Background(), cfg, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if err := PublishMetrics(o, res.Manifest, 0, "host-a"); err != nil {
		t.Fatal(err)
	}
	text, _ := os.ReadFile(prom)
	for _, want := range []string{"batchmatch_last_run_success 1", "batchmatch_last_run_exit_code 0",
		`batchmatch_last_run_rows{stage="eligible"} ` + itoa(res.Manifest.Counts.Eligible),
		"batchmatch_last_run_matches " + itoa(res.Manifest.Counts.Matches),
		`batchmatch_last_run_stage_seconds{stage="score_topk"}`} {
		if !strings.Contains(string(text), want) {
			t.Errorf("textfile lacks %q:\n%s", want, text)
		}
	}
	if len(paths) != 1 || paths[0] != "PUT /metrics/job/batchmatch/instance/host-a" {
		t.Fatalf("pushgateway saw %v", paths)
	}

	// a failed run (reject ratio) still reports, with its counts
	cfg.MaxRejectRatio = 0.01
	cfg.Overwrite = true
	res, err = pipeline.Run(context.Background(), cfg, quiet)
	if !errors.Is(err, failure.BadData) || res == nil || res.Published != "" {
		t.Fatalf("got %v, %+v", err, res)
	}
	if err := PublishMetrics(o, res.Manifest, 65, "host-a"); err != nil {
		t.Fatal(err)
	}
	text, _ = os.ReadFile(prom)
	if !strings.Contains(string(text), "batchmatch_last_run_success 0") || !strings.Contains(string(text), "batchmatch_last_run_exit_code 65") ||
		!strings.Contains(string(text), `batchmatch_last_run_rows{stage="quarantined"} `+itoa(res.Manifest.Counts.RowsQuarantined)) {
		t.Errorf("failed run's textfile:\n%s", text)
	}
	if len(bodies) != 2 || len(bodies[1]) == 0 {
		t.Fatalf("pushgateway saw %d pushes", len(bodies))
	}
	// an unreachable gateway is reported, not fatal to the caller's logic
	gw.Close()
	if err := PublishMetrics(MetricsOptions{PushURL: gw.URL}, nil, 1, "host-a"); err == nil {
		t.Error("push to a closed gateway did not fail")
	}
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

// TestMetricsTextfileMode: the metrics textfile is 0640 like every file
// the job writes (prometheus.WriteToTextfile made it 0644).
func TestMetricsTextfileMode(t *testing.T) {
	prom := filepath.Join(t.TempDir(), "batchmatch.prom")
	if err := PublishMetrics(MetricsOptions{Textfile: prom}, nil, 74, "h"); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(prom)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o640 {
		t.Fatalf("mode %v, want 0640", st.Mode().Perm())
	}
	b, _ := os.ReadFile(prom)
	if !strings.Contains(string(b), "batchmatch_last_run_exit_code 74") {
		t.Fatalf("textfile:\n%s", b)
	}
	ents, _ := os.ReadDir(filepath.Dir(prom))
	if len(ents) != 1 {
		t.Fatalf("temporary files left: %v", ents)
	}
}
