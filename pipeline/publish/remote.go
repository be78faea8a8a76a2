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
//     lists them, and only then deletes the objects the new _SUCCESS does
//     not list (an earlier publish's, leftovers of killed ones). _SUCCESS
//     is created with a conditional create (If-None-Match: *) when there
//     was none, and replaced in one PUT by --overwrite. So at every moment
//     _SUCCESS lists a complete set of files that all exist: an object is
//     never rewritten once a _SUCCESS listed it, and it is deleted only
//     after _SUCCESS stopped listing it. A killed --overwrite leaves the
//     old publish in force (before the PUT) or the new one (after it),
//     plus objects nobody lists, which the next publish removes.
//     Readers read _SUCCESS and then exactly the files it lists; one that
//     finds a listed file gone (an overwrite finished meanwhile) starts
//     again from _SUCCESS.
//   - a shard uploads its part to OUT/_temporary/shards/<partition>/<count>/<index>/<attempt>/,
//     part.parquet first and part.json last: a part is complete when its
//     part.json exists, so a pod lost mid-upload leaves nothing commit uses.
//   - commit downloads every complete part's part.json into its spool,
//     picks the newest complete set of one run id as a local commit does,
//     downloads its tables, merges and publishes as a local commit does,
//     pushes the partition as a whole run does, then deletes the parts.
//
// Concurrency is the scheduler's (concurrencyPolicy: Forbid); the
// conditional create is the last guard: of two publishers racing for one
// unpublished partition only one creates _SUCCESS, and the loser removes
// what it uploaded. Because the tables are a pure function of the inputs
// and the configuration, a run that finds the partition published by the
// same run id (a retry whose first attempt published) succeeds without
// uploading; a run of another run id fails with failure.Exists unless
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

// readRemotePublished reads dst's _SUCCESS and the manifest it names (nil:
// the partition is not published).
func readRemotePublished(ctx context.Context, st *store.Store, dst string) (*Published, error) {
	body, err := st.ReadFile(ctx, store.Join(dst, SuccessFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, remoteError(err, "checking "+RedactURL(dst))
	}
	p := &Published{success: ParseSuccess(body)}
	raw, err := st.ReadFile(ctx, store.Join(dst, p.success.ManifestName()))
	switch {
	case err == nil:
		var m Manifest
		if json.Unmarshal(raw, &m) == nil {
			p.manifest = &m
		}
	case !errors.Is(err, fs.ErrNotExist):
		return nil, remoteError(err, "reading the published manifest of "+RedactURL(dst))
	}
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
	if base == "" {
		base = os.TempDir()
	}
	f, err := os.OpenFile(base, os.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, fsError(err, "opening the spool directory", base)
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
// one by writing _SUCCESS, then deletes what _SUCCESS does not list (see
// the comment at the top of this file). already is true when dst turned
// out to be published by the same run id (identical tables), in which case
// nothing of this publish is left behind.
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
	marker := store.Join(dst, SuccessFile)
	// The partition as it is now (it may have changed since the run began).
	cur, err := st.ReadFile(ctx, marker)
	exists := err == nil
	switch {
	case exists && !overwrite && successRunID(cur) == runID:
		log.Warn("another attempt of the same run already published; its tables are identical", "partition", RedactURL(dst), "run_id", runID)
		return true, nil
	case exists && !overwrite:
		return false, fmt.Errorf("%w: %s is already published by run %s; pass --overwrite to replace it", failure.Exists, RedactURL(dst), successRunID(cur))
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return false, remoteError(err, "checking "+RedactURL(marker))
	}
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
	if err := g.Wait(); err != nil {
		return false, err
	}
	CrashPoint("remote-uploaded")
	h.beforeMarker()
	if exists {
		// --overwrite: one PUT switches readers from the old file list to
		// the new one; both are complete.
		err = st.WriteFile(ctx, marker, body, false)
	} else {
		err = st.WriteFile(ctx, marker, body, true)
	}
	if errors.Is(err, store.ErrExists) {
		// Another publisher won the race; what we uploaded is nobody's.
		theirs, rerr := st.ReadFile(ctx, marker)
		for _, rel := range files {
			if derr := st.Delete(ctx, store.Join(dst, rel)); derr != nil {
				log.Warn("removing an upload of the losing publisher failed", "object", rel, "error", derr)
			}
		}
		if rerr == nil && successRunID(theirs) == runID {
			log.Warn("another attempt of the same run published first; its tables are identical", "partition", RedactURL(dst), "run_id", runID)
			return true, nil
		}
		return false, fmt.Errorf("%w: %s was published by run %q while run %s uploaded to it; the published partition is intact, this run's uploads are removed: publish again with --overwrite to replace it (concurrent runs on one output are the scheduler's to forbid)",
			failure.Exists, RedactURL(dst), successRunID(theirs), runID)
	}
	if err != nil {
		return false, remoteError(err, "writing "+RedactURL(marker))
	}
	CrashPoint("remote-success")
	log.Info("published to object storage", "partition", RedactURL(dst), "objects", len(files)+1)
	// What the new _SUCCESS does not list is dead: an earlier publish's
	// files, uploads of killed runs.
	keys, err := st.List(ctx, dst)
	if err != nil {
		log.Warn("published, but objects of earlier publishes could not be listed for removal", "error", err)
		return false, nil
	}
	removed := 0
	for _, k := range keys {
		if k == SuccessFile || slices.Contains(files, k) {
			continue
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
	return false, nil
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

// downloadFile copies an object to a new local file.
func downloadFile(ctx context.Context, st *store.Store, loc, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return fsError(err, "creating", filepath.Dir(path))
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o640)
	if err != nil {
		return fsError(err, "creating", path)
	}
	if _, err := st.Download(ctx, loc, f); err != nil {
		f.Close()
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%w: downloading: %w", failure.NoInput, err)
		}
		return remoteError(err, "downloading")
	}
	if err := f.Close(); err != nil {
		return fsError(err, "writing", path)
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
