package publish

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/parquet-go/parquet-go"

	"github.com/osmosis/batchmatch/pipeline/failure"
	"github.com/osmosis/batchmatch/pipeline/match"
	"github.com/osmosis/batchmatch/pipeline/read"
	"github.com/osmosis/batchmatch/pipeline/store"
)

// Shard parts live under the output's temporary area, one directory per
// attempt, renamed into place when complete:
//
//	OUT/_temporary/shards/<partition>/<count>/<index>/<attempt>/   part.parquet, part.json
//	OUT/_temporary/shards/<partition>/<count>/<index>/<attempt>.tmp/  an attempt in progress (or dead)
//
// part.json records part.parquet's size and SHA-256: an attempt whose
// part.parquet is missing or of another size is broken (a cleanup raced
// its upload) and is never chosen; one whose content does not match is
// skipped when read. Any complete attempt of an index is identical, so a
// commit takes, per index, the first one that verifies.
//
// Shards take no lock and publish nothing; `batchmatch commit` does.
const shardsDir = "shards"

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
// shard's), what it covered, the run id without a pseudonym key, which
// every shard and the commit must agree on, what part.parquet must be,
// and the scheduler's run of the night that wrote it (SchedulerRunID; ""
// when started by hand).
type partManifest struct {
	Manifest
	Part          PartRef `json:"part"`
	ShardRunID    string  `json:"shard_run_id"`
	ParquetSize   int64   `json:"parquet_size,omitempty"`
	ParquetSHA256 string  `json:"parquet_sha256,omitempty"`
	Night         string  `json:"night,omitempty"`
}

// partJSON and partParquet are a part's files; a part is complete when
// its directory has its final name (locally) or part.json exists (object
// storage, where it is uploaded last), and part.parquet has the size
// part.json records.
const (
	partJSON    = "part.json"
	partParquet = "part.parquet"
)

// SchedulerRunID identifies the scheduler's run of the night this process
// is a task of, shared by all its shards and kept by their retries: the
// Kubernetes Job ($BATCHMATCH_JOB_NAME, from the pod's job-name label), the
// Slurm array job ($SLURM_ARRAY_JOB_ID), the AWS Batch array job
// ($AWS_BATCH_JOB_ID without its index) or the Cloud Run execution
// ($CLOUD_RUN_EXECUTION); "" when none is set (a shard started by hand).
// Parts record it, so that a night can tell the parts of its own run from
// those an earlier run of the same date left (Decide).
func SchedulerRunID(getenv func(string) string) string {
	if v := getenv("BATCHMATCH_JOB_NAME"); v != "" {
		return "job/" + v
	}
	if v := getenv("SLURM_ARRAY_JOB_ID"); v != "" {
		return "slurm/" + v
	}
	if v := getenv("AWS_BATCH_JOB_ID"); v != "" {
		id, _, _ := strings.Cut(v, ":")
		return "aws-batch/" + id
	}
	if v := getenv("CLOUD_RUN_EXECUTION"); v != "" {
		return "cloud-run/" + v
	}
	return ""
}

// openShardDir opens (creating) OUT/_temporary/shards/<partition>/<count>/<index>,
// following no link on the way.
func openShardDir(out, partition string, spec match.ShardSpec, h *Hooks) (*outDir, error) {
	d, err := openOutRoot(out, h)
	if err != nil {
		return nil, err
	}
	for _, name := range []string{StagingDir, shardsDir, partition, strconv.Itoa(spec.Count), strconv.Itoa(spec.Index)} {
		next, err := d.sub(name, true)
		d.Close()
		if err != nil {
			return nil, fmt.Errorf("creating the part directory: %w", err)
		}
		d = next
	}
	return d, nil
}

// partAttempt is one complete part of a shard: what its part.json says
// and where it is.
type partAttempt struct {
	index int
	name  string // the attempt
	dir   string // for messages
	rel   string // its part.parquet, relative to shards (slash path)
	pm    partManifest
	// shards is the directory the part was found under (the local root's
	// _temporary/shards); nil for a listing from object storage.
	shards   *outDir
	verified bool // its content matched the SHA-256 part.json records
}

// PartSet is the parts of one shard run id (the same inputs and
// configuration) for one shard count: per index its complete attempts,
// the earliest first (any complete attempt of an index is identical).
type PartSet struct {
	runID    string
	count    int
	cands    [][]*partAttempt // by index; empty: none yet
	finished time.Time        // when its newest part finished
}

// Complete reports whether every shard index has a part.
func (s *PartSet) Complete() bool { return len(s.missing()) == 0 }

func (s *PartSet) missing() []int {
	var m []int
	for i, c := range s.cands {
		if len(c) == 0 {
			m = append(m, i)
		}
	}
	return m
}

// first is the first part of every index present (nil where none).
func (s *PartSet) first() []*partAttempt {
	ps := make([]*partAttempt, len(s.cands))
	for i, c := range s.cands {
		if len(c) > 0 {
			ps[i] = c[0]
		}
	}
	return ps
}

// Describe is one line about the set for messages.
func (s *PartSet) Describe() string {
	return fmt.Sprintf("run %s: %d of %d shards (missing %v, newest part finished %s)",
		s.runID, s.count-len(s.missing()), s.count, s.missing(), s.finished.Format(time.RFC3339))
}

// scan is what scanParts found: the shard count, the complete parts, the
// attempts whose part.json cannot be read (bad), and the broken ones
// (part.json says what part.parquet must be, and it is not).
type scan struct {
	count  int
	parts  []*partAttempt
	bad    []string
	broken []string // slash paths of attempt directories, relative to shards
}

// scanParts reads every complete part of partition under shards (nil: no
// parts at all) with count shards (0: the only count present). With
// local, a part's part.parquet must be there with the size part.json
// records (a spool of object storage holds only the part.json that were
// checked against the listing). Nothing is followed through a link.
func scanParts(shards *outDir, partition string, count int, local bool) (scan, error) {
	sc := scan{count: count}
	if shards == nil {
		return sc, nil
	}
	if st, ok, err := shards.lstat(partition); err != nil || !ok || !isDir(st) {
		return sc, err
	}
	pd, err := shards.sub(partition, false)
	if err != nil {
		return sc, err
	}
	defer pd.Close()
	names, err := pd.names()
	if err != nil {
		return sc, err
	}
	if sc.count == 0 {
		for _, n := range names {
			c, err := strconv.Atoi(n)
			if st, ok, _ := pd.lstat(n); err != nil || !ok || !isDir(st) || c < 1 {
				continue
			}
			if sc.count != 0 {
				return scan{}, failure.Usagef("parts of several shard counts under %s: pass --shard-count", pd.path)
			}
			sc.count = c
		}
	}
	if sc.count == 0 {
		return sc, nil
	}
	cd, err := pd.sub(strconv.Itoa(sc.count), false)
	if errors.Is(err, fs.ErrNotExist) {
		return sc, nil
	}
	if err != nil {
		return sc, err
	}
	defer cd.Close()
	for i := range sc.count {
		if st, ok, err := cd.lstat(strconv.Itoa(i)); err != nil || !ok || !isDir(st) {
			continue
		}
		id, err := cd.sub(strconv.Itoa(i), false)
		if err != nil {
			return sc, err
		}
		ns, err := id.names()
		if err != nil {
			id.Close()
			return sc, err
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
			var pm partManifest
			if err == nil && ok {
				err = json.Unmarshal(raw, &pm)
			}
			rel := path.Join(partition, strconv.Itoa(sc.count), strconv.Itoa(i), n)
			if err != nil || !ok || pm.Part.Shard != (match.ShardSpec{Index: i, Count: sc.count}) || pm.ShardRunID == "" {
				ad.Close()
				sc.bad = append(sc.bad, id.join(n))
				continue
			}
			if local {
				size, ok := ad.fileSize(partParquet)
				if !ok || pm.ParquetSize > 0 && size != pm.ParquetSize {
					ad.Close()
					sc.broken = append(sc.broken, rel)
					continue
				}
			}
			ad.Close()
			sc.parts = append(sc.parts, &partAttempt{index: i, name: n, dir: id.join(n), rel: rel + "/" + partParquet, pm: pm, shards: shards})
		}
		id.Close()
	}
	return sc, nil
}

// groupParts groups parts by shard run id into sets, the most recently
// finished first.
func groupParts(count int, parts []*partAttempt) []*PartSet {
	byID := map[string]*PartSet{}
	var sets []*PartSet
	for _, p := range parts {
		s := byID[p.pm.ShardRunID]
		if s == nil {
			s = &PartSet{runID: p.pm.ShardRunID, count: count, cands: make([][]*partAttempt, count)}
			byID[p.pm.ShardRunID] = s
			sets = append(sets, s)
		}
		s.cands[p.index] = append(s.cands[p.index], p)
		if p.pm.FinishedAt.After(s.finished) {
			s.finished = p.pm.FinishedAt
		}
	}
	for _, s := range sets {
		for _, c := range s.cands {
			slices.SortFunc(c, func(a, b *partAttempt) int { return strings.Compare(a.name, b.name) })
		}
	}
	slices.SortStableFunc(sets, func(a, b *PartSet) int { return b.finished.Compare(a.finished) })
	return sets
}

// consumed reports whether a part of shard run id runID (attempt, shard)
// is dead because the published partition pub holds its result: pub was
// published from it (the manifest lists it, or names its shard run id), or
// by a run with the same run id (identical tables).
func consumed(pub *Published, runID string, shard match.ShardSpec, attempt string) bool {
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

// ConsumedByRun reports whether the published partition pub holds the
// result of the shard run runID (see consumed).
func ConsumedByRun(pub *Published, runID string) bool {
	return consumed(pub, runID, match.ShardSpec{Index: -1}, "")
}

// sweepParts removes, under the output lock, shard part files that are
// provably dead: the .tmp directory of a shard whose owner lock nobody
// holds (the process died), a lock file nobody holds, broken parts (their
// part.parquet is not what part.json records), and complete parts that a
// published partition consumed (see consumed), for every partition except
// skip (the commit of skip decides about its own parts). Links are
// removed, never followed. What cannot be removed (or decided) is a
// warning: a leftover never fails a run.
func (c *committer) sweepParts(skip string) {
	st, ok, err := c.tmp.lstat(shardsDir)
	if err != nil || !ok {
		c.warnLeftover(c.tmp.join(shardsDir), err)
		return
	}
	if !isDir(st) {
		c.log.Warn("removing a stray entry from the staging area", "path", c.tmp.join(shardsDir))
		c.warnLeftover(c.tmp.join(shardsDir), c.tmp.removeAll(shardsDir))
		return
	}
	shards, err := c.tmp.sub(shardsDir, false)
	if err != nil {
		c.warnLeftover(c.tmp.join(shardsDir), err)
		return
	}
	defer shards.Close()
	names, err := shards.names()
	if err != nil {
		c.warnLeftover(shards.path, err)
		return
	}
	for _, p := range names {
		var pub *Published
		if p != skip && CheckPartition(p) == nil {
			if pub, _ = c.publishedAt(p); pub != nil && !pub.Intact() {
				pub = nil // its parts may be what repairs it
			}
		}
		c.sweepPartition(shards, p, pub, false)
	}
	_ = unix.Unlinkat(c.tmp.fd(), shardsDir, unix.AT_REMOVEDIR) // only when empty
}

// sweepPartition is sweepParts for one partition's parts; with all, every
// part that is not being written is removed (a commit that has published
// or found its partition published by them). Failures are warnings.
func (c *committer) sweepPartition(shards *outDir, partition string, pub *Published, all bool) {
	walkPartDirs(shards, partition, c.warnLeftover, func(id *outDir, shard match.ShardSpec, name string) error {
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
			dead, release, err := ownedDead(id, name)
			if err != nil {
				return err
			}
			if dead {
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
			var pm partManifest
			if err == nil && ok {
				err = json.Unmarshal(raw, &pm)
			}
			size, sizeOK := ad.fileSize(partParquet)
			ad.Close()
			switch {
			case err != nil || !ok:
				return nil // unreadable: commit reports it
			case !c.spool && (!sizeOK || pm.ParquetSize > 0 && size != pm.ParquetSize):
				c.log.Warn("removing a broken shard part (its part.parquet is missing or not the size part.json records)", "dir", id.join(name))
			case consumed(pub, pm.ShardRunID, shard, name):
				c.log.Info("removing a shard part that a published partition consumed", "dir", id.join(name))
			default:
				return nil
			}
		}
		return id.removeAll(name)
	})
}

// walkPartDirs calls fn for every entry of every <count>/<index> directory
// of partition under shards, then removes the directories left empty.
// A failure (of fn or of the walk) is reported to warn with its path, and
// the walk goes on.
func walkPartDirs(shards *outDir, partition string, warn func(path string, err error), fn func(id *outDir, shard match.ShardSpec, name string) error) {
	st, ok, err := shards.lstat(partition)
	if err != nil || !ok {
		warn(shards.join(partition), err)
		return
	}
	if !isDir(st) {
		warn(shards.join(partition), shards.removeAll(partition))
		return
	}
	pd, err := shards.sub(partition, false)
	if err != nil {
		warn(shards.join(partition), err)
		return
	}
	defer pd.Close()
	counts, err := pd.names()
	if err != nil {
		warn(pd.path, err)
		return
	}
	for _, cn := range counts {
		count, cerr := strconv.Atoi(cn)
		if st, ok, _ := pd.lstat(cn); !ok || !isDir(st) || cerr != nil {
			warn(pd.join(cn), pd.removeAll(cn))
			continue
		}
		cd, err := pd.sub(cn, false)
		if err != nil {
			warn(pd.join(cn), err)
			continue
		}
		idxs, err := cd.names()
		if err != nil {
			warn(cd.path, err)
		}
		for _, in := range idxs {
			index, ierr := strconv.Atoi(in)
			if st, ok, _ := cd.lstat(in); !ok || !isDir(st) || ierr != nil {
				warn(cd.join(in), cd.removeAll(in))
				continue
			}
			id, err := cd.sub(in, false)
			if err != nil {
				warn(cd.join(in), err)
				continue
			}
			ns, err := id.names()
			if err != nil {
				warn(id.path, err)
			}
			for _, n := range ns {
				warn(id.join(n), fn(id, match.ShardSpec{Index: index, Count: count}, n))
			}
			id.Close()
			_ = unix.Unlinkat(cd.fd(), in, unix.AT_REMOVEDIR)
		}
		cd.Close()
		_ = unix.Unlinkat(pd.fd(), cn, unix.AT_REMOVEDIR)
	}
	_ = unix.Unlinkat(shards.fd(), partition, unix.AT_REMOVEDIR)
}

// ConsumedBy reports whether the published partition pub holds this set's
// result (see consumed).
func (s *PartSet) ConsumedBy(pub *Published) bool {
	for _, p := range s.first() {
		if p != nil {
			return consumed(pub, s.runID, p.pm.Part.Shard, p.name)
		}
	}
	return false
}

// RunID is the shard run id the parts carry.
func (s *PartSet) RunID() string { return s.runID }

// Config is the run configuration the parts record (the same in every part
// of a set, up to the shard).
func (s *PartSet) Config() RunConfig {
	for _, p := range s.first() {
		if p != nil {
			return p.pm.Config
		}
	}
	return RunConfig{}
}

// Parts is what GatherParts found: the sets of complete parts (the most
// recently finished first), the shard count, and the parts whose part.json
// cannot be read.
type Parts struct {
	Sets  []*PartSet
	Count int
	Bad   []string
}

// GatherParts reads every complete part of the partition in the local root
// (count shards; 0: the only count present) and groups them into sets by
// shard run id. Broken parts (part.parquet missing or not the size
// part.json records: a cleanup raced their upload) are dead and removed.
func (s *Staging) GatherParts(count int) (Parts, error) {
	c := s.com
	st, ok, err := c.tmp.lstat(shardsDir)
	if err != nil {
		return Parts{}, err
	}
	if ok && isDir(st) {
		if s.shards, err = c.tmp.sub(shardsDir, false); err != nil {
			return Parts{}, err
		}
	}
	sc, err := scanParts(s.shards, c.partition, count, s.t.remote == "")
	if err != nil {
		return Parts{}, err
	}
	for _, rel := range sc.broken {
		c.log.Warn("removing a broken shard part (its part.parquet is missing or not the size part.json records)", "dir", s.shards.join(rel))
		dir, last, close, err := s.shards.walk(rel)
		if err == nil {
			err = dir.removeAll(last)
			close()
		}
		c.warnLeftover(s.shards.join(rel), err)
	}
	return Parts{Sets: groupParts(sc.count, sc.parts), Count: sc.count, Bad: sc.bad}, nil
}

// PartsLocation is where the partition's parts are, for messages.
func (s *Staging) PartsLocation() string {
	if s.t.remote != "" {
		return s.t.partsRoot
	}
	return s.t.localPartsRoot()
}

// RemoveParts removes the partition's parts from the local root (all but
// those still being written), once a published partition holds their
// result. Failures are warnings.
func (s *Staging) RemoveParts() {
	if s.shards == nil {
		return
	}
	s.com.sweepPartition(s.shards, s.com.partition, nil, true)
	_ = unix.Unlinkat(s.com.tmp.fd(), shardsDir, unix.AT_REMOVEDIR) // only when empty
}

// ErrPartsGone: the parts a commit chose vanished from object storage while
// it downloaded them (another commit published and removed them).
var ErrPartsGone = errors.New("the shard parts vanished while they were downloaded")

// FetchParts brings the tables of set's parts into the spool of an
// object-store target (their part.json came with the target), per index
// the first attempt whose download matches the size and SHA-256 part.json
// records; local parts are where they are. When every attempt of an index
// has vanished meanwhile, the error wraps ErrPartsGone.
func (s *Staging) FetchParts(ctx context.Context, set *PartSet) error {
	t := s.t
	if t.remote == "" {
		return nil
	}
	st := store.Default()
	localRoot := t.localPartsRoot()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i, cands := range set.cands {
		g.Go(func() error {
			var errs []error
			for _, p := range cands {
				rel := strings.TrimPrefix(p.rel, s.com.partition+"/")
				to := filepath.Join(localRoot, filepath.FromSlash(rel))
				err := downloadVerified(gctx, st, store.Join(t.partsRoot, rel), to, p.pm.ParquetSize, p.pm.ParquetSHA256)
				if err == nil {
					p.verified = true // ReadParts skips the attempts before it, which have no local copy
					return nil
				}
				if gctx.Err() != nil {
					return err
				}
				t.log.Warn("a shard part could not be used; trying another attempt of its shard", "part", RedactURL(store.Join(t.partsRoot, rel)), "error", err)
				errs = append(errs, err)
			}
			err := errors.Join(errs...)
			if len(errs) > 0 && !slices.ContainsFunc(errs, func(e error) bool { return !errors.Is(e, fs.ErrNotExist) }) {
				return fmt.Errorf("%w: shard %d of %d: %w", ErrPartsGone, i, set.count, err)
			}
			return fmt.Errorf("%w: no usable part of shard %d of %d: %w", failure.BadData, i, set.count, err)
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	t.log.Info("shard parts downloaded", "parts", len(set.cands), "from", RedactURL(t.partsRoot))
	return nil
}

// downloadVerified downloads an object to a new local file and checks its
// size and SHA-256 (when known); a mismatch removes the file.
func downloadVerified(ctx context.Context, st *store.Store, loc, path string, size int64, sum string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return fsError(err, "creating", filepath.Dir(path))
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
	if err != nil {
		return fsError(err, "creating", path)
	}
	h := sha256.New()
	n, err := st.Download(ctx, loc, io.MultiWriter(f, h))
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fsError(cerr, "writing", path)
	}
	if err == nil && (size > 0 && n != size || sum != "" && hex.EncodeToString(h.Sum(nil)) != sum) {
		err = fmt.Errorf("%w: %s: %d bytes with SHA-256 %x, part.json records %d bytes with SHA-256 %s",
			failure.BadData, RedactURL(loc), n, h.Sum(nil), size, sum)
	}
	if err != nil {
		os.Remove(path)
		if errors.Is(err, fs.ErrNotExist) && !errors.Is(err, failure.BadData) {
			return fmt.Errorf("%w: downloading: %w", failure.NoInput, err)
		}
		if errors.Is(err, failure.BadData) {
			return err
		}
		return remoteError(err, "downloading")
	}
	return nil
}

// DeleteParts removes the parts of an object-store target once the
// published partition holds their result (a local commit removed its own
// with RemoveParts).
func (t *Target) DeleteParts(ctx context.Context) {
	if t.remote == "" {
		return
	}
	CrashPoint("remote-committed")
	if err := store.Default().DeleteAll(ctx, t.partsRoot); err != nil {
		t.log.Warn("published, but the shard parts could not be removed", "error", err)
	}
}

// ReadParts merges the parts of set into every member's list of pop: every
// pair was scored by exactly one shard, so a member's list is the best k of
// the union of its partial lists. Per index it reads the first attempt
// whose content matches the SHA-256 its part.json records (opened inside
// the output without following a link, never blocking on a FIFO). It
// returns the parts it used (with their attempts) and the pair counts they
// add up to.
func ReadParts(set *PartSet, pop *read.Population, k int) (lists [][]match.Cand, used []PartRef, examined, compatible int64, err error) {
	lists = make([][]match.Cand, pop.N)
	for i, cands := range set.cands {
		var p *partAttempt
		var rows []PartRow
		var errs []error
		for _, c := range cands {
			if rows, err = c.read(); err == nil {
				p = c
				break
			}
			errs = append(errs, err)
		}
		if p == nil {
			return nil, nil, 0, 0, fmt.Errorf("%w: no usable part of shard %d of %d: %w", failure.BadData, i, set.count, errors.Join(errs...))
		}
		if p.pm.Part.Members != int64(pop.N) {
			return nil, nil, 0, 0, failure.FileError(failure.BadData, p.dir, "", fmt.Errorf("the part covers %d members, the population has %d", p.pm.Part.Members, pop.N))
		}
		prev, rank := int64(0), int32(0)
		for n, r := range rows {
			if n == 0 || r.UserID != prev {
				prev, rank = r.UserID, 0
			}
			rank++
			i, j := pop.Index(r.UserID), pop.Index(r.MatchID)
			if i < 0 || j < 0 || r.Rank != rank || rank > int32(k) {
				return nil, nil, 0, 0, failure.FileError(failure.BadData, p.dir, "", fmt.Errorf("row %d (user %d, rank %d, match %d) does not fit the population or the part", n, r.UserID, r.Rank, r.MatchID))
			}
			lists[i] = append(lists[i], match.Cand{J: int32(j), S: r.Score})
		}
		examined += p.pm.Counts.PairsExamined
		compatible += p.pm.Counts.PairsCompatible
		part := p.pm.Part
		part.Attempt = p.name
		used = append(used, part)
	}
	for i, l := range lists {
		if len(l) > 0 {
			lists[i] = match.MergeLists(k, l)
		}
	}
	return lists, used, examined, compatible, nil
}

// read reads the part's rows: part.parquet opened inside the output (no
// link followed, a FIFO refused without blocking), its SHA-256 checked
// against part.json (once), then decoded from the same descriptor.
func (p *partAttempt) read() ([]PartRow, error) {
	if p.shards == nil {
		return nil, fmt.Errorf("%w: the part %s has no local copy", failure.Internal, p.dir)
	}
	f, err := p.shards.openRel(p.rel)
	if err != nil {
		if errors.Is(err, failure.Permission) {
			return nil, err
		}
		return nil, failure.FileError(failure.BadData, p.dir, "", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, failure.FileError(failure.IO, p.dir, "", err)
	}
	if !p.verified && p.pm.ParquetSHA256 != "" {
		h := sha256.New()
		if _, err := io.Copy(h, io.NewSectionReader(f, 0, st.Size())); err != nil {
			return nil, failure.FileError(failure.IO, p.dir, "", err)
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != p.pm.ParquetSHA256 {
			return nil, failure.FileError(failure.BadData, p.dir, "", fmt.Errorf("part.parquet has SHA-256 %s, part.json records %s", got, p.pm.ParquetSHA256))
		}
		p.verified = true
	}
	rows, err := parquet.Read[PartRow](f, st.Size())
	if err != nil {
		return nil, failure.FileError(failure.BadData, p.dir, "", err)
	}
	return rows, nil
}

// PartWriter writes the part of one attempt of a shard: in <attempt>.tmp,
// next to an <attempt>.lock held for the process's lifetime (ownerLock),
// so that a commit or run that finds the .tmp of a killed shard can prove
// it dead and remove it; renamed to <attempt> when complete. Shards take no
// output lock.
type PartWriter struct {
	idx               *outDir // OUT/_temporary/shards/<partition>/<count>/<index>
	attempt           string
	lockName, tmpName string
	lock              *os.File
	tmp               *outDir
	part              PartRef
}

// CreatePart creates the part directory of attempt for shard in the local
// root.
func (t *Target) CreatePart(shard match.ShardSpec, attempt string) (*PartWriter, error) {
	idx, err := openShardDir(t.root, t.partition, shard, t.hooks)
	if err != nil {
		return nil, err
	}
	pw := &PartWriter{idx: idx, attempt: attempt, lockName: attempt + ".lock", tmpName: attempt + ".tmp",
		part: PartRef{Shard: shard, Attempt: attempt}}
	if pw.lock, err = ownerLock(idx, pw.lockName); err != nil {
		idx.Close()
		return nil, err
	}
	if pw.tmp, err = idx.sub(pw.tmpName, true); err != nil {
		releaseOwner(idx, pw.lockName, pw.lock)
		idx.Close()
		return nil, fmt.Errorf("creating the part directory: %w", err)
	}
	return pw, nil
}

// WriteRows writes every member's partial list as the part's table (ids
// are the members' ids by index); runID is the shard run id.
func (pw *PartWriter) WriteRows(runID string, ids []int64, lists [][]match.Cand) error {
	meta := map[string]string{"batchmatch.shard_run_id": runID, "batchmatch.shard": pw.part.Shard.String()}
	pw.part.Members = int64(len(ids)) // every member's partial list
	rows, err := writeTable(filepath.Join(pw.tmp.path, partParquet), meta, tableLayout{rgRows: 4 << 20}, pw.idx.hooks, func(add func(PartRow) error) error {
		for i, l := range lists {
			for r, c := range l {
				if err := add(PartRow{UserID: ids[i], Rank: int32(r + 1), MatchID: ids[c.J], Score: c.S}); err != nil {
					return err
				}
			}
		}
		return nil
	})
	pw.part.Rows = rows
	return err
}

// Part is what the part holds.
func (pw *PartWriter) Part() PartRef { return pw.part }

// Finish writes part.json (the shard's manifest m, the part, m's run id as
// the shard run id, part.parquet's size and SHA-256, and the scheduler's
// run of the night, SchedulerRunID) and renames the part into place: it is
// complete. It returns the part's directory.
func (pw *PartWriter) Finish(m *Manifest) (string, error) {
	f, err := pw.tmp.open(partParquet, os.O_RDONLY, 0)
	if err != nil {
		return "", fsError(err, "reading back", pw.tmp.join(partParquet))
	}
	h := sha256.New()
	size, err := io.Copy(h, f)
	f.Close()
	if err != nil {
		return "", fsError(err, "reading back", pw.tmp.join(partParquet))
	}
	b, err := json.MarshalIndent(partManifest{Manifest: *m, Part: pw.part, ShardRunID: m.RunID,
		ParquetSize: size, ParquetSHA256: hex.EncodeToString(h.Sum(nil)), Night: SchedulerRunID(os.Getenv)}, "", "  ")
	if err != nil {
		return "", fmt.Errorf("encoding the part manifest: %w", err)
	}
	if err := pw.idx.hooks.writeFileSync(filepath.Join(pw.tmp.path, partJSON), b); err != nil {
		return "", err
	}
	if err := pw.tmp.sync(); err != nil {
		return "", err
	}
	CrashPoint("shard-written")
	if err := pw.idx.rename(pw.tmpName, pw.idx, pw.attempt); err != nil {
		return "", fmt.Errorf("placing the part: %w", err)
	}
	if err := pw.idx.sync(); err != nil {
		return "", err
	}
	return pw.idx.join(pw.attempt), nil
}

// Close removes what is left of an unfinished part and releases the owner
// lock. Safe to call twice.
func (pw *PartWriter) Close() {
	if pw.idx == nil {
		return
	}
	pw.tmp.Close()
	_ = pw.idx.removeAll(pw.tmpName)           // gone once renamed; removed on failure
	releaseOwner(pw.idx, pw.lockName, pw.lock) // after the .tmp is gone
	pw.idx.Close()
	pw.idx = nil
}
