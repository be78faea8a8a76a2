package pipeline

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math"
	"path/filepath"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/osmosis/batchmatch/pipeline/match"
	"github.com/osmosis/batchmatch/pipeline/publish"
	"github.com/osmosis/batchmatch/pipeline/read"
	"github.com/osmosis/batchmatch/pipeline/report"
)

// Result is what Run, RunShard or Commit produced. On failure its Manifest
// holds what was counted so far (for metrics) and Published is empty.
type Result struct {
	Manifest *publish.Manifest
	// Published is the published partition (a directory, or its URL), or
	// the written part of a shard.
	Published string
	// AlreadyPublished: the partition was published by a run with the same
	// run id (the same tables) before this one; nothing was written.
	AlreadyPublished bool
	// Counted says which of Manifest.Counts hold counts (metrics leave the
	// others out rather than report them as 0).
	Counted Counted
}

// Counted says which groups of a Result's Manifest.Counts were counted: by
// this process, or, for a partition already published by the same run, read
// from its manifest. The others are zero because nothing counted them: a
// run that failed before scoring, a shard (which writes no tables).
type Counted struct {
	Rows    bool // reading and validation (read.Counts)
	Pairs   bool // pairs examined and compatible (a shard: those of its own tasks)
	Outputs bool // matches, mutual matches, soulmates, members without a match or soulmate
}

// The stages a run reports (timings_ms in the manifest, stage logs), in
// their order; read.Load reports its own four between. Blocking is timed
// with scoring (score_topk), as every manifest so far records it.
const (
	stageGather     = "gather"      // commit: the shard parts there are
	stageMergeParts = "merge_parts" // commit: the parts into every member's list
	stageScore      = "score_topk"  // blocking and scoring, top K per member
	stageWritePart  = "write_part"  // shard: its part
	stageSoulmates  = "soulmates"   // the assignment and its coverage
	stageWrite      = "write"       // the tables, the manifest, the report; publishing
)

// stageTimer records how long each stage took.
type stageTimer struct {
	log   *slog.Logger
	ms    map[string]int64
	start time.Time
	name  string
}

func newStageTimer(log *slog.Logger) *stageTimer {
	return &stageTimer{log: log, ms: map[string]int64{}}
}

func (t *stageTimer) begin(name string) {
	t.end()
	t.name, t.start = name, time.Now()
	t.log.Info("stage started", "stage", name)
}

func (t *stageTimer) end() {
	if t.name == "" {
		return
	}
	d := time.Since(t.start)
	t.ms[t.name] = d.Milliseconds()
	t.log.Info("stage done", "stage", t.name, "elapsed_seconds", d.Round(time.Millisecond).Seconds())
	t.name = ""
}

// job is one process's part of a run (a whole run, a shard, a commit): its
// attempt, its manifest, its logger, its stage timer and its memory peaks.
// The stages below are its steps; Run, RunShard and Commit call them in
// their order.
type job struct {
	env      Env
	log      *slog.Logger // with the attempt id
	m        *publish.Manifest
	tm       *stageTimer
	peakHeap atomic.Uint64
	started  time.Time
	counted  Counted
	// progressEvery is how often scoring progress is logged (no terminal).
	progressEvery time.Duration
	// outRoot is the output root the user named (--out), where earlier
	// nights are published ("": cfg.Out).
	outRoot string
}

// newJob starts the job of a new attempt.
func newJob(env Env, log *slog.Logger) *job {
	started := time.Now()
	attempt := publish.NewAttemptID(started)
	j := &job{env: env, started: started, log: log.With("attempt_id", attempt)}
	j.m = &publish.Manifest{Tool: "batchmatch", Version: publish.Build().Version, SpecVersion: publish.SpecVersion,
		AttemptID: attempt, StartedAt: started.UTC(), ScoringVersion: match.ScoringVersion}
	j.tm = newStageTimer(j.log)
	j.progressEvery = env.ProgressEvery
	if j.progressEvery <= 0 {
		j.progressEvery = 30 * time.Second
	}
	return j
}

// failed is the result of a job that failed: its manifest with the stages
// it completed, for metrics.
func (j *job) failed() *Result {
	j.m.TimingsMs = j.tm.ms
	return j.result("", false)
}

// result is the job's Result.
func (j *job) result(published string, already bool) *Result {
	return &Result{Manifest: j.m, Published: published, AlreadyPublished: already, Counted: j.counted}
}

// alreadyPublished takes the counts of the partition published by the same
// run (pm; nil when it has no manifest): the metrics describe what is
// published.
func (j *job) alreadyPublished(pm *publish.Manifest) {
	if pm != nil {
		j.m.Counts = pm.Counts
		j.counted = Counted{Rows: true, Pairs: true, Outputs: true}
	}
}

// prepare does what a run checks and sets before it touches its output:
// missing profile inputs fail fast, the memory limit is set (and recorded
// with the peaks when the job ends: the returned func), the pseudonym key
// is read.
func (j *job) prepare(ctx context.Context, cfg Config) (pz *publish.Pseudonymizer, done func(), err error) {
	if _, err := read.ResolveInputs(ctx, "profiles", cfg.Profiles); err != nil {
		return nil, func() {}, err
	}
	if err := checkInputsOutsideOut(ctx, cfg); err != nil {
		return nil, func() {}, err
	}
	if cfg.MemoryLimit > 0 {
		debug.SetMemoryLimit(cfg.MemoryLimit)
	}
	if lim := debug.SetMemoryLimit(-1); lim != math.MaxInt64 {
		j.m.Memory.LimitBytes = lim
	}
	done = func() { j.sampleMemory() }
	if pz, err = j.pseudonyms(cfg); err != nil {
		return nil, done, err
	}
	return pz, done, nil
}

// pseudonyms reads the pseudonym key of cfg (nil: ids stay internal).
func (j *job) pseudonyms(cfg Config) (*publish.Pseudonymizer, error) {
	if cfg.PseudonymKey == "" {
		return nil, nil
	}
	pz, err := publish.LoadPseudonymizer(cfg.PseudonymKey)
	if err != nil {
		return nil, err
	}
	j.m.PseudonymKeyID = pz.KeyID()
	return pz, nil
}

// sampleMemory records the peak live heap and resident set size.
func (j *job) sampleMemory() {
	sampleHeap(&j.peakHeap)
	j.m.Memory.PeakHeapBytes, j.m.Memory.PeakRSSBytes = j.peakHeap.Load(), peakRSS()
}

// read reads and validates the inputs of cfg (read.Load), recording what it
// read and counted in the manifest, also when it fails.
func (j *job) read(ctx context.Context, cfg Config) (*read.Loaded, error) {
	L, err := load(ctx, cfg, j.env.Alloc, j.log, j.tm)
	if L != nil {
		j.m.Dims, j.m.Inputs, j.m.Counts.Counts = L.Dims, L.Inputs, L.Counts
		j.counted.Rows = true
	}
	return L, err
}

// identify gives the run its content id: the configuration hash (with the
// pseudonym key's id, "" for a shard: every shard and the commit share it)
// and the population's fingerprint.
func (j *job) identify(pop *read.Population, keyID string) {
	j.m.ConfigHash = publish.ConfigHash(j.m.Config, j.m.Dims, keyID)
	j.m.RunID = publish.RunID(j.m.ConfigHash, pop.Fingerprint())
}

// score blocks and scores sc's population (the stage score_topk) with
// progress reported while it runs, and returns every member's top k.
func (j *job) score(ctx context.Context, sc *match.Scorer, k, workers int) ([][]match.Cand, error) {
	j.tm.begin(stageScore)
	sc.Progress = match.NewProgress()
	blocking := match.Block(sc.P)
	sampleHeap(&j.peakHeap)
	stop := reportProgress(ctx, j.log, sc.Progress, j.env.ProgressBar, j.progressEvery, &j.peakHeap)
	lists, st, err := sc.TopK(ctx, blocking, k, workers)
	stop()
	sampleHeap(&j.peakHeap)
	if err != nil {
		return nil, err
	}
	j.m.Counts.PairsExamined, j.m.Counts.PairsCompatible = st.PairsExamined, st.PairsCompatible
	j.counted.Pairs = true
	return lists, nil
}

// assign computes the soulmate assignment over the top-K graph and its
// coverage aggregates.
func (j *job) assign(ctx context.Context, pop *read.Population, lists [][]match.Cand, workers int) ([]match.Soulmate, error) {
	j.tm.begin(stageSoulmates)
	souls, err := match.SoulmatesParallel(ctx, lists, workers)
	if err != nil {
		return nil, err
	}
	j.m.Counts.Soulmates = int64(len(souls))
	j.m.Counts.MembersWithoutSoulmate = int64(pop.N - 2*len(souls))
	j.m.Coverage = publish.ComputeCoverage(pop, lists, souls)
	return souls, nil
}

// finish closes the manifest: stage timings, memory peaks, finish time.
func (j *job) finish() {
	j.tm.end()
	j.m.TimingsMs = j.tm.ms
	j.sampleMemory()
	j.m.FinishedAt = time.Now().UTC()
}

// publish writes the tables, the manifest and (cfg.Report) the report into
// the staged partition and commits it in the local root, returning its
// directory there.
func (j *job) publish(ctx context.Context, cfg Config, st *publish.Staging, t publish.Tables) (string, error) {
	j.tm.begin(stageWrite)
	m := j.m
	if err := st.WriteTables(ctx, t, m, cfg.Workers); err != nil {
		return "", err
	}
	j.counted.Outputs = true
	j.finish()
	b, err := m.Encode()
	if err != nil {
		return "", fmt.Errorf("encoding manifest: %w", err)
	}
	manifest := st.Tagged(publish.ManifestFile)
	if err := st.WriteFile(manifest, b); err != nil {
		return "", err
	}
	if cfg.Report {
		var html bytes.Buffer
		root := j.outRoot
		if root == "" {
			root = cfg.Out
		}
		history, err := report.History(ctx, root, m.AsOf)
		if err != nil {
			return "", fmt.Errorf("reading the history for the report: %w", err)
		}
		if err := report.Write(&html, m, filepath.Join(st.Dir(), m.Outputs["matches"].Path), history); err != nil {
			return "", fmt.Errorf("writing the report: %w", err)
		}
		if err := st.WriteFile(st.Tagged(report.File), html.Bytes()); err != nil {
			return "", err
		}
	}
	dir, err := st.Commit(cfg.Overwrite, m.RunID, manifest)
	if err != nil {
		return "", err
	}
	j.log.Info("run published", "dir", dir, "eligible", m.Counts.Eligible, "matches", m.Counts.Matches,
		"soulmates", m.Counts.Soulmates, "quarantined", m.Counts.RowsQuarantined,
		"pairs_examined", m.Counts.PairsExamined, "elapsed_seconds", time.Since(j.started).Round(time.Millisecond).Seconds())
	return dir, nil
}
