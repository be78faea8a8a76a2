package pipeline

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math"
	"path/filepath"
	"runtime/debug"
	"slices"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/osmosis/batchmatch/pipeline/failure"
	"github.com/osmosis/batchmatch/pipeline/match"
	"github.com/osmosis/batchmatch/pipeline/read"
	"github.com/osmosis/batchmatch/pipeline/store"
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
	t.log.Info("stage done", "stage", t.name, "elapsed", d.Round(time.Millisecond).String())
	t.name = ""
}

// Result is what Run produced.
type Result struct {
	Manifest  *Manifest
	Published string // the published partition directory
	// AlreadyPublished: the partition was published by a run with the same
	// run id (the same tables) before this one; nothing was written.
	AlreadyPublished bool
}

// Run executes the whole job: load, score, select, assign soulmates, write
// the tables to a staging area and publish them in one step. On failure it
// returns the error with a Result whose Manifest holds what was counted so
// far (for metrics) and whose Published is empty.
//
// An --out that is an object-store URL (s3://, gs://, file://, mem://) is
// staged in a local spool directory and pushed when complete (remote.go).
func Run(ctx context.Context, cfg Config, log *slog.Logger) (*Result, error) {
	store.Default().SetLogger(log)
	if store.IsURL(cfg.Out) {
		return runRemote(ctx, cfg, log)
	}
	return runLocal(ctx, cfg, log)
}

func runLocal(ctx context.Context, cfg Config, log *slog.Logger) (res *Result, err error) {
	started := time.Now()
	attempt := newAttemptID(started)
	m := &Manifest{
		Tool: "batchmatch", Version: Version, SpecVersion: SpecVersion, AttemptID: attempt,
		AsOf: cfg.AsOfDate, StartedAt: started.UTC(), Config: cfg,
	}
	defer func() {
		if err != nil {
			res = &Result{Manifest: m}
		}
	}()
	log = log.With("attempt_id", attempt)
	tm := newStageTimer(log)

	// Fail fast on inputs that are missing before taking the output lock.
	if _, err := read.ResolveInputs(ctx, "profiles", cfg.Profiles); err != nil {
		return nil, err
	}
	if cfg.MemoryLimit > 0 {
		debug.SetMemoryLimit(cfg.MemoryLimit)
	}
	if lim := debug.SetMemoryLimit(-1); lim != math.MaxInt64 {
		m.Memory.LimitBytes = lim
	}
	var peakHeap atomic.Uint64
	defer func() {
		sampleHeap(&peakHeap)
		m.Memory.PeakHeapBytes, m.Memory.PeakRSSBytes = peakHeap.Load(), peakRSS()
	}()
	var pz *pseudonymizer
	if cfg.PseudonymKey != "" {
		if pz, err = loadPseudonymizer(cfg.PseudonymKey); err != nil {
			return nil, err
		}
		m.PseudonymKeyID = pz.keyID
	}
	partition := partitionOr(cfg.Partition, cfg.AsOf)
	if cfg.Shard.Count > 1 {
		return runShard(ctx, cfg, log, m, tm, &peakHeap, partition, started)
	}
	com, err := openCommitter(cfg.Out, partition, attempt, log, false)
	if err != nil {
		return nil, err
	}
	defer com.cleanup()
	pub := com.published
	if cfg.RemoteOut != "" {
		pub = cfg.remotePub
	}

	L, err := load(ctx, cfg, log, tm)
	if err != nil {
		if L != nil {
			m.Dims, m.Inputs, m.Counts.Counts = L.Dims, L.Inputs, L.Counts
		}
		return nil, err
	}
	m.Dims, m.Inputs, m.Counts.Counts = L.Dims, L.Inputs, L.Counts
	m.ConfigHash = configHash(cfg, L.Dims, m.PseudonymKeyID)
	pop := L.Pop
	rid := sha256.Sum256([]byte(m.ConfigHash + pop.Fingerprint()))
	m.RunID = hex.EncodeToString(rid[:16])
	log.Info("population fingerprinted", "run_id", m.RunID)
	if pub != nil && !cfg.Overwrite {
		where := com.final
		if cfg.RemoteOut != "" {
			where = redactURL(cfg.remoteDst)
		}
		if pub.success.RunID != m.RunID {
			return nil, fmt.Errorf("%w: %s is already published by run %s, and this run's inputs and settings give run %s: pass --overwrite to replace it",
				failure.Exists, where, pub.success.RunID, m.RunID)
		}
		// A re-run of the same night (a retry after a crash or a lost
		// exit status): the published tables are the ones this run would
		// write, byte for byte.
		log.Info("already published by this run: nothing to do", "partition", where, "run_id", m.RunID)
		if pub.manifest != nil {
			m.Counts = pub.manifest.Counts // the metrics describe what is published
		}
		return &Result{Manifest: m, Published: com.final, AlreadyPublished: true}, nil
	}

	tm.begin("score_topk")
	prog := match.NewProgress()
	sc := &match.Scorer{P: pop, W: cfg.Weights, NoBlocking: cfg.NoBlocking, Progress: prog}
	every := cfg.ProgressEvery
	if every <= 0 {
		every = 30 * time.Second
	}
	sampleHeap(&peakHeap)
	stopProgress := reportProgress(ctx, log, prog, cfg.ProgressBar, every, &peakHeap)
	lists, st, err := sc.TopK(ctx, match.Block(pop), cfg.K, cfg.Workers)
	stopProgress()
	sampleHeap(&peakHeap)
	if err != nil {
		return nil, err
	}
	m.Counts.PairsExamined, m.Counts.PairsCompatible = st.PairsExamined, st.PairsCompatible
	return publishRun(ctx, cfg, log, m, tm, &peakHeap, com, L, sc, pz, lists, started)
}

// publishRun is the part of a run after scoring, shared by Run and Commit:
// soulmates, the tables, the manifest, and publishing.
func publishRun(ctx context.Context, cfg Config, log *slog.Logger, m *Manifest, tm *stageTimer, peakHeap *atomic.Uint64,
	com *committer, L *read.Loaded, sc *match.Scorer, pz *pseudonymizer, lists [][]match.Cand, started time.Time) (*Result, error) {
	var err error
	pop := L.Pop
	tm.begin("soulmates")
	souls, err := match.SoulmatesParallel(ctx, lists, cfg.Workers)
	if err != nil {
		return nil, err
	}
	m.Counts.Soulmates = int64(len(souls))
	m.Counts.MembersWithoutSoulmate = int64(pop.N - 2*len(souls))
	m.Coverage = computeCoverage(pop, lists, souls)

	tm.begin("write")
	dir := com.stagedPartition()
	// A partition for object storage names its files after the attempt:
	// a publish never overwrites an object another publish's _SUCCESS
	// lists (remote.go). A local partition is swapped whole.
	tag := ""
	if cfg.RemoteOut != "" {
		tag = m.AttemptID
	}
	tableFile := func(table string) string { return filepath.Join(table, taggedName(partFile, tag)) }
	// Footer metadata is deterministic (a content run id, no attempt id or
	// timestamp) so that the same population and configuration give
	// byte-identical tables however the input was sharded.
	meta := map[string]string{"batchmatch.run_id": m.RunID, "batchmatch.as_of": cfg.AsOfDate,
		"batchmatch.spec_version": SpecVersion, "batchmatch.version": Version, "batchmatch.config_hash": m.ConfigHash}
	// Output ids: internal ids, or their pseudonyms. Rows are written in
	// output-id order so that the tables stay sorted either way.
	ids, order := pop.ID, make([]int32, pop.N)
	for i := range order {
		order[i] = int32(i)
	}
	if pz != nil {
		if ids, err = pz.mapPopulation(pop.ID); err != nil {
			return nil, err
		}
		slices.SortFunc(order, func(a, b int32) int { return cmp.Compare(ids[a], ids[b]) })
		meta["batchmatch.pseudonym_key_id"] = pz.keyID
	}
	m.Outputs = map[string]Table{}
	rows, err := writeTable(filepath.Join(dir, tableFile("matches")), meta, matchesLayout, func(add func(MatchRow) error) error {
		// Rows are built in parallel a chunk of members at a time (the
		// components are recomputed by Pair, bit-identical to the scores in
		// the lists), then added in order: memory stays one chunk deep.
		const chunk = 1 << 14
		buf := make([][]MatchRow, chunk)
		for lo := 0; lo < len(order); lo += chunk {
			hi := min(lo+chunk, len(order))
			g, gctx := errgroup.WithContext(ctx)
			g.SetLimit(cfg.Workers)
			for w0 := lo; w0 < hi; w0 += 1024 {
				g.Go(func() error {
					if gctx.Err() != nil {
						return gctx.Err()
					}
					for k := w0; k < min(w0+1024, hi); k++ {
						i := int(order[k])
						out := buf[k-lo][:0]
						for r, c := range lists[i] {
							ps, _ := sc.Pair(i, int(c.J))
							row := MatchRow{
								UserID: ids[i], Rank: int32(r + 1), MatchID: ids[c.J], Score: c.S,
								STrait: ps.Trait, SQuestions: ps.Questions, SProximity: ps.Proximity,
								DistanceKm: ps.DistanceKm, Mutual: match.RankOf(lists[c.J], int32(i)) != 0,
							}
							if ps.HasBiomarker {
								b := ps.Biomarker
								row.SBiomarker = &b
							}
							out = append(out, row)
						}
						buf[k-lo] = out
					}
					return nil
				})
			}
			if err := g.Wait(); err != nil {
				return err
			}
			for _, member := range buf[:hi-lo] {
				if len(member) == 0 {
					m.Counts.MembersWithoutMatch++
				}
				for _, row := range member {
					if row.Mutual {
						m.Counts.MutualMatches++
					}
					if err := add(row); err != nil {
						return err
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	m.Counts.Matches = rows
	m.Outputs["matches"] = Table{Path: tableFile("matches"), Rows: rows}

	rows, err = writeTable(filepath.Join(dir, tableFile("soulmates")), meta, soulmatesLayout, func(add func(SoulmateRow) error) error {
		rows := make([]SoulmateRow, len(souls))
		for k, s := range souls {
			r := SoulmateRow{UserA: ids[s.A], UserB: ids[s.B], Score: s.S, RankA: s.RankA, RankB: s.RankB}
			if r.UserA > r.UserB { // pseudonyms do not keep the order
				r.UserA, r.UserB, r.RankA, r.RankB = r.UserB, r.UserA, r.RankB, r.RankA
			}
			rows[k] = r
		}
		if pz != nil {
			slices.SortFunc(rows, func(a, b SoulmateRow) int { return cmp.Compare(a.UserA, b.UserA) })
		}
		for _, r := range rows {
			if err := add(r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	m.Outputs["soulmates"] = Table{Path: tableFile("soulmates"), Rows: rows}

	rows, err = writeTable(filepath.Join(dir, tableFile("rejects")), meta, rejectsLayout, func(add func(RejectRow) error) error {
		for _, r := range L.Rejects {
			uid := r.UserID
			if pz != nil && uid != nil {
				p := pz.id(*uid)
				uid = &p
			}
			if err := add(RejectRow{SourceFile: r.File, Row: r.Row, UserID: uid, Reason: string(r.Reason)}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	m.Outputs["rejects"] = Table{Path: tableFile("rejects"), Rows: rows}
	for _, t := range []string{"matches", "soulmates", "rejects"} {
		if err := syncDir(filepath.Join(dir, t)); err != nil {
			return nil, err
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	tm.end()
	m.TimingsMs = tm.ms
	sampleHeap(peakHeap)
	m.Memory.PeakHeapBytes, m.Memory.PeakRSSBytes = peakHeap.Load(), peakRSS()
	m.FinishedAt = time.Now().UTC()
	b, err := m.encode()
	if err != nil {
		return nil, fmt.Errorf("encoding manifest: %w", err)
	}
	manifest := taggedName(manifestFile, tag)
	if err := writeFileSync(filepath.Join(dir, manifest), b); err != nil {
		return nil, err
	}
	if cfg.Report {
		var html bytes.Buffer
		if err := writeReport(&html, m, filepath.Join(dir, m.Outputs["matches"].Path)); err != nil {
			return nil, fmt.Errorf("writing the report: %w", err)
		}
		if err := writeFileSync(filepath.Join(dir, taggedName(ReportFile, tag)), html.Bytes()); err != nil {
			return nil, err
		}
	}
	if err := com.publish(cfg.Overwrite, m.RunID, manifest); err != nil {
		return nil, err
	}
	log.Info("run published", "dir", com.final, "eligible", m.Counts.Eligible, "matches", m.Counts.Matches,
		"soulmates", m.Counts.Soulmates, "quarantined", m.Counts.RowsQuarantined,
		"pairs_examined", m.Counts.PairsExamined, "elapsed", time.Since(started).Round(time.Millisecond).String())
	return &Result{Manifest: m, Published: com.final}, nil
}
