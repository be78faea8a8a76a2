package publish

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/osmosis/batchmatch/pipeline/failure"
	"github.com/osmosis/batchmatch/pipeline/store"
)

// Remote output (--out s3://…, gs://…, file://…, mem://…).
//
// Object stores have no rename and no lock, so a run with a remote --out
// does everything a local run does in a private spool directory on local
// disk (under --spool-dir, removed at the end) and then pushes:
//
//   - a whole run uploads the partition's files under names no earlier
//     publish used (each carries the publishing attempt id:
//     matches/part-00000-<attempt>.parquet, manifest-<attempt>.json,
//     report-<attempt>.html), then writes OUT/<partition>/_SUCCESS, which
//     lists them with their sizes, and only then deletes the objects the
//     new _SUCCESS does not list and that batchmatch could have written
//     (ownName: an earlier publish's, leftovers of killed ones; nothing
//     else under the partition is ever deleted). _SUCCESS is always
//     written on a condition: created only if there is none (S3
//     If-None-Match: *, GCS generation 0, link(2) for file://), replaced
//     only if it is still the version this publisher read (S3 If-Match on
//     its ETag, a GCS generation match, the same content under a lock for
//     file://). So at every moment _SUCCESS lists a complete set of files
//     that all exist: an object is never rewritten once a _SUCCESS listed
//     it, and it is deleted only after _SUCCESS stopped listing it. A
//     killed --overwrite leaves the old publish in force (before the
//     write) or the new one (after it), plus objects nobody lists, which
//     the next publish removes. Readers read _SUCCESS and then exactly the
//     files it lists; one that finds a listed file gone (an overwrite
//     finished meanwhile) starts again from _SUCCESS.
//   - a conditional write that fails is read back: _SUCCESS naming this
//     very attempt means that the write succeeded and only its answer was
//     lost (then retried); anything else means another publisher won, and
//     this one deletes only its own uploads, never a file the winner's
//     _SUCCESS lists, and succeeds when the winner has the same run id
//     (identical tables).
//   - a shard uploads its part to OUT/_temporary/shards/<partition>/<count>/<index>/<attempt>/,
//     part.parquet first and part.json (with part.parquet's size and
//     SHA-256) last: a part is complete when its part.json exists and its
//     part.parquet has the size recorded, so a pod lost mid-upload leaves
//     nothing commit uses.
//   - commit downloads every complete part's part.json into its spool,
//     picks the set to publish as a local commit does (Decide), downloads
//     its tables (checking their SHA-256), merges and publishes as a local
//     commit does, pushes the partition as a whole run does, then deletes
//     the parts.
//
// Concurrency is the scheduler's (concurrencyPolicy: Forbid); the
// conditional writes are the last guard: of two publishers racing for one
// partition only one writes _SUCCESS, and the loser removes what it
// uploaded. Because the tables are a pure function of the inputs and the
// configuration, a run that finds the partition published by the same run
// id (a retry whose first attempt published) succeeds without uploading,
// unless files that _SUCCESS lists are missing: then it publishes again
// (a repair). A run of another run id fails with failure.Exists unless
// --overwrite.
//
// The spool directory carries an owner lock (ownerLock) held for the
// process's lifetime: a later run that finds a spool nobody holds (its
// process was killed) removes it.

// spoolPrefix names spool directories under --spool-dir.
const spoolPrefix = "batchmatch-spool-"

// remoteError classifies a failed object-store operation: a refusal or a
// configuration problem (failure.Permission, failure.Config) is not retried by the
// scheduler, anything else is failure.IO.
func remoteError(err error, what string) error {
	return fmt.Errorf("%w: %s: %w", failure.OSKind(err, failure.IO), what, err)
}

// readRemotePublished reads dst's _SUCCESS (with its version) and the
// manifest it names, and lists dst to check that every file _SUCCESS
// lists is there with its size (nil: the partition is not published).
func readRemotePublished(ctx context.Context, st *store.Store, dst string) (*Published, error) {
	body, v, err := st.ReadVersion(ctx, store.Join(dst, SuccessFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, remoteError(err, "checking "+RedactURL(dst))
	}
	p := &Published{success: ParseSuccess(body), version: v}
	if name := p.success.ManifestName(); validRel(name) {
		raw, err := st.ReadFile(ctx, store.Join(dst, name))
		switch {
		case err == nil:
			var m Manifest
			if json.Unmarshal(raw, &m) == nil {
				p.manifest = &m
			}
		case !errors.Is(err, fs.ErrNotExist):
			return nil, remoteError(err, "reading the published manifest of "+RedactURL(dst))
		}
	}
	objs, err := st.ListObjects(ctx, dst)
	if err != nil {
		return nil, remoteError(err, "listing "+RedactURL(dst))
	}
	sizes := make(map[string]int64, len(objs))
	for _, o := range objs {
		sizes[o.Key] = o.Size
	}
	p.missing = p.success.missingFiles(func(rel string) (int64, bool) { n, ok := sizes[rel]; return n, ok })
	return p, nil
}

// spool is a private local directory a remote run stages its work in,
// marked by an owner lock next to it (ownerLock).
type spool struct {
	dir  string
	base *outDir
	name string
	lock *os.File
}

// newSpool removes the spools of dead runs under base ("": the system's
// temporary directory) and creates a new one (0700).
func newSpool(base string, log *slog.Logger, h *Hooks) (*spool, error) {
	flag := "--spool-dir"
	if base == "" {
		base, flag = os.TempDir(), "the temporary directory ($TMPDIR)"
	}
	f, err := os.OpenFile(base, os.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, pathError(err, flag, "opening the spool directory", base)
	}
	bd := &outDir{f: f, path: base, hooks: h}
	sweepSpools(bd, log)
	for range 10 {
		var b [8]byte
		_, _ = rand.Read(b[:])
		name := spoolPrefix + hex.EncodeToString(b[:])
		lock, err := ownerLock(bd, name+".lock")
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			bd.Close()
			return nil, fmt.Errorf("creating a spool directory: %w", err)
		}
		if err := unix.Mkdirat(bd.fd(), name, 0o700); err != nil {
			releaseOwner(bd, name+".lock", lock)
			if errors.Is(err, unix.EEXIST) {
				continue
			}
			bd.Close()
			return nil, fsError(err, "creating a spool directory in", base)
		}
		return &spool{dir: bd.join(name), base: bd, name: name, lock: lock}, nil
	}
	bd.Close()
	return nil, fmt.Errorf("%w: creating a spool directory in %s: no free name", failure.IO, base)
}

// release removes the spool and its lock.
func (s *spool) release() {
	_ = s.base.removeAll(s.name)
	releaseOwner(s.base, s.name+".lock", s.lock)
	s.base.Close()
}

// sweepSpools removes the spool directories under base whose owner is
// provably dead (no lock file, or one nobody holds: the process that held
// it died) and that belong to this user, and lock files nobody holds.
func sweepSpools(base *outDir, log *slog.Logger) {
	names, err := base.names()
	if err != nil {
		return
	}
	uid := uint32(os.Geteuid())
	for _, n := range names {
		if !strings.HasPrefix(n, spoolPrefix) {
			continue
		}
		st, ok, err := base.lstat(n)
		if err != nil || !ok || st.Uid != uid {
			continue
		}
		if strings.HasSuffix(n, ".lock") {
			if dst, ok, _ := base.lstat(strings.TrimSuffix(n, ".lock")); ok && isDir(dst) {
				continue // decided with its directory
			}
			if dead, release, err := ownedDead(base, n); err == nil && dead {
				release()
			}
			continue
		}
		if !isDir(st) {
			continue
		}
		dead, release, err := ownedDead(base, n+".lock")
		if err != nil || !dead {
			continue
		}
		if err := base.removeAll(n); err != nil {
			log.Warn("the spool directory of a dead run could not be removed", "dir", base.join(n), "error", err)
		} else {
			log.Info("removed the spool directory of a dead run", "dir", base.join(n))
		}
		release()
	}
}

// pushPartition uploads a staged local partition (its files named after
// the attempt, _SUCCESS listing them) to dst, then makes it the published
// one by writing _SUCCESS on a condition, then deletes what _SUCCESS does
// not list (see the comment at the top of this file). already is true when
// dst turned out to be published, intact, by the same run id (identical
// tables), in which case nothing of this publish is left behind.
func pushPartition(ctx context.Context, st *store.Store, log *slog.Logger, dir, dst string, overwrite bool, runID string, h *Hooks) (already bool, err error) {
	files, err := listFiles(dir)
	if err != nil {
		return false, fsError(err, "listing", dir)
	}
	files = slices.DeleteFunc(files, func(f string) bool { return f == SuccessFile })
	body, err := os.ReadFile(filepath.Join(dir, SuccessFile))
	if err != nil {
		return false, fsError(err, "reading the staged _SUCCESS in", dir)
	}
	mine := ParseSuccess(body)
	marker := store.Join(dst, SuccessFile)
	// The partition as it is now (it may have changed since the run began).
	cur, err := readRemotePublished(ctx, st, dst)
	if err != nil {
		return false, err
	}
	switch {
	case cur == nil:
	case !cur.Intact() && cur.RunID() == runID:
		log.Warn("the partition is published by this run, but files its _SUCCESS lists are missing: publishing it again",
			"partition", RedactURL(dst), "run_id", runID, "missing", cur.Missing())
	case !overwrite && cur.RunID() == runID:
		log.Warn("another attempt of the same run already published; its tables are identical", "partition", RedactURL(dst), "run_id", runID)
		return true, nil
	case !overwrite:
		return false, fmt.Errorf("%w: %s is already published by run %s; pass --overwrite to replace it", failure.Exists, RedactURL(dst), cur.RunID())
	}
	if err := uploadFiles(ctx, st, dir, dst, files); err != nil {
		return false, err
	}
	CrashPoint("remote-uploaded")
	h.beforeMarker()
	var prev *store.Version
	if cur != nil {
		prev = &cur.version
	}
	err = st.WriteIf(ctx, marker, body, prev)
	if errors.Is(err, store.ErrExists) {
		theirs, rerr := readRemotePublished(ctx, st, dst)
		if rerr != nil {
			return false, fmt.Errorf("%w: writing %s was refused (%w), and reading it back failed: %w", failure.IO, RedactURL(marker), err, rerr)
		}
		if theirs == nil || theirs.AttemptID() != mine.AttemptID {
			return lostRace(ctx, st, log, dst, files, theirs, runID)
		}
		// Our own write, whose answer was lost: the retry found it done.
		log.Info("_SUCCESS is this attempt's: an earlier try of its write succeeded", "partition", RedactURL(dst))
		err = nil
	}
	if err != nil {
		return false, remoteError(err, "writing "+RedactURL(marker))
	}
	CrashPoint("remote-success")
	h.afterMarker()
	log.Info("published to object storage", "partition", RedactURL(dst), "objects", len(files)+1)
	if err := repairListed(ctx, st, log, dir, dst, mine); err != nil {
		return false, err
	}
	removeUnlisted(ctx, st, log, dst, mine)
	return false, nil
}

// uploadFiles uploads the files (slash paths under dir) to dst, 8 at a time.
func uploadFiles(ctx context.Context, st *store.Store, dir, dst string, files []string) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for _, rel := range files {
		g.Go(func() error {
			if err := st.Upload(gctx, store.Join(dst, rel), filepath.Join(dir, filepath.FromSlash(rel)), false); err != nil {
				return remoteError(err, "uploading "+rel)
			}
			return nil
		})
	}
	return g.Wait()
}

// lostRace is what a publisher does when another one's _SUCCESS (theirs)
// took the partition first: it deletes its own uploads (never a file
// theirs lists) and succeeds when theirs is of the same run id.
func lostRace(ctx context.Context, st *store.Store, log *slog.Logger, dst string, files []string, theirs *Published, runID string) (bool, error) {
	var keep []string
	if theirs != nil {
		keep = theirs.success.Files
	}
	for _, rel := range files {
		if slices.Contains(keep, rel) {
			continue
		}
		if derr := st.Delete(ctx, store.Join(dst, rel)); derr != nil {
			log.Warn("removing an upload of the losing publisher failed", "object", rel, "error", derr)
		}
	}
	if theirs != nil && theirs.RunID() == runID {
		log.Warn("another attempt of the same run published first; its tables are identical", "partition", RedactURL(dst), "run_id", runID)
		return true, nil
	}
	other := ""
	if theirs != nil {
		other = theirs.RunID()
	}
	return false, fmt.Errorf("%w: %s was published by run %q while run %s uploaded to it; the published partition is intact, this run's uploads are removed: publish again with --overwrite to replace it (concurrent runs on one output are the scheduler's to forbid)",
		failure.Exists, RedactURL(dst), other, runID)
}

// repairListed checks, once mine is the published _SUCCESS, that every
// file it lists is there, and uploads again from dir (the same bytes
// under the same name) any that a concurrent publisher's cleanup removed
// while this one was uploading.
func repairListed(ctx context.Context, st *store.Store, log *slog.Logger, dir, dst string, mine Success) error {
	objs, err := st.ListObjects(ctx, dst)
	if err != nil {
		log.Warn("published, but the partition could not be listed to check it", "error", err)
		return nil
	}
	sizes := map[string]int64{}
	for _, o := range objs {
		sizes[o.Key] = o.Size
	}
	missing := mine.missingFiles(func(rel string) (int64, bool) { n, ok := sizes[rel]; return n, ok })
	if len(missing) == 0 {
		return nil
	}
	log.Warn("files of the publish were removed meanwhile (a concurrent publisher's cleanup): uploading them again", "files", missing)
	return uploadFiles(ctx, st, dir, dst, missing)
}

// removeUnlisted deletes what the published _SUCCESS (mine) does not list
// under dst and batchmatch could have written (ownName): an earlier
// publish's files, uploads of killed ones. Before each deletion it checks
// that _SUCCESS is still mine: once another publisher's is, cleaning up
// is that publisher's business. Failures are warnings: the next publish
// removes what is left.
func removeUnlisted(ctx context.Context, st *store.Store, log *slog.Logger, dst string, mine Success) {
	keys, err := st.List(ctx, dst)
	if err != nil {
		log.Warn("published, but objects of earlier publishes could not be listed for removal", "error", err)
		return
	}
	removed := 0
	for _, k := range keys {
		if k == SuccessFile || slices.Contains(mine.Files, k) || !ownName(k) {
			continue
		}
		body, err := st.ReadFile(ctx, store.Join(dst, SuccessFile))
		if err != nil || ParseSuccess(body).AttemptID != mine.AttemptID {
			log.Info("another publish replaced this one: its publisher removes what is left", "partition", RedactURL(dst))
			return
		}
		if err := st.Delete(ctx, store.Join(dst, k)); err != nil {
			log.Warn("published, but an object of an earlier publish could not be removed; the next publish removes it", "object", k, "error", err)
			continue
		}
		removed++
		if removed == 1 {
			CrashPoint("remote-removing")
		}
	}
}

// uploadDir uploads every file under dir to dst, the one named last after
// all others.
func uploadDir(ctx context.Context, st *store.Store, dir, dst, last string) error {
	files, err := listFiles(dir)
	if err != nil {
		return fsError(err, "listing", dir)
	}
	slices.SortStableFunc(files, func(a, b string) int {
		switch {
		case a == last && b != last:
			return 1
		case b == last && a != last:
			return -1
		}
		return 0
	})
	for _, rel := range files {
		if err := st.Upload(ctx, store.Join(dst, rel), filepath.Join(dir, filepath.FromSlash(rel)), false); err != nil {
			return remoteError(err, "uploading "+rel)
		}
	}
	return nil
}

// listFiles returns the regular files under dir as sorted slash paths.
func listFiles(dir string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		files = append(files, filepath.ToSlash(rel))
		return err
	})
	slices.Sort(files)
	return files, err
}

// RedactURL drops a location's query (endpoints and options), for logs and
// messages.
func RedactURL(loc string) string {
	base, _, _ := strings.Cut(loc, "?")
	return base
}
