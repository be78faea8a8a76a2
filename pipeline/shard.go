package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/parquet-go/parquet-go"
	"github.com/spf13/pflag"

	"github.com/osmosis/batchmatch/pipeline/failure"
	"github.com/osmosis/batchmatch/pipeline/match"
	"github.com/osmosis/batchmatch/pipeline/store"
)

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
// present in getenv. No shard at all is the zero match.ShardSpec (a whole run).
func ResolveShard(index, count int, getenv func(string) string) (match.ShardSpec, error) {
	if index < 0 {
		for _, e := range shardEnv {
			v := getenv(e[0])
			if v == "" {
				continue
			}
			i, err := strconv.Atoi(v)
			if err != nil {
				return match.ShardSpec{}, failure.Usagef("%s=%q is not a shard index", e[0], v)
			}
			index = i
			if count == 0 && e[1] != "" {
				if c := getenv(e[1]); c != "" {
					if count, err = strconv.Atoi(c); err != nil {
						return match.ShardSpec{}, failure.Usagef("%s=%q is not a shard count", e[1], c)
					}
				}
			}
			break
		}
	}
	switch {
	case index < 0 && count == 0:
		return match.ShardSpec{}, nil
	case index < 0:
		return match.ShardSpec{}, failure.Usagef("--shard-count %d without a shard index (--shard-index or a scheduler's index variable)", count)
	case count < 1:
		return match.ShardSpec{}, failure.Usagef("shard index %d without a shard count (--shard-count)", index)
	case index >= count:
		return match.ShardSpec{}, failure.Usagef("shard index %d is not below the shard count %d", index, count)
	}
	return match.ShardSpec{Index: index, Count: count}, nil
}

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
func (o *ShardOptions) Resolve() (match.ShardSpec, error) {
	return ResolveShard(o.Index, o.Count, os.Getenv)
}

// Shard parts live under the output's temporary area, one directory per
// attempt, renamed into place when complete:
//
//	OUT/_temporary/shards/<partition>/<count>/<index>/<attempt>/   part.parquet, part.json
//	OUT/_temporary/shards/<partition>/<count>/<index>/<attempt>.tmp/  an attempt in progress (or dead)
//
// Shards take no lock and publish nothing; `batchmatch commit` does.
const shardsDir = "shards"

func shardDir(out, partition string, spec match.ShardSpec) string {
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
	Shard   match.ShardSpec `json:"shard"`
	Attempt string          `json:"attempt"`
	Members int64           `json:"members"`
	Rows    int64           `json:"rows"`
}

// partManifest is part.json: the shard's manifest (its counts are the
// shard's), what it covered, and the run id without a pseudonym key, which
// every shard and the commit must agree on.
type partManifest struct {
	Manifest
	Part       PartRef `json:"part"`
	ShardRunID string  `json:"shard_run_id"`
}

// runShard scores this process's shard (match.Scorer.Shard: its tasks, each
// unordered pair once, as in a whole run) and writes every member's partial
// top-K as its part. It takes no lock: shards of one run (and retries of a shard) run side by side, each
// attempt in its own directory, renamed into place only when complete.
func runShard(ctx context.Context, cfg Config, log *slog.Logger, m *Manifest, tm *stageTimer, peakHeap *atomic.Uint64, partition string, started time.Time) (*Result, error) {
	log = log.With("shard", cfg.Shard.String())
	L, err := load(ctx, cfg, log, tm)
	if err != nil {
		if L != nil {
			m.Dims, m.Inputs, m.Counts.Counts = L.Dims, L.Inputs, L.Counts
		}
		return nil, err
	}
	m.Dims, m.Inputs, m.Counts.Counts = L.Dims, L.Inputs, L.Counts
	pop := L.Pop
	fp := pop.Fingerprint()
	m.ConfigHash = configHash(cfg, L.Dims, "")
	rid := sha256.Sum256([]byte(m.ConfigHash + fp))
	m.RunID = hex.EncodeToString(rid[:16])

	tm.begin("score_topk")
	prog := match.NewProgress()
	sc := &match.Scorer{P: pop, W: cfg.Weights, NoBlocking: cfg.NoBlocking, Shard: cfg.Shard, Progress: prog}
	every := cfg.ProgressEvery
	if every <= 0 {
		every = 30 * time.Second
	}
	stopProgress := reportProgress(ctx, log, prog, cfg.ProgressBar, every, peakHeap)
	lists, st, err := sc.TopK(ctx, match.Block(pop), cfg.K, cfg.Workers)
	stopProgress()
	if err != nil {
		return nil, err
	}
	m.Counts.PairsExamined, m.Counts.PairsCompatible = st.PairsExamined, st.PairsCompatible

	tm.begin("write_part")
	// The part is written in <attempt>.tmp next to an <attempt>.lock held
	// for the process's lifetime (ownerLock): a commit or run that finds
	// the .tmp of a killed shard can prove it dead and remove it.
	idx, err := openShardDir(cfg.Out, partition, cfg.Shard)
	if err != nil {
		return nil, err
	}
	defer idx.Close()
	lockName, tmpName := m.AttemptID+".lock", m.AttemptID+".tmp"
	lk, err := ownerLock(idx, lockName)
	if err != nil {
		return nil, err
	}
	defer releaseOwner(idx, lockName, lk) // after the .tmp is gone
	tmpDir, err := idx.sub(tmpName, true)
	if err != nil {
		return nil, fmt.Errorf("creating the part directory: %w", err)
	}
	defer func() {
		tmpDir.Close()
		_ = idx.removeAll(tmpName) // gone once renamed; removed on failure
	}()
	tmp := tmpDir.path
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
	if err := writeFileSync(filepath.Join(tmp, partJSON), b); err != nil {
		return nil, err
	}
	if err := tmpDir.sync(); err != nil {
		return nil, err
	}
	crashPoint("shard-written")
	if err := idx.rename(tmpName, idx, m.AttemptID); err != nil {
		return nil, fmt.Errorf("placing the part: %w", err)
	}
	if err := idx.sync(); err != nil {
		return nil, err
	}
	final := idx.join(m.AttemptID)
	log.Info("shard part written", "dir", final, "members", part.Members, "rows", part.Rows,
		"pairs_examined", st.PairsExamined, "elapsed", time.Since(started).Round(time.Millisecond).String())
	return &Result{Manifest: m, Published: final}, nil
}

// partJSON and partParquet are a part's files; a part is complete when
// its directory has its final name (locally) or part.json exists (object
// storage, where it is uploaded last).
const (
	partJSON    = "part.json"
	partParquet = "part.parquet"
)

// openShardDir opens (creating) OUT/_temporary/shards/<partition>/<count>/<index>,
// following no link on the way.
func openShardDir(out, partition string, spec match.ShardSpec) (*outDir, error) {
	d, err := openOutRoot(out)
	if err != nil {
		return nil, err
	}
	for _, name := range []string{stagingDir, shardsDir, partition, strconv.Itoa(spec.Count), strconv.Itoa(spec.Index)} {
		next, err := d.sub(name, true)
		d.Close()
		if err != nil {
			return nil, fmt.Errorf("creating the part directory: %w", err)
		}
		d = next
	}
	return d, nil
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

	// Set by commitRemote: the remote partition, what it holds, where
	// the parts are, and how to bring the chosen parts' tables into the
	// spool.
	remoteDst     string
	remotePub     *publishedInfo
	partsLocation string
	fetch         func(ctx context.Context, parts []*partAttempt) error
}

// partAttempt is one complete part of a shard: what its part.json says
// and where it is.
type partAttempt struct {
	index int
	name  string // the attempt
	dir   string
	pm    partManifest
}

// partSet is the parts of one shard run id (the same inputs and
// configuration) for one shard count: per index the earliest complete
// attempt (any complete attempt of an index is identical).
type partSet struct {
	runID    string
	count    int
	parts    []*partAttempt // by index; nil: none yet
	finished time.Time      // when its newest part finished
}

func (s *partSet) complete() bool {
	for _, p := range s.parts {
		if p == nil {
			return false
		}
	}
	return true
}

func (s *partSet) missing() []int {
	var m []int
	for i, p := range s.parts {
		if p == nil {
			m = append(m, i)
		}
	}
	return m
}

// describe is one line about the set for messages.
func (s *partSet) describe() string {
	have := 0
	for _, p := range s.parts {
		if p != nil {
			have++
		}
	}
	return fmt.Sprintf("run %s: %d of %d shards (missing %v, newest part finished %s)",
		s.runID, have, s.count, s.missing(), s.finished.Format(time.RFC3339))
}

// scanParts reads every complete part of partition under shards (nil: no
// parts at all): the shard counts present and the parts of count (0: the
// only count present). Parts whose part.json cannot be read are reported
// in bad. Nothing is followed through a link.
func scanParts(shards *outDir, partition string, count int) (int, []*partAttempt, []string, error) {
	if shards == nil {
		return count, nil, nil, nil
	}
	if st, ok, err := shards.lstat(partition); err != nil || !ok || !isDir(st) {
		return count, nil, nil, err
	}
	pd, err := shards.sub(partition, false)
	if err != nil {
		return count, nil, nil, err
	}
	defer pd.Close()
	names, err := pd.names()
	if err != nil {
		return count, nil, nil, err
	}
	if count == 0 {
		for _, n := range names {
			c, err := strconv.Atoi(n)
			if st, ok, _ := pd.lstat(n); err != nil || !ok || !isDir(st) || c < 1 {
				continue
			}
			if count != 0 {
				return 0, nil, nil, failure.Usagef("parts of several shard counts under %s: pass --shard-count", pd.path)
			}
			count = c
		}
	}
	if count == 0 {
		return 0, nil, nil, nil
	}
	var parts []*partAttempt
	var bad []string
	cd, err := pd.sub(strconv.Itoa(count), false)
	if errors.Is(err, fs.ErrNotExist) {
		return count, nil, nil, nil
	}
	if err != nil {
		return count, nil, nil, err
	}
	defer cd.Close()
	for i := range count {
		if st, ok, err := cd.lstat(strconv.Itoa(i)); err != nil || !ok || !isDir(st) {
			continue
		}
		id, err := cd.sub(strconv.Itoa(i), false)
		if err != nil {
			return count, nil, nil, err
		}
		ns, err := id.names()
		if err != nil {
			id.Close()
			return count, nil, nil, err
		}
		for _, n := range ns {
			if strings.HasSuffix(n, ".tmp") || strings.HasSuffix(n, ".lock") {
				continue
			}
			if st, ok, _ := id.lstat(n); !ok || !isDir(st) {
				continue
			}
			ad, err := id.sub(n, false)
			if err != nil {
				continue
			}
			raw, ok, err := ad.readFile(partJSON)
			ad.Close()
			var pm partManifest
			if err == nil && ok {
				err = json.Unmarshal(raw, &pm)
			}
			if err != nil || !ok || pm.Part.Shard != (match.ShardSpec{Index: i, Count: count}) || pm.ShardRunID == "" {
				bad = append(bad, id.join(n))
				continue
			}
			parts = append(parts, &partAttempt{index: i, name: n, dir: id.join(n), pm: pm})
		}
		id.Close()
	}
	return count, parts, bad, nil
}

// groupParts groups parts by shard run id into sets, the most recently
// finished first.
func groupParts(count int, parts []*partAttempt) []*partSet {
	byID := map[string]*partSet{}
	var sets []*partSet
	for _, p := range parts {
		s := byID[p.pm.ShardRunID]
		if s == nil {
			s = &partSet{runID: p.pm.ShardRunID, count: count, parts: make([]*partAttempt, count)}
			byID[p.pm.ShardRunID] = s
			sets = append(sets, s)
		}
		if q := s.parts[p.index]; q == nil || p.name < q.name {
			s.parts[p.index] = p
		}
		if p.pm.FinishedAt.After(s.finished) {
			s.finished = p.pm.FinishedAt
		}
	}
	slices.SortStableFunc(sets, func(a, b *partSet) int { return b.finished.Compare(a.finished) })
	return sets
}

// consumed reports whether a part of shard run id runID (attempt, shard)
// is dead because the published partition pub holds its result: pub was
// published from it (the manifest lists it, or names its shard run id), or
// by a run with the same run id (identical tables).
func consumed(pub *publishedInfo, runID string, shard match.ShardSpec, attempt string) bool {
	if pub == nil || pub.manifest == nil {
		return false
	}
	m := pub.manifest
	if runID != "" && (runID == m.ShardRunID || (m.PseudonymKeyID == "" && runID == m.RunID)) {
		return true
	}
	for _, r := range m.Parts {
		if r.Shard == shard && r.Attempt == attempt {
			return true
		}
	}
	return false
}

// sweepParts removes, under the output lock, shard part files that are
// provably dead: the .tmp directory of a shard whose owner lock nobody
// holds (the process died), a lock file nobody holds, and complete parts
// that a published partition consumed (see consumed), for every partition
// except skip (the commit of skip decides about its own parts). Links are
// removed, never followed.
func (c *committer) sweepParts(skip string) error {
	st, ok, err := c.tmp.lstat(shardsDir)
	if err != nil || !ok {
		return err
	}
	if !isDir(st) {
		c.log.Warn("removing a stray entry from the staging area", "path", c.tmp.join(shardsDir))
		return c.tmp.removeAll(shardsDir)
	}
	shards, err := c.tmp.sub(shardsDir, false)
	if err != nil {
		return err
	}
	defer shards.Close()
	names, err := shards.names()
	if err != nil {
		return err
	}
	for _, p := range names {
		var pub *publishedInfo
		if p != skip && CheckPartition(p) == nil {
			pub, _ = c.publishedAt(p) // a link there is refused when a run publishes p
		}
		if err := c.sweepPartition(shards, p, pub, false); err != nil {
			return err
		}
	}
	_ = unix.Unlinkat(c.tmp.fd(), shardsDir, unix.AT_REMOVEDIR) // only when empty
	return nil
}

// sweepPartition is sweepParts for one partition's parts; with all, every
// part that is not being written is removed (a commit that has published
// or found its partition published by them).
func (c *committer) sweepPartition(shards *outDir, partition string, pub *publishedInfo, all bool) error {
	return walkPartDirs(shards, partition, func(id *outDir, shard match.ShardSpec, name string) error {
		st, ok, err := id.lstat(name)
		if err != nil || !ok {
			return err
		}
		switch {
		case !isDir(st) && !strings.HasSuffix(name, ".lock"):
			return id.removeAll(name) // a link or a stray file
		case strings.HasSuffix(name, ".lock"):
			base := strings.TrimSuffix(name, ".lock")
			if st, ok, _ := id.lstat(base + ".tmp"); ok && isDir(st) {
				return nil // decided with its .tmp
			}
			if dead, release, err := ownedDead(id, name); err == nil && dead {
				release()
			}
			return nil
		case strings.HasSuffix(name, ".tmp"):
			dead, release, err := ownedDead(id, strings.TrimSuffix(name, ".tmp")+".lock")
			if err != nil || !dead {
				return err
			}
			c.log.Info("removing the unfinished part of a shard that died", "dir", id.join(name))
			err = id.removeAll(name)
			release()
			return err
		}
		if !all {
			ad, err := id.sub(name, false)
			if err != nil {
				return err
			}
			raw, ok, err := ad.readFile(partJSON)
			ad.Close()
			var pm partManifest
			if err != nil || !ok || json.Unmarshal(raw, &pm) != nil || !consumed(pub, pm.ShardRunID, shard, name) {
				return nil
			}
			c.log.Info("removing a shard part that a published partition consumed", "dir", id.join(name))
		}
		return id.removeAll(name)
	})
}

// walkPartDirs calls fn for every entry of every <count>/<index> directory
// of partition under shards, then removes the directories left empty.
func walkPartDirs(shards *outDir, partition string, fn func(id *outDir, shard match.ShardSpec, name string) error) error {
	st, ok, err := shards.lstat(partition)
	if err != nil || !ok {
		return err
	}
	if !isDir(st) {
		return shards.removeAll(partition)
	}
	pd, err := shards.sub(partition, false)
	if err != nil {
		return err
	}
	defer pd.Close()
	counts, err := pd.names()
	if err != nil {
		return err
	}
	for _, cn := range counts {
		count, cerr := strconv.Atoi(cn)
		if st, ok, _ := pd.lstat(cn); !ok || !isDir(st) || cerr != nil {
			if err := pd.removeAll(cn); err != nil {
				return err
			}
			continue
		}
		cd, err := pd.sub(cn, false)
		if err != nil {
			return err
		}
		idxs, err := cd.names()
		if err != nil {
			cd.Close()
			return err
		}
		for _, in := range idxs {
			index, ierr := strconv.Atoi(in)
			if st, ok, _ := cd.lstat(in); !ok || !isDir(st) || ierr != nil {
				if err := cd.removeAll(in); err != nil {
					cd.Close()
					return err
				}
				continue
			}
			id, err := cd.sub(in, false)
			if err != nil {
				cd.Close()
				return err
			}
			ns, err := id.names()
			for _, n := range ns {
				if err = fn(id, match.ShardSpec{Index: index, Count: count}, n); err != nil {
					break
				}
			}
			id.Close()
			if err != nil {
				cd.Close()
				return err
			}
			_ = unix.Unlinkat(cd.fd(), in, unix.AT_REMOVEDIR)
		}
		cd.Close()
		_ = unix.Unlinkat(pd.fd(), cn, unix.AT_REMOVEDIR)
	}
	_ = unix.Unlinkat(shards.fd(), partition, unix.AT_REMOVEDIR)
	return nil
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
	com, err := openCommitter(cc.Out, partition, attempt, log, true)
	if err != nil {
		return nil, err
	}
	defer com.cleanup()
	pub := com.published
	if cc.RemoteOut != "" {
		pub = cc.remotePub
	}
	where := cc.partsLocation
	if where == "" {
		where = filepath.Join(cc.Out, stagingDir, shardsDir, partition)
	}

	tm.begin("gather")
	var shards *outDir
	if st, ok, err := com.tmp.lstat(shardsDir); err != nil {
		return nil, err
	} else if ok && isDir(st) {
		if shards, err = com.tmp.sub(shardsDir, false); err != nil {
			return nil, err
		}
		defer shards.Close()
	}
	count, found, bad, err := scanParts(shards, partition, cc.ShardCount)
	if err != nil {
		return nil, err
	}
	sets := groupParts(count, found)
	if pub != nil && !cc.Overwrite {
		var waiting []string
		for _, s := range sets {
			if !s.consumedBy(pub) {
				waiting = append(waiting, s.describe())
			}
		}
		if len(waiting) > 0 {
			return nil, fmt.Errorf("%w: %s is already published by run %s, and parts of other runs are waiting under %s (%s): pass --overwrite to publish them instead",
				failure.Exists, redactURL(cc.publishedLocation(com.final)), pub.success.RunID, redactURL(where), strings.Join(waiting, "; "))
		}
		// The commit already happened; what parts are left (a commit
		// killed after publishing) are its own, and dead.
		if shards != nil {
			if err := com.sweepPartition(shards, partition, nil, true); err != nil {
				log.Warn("the shard parts of the published run could not be removed", "error", err)
			}
			_ = unix.Unlinkat(com.tmp.fd(), shardsDir, unix.AT_REMOVEDIR) // only when empty
		}
		log.Info("already published by this run: nothing to commit", "partition", redactURL(cc.publishedLocation(com.final)), "run_id", pub.success.RunID)
		m.RunID, m.AsOf = pub.success.RunID, cc.AsOf.Format(time.DateOnly)
		if pub.manifest != nil {
			m.Counts = pub.manifest.Counts // the metrics describe what is published
		}
		return &Result{Manifest: m, Published: com.final, AlreadyPublished: true}, nil
	}
	var complete []*partSet
	for _, s := range sets {
		if s.complete() {
			complete = append(complete, s)
		}
	}
	if len(complete) == 0 {
		switch {
		case len(sets) == 0 && len(bad) > 0:
			return nil, fmt.Errorf("%w: the shard parts under %s are unreadable: %v", failure.BadData, redactURL(where), bad)
		case len(sets) == 0:
			return nil, fmt.Errorf("%w: no complete shard part under %s yet", failure.NotReady, redactURL(where))
		}
		var ds []string
		for _, s := range sets {
			ds = append(ds, s.describe())
		}
		return nil, fmt.Errorf("%w: no complete set of shard parts under %s: %s", failure.NotReady, redactURL(where), strings.Join(ds, "; "))
	}
	cfg, err := cc.runConfig(partition, complete[0].parts[0].pm.Config)
	if err != nil {
		return nil, err
	}
	m.AsOf, m.Config = cfg.AsOfDate, cfg
	var pz *pseudonymizer
	if cfg.PseudonymKey != "" {
		if pz, err = loadPseudonymizer(cfg.PseudonymKey); err != nil {
			return nil, err
		}
		m.PseudonymKeyID = pz.keyID
	}
	L, err := load(ctx, cfg, log, tm)
	if err != nil {
		return nil, err
	}
	m.Dims, m.Inputs, m.Counts.Counts = L.Dims, L.Inputs, L.Counts
	pop := L.Pop
	fp := pop.Fingerprint()
	// The set to publish: the newest complete one over these inputs (sets
	// of other settings over the same inputs can be told apart without
	// reading the inputs again).
	var chosen *partSet
	for _, s := range complete {
		sc := s.parts[0].pm.Config
		if !sameInputs(sc, complete[0].parts[0].pm.Config) {
			continue
		}
		if id := sha256.Sum256([]byte(configHash(sc, L.Dims, "") + fp)); hex.EncodeToString(id[:16]) == s.runID {
			chosen = s
			break
		}
	}
	if chosen == nil {
		id := sha256.Sum256([]byte(configHash(cfg, L.Dims, "") + fp))
		var ds []string
		for _, s := range sets {
			ds = append(ds, s.describe())
		}
		if len(complete) < len(sets) {
			// Shards of newer inputs may still be running.
			return nil, fmt.Errorf("%w: no complete set of shard parts is of the current inputs (run id %s) under %s: %s",
				failure.NotReady, hex.EncodeToString(id[:16]), redactURL(where), strings.Join(ds, "; "))
		}
		return nil, fmt.Errorf("%w: the profiles changed since the shards ran: they give run id %s now, and no complete set of parts under %s is of it (%s); run the shards again",
			failure.BadData, hex.EncodeToString(id[:16]), redactURL(where), strings.Join(ds, "; "))
	}
	if chosen != complete[0] {
		if cfg, err = cc.runConfig(partition, chosen.parts[0].pm.Config); err != nil {
			return nil, err
		}
		m.Config = cfg
	}
	for _, s := range complete {
		if s != chosen {
			log.Warn("ignoring stale shard parts of another run", "stale", s.describe(), "using", chosen.runID)
		}
	}
	if cc.fetch != nil {
		if err := cc.fetch(ctx, chosen.parts); err != nil {
			return nil, err
		}
	}
	m.ShardRunID = chosen.runID
	m.ConfigHash = configHash(cfg, L.Dims, m.PseudonymKeyID)
	rid := sha256.Sum256([]byte(m.ConfigHash + fp))
	m.RunID = hex.EncodeToString(rid[:16])

	tm.begin("merge_parts")
	// Every pair was scored by exactly one shard: a member's list is the
	// best K of the union of its partial lists.
	lists := make([][]match.Cand, pop.N)
	for _, p := range chosen.parts {
		if p.pm.Part.Members != int64(pop.N) {
			return nil, failure.FileError(failure.BadData, p.dir, "", fmt.Errorf("the part covers %d members, the population has %d", p.pm.Part.Members, pop.N))
		}
		path := filepath.Join(p.dir, partParquet)
		rows, err := parquet.ReadFile[PartRow](path)
		if err != nil {
			return nil, failure.FileError(failure.BadData, path, "", err)
		}
		prev, rank := int64(0), int32(0)
		for k, r := range rows {
			if k == 0 || r.UserID != prev {
				prev, rank = r.UserID, 0
			}
			rank++
			i, j := pop.Index(r.UserID), pop.Index(r.MatchID)
			if i < 0 || j < 0 || r.Rank != rank || rank > int32(cfg.K) {
				return nil, failure.FileError(failure.BadData, path, "", fmt.Errorf("row %d (user %d, rank %d, match %d) does not fit the population or the part", k, r.UserID, r.Rank, r.MatchID))
			}
			lists[i] = append(lists[i], match.Cand{J: int32(j), S: r.Score})
		}
		m.Counts.PairsExamined += p.pm.Counts.PairsExamined
		m.Counts.PairsCompatible += p.pm.Counts.PairsCompatible
		part := p.pm.Part
		part.Attempt = p.name
		m.Parts = append(m.Parts, part)
	}
	for i, l := range lists {
		if len(l) > 0 {
			lists[i] = match.MergeLists(cfg.K, l)
		}
	}
	res, err = publishRun(ctx, cfg, log, m, tm, &peakHeap, com, L, &match.Scorer{P: pop, W: cfg.Weights}, pz, lists, started)
	if err != nil {
		return nil, err
	}
	crashPoint("committed")
	// The parts are consumed (all of them: the run is published); only a
	// part still being written is left alone.
	if shards != nil {
		if err := com.sweepPartition(shards, partition, nil, true); err != nil {
			log.Warn("published, but the shard parts could not be removed", "error", err)
		}
		_ = unix.Unlinkat(com.tmp.fd(), shardsDir, unix.AT_REMOVEDIR) // only when empty
	}
	return res, nil
}

// consumedBy reports whether the published partition pub holds this set's
// result (see consumed).
func (s *partSet) consumedBy(pub *publishedInfo) bool {
	for _, p := range s.parts {
		if p != nil {
			return consumed(pub, s.runID, p.pm.Part.Shard, p.name)
		}
	}
	return false
}

// sameInputs reports whether two part configurations read the same inputs
// the same way (so one Load serves both).
func sameInputs(a, b Config) bool {
	return slices.Equal(a.Profiles, b.Profiles) && slices.Equal(a.Blocks, b.Blocks) && slices.Equal(a.Suppress, b.Suppress) &&
		a.AsOfDate == b.AsOfDate && a.MaxRejectRatio == b.MaxRejectRatio && a.TraitDim == b.TraitDim && a.Questions == b.Questions
}

// runConfig is the configuration of the commit: the parts' run, with the
// commit's output, partition and flags.
func (cc CommitConfig) runConfig(partition string, cfg Config) (Config, error) {
	cfg.Out, cfg.Partition, cfg.Overwrite, cfg.Workers, cfg.Report = cc.Out, partition, cc.Overwrite, cc.Workers, cc.Report
	cfg.PseudonymKey, cfg.ProgressBar, cfg.Shard = cc.PseudonymKey, cc.ProgressBar, match.ShardSpec{}
	cfg.RemoteOut, cfg.SpoolDir = cc.RemoteOut, cc.SpoolDir
	var err error
	if cfg.AsOf, err = time.Parse(time.DateOnly, cfg.AsOfDate); err != nil || cfg.AsOfDate != cc.AsOf.Format(time.DateOnly) {
		return cfg, failure.Usagef("the parts are for as-of %s, not %s", cfg.AsOfDate, cc.AsOf.Format(time.DateOnly))
	}
	return cfg, nil
}

// publishedLocation names the published partition in messages: the
// object-store one for a remote commit, else local.
func (cc CommitConfig) publishedLocation(local string) string {
	if cc.remoteDst != "" {
		return cc.remoteDst
	}
	return local
}
