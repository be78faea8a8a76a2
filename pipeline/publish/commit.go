package publish

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/osmosis/batchmatch/pipeline/failure"
)

// Output layout under --out:
//
//	OUT/.lock                              flock held by the running job
//	OUT/_temporary/<attempt>/<partition>/  the partition a run is writing (its staging area)
//	OUT/_temporary/<attempt>/aside/<partition>/
//	                                       a published partition moved aside by a replace
//	                                       on a file system without RENAME_EXCHANGE
//	OUT/_temporary/shards/...              parts of sharded runs awaiting commit (parts.go)
//	OUT/<partition>/                       a published run: tables, manifest, _SUCCESS
//
// Publishing (committer.publish): the staged partition is complete,
// _SUCCESS included, before it is moved; then one rename puts it in place
// (no partition yet) or one renameat2(RENAME_EXCHANGE) swaps it with the
// published one, which lands in the staging area and is removed with it.
// Readers see the old partition or the new one, never a mix and never
// none. Where the file system cannot exchange (NFS), the old partition is
// renamed to aside/ and the new one renamed into place: a reader can find
// no partition between the two renames, and a crash between them leaves
// the old one under aside/, from where the next run (which holds the lock
// and so knows the attempt is dead) puts it back before removing anything.
// Only a partition that was published is ever put back: aside/ holds
// nothing else.
const (
	lockFile   = ".lock"
	StagingDir = "_temporary"
	// SuccessFile marks a published partition: run id, attempt,
	// manifest name and every file of the publish (successBody).
	SuccessFile = "_SUCCESS"
	asideDir    = "aside"
	// legacyReplaced is where batchmatch up to spec v1.1's first releases
	// moved the old partition when overwriting; recovery restores it too.
	legacyReplaced = "replaced"
	// ManifestFile is the manifest's name in a local partition; a remote
	// one names its manifest after the publishing attempt (remote.go).
	ManifestFile = "manifest.json"
)

// DefaultPartition is the Hive-style partition name of a run for asOf.
func DefaultPartition(asOf time.Time) string { return "dt=" + asOf.Format(time.DateOnly) }

// PartitionOr is partition, or the default partition name for asOf when
// it is empty.
func PartitionOr(partition string, asOf time.Time) string {
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

// partitionName is the character set of a partition name: letters,
// digits, '.', '_', '=' and '-', starting with a letter or a digit.
var partitionName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._=-]*$`)

// maxPartitionLen bounds a partition name (file systems allow 255 bytes;
// object keys and Hive paths are happier short).
const maxPartitionLen = 128

// CheckPartition accepts a partition name that is safe as a directory
// name and an object-key element everywhere: at most 128 characters of
// [A-Za-z0-9._=-], starting with a letter or a digit (so never '.', '_' or
// '-': hidden, staging, or an option), without "..". Anything else is a
// usage error.
func CheckPartition(name string) error {
	if len(name) > maxPartitionLen || !partitionName.MatchString(name) || strings.Contains(name, "..") {
		return failure.Usagef("--partition must be 1 to %d characters of letters, digits, '.', '_', '=' and '-', starting with a letter or a digit, without \"..\"; got %q",
			maxPartitionLen, name)
	}
	return nil
}

// committer owns a run's staging area and publishes it in one step.
type committer struct {
	out       string
	attempt   string
	partition string
	final     string // OUT/<partition>
	log       *slog.Logger
	hooks     *Hooks

	root  *outDir // OUT
	tmp   *outDir // OUT/_temporary
	stage *outDir // OUT/_temporary/<attempt>
	lock  *os.File

	// published is the partition as this run found it (nil: not published).
	published *Published
}

// Published is what a published partition's _SUCCESS and manifest say.
type Published struct {
	success  Success
	manifest *Manifest // nil when unreadable
}

// RunID is the run id of the publish.
func (p *Published) RunID() string { return p.success.RunID }

// Manifest is the published manifest, or nil when it could not be read.
func (p *Published) Manifest() *Manifest { return p.manifest }

// NewAttemptID returns a unique, sortable attempt name.
func NewAttemptID(now time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", now.UTC().Format("20060102T150405Z"), os.Getpid(), hex.EncodeToString(b[:]))
}

// openCommitter takes the output lock, recovers what dead runs left in the
// staging area (putting back a published partition an interrupted replace
// moved aside, removing everything else that is provably dead, shard parts
// that a published partition consumed included), reads whether the
// partition is published, and creates this run's staging area.
//
// It does not refuse a published partition: whether a run may go on
// depends on its run id (an identical re-run succeeds without writing),
// which the caller knows only after reading the inputs. ownParts is the
// commit of this partition, which handles the partition's parts itself.
func openCommitter(out, partition, attempt string, log *slog.Logger, ownParts bool, h *Hooks) (_ *committer, err error) {
	c := &committer{out: out, attempt: attempt, partition: partition, final: filepath.Join(out, partition), log: log, hooks: h}
	defer func() {
		if err != nil {
			c.release()
		}
	}()
	if c.root, err = openOutRoot(out, h); err != nil {
		return nil, err
	}
	lf, err := c.root.open(lockFile, os.O_CREATE|os.O_RDWR, 0o640)
	if err != nil {
		if errors.Is(err, failure.Permission) {
			return nil, err
		}
		return nil, fsError(err, "opening the lock", c.root.join(lockFile))
	}
	ok, err := flockNB(lf)
	if err != nil || !ok {
		holder, _ := readAll(lf)
		lf.Close()
		if err == nil {
			return nil, fmt.Errorf("%w: %s is held by %s", failure.Locked, c.root.join(lockFile), strings.TrimSpace(string(holder)))
		}
		return nil, fsError(err, "locking", out)
	}
	c.lock = lf
	host, _ := os.Hostname()
	_ = lf.Truncate(0)
	_, _ = lf.WriteAt([]byte(fmt.Sprintf("pid %d on %s, attempt %s\n", os.Getpid(), host, attempt)), 0)

	if c.published, err = c.publishedAt(partition); err != nil {
		return nil, err
	}
	if c.tmp, err = c.root.sub(StagingDir, true); err != nil {
		return nil, err
	}
	// We hold the lock: every attempt directory in the staging area is of a
	// dead run. Shard parts are written without the lock (sweepParts).
	names, err := c.tmp.names()
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		if n == shardsDir {
			continue
		}
		if err := c.recoverAttempt(n); err != nil {
			return nil, fmt.Errorf("recovering the staging area of an earlier run: %w", err)
		}
	}
	skip := ""
	if ownParts {
		skip = partition
	}
	if err := c.sweepParts(skip); err != nil {
		return nil, err
	}
	// Recovery may have restored this very partition.
	if c.published, err = c.publishedAt(partition); err != nil {
		return nil, err
	}
	if c.stage, err = c.tmp.sub(attempt, true); err != nil {
		return nil, fmt.Errorf("creating the staging area: %w", err)
	}
	return c, nil
}

// readAll reads what f holds from its start.
func readAll(f *os.File) ([]byte, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	b := make([]byte, min(st.Size(), 4096))
	n, err := f.ReadAt(b, 0)
	if n == len(b) {
		err = nil
	}
	return b[:n], err
}

// publishedAt reads the published partition name under OUT: nil when
// there is none (or it lacks _SUCCESS: a publish that never finished). A
// link there is refused.
func (c *committer) publishedAt(name string) (*Published, error) {
	st, ok, err := c.root.lstat(name)
	if err != nil || !ok {
		return nil, err
	}
	if isLink(st) {
		return nil, errLink(c.root.join(name))
	}
	if !isDir(st) {
		return nil, nil
	}
	d, err := c.root.sub(name, false)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return readPublished(d)
}

// readPublished reads _SUCCESS and the manifest it names in d (a partition).
func readPublished(d *outDir) (*Published, error) {
	body, ok, err := d.readFile(SuccessFile)
	if err != nil || !ok {
		return nil, err
	}
	p := &Published{success: ParseSuccess(body)}
	if raw, ok, err := d.readFile(p.success.ManifestName()); err == nil && ok {
		var m Manifest
		if json.Unmarshal(raw, &m) == nil {
			p.manifest = &m
		}
	}
	return p, nil
}

// completePartition reports whether name in d is a partition directory with
// _SUCCESS (not through links).
func completePartition(d *outDir, name string) bool {
	st, ok, err := d.lstat(name)
	if err != nil || !ok || !isDir(st) {
		return false
	}
	p, err := d.sub(name, false)
	if err != nil {
		return false
	}
	defer p.Close()
	st, ok, err = p.lstat(SuccessFile)
	return err == nil && ok && isReg(st)
}

// recoverAttempt removes the staging directory name of a dead attempt (or
// of this one, at its end), first putting back any published partition
// that an interrupted replace left in it (aside/<partition>, or a legacy
// "replaced") when its place under OUT holds no published partition.
func (c *committer) recoverAttempt(name string) error {
	st, ok, err := c.tmp.lstat(name)
	if err != nil || !ok {
		return err
	}
	if !isDir(st) {
		// A link or a file planted in the staging area: removed itself,
		// its target untouched.
		c.log.Warn("removing a stray entry from the staging area", "path", c.tmp.join(name))
		return c.tmp.removeAll(name)
	}
	a, err := c.tmp.sub(name, false)
	if err != nil {
		return err
	}
	defer a.Close()
	type candidate struct {
		dir              *outDir
		entry, partition string
	}
	var cands []candidate
	if st, ok, err := a.lstat(asideDir); err == nil && ok && isDir(st) {
		aside, err := a.sub(asideDir, false)
		if err != nil {
			return err
		}
		defer aside.Close()
		ns, err := aside.names()
		if err != nil {
			return err
		}
		for _, n := range ns {
			if completePartition(aside, n) {
				cands = append(cands, candidate{aside, n, n})
			}
		}
	}
	if completePartition(a, legacyReplaced) {
		if p := legacyPartitionName(a); p != "" {
			cands = append(cands, candidate{a, legacyReplaced, p})
		}
	}
	for _, cd := range cands {
		if CheckPartition(cd.partition) != nil {
			continue
		}
		pub, err := c.publishedAt(cd.partition)
		if err != nil {
			return err
		}
		if pub != nil {
			continue // the replace finished: what is aside is the old partition
		}
		if err := c.restore(cd.dir, cd.entry, cd.partition); err != nil {
			return fmt.Errorf("putting back the published partition %s from %s: %w", c.root.join(cd.partition), cd.dir.join(cd.entry), err)
		}
		c.log.Warn("put back a published partition that an interrupted replace had moved aside",
			"partition", c.root.join(cd.partition), "from", cd.dir.join(cd.entry))
	}
	return c.tmp.removeAll(name)
}

// legacyPartitionName reads the partition name of a legacy "replaced"
// directory from its manifest ("" if unknown).
func legacyPartitionName(a *outDir) string {
	d, err := a.sub(legacyReplaced, false)
	if err != nil {
		return ""
	}
	defer d.Close()
	raw, ok, err := d.readFile(ManifestFile)
	if err != nil || !ok {
		return ""
	}
	var m struct {
		AsOf   string `json:"as_of"`
		Config struct {
			Partition string `json:"partition"`
		} `json:"config"`
	}
	if json.Unmarshal(raw, &m) != nil {
		return ""
	}
	if m.Config.Partition != "" {
		return m.Config.Partition
	}
	if m.AsOf != "" {
		return "dt=" + m.AsOf
	}
	return ""
}

// restore puts the complete partition entry of src in place as OUT/name,
// where no published partition is: by a rename, or, over an unfinished
// partition, by an exchange (the unfinished one lands in src and goes with
// it).
func (c *committer) restore(src *outDir, entry, name string) error {
	st, ok, err := c.root.lstat(name)
	if err != nil {
		return err
	}
	switch {
	case !ok:
		err = src.rename(entry, c.root, name)
	case isLink(st):
		return errLink(c.root.join(name))
	case !isDir(st):
		return errNotDir(c.root.join(name))
	default:
		err = src.exchange(entry, c.root, name)
		if errors.Is(err, errNoExchange) {
			if err = c.root.rename(name, src, entry+".unfinished"); err == nil {
				err = src.rename(entry, c.root, name)
			}
		}
	}
	if err != nil {
		return err
	}
	return c.root.sync()
}

// stagedPartition is where the run writes its tables before publishing.
func (c *committer) stagedPartition() string {
	return c.stage.join(c.partition)
}

// publish writes _SUCCESS (listing every file of the partition) into the
// staged partition, then puts the complete partition in place in one
// atomic step: a rename when none is published, an exchange with the
// published one otherwise (see the comment at the top of this file). A
// published partition is replaced only with overwrite.
func (c *committer) publish(overwrite bool, runID, manifest string) error {
	name := c.partition
	staged, err := c.stage.sub(name, false)
	if err != nil {
		return err
	}
	defer staged.Close()
	CrashPoint("tables")
	files, err := listFiles(staged.path)
	if err != nil {
		return fsError(err, "listing", staged.path)
	}
	if err := c.hooks.writeFileSync(staged.join(SuccessFile), successBody(runID, c.attempt, manifest, files)); err != nil {
		return err
	}
	if err := staged.sync(); err != nil {
		return err
	}
	CrashPoint("staged")
	st, exists, err := c.root.lstat(name)
	if err != nil {
		return err
	}
	switch {
	case !exists:
		if err := c.stage.rename(name, c.root, name); err != nil {
			return err
		}
		CrashPoint("renamed")
	case isLink(st):
		return errLink(c.final)
	case !isDir(st):
		return errNotDir(c.final)
	default:
		if pub, err := c.publishedAt(name); err != nil {
			return err
		} else if pub != nil && !overwrite {
			return fmt.Errorf("%w: %s is already published by run %s; pass --overwrite to replace it", failure.Exists, c.final, pub.success.RunID)
		}
		// A partition without _SUCCESS (a publish that never finished) is
		// replaced like a published one: nobody may rely on it.
		err := c.stage.exchange(name, c.root, name)
		if errors.Is(err, errNoExchange) {
			err = c.replaceByRenames(name)
		} else if err == nil {
			CrashPoint("exchanged")
		}
		if err != nil {
			return err
		}
	}
	if err := c.root.sync(); err != nil {
		return err
	}
	CrashPoint("published")
	return nil
}

// replaceByRenames replaces OUT/name with the staged partition where the
// file system cannot exchange: the published partition goes to aside/
// first, then the new one into place. Between the two renames OUT/name is
// missing; a failure of the second puts the old one back, and what a
// crash leaves, the next run puts back (recoverAttempt).
func (c *committer) replaceByRenames(name string) error {
	aside, err := c.stage.sub(asideDir, true)
	if err != nil {
		return err
	}
	defer aside.Close()
	if err := c.root.rename(name, aside, name); err != nil {
		return err
	}
	if err := c.stage.sync(); err != nil {
		c.log.Warn("syncing the staging area failed", "error", err)
	}
	CrashPoint("aside")
	if err := c.stage.rename(name, c.root, name); err != nil {
		if rerr := aside.rename(name, c.root, name); rerr != nil {
			return fmt.Errorf("%w; putting the published partition back failed too (%v): it is kept at %s and the next run puts it back",
				err, rerr, aside.join(name))
		}
		return err
	}
	CrashPoint("renamed")
	return nil
}

// Success is what _SUCCESS says: the run id (equal for every attempt
// that computes the same tables), the attempt that published, the
// manifest, and every file of the publish (slash paths relative to the
// partition). A _SUCCESS written before files were listed has no files.
type Success struct {
	RunID, AttemptID, Manifest string
	Files                      []string
}

// ManifestName is the manifest of the publish (manifest.json when
// _SUCCESS does not say).
func (s Success) ManifestName() string {
	if s.Manifest != "" {
		return s.Manifest
	}
	return ManifestFile
}

// successBody is what _SUCCESS holds: "run_id", "attempt_id" and
// "manifest" lines, then a "file" line for every file of the publish.
// Readers that read exactly the listed files see one consistent publish.
func successBody(runID, attempt, manifest string, files []string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "run_id %s\nattempt_id %s\n", runID, attempt)
	if manifest != "" {
		fmt.Fprintf(&b, "manifest %s\n", manifest)
	}
	for _, f := range files {
		if f != SuccessFile {
			fmt.Fprintf(&b, "file %s\n", f)
		}
	}
	return []byte(b.String())
}

// ParseSuccess reads a _SUCCESS body.
func ParseSuccess(body []byte) Success {
	var s Success
	for _, line := range strings.Split(string(body), "\n") {
		k, v, _ := strings.Cut(line, " ")
		switch k {
		case "run_id":
			s.RunID = v
		case "attempt_id":
			s.AttemptID = v
		case "manifest":
			s.Manifest = v
		case "file":
			s.Files = append(s.Files, v)
		}
	}
	return s
}

// successRunID reads the run id out of a _SUCCESS body ("" if none).
func successRunID(body []byte) string { return ParseSuccess(body).RunID }

// PublishedDir reports whether dir is a completely published run: a
// directory (not a link) with a regular _SUCCESS.
func PublishedDir(dir string) bool {
	st, err := os.Lstat(dir)
	if err != nil || !st.IsDir() {
		return false
	}
	st, err = os.Lstat(filepath.Join(dir, SuccessFile))
	return err == nil && st.Mode().IsRegular()
}

// cleanup removes the staging area, putting back first a published
// partition a failed replace left in it, and releases the lock. Safe to
// call twice.
func (c *committer) cleanup() {
	if c.stage != nil {
		c.stage.Close()
		c.stage = nil
		if err := c.recoverAttempt(c.attempt); err != nil {
			c.log.Error("the staging area could not be cleaned up; the next run will", "path", c.tmp.join(c.attempt), "error", err)
		}
		// The staging area itself goes when empty.
		_ = unix.Unlinkat(c.root.fd(), StagingDir, unix.AT_REMOVEDIR)
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
	c.tmp.Close()
	c.root.Close()
}

// writeFileSync writes data to path through a new temporary file, fsyncs it
// and renames it into place. Neither name is followed if it is a link.
func (h *Hooks) writeFileSync(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := h.fault("create", tmp); err != nil {
		return fsError(err, "creating", tmp)
	}
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY|syscall.O_NOFOLLOW, 0o640)
	if err != nil {
		return fsError(err, "creating", tmp)
	}
	err = h.fault("write", tmp)
	if err == nil {
		_, err = f.Write(data)
	}
	if err != nil {
		f.Close()
		return fsError(err, "writing", tmp)
	}
	if err := h.fault("sync", tmp); err != nil {
		f.Close()
		return fsError(err, "syncing", tmp)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fsError(err, "syncing", tmp)
	}
	if err := f.Close(); err != nil {
		return fsError(err, "closing", tmp)
	}
	if err := h.fault("rename", tmp); err != nil {
		return fsError(err, "renaming", tmp)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fsError(err, "renaming", tmp)
	}
	return nil
}

// syncDir fsyncs the directory dir.
func (h *Hooks) syncDir(dir string) error {
	if err := h.fault("sync", dir); err != nil {
		return fsError(err, "syncing", dir)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fsError(err, "opening", dir)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, fs.ErrInvalid) {
		return fsError(err, "syncing", dir)
	}
	return nil
}
