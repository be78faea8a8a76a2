package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/osmosis/batchmatch/pipeline/store"
)

// Remote output (--out s3://…, gs://…, file://…, mem://…).
//
// Object stores have no rename and no lock, so a run with a remote --out
// does everything a local run does in a private spool directory on local
// disk (under --spool-dir, removed at the end) and then pushes:
//
//   - a whole run uploads the published partition's files (tables,
//     manifest.json, report.html), deletes objects of an earlier publish
//     that the new one does not have, and creates OUT/<partition>/_SUCCESS
//     last with a conditional create (If-None-Match: *). Readers that wait
//     for _SUCCESS never see a partial run. With --overwrite, the old
//     _SUCCESS is deleted first, before any table is replaced.
//   - a shard uploads its part to OUT/_temporary/shards/<partition>/<count>/<index>/<attempt>/,
//     part.parquet first and part.json last: a part is complete when its
//     part.json exists, so a pod lost mid-upload leaves nothing commit uses.
//   - commit downloads the earliest complete part of every index into its
//     spool, merges and publishes as a local commit does, pushes the
//     partition as a whole run does, then deletes the parts.
//
// Concurrency is the scheduler's (concurrencyPolicy: Forbid); the
// conditional create is the last guard: of two publishers racing for one
// partition only one creates _SUCCESS. Because the tables are a pure
// function of the inputs and the configuration, two attempts of the same
// run upload identical bytes, and the loser that finds _SUCCESS written by
// the same run id succeeds too; a loser of another run fails with
// ErrExists.

// runRemote runs cfg (whose Out is a URL) in a spool directory and pushes
// the result.
func runRemote(ctx context.Context, cfg Config, log *slog.Logger) (*Result, error) {
	st := store.Default()
	remote := cfg.Out
	dst := store.Join(remote, partitionOr(cfg.Partition, cfg.AsOf))
	whole := cfg.Shard.Count <= 1
	spool, err := prepareRemote(ctx, st, dst, whole && !cfg.Overwrite, cfg.SpoolDir)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(spool)
	local := cfg
	local.Out, local.RemoteOut = spool, remote
	res, err := runLocal(ctx, local, log)
	if err != nil {
		return res, err
	}
	if !whole {
		rel, err := filepath.Rel(spool, res.Published)
		if err != nil {
			return nil, ioErrorf("placing the part: %w", err)
		}
		to := store.Join(remote, filepath.ToSlash(rel))
		if err := uploadDir(ctx, st, res.Published, to, "part.json"); err != nil {
			return &Result{Manifest: res.Manifest}, err // counts for the metrics of a failed run
		}
		log.Info("shard part uploaded", "to", redactURL(to))
		res.Published = redactURL(to)
		return res, nil
	}
	if err := pushPartition(ctx, st, log, res.Published, dst, cfg.Overwrite, res.Manifest.RunID); err != nil {
		return &Result{Manifest: res.Manifest}, err
	}
	res.Published = redactURL(dst)
	return res, nil
}

// commitRemote is Commit for a remote --out: the parts come down into a
// spool, the commit runs there, the partition goes up.
func commitRemote(ctx context.Context, cc CommitConfig, log *slog.Logger) (*Result, error) {
	st := store.Default()
	remote := cc.Out
	partition := partitionOr(cc.Partition, cc.AsOf)
	dst := store.Join(remote, partition)
	spool, err := prepareRemote(ctx, st, dst, !cc.Overwrite, cc.SpoolDir)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(spool)

	partsRoot := store.Join(remote, stagingDir, shardsDir, partition)
	keys, err := st.List(ctx, partsRoot)
	if err != nil {
		return nil, ioErrorf("listing the shard parts: %w", err)
	}
	// Complete attempts: <count>/<index>/<attempt>/part.json exists. The
	// earliest of each index, as findParts picks locally.
	chosen := map[string]string{} // "<count>/<index>" → attempt
	for _, k := range keys {
		seg := strings.Split(k, "/")
		if len(seg) != 4 || seg[3] != "part.json" {
			continue
		}
		if _, err := strconv.Atoi(seg[0]); err != nil {
			continue
		}
		idx := seg[0] + "/" + seg[1]
		if a, ok := chosen[idx]; !ok || seg[2] < a {
			chosen[idx] = seg[2]
		}
	}
	if len(chosen) == 0 {
		return nil, fmt.Errorf("%w: no complete shard part under %s", ErrNotReady, redactURL(partsRoot))
	}
	idxs := make([]string, 0, len(chosen))
	for idx := range chosen {
		idxs = append(idxs, idx)
	}
	slices.Sort(idxs)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for _, idx := range idxs {
		for _, name := range []string{"part.parquet", "part.json"} {
			rel := idx + "/" + chosen[idx] + "/" + name
			g.Go(func() error {
				return downloadFile(gctx, st, store.Join(partsRoot, rel),
					filepath.Join(spool, stagingDir, shardsDir, partition, filepath.FromSlash(rel)))
			})
		}
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	log.Info("shard parts downloaded", "parts", len(idxs), "from", redactURL(partsRoot))

	local := cc
	local.Out, local.RemoteOut = spool, remote
	res, err := commitLocal(ctx, local, log)
	if err != nil {
		return res, err
	}
	if err := pushPartition(ctx, st, log, res.Published, dst, cc.Overwrite, res.Manifest.RunID); err != nil {
		return &Result{Manifest: res.Manifest}, err
	}
	res.Published = redactURL(dst)
	if err := st.DeleteAll(ctx, partsRoot); err != nil {
		log.Warn("published, but the shard parts could not be removed", "error", err)
	}
	return res, nil
}

// prepareRemote refuses an already published dst when refuse is set (a
// run without --overwrite fails before it reads anything, as a local run
// does) and creates a private spool directory under spoolDir ("": the
// system's temporary directory), which the caller removes.
func prepareRemote(ctx context.Context, st *store.Store, dst string, refuse bool, spoolDir string) (string, error) {
	if refuse {
		ok, err := st.Exists(ctx, store.Join(dst, successFile))
		if err != nil {
			return "", ioErrorf("checking %s: %w", redactURL(dst), err)
		}
		if ok {
			return "", fmt.Errorf("%w: %s is already published; pass --overwrite to replace it", ErrExists, redactURL(dst))
		}
	}
	spool, err := os.MkdirTemp(spoolDir, "batchmatch-spool-")
	if err != nil {
		return "", ioErrorf("creating a spool directory: %w", err)
	}
	return spool, nil
}

// pushPartition uploads a published local partition to dst, _SUCCESS last
// and conditionally (see the comment at the top of this file).
func pushPartition(ctx context.Context, st *store.Store, log *slog.Logger, dir, dst string, overwrite bool, runID string) error {
	files, err := listFiles(dir)
	if err != nil {
		return ioErrorf("listing %s: %w", dir, err)
	}
	marker := store.Join(dst, successFile)
	if !overwrite {
		// Published meanwhile? By the same run (identical tables): done.
		body, err := st.ReadFile(ctx, marker)
		switch {
		case err == nil && successRunID(body) == runID:
			log.Warn("another attempt of the same run already published; its tables are identical", "partition", redactURL(dst), "run_id", runID)
			return nil
		case err == nil:
			return fmt.Errorf("%w: %s is already published by run %s; pass --overwrite to replace it", ErrExists, redactURL(dst), successRunID(body))
		case !errors.Is(err, fs.ErrNotExist):
			return ioErrorf("checking %s: %w", redactURL(marker), err)
		}
	}
	if overwrite {
		if err := st.Delete(ctx, marker); err != nil {
			return ioErrorf("withdrawing the old %s: %w", redactURL(marker), err)
		}
	}
	old, err := st.List(ctx, dst)
	if err != nil {
		return ioErrorf("listing %s: %w", redactURL(dst), err)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for _, rel := range files {
		if rel == successFile {
			continue
		}
		g.Go(func() error {
			if err := st.Upload(gctx, store.Join(dst, rel), filepath.Join(dir, filepath.FromSlash(rel)), false); err != nil {
				return ioErrorf("uploading %s: %w", rel, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for _, k := range old {
		if k != successFile && !slices.Contains(files, k) {
			if err := st.Delete(ctx, store.Join(dst, k)); err != nil {
				return ioErrorf("removing %s of an earlier publish: %w", k, err)
			}
		}
	}
	body, err := os.ReadFile(filepath.Join(dir, successFile))
	if err != nil {
		return ioErrorf("reading the staged _SUCCESS: %w", err)
	}
	if beforeMarker != nil {
		beforeMarker()
	}
	err = st.WriteFile(ctx, marker, body, true)
	if errors.Is(err, store.ErrExists) {
		// Another publisher won the race. The same run wrote the same bytes.
		theirs, rerr := st.ReadFile(ctx, marker)
		if rerr == nil && successRunID(theirs) == runID {
			log.Warn("another attempt of the same run published first; its tables are identical", "partition", redactURL(dst), "run_id", runID)
			return nil
		}
		return fmt.Errorf("%w: %s was published by run %q while run %s uploaded to it: its tables may mix both runs; publish again with --overwrite (concurrent runs on one output are the scheduler's to forbid)",
			ErrExists, redactURL(dst), successRunID(theirs), runID)
	}
	if err != nil {
		return ioErrorf("creating %s: %w", redactURL(marker), err)
	}
	log.Info("published to object storage", "partition", redactURL(dst), "objects", len(files))
	return nil
}

// beforeMarker, when set (tests only), runs just before the conditional
// create of _SUCCESS: the place where a racing publisher can get ahead.
var beforeMarker func()

// uploadDir uploads every file under dir to dst, the one named last after
// all others.
func uploadDir(ctx context.Context, st *store.Store, dir, dst, last string) error {
	files, err := listFiles(dir)
	if err != nil {
		return ioErrorf("listing %s: %w", dir, err)
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
			return ioErrorf("uploading %s: %w", rel, err)
		}
	}
	return nil
}

// downloadFile copies an object to a new local file.
func downloadFile(ctx context.Context, st *store.Store, loc, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return ioErrorf("creating %s: %w", filepath.Dir(path), err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o640)
	if err != nil {
		return ioErrorf("creating %s: %w", path, err)
	}
	if _, err := st.Download(ctx, loc, f); err != nil {
		f.Close()
		return ioErrorf("downloading: %w", err)
	}
	if err := f.Close(); err != nil {
		return ioErrorf("writing %s: %w", path, err)
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

// redactURL drops a location's query (endpoints and options), for logs and
// messages.
func redactURL(loc string) string {
	base, _, _ := strings.Cut(loc, "?")
	return base
}
