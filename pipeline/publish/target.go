package publish

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/osmosis/batchmatch/pipeline/failure"
	"github.com/osmosis/batchmatch/pipeline/store"
)

// Target is where a run publishes, decided once from --out: a local
// directory, in which the commit protocol runs in place (commit.go), or an
// object store (s3://, gs://, file://, mem://), for which the same protocol
// runs in a private spool directory on local disk and the result is then
// pushed (remote.go). Everything after OpenTarget is the same for both.
type Target struct {
	partition string
	log       *slog.Logger
	hooks     *Hooks
	root      string // the local root the protocol runs in: --out, or the spool
	// An object-store target (remote != ""):
	remote    string     // --out
	dst       string     // the remote partition
	pub       *Published // what dst held when the target was opened (nil: not published)
	spool     *spool
	partsRoot string // where shards upload their parts
}

// TargetConfig says which output a Target is and what to find out first.
type TargetConfig struct {
	Out       string // --out: a directory or an object-store URL
	Partition string // the partition's name under Out
	SpoolDir  string // where an object-store target spools ("": the system's temporary directory)
	// Published: find out what the remote partition holds now (whole runs
	// and commits; a shard does not look).
	Published bool
	// Parts: bring every complete shard part's part.json into the spool (a
	// commit; the tables of the set it picks come later, FetchParts), of
	// ShardCount shards (0: the only count present).
	Parts      bool
	ShardCount int
}

// OpenTarget opens the output of tc. For an object store it reads the
// partition's _SUCCESS and manifest (tc.Published), creates the spool
// (removing those of dead runs) and downloads the parts' manifests
// (tc.Parts); a local target needs nothing yet.
func OpenTarget(ctx context.Context, tc TargetConfig, log *slog.Logger, h *Hooks) (*Target, error) {
	t := &Target{partition: tc.Partition, log: log, hooks: h, root: tc.Out}
	if !store.IsURL(tc.Out) {
		return t, nil
	}
	st := store.Default()
	t.remote, t.dst = tc.Out, store.Join(tc.Out, tc.Partition)
	if tc.Published {
		var err error
		if t.pub, err = readRemotePublished(ctx, st, t.dst); err != nil {
			return nil, err
		}
	}
	sp, err := newSpool(tc.SpoolDir, log, h)
	if err != nil {
		return nil, err
	}
	t.spool, t.root = sp, sp.dir
	if tc.Parts {
		if err := t.downloadPartManifests(ctx, tc.ShardCount); err != nil {
			sp.release()
			return nil, err
		}
	}
	return t, nil
}

// localPartsRoot is where the parts of the partition are on local disk.
func (t *Target) localPartsRoot() string {
	return filepath.Join(t.root, StagingDir, shardsDir, t.partition)
}

// Close removes the spool of an object-store target.
func (t *Target) Close() {
	if t.spool != nil {
		t.spool.release()
		t.spool = nil
	}
}

// Root is the local directory the output protocol runs in: --out, or the
// spool of an object-store target (what the manifest records as "out").
func (t *Target) Root() string { return t.root }

// Remote is the object-store --out ("" for a local target).
func (t *Target) Remote() string { return t.remote }

// Lock takes the output lock of the local root, recovers what dead runs
// left in its staging area, and creates the staging area of attempt
// (openCommitter). ownParts is a commit of this partition, which handles
// the partition's shard parts itself.
func (t *Target) Lock(attempt string, ownParts bool) (*Staging, error) {
	com, err := openCommitter(t.root, t.partition, attempt, t.log, ownParts, t.remote != "", t.hooks)
	if err != nil {
		return nil, err
	}
	return &Staging{t: t, com: com}, nil
}

// Staging is a run's staging area under the output lock: where it writes
// the partition before publishing it in one step.
type Staging struct {
	t      *Target
	com    *committer
	shards *outDir // OUT/_temporary/shards, once GatherParts opened it
}

// Close removes the staging area (putting back first a published
// partition a failed replace left in it) and releases the lock.
func (s *Staging) Close() {
	s.shards.Close()
	s.com.cleanup()
}

// Published is what the partition holds (nil: not published): on object
// storage, what the target found when it was opened.
func (s *Staging) Published() *Published {
	if s.t.remote != "" {
		return s.t.pub
	}
	return s.com.published
}

// Location names the partition in messages and results: its directory, or
// its URL without options.
func (s *Staging) Location() string {
	if s.t.remote != "" {
		return RedactURL(s.t.dst)
	}
	return s.com.final
}

// Dir is the staged partition, where the run writes its files.
func (s *Staging) Dir() string { return s.com.stagedPartition() }

// Tagged is the name a file of the partition is written under: it carries
// the attempt id, so that a publish never rewrites a file another
// publish's _SUCCESS lists (names.go), locally and on object storage.
func (s *Staging) Tagged(name string) string { return taggedName(name, s.com.attempt) }

// WriteFile writes data as the staged partition's file name (through a
// temporary file, fsynced).
func (s *Staging) WriteFile(name string, data []byte) error {
	return s.com.hooks.writeFileSync(filepath.Join(s.Dir(), name), data)
}

// Commit publishes the staged partition in the local root: _SUCCESS (run
// id, attempt, manifest, every file) written last inside it, then one
// rename or exchange (committer.publish). A published partition is
// replaced only with overwrite. It returns the local partition directory.
func (s *Staging) Commit(overwrite bool, runID, manifest string) (string, error) {
	return s.com.final, s.com.publish(overwrite, runID, manifest)
}

// Push makes the partition committed in the local root (dir, as
// Staging.Commit returned it) the published one on object storage
// (pushPartition: files, then _SUCCESS, then removal of what it does not
// list); already is true when the store turned out to hold a publish of the
// same run id. Nothing to do for a local target.
func (t *Target) Push(ctx context.Context, dir string, overwrite bool, runID string) (already bool, err error) {
	if t.remote == "" {
		return false, nil
	}
	return pushPartition(ctx, store.Default(), t.log, dir, t.dst, overwrite, runID, t.hooks)
}

// Republished reads again what the partition holds on object storage (nil:
// not published), and what it held when the target was opened for a local
// one (whose lock the caller holds).
func (t *Target) Republished(ctx context.Context, s *Staging) (*Published, error) {
	if t.remote == "" {
		return s.Published(), nil
	}
	return readRemotePublished(ctx, store.Default(), t.dst)
}

// Location names the published partition in results: dir, the partition
// committed in the local root, or the object-store partition's URL
// without options.
func (t *Target) Location(dir string) string {
	if t.remote != "" {
		return RedactURL(t.dst)
	}
	return dir
}

// UploadPart uploads a shard's part written in the local root (dir, as
// PartWriter.Finish returned it) to object storage, part.json last, and
// returns where it is. A local part is where it is.
func (t *Target) UploadPart(ctx context.Context, dir string) (string, error) {
	if t.remote == "" {
		return dir, nil
	}
	rel, err := filepath.Rel(t.root, dir)
	if err != nil {
		return "", fmt.Errorf("%w: placing the part: %w", failure.Internal, err)
	}
	to := store.Join(t.remote, filepath.ToSlash(rel))
	if err := uploadDir(ctx, store.Default(), dir, to, partJSON); err != nil {
		return "", err
	}
	t.log.Info("shard part uploaded", "to", RedactURL(to))
	return RedactURL(to), nil
}
