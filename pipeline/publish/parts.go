package publish

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
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
// shard's), what it covered, and the run id without a pseudonym key, which
// every shard and the commit must agree on.
type partManifest struct {
	Manifest
	Part       PartRef `json:"part"`
	ShardRunID string  `json:"shard_run_id"`
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
	dir   string
	pm    partManifest
}

// PartSet is the parts of one shard run id (the same inputs and
// configuration) for one shard count: per index the earliest complete
// attempt (any complete attempt of an index is identical).
type PartSet struct {
	runID    string
	count    int
	parts    []*partAttempt // by index; nil: none yet
	finished time.Time      // when its newest part finished
}

// Complete reports whether every shard index has a part.
func (s *PartSet) Complete() bool {
	for _, p := range s.parts {
		if p == nil {
			return false
		}
	}
	return true
}

func (s *PartSet) missing() []int {
	var m []int
	for i, p := range s.parts {
		if p == nil {
			m = append(m, i)
		}
	}
	return m
}

// Describe is one line about the set for messages.
func (s *PartSet) Describe() string {
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
func groupParts(count int, parts []*partAttempt) []*PartSet {
	byID := map[string]*PartSet{}
	var sets []*PartSet
	for _, p := range parts {
		s := byID[p.pm.ShardRunID]
		if s == nil {
			s = &PartSet{runID: p.pm.ShardRunID, count: count, parts: make([]*partAttempt, count)}
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
		var pub *Published
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
func (c *committer) sweepPartition(shards *outDir, partition string, pub *Published, all bool) error {
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

// ConsumedBy reports whether the published partition pub holds this set's
// result (see consumed).
func (s *PartSet) ConsumedBy(pub *Published) bool {
	for _, p := range s.parts {
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
func (s *PartSet) Config() RunConfig { return s.parts[0].pm.Config }

// GatherParts reads every complete part of the partition in the local root
// (count shards; 0: the only count present) and groups them into sets by
// shard run id, the most recently finished first. Parts whose part.json
// cannot be read are returned in bad.
func (s *Staging) GatherParts(count int) (sets []*PartSet, bad []string, err error) {
	c := s.com
	st, ok, err := c.tmp.lstat(shardsDir)
	if err != nil {
		return nil, nil, err
	}
	if ok && isDir(st) {
		if s.shards, err = c.tmp.sub(shardsDir, false); err != nil {
			return nil, nil, err
		}
	}
	count, found, bad, err := scanParts(s.shards, c.partition, count)
	if err != nil {
		return nil, nil, err
	}
	return groupParts(count, found), bad, nil
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
// result.
func (s *Staging) RemoveParts() error {
	if s.shards == nil {
		return nil
	}
	err := s.com.sweepPartition(s.shards, s.com.partition, nil, true)
	_ = unix.Unlinkat(s.com.tmp.fd(), shardsDir, unix.AT_REMOVEDIR) // only when empty
	return err
}

// FetchParts brings the tables of set's parts into the spool of an
// object-store target (their part.json came with the target); local parts
// are where they are.
func (s *Staging) FetchParts(ctx context.Context, set *PartSet) error {
	t := s.t
	if t.remote == "" {
		return nil
	}
	st := store.Default()
	localRoot := t.localPartsRoot()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for _, p := range set.parts {
		rel, err := filepath.Rel(localRoot, filepath.Join(p.dir, partParquet))
		if err != nil {
			return fmt.Errorf("%w: placing the part: %w", failure.Internal, err)
		}
		g.Go(func() error {
			return downloadFile(gctx, st, store.Join(t.partsRoot, filepath.ToSlash(rel)), filepath.Join(localRoot, rel))
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	t.log.Info("shard parts downloaded", "parts", len(set.parts), "from", RedactURL(t.partsRoot))
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
// the union of its partial lists. It returns the parts it used (with their
// attempts) and the pair counts they add up to.
func ReadParts(set *PartSet, pop *read.Population, k int) (lists [][]match.Cand, used []PartRef, examined, compatible int64, err error) {
	lists = make([][]match.Cand, pop.N)
	for _, p := range set.parts {
		if p.pm.Part.Members != int64(pop.N) {
			return nil, nil, 0, 0, failure.FileError(failure.BadData, p.dir, "", fmt.Errorf("the part covers %d members, the population has %d", p.pm.Part.Members, pop.N))
		}
		path := filepath.Join(p.dir, partParquet)
		rows, err := parquet.ReadFile[PartRow](path)
		if err != nil {
			return nil, nil, 0, 0, failure.FileError(failure.BadData, path, "", err)
		}
		prev, rank := int64(0), int32(0)
		for n, r := range rows {
			if n == 0 || r.UserID != prev {
				prev, rank = r.UserID, 0
			}
			rank++
			i, j := pop.Index(r.UserID), pop.Index(r.MatchID)
			if i < 0 || j < 0 || r.Rank != rank || rank > int32(k) {
				return nil, nil, 0, 0, failure.FileError(failure.BadData, path, "", fmt.Errorf("row %d (user %d, rank %d, match %d) does not fit the population or the part", n, r.UserID, r.Rank, r.MatchID))
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

// Finish writes part.json (the shard's manifest m, the part, and m's run
// id as the shard run id) and renames the part into place: it is
// complete. It returns the part's directory.
func (pw *PartWriter) Finish(m *Manifest) (string, error) {
	b, err := json.MarshalIndent(partManifest{Manifest: *m, Part: pw.part, ShardRunID: m.RunID}, "", "  ")
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
