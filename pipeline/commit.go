package pipeline

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Output layout under --out:
//
//	OUT/.lock                      flock held by the running job
//	OUT/_temporary/<attempt>/      staging area of a run in progress
//	OUT/_temporary/shards/...      parts of sharded runs awaiting commit (shard.go)
//	OUT/dt=YYYY-MM-DD/             a published run: tables, manifest.json, _SUCCESS
const (
	lockFile    = ".lock"
	stagingDir  = "_temporary"
	successFile = "_SUCCESS"
)

// DefaultPartition is the Hive-style partition name of a run for asOf.
func DefaultPartition(asOf time.Time) string { return "dt=" + asOf.Format(time.DateOnly) }

// partitionOr is partition, or the default partition name for asOf when
// it is empty.
func partitionOr(partition string, asOf time.Time) string {
	if partition == "" {
		return DefaultPartition(asOf)
	}
	return partition
}

// PartitionDir returns the published directory of the run for asOf under
// the default partition name.
func PartitionDir(out string, asOf time.Time) string {
	return filepath.Join(out, DefaultPartition(asOf))
}

// committer owns a run's staging area and publishes it in one step.
type committer struct {
	out     string
	attempt string
	staging string // OUT/_temporary/<attempt>
	final   string // OUT/dt=DATE
	lock    *os.File
}

// newAttemptID returns a unique, sortable attempt name.
func newAttemptID(now time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", now.UTC().Format("20060102T150405Z"), os.Getpid(), hex.EncodeToString(b[:]))
}

// openCommitter takes the output lock, refuses to replace a published run
// unless overwrite is set, removes leftovers of crashed runs and creates
// this run's staging area.
func openCommitter(out, partition string, overwrite bool, attempt string) (*committer, error) {
	if err := os.MkdirAll(out, 0o750); err != nil {
		return nil, ioErrorf("creating output directory: %w", err)
	}
	c := &committer{out: out, attempt: attempt, final: filepath.Join(out, partition)}
	c.staging = filepath.Join(out, stagingDir, attempt)
	lf, err := os.OpenFile(filepath.Join(out, lockFile), os.O_CREATE|os.O_RDWR, 0o640)
	if err != nil {
		return nil, ioErrorf("opening lock: %w", err)
	}
	if err := unix.Flock(int(lf.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(lf.Name())
		lf.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s is held by %s", ErrLocked, filepath.Join(out, lockFile), strings.TrimSpace(string(holder)))
		}
		return nil, ioErrorf("locking %s: %w", out, err)
	}
	c.lock = lf
	host, _ := os.Hostname()
	_ = lf.Truncate(0)
	_, _ = lf.WriteAt([]byte(fmt.Sprintf("pid %d on %s, attempt %s\n", os.Getpid(), host, attempt)), 0)

	if !overwrite && published(c.final) {
		c.release()
		return nil, fmt.Errorf("%w: %s is already published; pass --overwrite to replace it", ErrExists, c.final)
	}
	// We hold the lock: anything left in the staging area is from a dead
	// run, except shard parts (written without the lock, kept for commit).
	ents, err := os.ReadDir(filepath.Join(out, stagingDir))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		c.release()
		return nil, ioErrorf("reading the staging area: %w", err)
	}
	for _, e := range ents {
		if e.Name() == shardsDir {
			continue
		}
		if err := os.RemoveAll(filepath.Join(out, stagingDir, e.Name())); err != nil {
			c.release()
			return nil, ioErrorf("removing leftovers of an earlier run: %w", err)
		}
	}
	if err := os.MkdirAll(c.staging, 0o750); err != nil {
		c.release()
		return nil, ioErrorf("creating staging area: %w", err)
	}
	return c, nil
}

// published reports whether dir is a completely published run (has _SUCCESS).
func published(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, successFile))
	return err == nil
}

// stagedPartition is where the run writes its tables before publishing.
func (c *committer) stagedPartition() string {
	return filepath.Join(c.staging, filepath.Base(c.final))
}

// publish moves the staged partition into place (replacing an old one when
// allowed), then writes _SUCCESS last. Readers that wait for _SUCCESS never
// see a partial run.
func (c *committer) publish(overwrite bool, runID string) error {
	staged := c.stagedPartition()
	if err := syncDir(staged); err != nil {
		return err
	}
	if _, err := os.Stat(c.final); err == nil {
		// A partition without _SUCCESS is a publish that crashed before
		// its last step: nobody may rely on it, so it is replaced.
		if !overwrite && published(c.final) {
			return fmt.Errorf("%w: %s is already published; pass --overwrite to replace it", ErrExists, c.final)
		}
		old := filepath.Join(c.staging, "replaced")
		if err := os.Rename(c.final, old); err != nil {
			return ioErrorf("moving the old partition aside: %w", err)
		}
	}
	if err := os.Rename(staged, c.final); err != nil {
		return ioErrorf("publishing %s: %w", c.final, err)
	}
	if err := syncDir(c.out); err != nil {
		return err
	}
	if err := writeFileSync(filepath.Join(c.final, successFile), successBody(runID, c.attempt)); err != nil {
		return err
	}
	return syncDir(c.final)
}

// successBody is what _SUCCESS holds: the run id (equal for every attempt
// that computes the same tables) and the attempt that published.
func successBody(runID, attempt string) []byte {
	return []byte("run_id " + runID + "\nattempt_id " + attempt + "\n")
}

// successRunID reads the run id out of a _SUCCESS body ("" if none).
func successRunID(body []byte) string {
	for _, line := range strings.Split(string(body), "\n") {
		if id, ok := strings.CutPrefix(line, "run_id "); ok {
			return id
		}
	}
	return ""
}

// cleanup removes the staging area and releases the lock. Safe to call twice.
func (c *committer) cleanup() {
	if c.staging != "" {
		os.RemoveAll(c.staging)
		os.Remove(filepath.Join(c.out, stagingDir)) // only when empty
	}
	c.release()
}

func (c *committer) release() {
	if c.lock != nil {
		_ = c.lock.Truncate(0)
		unix.Flock(int(c.lock.Fd()), unix.LOCK_UN)
		c.lock.Close()
		c.lock = nil
	}
}

// writeFileSync writes data to path through a temporary file, fsyncs it and
// renames it into place.
func writeFileSync(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
	if err != nil {
		return ioErrorf("creating %s: %w", tmp, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return ioErrorf("writing %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return ioErrorf("syncing %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return ioErrorf("closing %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return ioErrorf("renaming %s: %w", tmp, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return ioErrorf("opening %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, fs.ErrInvalid) {
		return ioErrorf("syncing %s: %w", dir, err)
	}
	return nil
}
