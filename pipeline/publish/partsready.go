package publish

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/osmosis/batchmatch/pipeline/failure"
	"github.com/osmosis/batchmatch/pipeline/match"
	"github.com/osmosis/batchmatch/pipeline/store"
)

// Verdict is what the parts of a partition allow (Decide).
type Verdict int

// The verdicts.
const (
	// Waiting: some shard index has no part yet (of this night, when the
	// night is known): its shard has not finished. Retry later.
	Waiting Verdict = iota
	// Ready: a complete set of parts of the current run is there.
	Ready
	// Mixed: every shard index has a part, but no complete set is of the
	// current run: the inputs changed while the shards ran (or since).
	// Waiting cannot help; the shards must run again.
	Mixed
)

// Decision is Decide's verdict with what it was made from.
type Decision struct {
	Verdict Verdict
	Set     *PartSet   // Ready: the set to publish
	Sets    []*PartSet // every set, the most recently finished first
	Count   int        // the shard count (0: no part at all)
	Missing []int      // Waiting: the indices without a part (of this night)
}

// Describe says what the decision saw, for messages: every set (run id,
// shards present and missing, when its newest part finished).
func (d Decision) Describe() string {
	if len(d.Sets) == 0 {
		return "no complete shard part"
	}
	var ds []string
	for _, s := range d.Sets {
		ds = append(ds, s.Describe())
	}
	return strings.Join(ds, "; ")
}

// Decide is the one decision about a partition's parts, for the commit
// (which set to publish, or why none) and for `batchmatch night` (whether
// this shard completed the set and so commits, or another shard is still
// running, or the night cannot complete). current tells whether a complete
// set is of the current run (the commit computes it from the inputs; a
// night shard knows its own shard run id); it is asked only about
// complete sets, the most recently finished first, and the first it
// accepts is Ready. Otherwise the verdict is Mixed when every index has a
// part, Waiting when some has none. With night set (SchedulerRunID), only
// parts of that scheduler run, or of none (started by hand), count as
// done: parts an earlier run of the night left do not make a night Mixed
// while its own shards are still running.
func Decide(p Parts, night string, current func(*PartSet) (bool, error)) (Decision, error) {
	d := Decision{Sets: p.Sets, Count: p.Count}
	for _, s := range p.Sets {
		if !s.Complete() {
			continue
		}
		ok, err := current(s)
		if err != nil {
			return d, err
		}
		if ok {
			d.Verdict, d.Set = Ready, s
			return d, nil
		}
	}
	if p.Count == 0 {
		d.Verdict = Waiting
		return d, nil
	}
	for i := range p.Count {
		done := false
		for _, s := range p.Sets {
			done = done || slices.ContainsFunc(s.cands[i], func(a *partAttempt) bool { return night == "" || a.pm.Night == "" || a.pm.Night == night })
		}
		if !done {
			d.Missing = append(d.Missing, i)
		}
	}
	if len(d.Missing) == 0 {
		d.Verdict = Mixed
	} else {
		d.Verdict = Waiting
	}
	return d, nil
}

// PartsView is what a night shard sees without the lock: the partition's
// parts and its published state.
type PartsView struct {
	Parts     Parts
	Published *Published // nil: not published
	Where     string     // the parts' location, for messages
}

// ViewParts lists the parts of the sharded run for partition under out
// (count shards; 0: whichever count has parts) and reads the partition's
// published state, locally or on object storage: no lock, nothing
// removed, on object storage only the small part.json files downloaded
// (into memory). `batchmatch night` decides with it (Decide) whether to
// commit.
func ViewParts(ctx context.Context, out, partition string, count int) (*PartsView, error) {
	if store.IsURL(out) {
		st := store.Default()
		root := store.Join(out, StagingDir, shardsDir, partition)
		rp, err := listRemoteParts(ctx, st, root, count)
		if err != nil {
			return nil, err
		}
		pub, err := readRemotePublished(ctx, st, store.Join(out, partition))
		if err != nil {
			return nil, err
		}
		return &PartsView{Parts: Parts{Sets: groupParts(rp.count, rp.parts), Count: rp.count, Bad: rp.bad}, Published: pub, Where: RedactURL(root)}, nil
	}
	v := &PartsView{Where: filepath.Join(out, StagingDir, shardsDir, partition), Parts: Parts{Count: count}}
	if _, err := os.Lstat(out); errors.Is(err, fs.ErrNotExist) {
		return v, nil
	}
	root, err := openOutRoot(out, nil)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	if v.Published, err = publishedIn(root, partition); err != nil {
		return nil, err
	}
	var shards *outDir
	if st, ok, err := root.lstat(StagingDir); err != nil {
		return nil, err
	} else if ok && isDir(st) {
		tmp, err := root.sub(StagingDir, false)
		if err != nil {
			return nil, err
		}
		defer tmp.Close()
		if st, ok, err := tmp.lstat(shardsDir); err != nil {
			return nil, err
		} else if ok && isDir(st) {
			if shards, err = tmp.sub(shardsDir, false); err != nil {
				return nil, err
			}
			defer shards.Close()
		}
	}
	sc, err := scanParts(shards, partition, count, true)
	if err != nil {
		return nil, err
	}
	v.Parts = Parts{Sets: groupParts(sc.count, sc.parts), Count: sc.count, Bad: sc.bad}
	return v, nil
}

// remoteParts is a listing of the parts of one partition on object storage.
type remoteParts struct {
	count int
	parts []*partAttempt // complete: part.json read, part.parquet listed with its size
	raw   map[*partAttempt][]byte
	bad   []string
	// broken: part.json there but part.parquet missing or of another size:
	// dead (part.json is uploaded last, so it can never become complete).
	broken []string
	// incomplete: no part.json (yet): an upload in progress or abandoned.
	incomplete []string
}

// listRemoteParts lists the parts under root (the partition's parts on
// object storage) with count shards (0: the only count present) and reads
// every part.json, checking part.parquet's listed size against it.
func listRemoteParts(ctx context.Context, st *store.Store, root string, count int) (*remoteParts, error) {
	objs, err := st.ListObjects(ctx, root)
	if err != nil {
		return nil, remoteError(err, "listing the shard parts under "+RedactURL(root))
	}
	type attempt struct {
		json       bool
		parquet    int64 // -1: none
		count, idx int
	}
	atts := map[string]*attempt{}
	var names []string
	counts := map[int]bool{}
	for _, o := range objs {
		seg := strings.Split(o.Key, "/")
		if len(seg) != 4 || seg[2] == "" || strings.HasPrefix(seg[2], ".") {
			continue
		}
		n, err1 := strconv.Atoi(seg[0])
		i, err2 := strconv.Atoi(seg[1])
		if err1 != nil || err2 != nil || n < 1 || i < 0 || i >= n {
			continue
		}
		dir := path.Join(seg[0], seg[1], seg[2])
		a := atts[dir]
		if a == nil {
			a = &attempt{parquet: -1, count: n, idx: i}
			atts[dir] = a
			names = append(names, dir)
		}
		switch seg[3] {
		case partJSON:
			a.json = true
			counts[n] = true
		case partParquet:
			a.parquet = o.Size
		}
	}
	rp := &remoteParts{count: count, raw: map[*partAttempt][]byte{}}
	if rp.count == 0 {
		for n := range counts {
			if rp.count != 0 {
				return nil, failure.Usagef("parts of several shard counts under %s: pass --shard-count", RedactURL(root))
			}
			rp.count = n
		}
	}
	slices.Sort(names)
	for _, dir := range names {
		a := atts[dir]
		if a.count != rp.count {
			continue
		}
		if !a.json {
			rp.incomplete = append(rp.incomplete, dir)
			continue
		}
		raw, err := st.ReadFile(ctx, store.Join(root, dir, partJSON))
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed since the listing (a commit finished)
		}
		if err != nil {
			return nil, remoteError(err, "reading "+RedactURL(store.Join(root, dir, partJSON)))
		}
		var pm partManifest
		if err := json.Unmarshal(raw, &pm); err != nil || pm.Part.Shard != (match.ShardSpec{Index: a.idx, Count: a.count}) || pm.ShardRunID == "" {
			rp.bad = append(rp.bad, RedactURL(store.Join(root, dir)))
			continue
		}
		if a.parquet < 0 || pm.ParquetSize > 0 && a.parquet != pm.ParquetSize {
			rp.broken = append(rp.broken, dir)
			continue
		}
		p := &partAttempt{index: a.idx, name: path.Base(dir), dir: RedactURL(store.Join(root, dir)), pm: pm}
		rp.parts = append(rp.parts, p)
		rp.raw[p] = raw
	}
	return rp, nil
}

// remotePartTTL is how old (by its attempt id) an attempt without part.json
// must be before a sweep takes it for abandoned: no shard takes this long.
const remotePartTTL = 48 * time.Hour

// attemptTime is when an attempt started, from its id (zero if unknown).
func attemptTime(name string) time.Time {
	t, err := time.Parse("20060102T150405Z", strings.SplitN(name, "-", 2)[0])
	if err != nil {
		return time.Time{}
	}
	return t
}

// SweepParts removes, on object storage, shard parts that are provably
// dead (the counterpart of the local sweepParts, which object storage's
// lack of locks makes narrower): broken parts (part.json there,
// part.parquet missing or of another size), parts that an intact published
// partition consumed, and, under a published partition, attempts without
// part.json older than two days. skip is a partition whose parts its
// commit handles itself. Failures are warnings.
func (t *Target) SweepParts(ctx context.Context, skip string) {
	if t.remote == "" {
		return
	}
	st := store.Default()
	root := store.Join(t.remote, StagingDir, shardsDir)
	keys, err := st.List(ctx, root)
	if err != nil {
		t.log.Warn("the shard parts could not be listed for removal", "error", err)
		return
	}
	var partitions []string
	for _, k := range keys {
		p, _, _ := strings.Cut(k, "/")
		if p != skip && !slices.Contains(partitions, p) && CheckPartition(p) == nil {
			partitions = append(partitions, p)
		}
	}
	for _, p := range partitions {
		sweepRemotePartition(ctx, st, t.log, store.Join(root, p), store.Join(t.remote, p))
	}
}

// sweepRemotePartition is SweepParts for the parts under root of the
// partition dst.
func sweepRemotePartition(ctx context.Context, st *store.Store, log *slog.Logger, root, dst string) {
	objs, err := st.ListObjects(ctx, root)
	if err != nil {
		log.Warn("the shard parts could not be listed for removal", "parts", RedactURL(root), "error", err)
		return
	}
	counts := map[int]bool{}
	for _, o := range objs {
		if n, err := strconv.Atoi(strings.SplitN(o.Key, "/", 2)[0]); err == nil && n > 0 {
			counts[n] = true
		}
	}
	pub, err := readRemotePublished(ctx, st, dst)
	if err != nil {
		log.Warn("the shard parts could not be checked for removal", "parts", RedactURL(root), "error", err)
		return
	}
	if pub != nil && !pub.Intact() {
		pub = nil // its parts may be what repairs it
	}
	remove := func(dir, why string) {
		loc := store.Join(root, dir)
		if err := st.DeleteAll(ctx, loc); err != nil {
			log.Warn("a dead shard part could not be removed", "part", RedactURL(loc), "error", err)
			return
		}
		log.Info("removed a dead shard part: "+why, "part", RedactURL(loc))
	}
	for n := range counts {
		rp, err := listRemoteParts(ctx, st, root, n)
		if err != nil {
			log.Warn("the shard parts could not be listed for removal", "parts", RedactURL(root), "error", err)
			continue
		}
		for _, dir := range rp.broken {
			remove(dir, "part.parquet is missing or not the size part.json records")
		}
		for _, p := range rp.parts {
			if consumed(pub, p.pm.ShardRunID, p.pm.Part.Shard, p.name) {
				remove(path.Join(strconv.Itoa(p.pm.Part.Shard.Count), strconv.Itoa(p.index), p.name), "a published partition consumed it")
			}
		}
		for _, dir := range rp.incomplete {
			if at := attemptTime(path.Base(dir)); pub != nil && !at.IsZero() && time.Since(at) > remotePartTTL {
				remove(dir, "an upload abandoned before it completed")
			}
		}
	}
}

// downloadPartManifests brings the part.json of every complete remote
// attempt (<count>/<index>/<attempt>/part.json whose part.parquet is
// there with the size it records) into the spool, and removes the broken
// ones (dead: see listRemoteParts).
func (t *Target) downloadPartManifests(ctx context.Context, count int) error {
	st := store.Default()
	t.partsRoot = store.Join(t.remote, StagingDir, shardsDir, t.partition)
	rp, err := listRemoteParts(ctx, st, t.partsRoot, count)
	if err != nil {
		return err
	}
	for _, dir := range rp.broken {
		loc := store.Join(t.partsRoot, dir)
		t.log.Warn("removing a broken shard part (part.parquet is missing or not the size part.json records)", "part", RedactURL(loc))
		if err := st.DeleteAll(ctx, loc); err != nil {
			t.log.Warn("the broken shard part could not be removed", "part", RedactURL(loc), "error", err)
		}
	}
	localRoot := t.localPartsRoot()
	for _, p := range rp.parts {
		to := filepath.Join(localRoot, strconv.Itoa(p.pm.Part.Shard.Count), strconv.Itoa(p.index), p.name, partJSON)
		if err := os.MkdirAll(filepath.Dir(to), 0o750); err != nil {
			return fsError(err, "creating", filepath.Dir(to))
		}
		if err := os.WriteFile(to, rp.raw[p], 0o640); err != nil {
			return fsError(err, "writing", to)
		}
	}
	for _, b := range rp.bad {
		t.log.Warn("a shard part's part.json is unreadable", "part", b)
	}
	return nil
}
