package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/spf13/pflag"

	"github.com/osmosis/batchmatch/pipeline/store"
)

// ShardSpec names one part of a run spread over Count processes.
type ShardSpec struct {
	Index int `json:"index"`
	Count int `json:"count"`
}

// ShardOf returns the shard, of n, that key belongs to: a fixed, seedless
// mix of the key (the SplitMix64 finalizer) modulo n, the same on every
// machine. Shards own scoring tasks by tile number (Scorer.Shard).
func ShardOf(key int64, n int) int {
	x := uint64(key)
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return int(x % uint64(n))
}

// shardEnv are the environment variables array schedulers set, as (index,
// count) pairs; a Kubernetes Indexed Job sets only the index, the count
// comes from --shard-count. A Slurm array must be numbered 0..N-1
// (--array=0-N-1): the task id is the index.
var shardEnv = [][2]string{
	{"JOB_COMPLETION_INDEX", ""},
	{"AWS_BATCH_JOB_ARRAY_INDEX", "AWS_BATCH_JOB_ARRAY_SIZE"},
	{"CLOUD_RUN_TASK_INDEX", "CLOUD_RUN_TASK_COUNT"},
	{"SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT"},
}

// ResolveShard decides the shard of this process: the flags when set
// (index -1 and count 0 mean unset), else the first scheduler variable
// present in getenv. No shard at all is the zero ShardSpec (a whole run).
func ResolveShard(index, count int, getenv func(string) string) (ShardSpec, error) {
	if index < 0 {
		for _, e := range shardEnv {
			v := getenv(e[0])
			if v == "" {
				continue
			}
			i, err := strconv.Atoi(v)
			if err != nil {
				return ShardSpec{}, usageErrorf("%s=%q is not a shard index", e[0], v)
			}
			index = i
			if count == 0 && e[1] != "" {
				if c := getenv(e[1]); c != "" {
					if count, err = strconv.Atoi(c); err != nil {
						return ShardSpec{}, usageErrorf("%s=%q is not a shard count", e[1], c)
					}
				}
			}
			break
		}
	}
	switch {
	case index < 0 && count == 0:
		return ShardSpec{}, nil
	case index < 0:
		return ShardSpec{}, usageErrorf("--shard-count %d without a shard index (--shard-index or a scheduler's index variable)", count)
	case count < 1:
		return ShardSpec{}, usageErrorf("shard index %d without a shard count (--shard-count)", index)
	case index >= count:
		return ShardSpec{}, usageErrorf("shard index %d is not below the shard count %d", index, count)
	}
	return ShardSpec{Index: index, Count: count}, nil
}

func (s ShardSpec) String() string { return fmt.Sprintf("%d-of-%d", s.Index, s.Count) }

// ShardOptions are the flags that make `batchmatch run` one shard of a
// sharded run.
type ShardOptions struct {
	Index, Count int
}

// AddFlags registers the shard flags.
func (o *ShardOptions) AddFlags(fs *pflag.FlagSet) {
	fs.IntVar(&o.Index, "shard-index", -1, "score only this shard's queries and write a part for `batchmatch commit` (default: $JOB_COMPLETION_INDEX, $AWS_BATCH_JOB_ARRAY_INDEX, $CLOUD_RUN_TASK_INDEX or $SLURM_ARRAY_TASK_ID)")
	fs.IntVar(&o.Count, "shard-count", 0, "number of shards (default: $AWS_BATCH_JOB_ARRAY_SIZE, $CLOUD_RUN_TASK_COUNT or $SLURM_ARRAY_TASK_COUNT; required with $JOB_COMPLETION_INDEX)")
}

// Resolve applies the flags, falling back to the scheduler's variables.
func (o *ShardOptions) Resolve() (ShardSpec, error) { return ResolveShard(o.Index, o.Count, os.Getenv) }

// Shard parts live under the output's temporary area, one directory per
// attempt, renamed into place when complete:
//
//	OUT/_temporary/shards/<partition>/<count>/<index>/<attempt>/   part.parquet, part.json
//	OUT/_temporary/shards/<partition>/<count>/<index>/<attempt>.tmp/  an attempt in progress (or dead)
//
// Shards take no lock and publish nothing; `batchmatch commit` does.
const shardsDir = "shards"

func shardDir(out, partition string, spec ShardSpec) string {
	return filepath.Join(out, stagingDir, shardsDir, partition, strconv.Itoa(spec.Count), strconv.Itoa(spec.Index))
}

// PartRow is one row of a shard part: an entry of a member's partial top-K
// (the best K among the pairs this shard scored), internal ids.
type PartRow struct {
	UserID  int64   `parquet:"user_id"`
	Rank    int32   `parquet:"rank"`
	MatchID int64   `parquet:"match_id"`
	Score   float32 `parquet:"score"`
}

// PartRef names the part a commit used for one shard.
type PartRef struct {
	Shard   ShardSpec `json:"shard"`
	Attempt string    `json:"attempt"`
	Members int64     `json:"members"`
	Rows    int64     `json:"rows"`
}

// partManifest is part.json: the shard's manifest (its counts are the
// shard's), what it covered, and the run id without a pseudonym key, which
// every shard and the commit must agree on.
type partManifest struct {
	Manifest
	Part       PartRef `json:"part"`
	ShardRunID string  `json:"shard_run_id"`
}

// runShard scores this process's shard (Scorer.Shard: its tasks, each
// unordered pair once, as in a whole run) and writes every member's partial
// top-K as its part. It takes no lock: shards of one run (and retries of a shard) run side by side, each
// attempt in its own directory, renamed into place only when complete.
func runShard(ctx context.Context, cfg Config, log *slog.Logger, m *Manifest, tm *stageTimer, peakHeap *atomic.Uint64, partition string, started time.Time) (*Result, error) {
	log = log.With("shard", cfg.Shard.String())
	L, err := Load(ctx, cfg, log, cfg.Alloc, tm)
	if err != nil {
		if L != nil {
			m.Dims, m.Inputs, m.Counts = L.Dims, L.Inputs, L.Counts
		}
		return nil, err
	}
	m.Dims, m.Inputs, m.Counts = L.Dims, L.Inputs, L.Counts
	pop := L.Pop
	fp := pop.Fingerprint()
	m.ConfigHash = configHash(cfg, L.Dims, "")
	rid := sha256.Sum256([]byte(m.ConfigHash + fp))
	m.RunID = hex.EncodeToString(rid[:16])

	tm.begin("score_topk")
	prog := &progress{start: time.Now()}
	sc := &Scorer{P: pop, W: cfg.Weights, NoBlocking: cfg.NoBlocking, Shard: cfg.Shard, progress: prog}
	every := cfg.ProgressEvery
	if every <= 0 {
		every = 30 * time.Second
	}
	stopProgress := reportProgress(ctx, log, prog, cfg.ProgressBar, every, peakHeap)
	lists, st, err := sc.TopK(ctx, cfg.K, cfg.Workers)
	stopProgress()
	if err != nil {
		return nil, err
	}
	m.Counts.PairsExamined, m.Counts.PairsCompatible = st.PairsExamined, st.PairsCompatible

	tm.begin("write_part")
	dir := shardDir(cfg.Out, partition, cfg.Shard)
	tmp := filepath.Join(dir, m.AttemptID+".tmp")
	if err := os.MkdirAll(tmp, 0o750); err != nil {
		return nil, ioErrorf("creating the part directory: %w", err)
	}
	defer os.RemoveAll(tmp) // gone once renamed; removed on failure
	part := PartRef{Shard: cfg.Shard, Attempt: m.AttemptID}
	meta := map[string]string{"batchmatch.shard_run_id": m.RunID, "batchmatch.shard": cfg.Shard.String()}
	part.Members = int64(pop.N) // every member's partial list
	rows, err := writeTable(filepath.Join(tmp, "part.parquet"), meta, tableLayout{rgRows: 4 << 20}, func(add func(PartRow) error) error {
		for i, l := range lists {
			for r, c := range l {
				if err := add(PartRow{UserID: pop.ID[i], Rank: int32(r + 1), MatchID: pop.ID[c.J], Score: c.S}); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	part.Rows = rows
	tm.end()
	m.TimingsMs = tm.ms
	sampleHeap(peakHeap)
	m.Memory.PeakHeapBytes, m.Memory.PeakRSSBytes = peakHeap.Load(), peakRSS()
	m.FinishedAt = time.Now().UTC()
	b, err := json.MarshalIndent(partManifest{Manifest: *m, Part: part, ShardRunID: m.RunID}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding the part manifest: %w", err)
	}
	if err := writeFileSync(filepath.Join(tmp, "part.json"), b); err != nil {
		return nil, err
	}
	if err := syncDir(tmp); err != nil {
		return nil, err
	}
	final := filepath.Join(dir, m.AttemptID)
	if err := os.Rename(tmp, final); err != nil {
		return nil, ioErrorf("placing the part: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return nil, err
	}
	log.Info("shard part written", "dir", final, "members", part.Members, "rows", part.Rows,
		"pairs_examined", st.PairsExamined, "elapsed", time.Since(started).Round(time.Millisecond).String())
	return &Result{Manifest: m, Published: final}, nil
}

// CommitConfig is what `batchmatch commit` needs beyond the parts: where,
// for which date, and how to publish. The rest of the configuration comes
// from the parts themselves.
type CommitConfig struct {
	Out          string
	AsOf         time.Time
	Partition    string
	ShardCount   int // 0: whichever count has parts
	Overwrite    bool
	Workers      int
	Report       bool
	PseudonymKey string
	ProgressBar  io.Writer
	// SpoolDir is where a commit to object storage stages its work (""
	// the system's temporary directory).
	SpoolDir string
	// RemoteOut is set by commitRemote: the object-store --out, recorded
	// in the manifest while Out is the spool.
	RemoteOut string
}

// findParts returns, for each shard of the run's count, the complete part
// attempt to use (the earliest, by name: any complete attempt is identical).
func findParts(out, partition string, count int) (int, []string, error) {
	root := filepath.Join(out, stagingDir, shardsDir, partition)
	if count == 0 {
		ents, err := os.ReadDir(root)
		if err != nil {
			return 0, nil, fmt.Errorf("%w: no shard parts under %s: %w", ErrNotReady, root, err)
		}
		for _, e := range ents {
			if n, err := strconv.Atoi(e.Name()); err == nil && e.IsDir() {
				if count != 0 {
					return 0, nil, usageErrorf("parts of several shard counts under %s: pass --shard-count", root)
				}
				count = n
			}
		}
		if count == 0 {
			return 0, nil, fmt.Errorf("%w: no shard parts under %s", ErrNotReady, root)
		}
	}
	dirs := make([]string, count)
	var missing []int
	for i := range count {
		d := shardDir(out, partition, ShardSpec{i, count})
		ents, _ := os.ReadDir(d)
		for _, e := range ents { // sorted by name
			if e.IsDir() && !strings.HasSuffix(e.Name(), ".tmp") {
				dirs[i] = filepath.Join(d, e.Name())
				break
			}
		}
		if dirs[i] == "" {
			missing = append(missing, i)
		}
	}
	if len(missing) > 0 {
		return count, nil, fmt.Errorf("%w: %d of %d shards have no complete part yet: indices %v", ErrNotReady, len(missing), count, missing)
	}
	return count, dirs, nil
}

// Commit gathers the parts of a sharded run, checks that they belong to one
// run over unchanged inputs, and publishes exactly what a single-machine run
// publishes: the matches with mutual flags, the soulmate assignment over the
// whole top-K graph, the rejects, the manifest and _SUCCESS. It holds the
// output lock; parts are removed once the run is published.
//
// An object-store --out is handled as for Run (remote.go).
func Commit(ctx context.Context, cc CommitConfig, log *slog.Logger) (*Result, error) {
	store.Default().SetLogger(log)
	if store.IsURL(cc.Out) {
		return commitRemote(ctx, cc, log)
	}
	return commitLocal(ctx, cc, log)
}

func commitLocal(ctx context.Context, cc CommitConfig, log *slog.Logger) (res *Result, err error) {
	started := time.Now()
	attempt := newAttemptID(started)
	m := &Manifest{Tool: "batchmatch", Version: Version, SpecVersion: SpecVersion, AttemptID: attempt, StartedAt: started.UTC()}
	defer func() {
		if err != nil {
			res = &Result{Manifest: m}
		}
	}()
	log = log.With("attempt_id", attempt)
	tm := newStageTimer(log)
	var peakHeap atomic.Uint64
	partition := partitionOr(cc.Partition, cc.AsOf)
	com, err := openCommitter(cc.Out, partition, cc.Overwrite, attempt)
	if err != nil {
		return nil, err
	}
	defer com.cleanup()

	tm.begin("gather")
	count, dirs, err := findParts(cc.Out, partition, cc.ShardCount)
	if err != nil {
		return nil, err
	}
	parts := make([]partManifest, count)
	for i, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "part.json"))
		if err == nil {
			err = json.Unmarshal(b, &parts[i])
		}
		if err != nil {
			return nil, fileError(ErrBadData, filepath.Join(d, "part.json"), "", err)
		}
		if p := parts[i].Part.Shard; p != (ShardSpec{i, count}) {
			return nil, fileError(ErrBadData, d, "", fmt.Errorf("part of shard %s in the directory of shard %d-of-%d", p, i, count))
		}
		if parts[i].ShardRunID != parts[0].ShardRunID {
			return nil, fmt.Errorf("%w: shard %d ran over other inputs or settings than shard 0 (run ids %s, %s)", ErrBadData, i, parts[i].ShardRunID, parts[0].ShardRunID)
		}
	}
	cfg := parts[0].Config
	cfg.Out, cfg.Partition, cfg.Overwrite, cfg.Workers, cfg.Report = cc.Out, partition, cc.Overwrite, cc.Workers, cc.Report
	cfg.PseudonymKey, cfg.ProgressBar, cfg.Shard = cc.PseudonymKey, cc.ProgressBar, ShardSpec{}
	cfg.RemoteOut, cfg.SpoolDir = cc.RemoteOut, cc.SpoolDir
	if cfg.AsOf, err = time.Parse(time.DateOnly, cfg.AsOfDate); err != nil || cfg.AsOfDate != cc.AsOf.Format(time.DateOnly) {
		return nil, usageErrorf("the parts are for as-of %s, not %s", cfg.AsOfDate, cc.AsOf.Format(time.DateOnly))
	}
	m.AsOf, m.Config = cfg.AsOfDate, cfg
	var pz *pseudonymizer
	if cfg.PseudonymKey != "" {
		if pz, err = loadPseudonymizer(cfg.PseudonymKey); err != nil {
			return nil, err
		}
		m.PseudonymKeyID = pz.keyID
	}
	L, err := Load(ctx, cfg, log, nil, tm)
	if err != nil {
		return nil, err
	}
	m.Dims, m.Inputs, m.Counts = L.Dims, L.Inputs, L.Counts
	pop := L.Pop
	fp := pop.Fingerprint()
	srid := sha256.Sum256([]byte(configHash(cfg, L.Dims, "") + fp))
	if hex.EncodeToString(srid[:16]) != parts[0].ShardRunID {
		return nil, fmt.Errorf("%w: the profiles or settings changed since the shards ran (run id %s, parts %s)", ErrBadData, hex.EncodeToString(srid[:16]), parts[0].ShardRunID)
	}
	m.ConfigHash = configHash(cfg, L.Dims, m.PseudonymKeyID)
	rid := sha256.Sum256([]byte(m.ConfigHash + fp))
	m.RunID = hex.EncodeToString(rid[:16])

	tm.begin("merge_parts")
	// Every pair was scored by exactly one shard: a member's list is the
	// best K of the union of its partial lists.
	lists := make([][]Cand, pop.N)
	for s, d := range dirs {
		if parts[s].Part.Members != int64(pop.N) {
			return nil, fileError(ErrBadData, d, "", fmt.Errorf("the part covers %d members, the population has %d", parts[s].Part.Members, pop.N))
		}
		path := filepath.Join(d, "part.parquet")
		rows, err := parquet.ReadFile[PartRow](path)
		if err != nil {
			return nil, fileError(ErrBadData, path, "", err)
		}
		prev, rank := int64(0), int32(0)
		for k, r := range rows {
			if k == 0 || r.UserID != prev {
				prev, rank = r.UserID, 0
			}
			rank++
			i, j := pop.Index(r.UserID), pop.Index(r.MatchID)
			if i < 0 || j < 0 || r.Rank != rank || rank > int32(cfg.K) {
				return nil, fileError(ErrBadData, path, "", fmt.Errorf("row %d (user %d, rank %d, match %d) does not fit the population or the part", k, r.UserID, r.Rank, r.MatchID))
			}
			lists[i] = append(lists[i], Cand{J: int32(j), S: r.Score})
		}
		m.Counts.PairsExamined += parts[s].Counts.PairsExamined
		m.Counts.PairsCompatible += parts[s].Counts.PairsCompatible
		m.Parts = append(m.Parts, parts[s].Part)
	}
	for i, l := range lists {
		if len(l) > 0 {
			lists[i] = MergeLists(cfg.K, l)
		}
	}
	res, err = publishRun(ctx, cfg, log, m, tm, &peakHeap, com, L, &Scorer{P: pop, W: cfg.Weights}, pz, lists, started)
	if err != nil {
		return nil, err
	}
	if err := os.RemoveAll(filepath.Join(cc.Out, stagingDir, shardsDir, partition)); err != nil {
		log.Warn("published, but the shard parts could not be removed", "error", err)
	}
	os.Remove(filepath.Join(cc.Out, stagingDir, shardsDir)) // only when empty
	return res, nil
}
