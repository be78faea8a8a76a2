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
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/osmosis/batchmatch/pipeline/failure"
	"github.com/osmosis/batchmatch/pipeline/store"
)

// Output layout under --out:
//
//	OUT/.lock                                      flock held by the running job
//	OUT/_temporary/<attempt>/staged/<partition>/   the partition a run is writing (its staging area)
//	OUT/_temporary/<attempt>/aside/<partition>/    a published partition moved aside by a replace
//	                                               on a file system without RENAME_EXCHANGE
//	OUT/_temporary/shards/...                      parts of sharded runs awaiting commit (parts.go)
//	OUT/<partition>/                               a published run: tables, manifest, _SUCCESS
//
// A partition name is a user's choice (--partition), so it only ever
// appears below the staged/ and aside/ namespaces of an attempt: no name
// can collide with the protocol's own directories.
//
// Publishing (committer.publish): the staged partition is complete,
// _SUCCESS included, before it is moved; then one rename puts it in place
// (no partition yet) or one renameat2(RENAME_EXCHANGE) swaps it with the
// published one, which lands in staged/ and is removed with it. Readers
// see the old partition or the new one, never a mix and never none; the
// files of each carry their attempt id (names.go), so a reader that read
// one _SUCCESS and then finds a listed file gone knows to start again.
// Where the file system cannot exchange (NFS), the old partition is
// renamed to aside/ and the new one renamed into place: a reader can find
// no partition between the two renames, and a crash between them leaves
// the old one under aside/, from where the next run (which holds the lock
// and so knows the attempt is dead) puts it back before removing anything.
// Only a partition that was published is ever put back: aside/ holds
// nothing else, and what it holds is put back only when it is intact.
const (
	lockFile   = ".lock"
	StagingDir = "_temporary"
	// SuccessFile marks a published partition: run id, attempt,
	// manifest name and every file of the publish (successBody).
	SuccessFile = "_SUCCESS"
	stagedDir   = "staged"
	asideDir    = "aside"
	// legacyReplaced is where batchmatch up to spec v1.1's first releases
	// moved the old partition when overwriting; recovery restores it too.
	legacyReplaced = "replaced"
	// ManifestFile is the manifest's name in partitions of earlier
	// versions; a publish names its manifest after its attempt.
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

	root   *outDir // OUT
	tmp    *outDir // OUT/_temporary
	stage  *outDir // OUT/_temporary/<attempt>
	staged *outDir // OUT/_temporary/<attempt>/staged
	lock   *os.File

	// published is the partition as this run found it (nil: not published).
	published *Published
	// spool: the local root is the spool of an object-store target (its
	// parts have no part.parquet until a commit fetches them).
	spool bool
}

// Published is what a published partition's _SUCCESS and manifest say, and
// whether the files _SUCCESS lists are all there.
type Published struct {
	success  Success
	manifest *Manifest     // nil when unreadable
	version  store.Version // the _SUCCESS read (object storage: what a replace is conditional on)
	missing  []string      // listed files that are gone or of another size
}

// RunID is the run id of the publish.
func (p *Published) RunID() string { return p.success.RunID }

// AttemptID is the attempt that published.
func (p *Published) AttemptID() string { return p.success.AttemptID }

// Manifest is the published manifest, or nil when it could not be read.
func (p *Published) Manifest() *Manifest { return p.manifest }

// Intact reports whether every file _SUCCESS lists exists (with the size
// recorded). A publish that is not intact is not done: a run of the same
// run id publishes it again (a repair).
func (p *Published) Intact() bool { return len(p.missing) == 0 }

// Missing are the listed files that are gone or of another size.
func (p *Published) Missing() []string { return p.missing }

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
// Leftovers that cannot be removed (an immutable file, a busy mount, a
// link where a lock should be) are logged as warnings and left for a
// person: they never fail the run. Only what the run needs fails it:
// putting back its own partition, and its own staging area.
//
// It does not refuse a published partition: whether a run may go on
// depends on its run id (an identical re-run succeeds without writing),
// which the caller knows only after reading the inputs. ownParts is the
// commit of this partition, which handles the partition's parts itself.
// spool is the spool of an object-store target, whose parts are only the
// part.json files a commit brought down.
func openCommitter(out, partition, attempt string, log *slog.Logger, ownParts, spool bool, h *Hooks) (_ *committer, err error) {
	c := &committer{out: out, attempt: attempt, partition: partition, final: filepath.Join(out, partition), log: log, hooks: h, spool: spool}
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
	c.sweepParts(skip)
	// Recovery may have restored this very partition.
	if c.published, err = c.publishedAt(partition); err != nil {
		return nil, err
	}
	if c.stage, err = c.tmp.sub(attempt, true); err != nil {
		return nil, fmt.Errorf("creating the staging area: %w", err)
	}
	if c.staged, err = c.stage.sub(stagedDir, true); err != nil {
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
	return publishedIn(c.root, name)
}

// publishedIn is publishedAt for the partition name inside d.
func publishedIn(d *outDir, name string) (*Published, error) {
	st, ok, err := d.lstat(name)
	if err != nil || !ok {
		return nil, err
	}
	if isLink(st) {
		return nil, errLink(d.join(name))
	}
	if !isDir(st) {
		return nil, nil
	}
	p, err := d.sub(name, false)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	return readPublished(p)
}

// readPublished reads _SUCCESS and the manifest it names in d (a
// partition), and checks that every file _SUCCESS lists is there.
func readPublished(d *outDir) (*Published, error) {
	body, ok, err := d.readFile(SuccessFile)
	if err != nil || !ok {
		return nil, err
	}
	p := &Published{success: ParseSuccess(body)}
	if raw, ok, err := d.readFile(p.success.ManifestName()); err == nil && ok && validRel(p.success.ManifestName()) {
		var m Manifest
		if json.Unmarshal(raw, &m) == nil {
			p.manifest = &m
		}
	}
	p.missing = p.success.missingFiles(d.fileSize)
	return p, nil
}

// foreignEntry returns the first entry of the partition directory d that
// batchmatch does not write ("" when everything there could be ours):
// such a directory is not batchmatch's, and the job neither replaces nor
// removes it.
func foreignEntry(d *outDir) (string, error) {
	names, err := d.names()
	if err != nil {
		return "", err
	}
	for _, n := range names {
		st, ok, err := d.lstat(n)
		if err != nil || !ok {
			return "", err
		}
		if isReg(st) && ownName(n) {
			continue
		}
		if !isDir(st) || !slices.Contains(tableDirs, n) {
			return n, nil
		}
		t, err := d.sub(n, false)
		if err != nil {
			return "", err
		}
		files, err := t.names()
		if err == nil {
			for _, f := range files {
				st, ok, lerr := t.lstat(f)
				if lerr != nil {
					err = lerr
					break
				}
				if ok && (!isReg(st) || !ownName(n+"/"+f)) {
					t.Close()
					return n + "/" + f, nil
				}
			}
		}
		t.Close()
		if err != nil {
			return "", err
		}
	}
	return "", nil
}

// errForeign refuses to replace or remove a directory that is not
// batchmatch's (exit 73: the partition cannot be created there).
func errForeign(path, entry string) error {
	return fmt.Errorf("%w: %s holds %s, which batchmatch never writes: it is not a partition of batchmatch's, and is neither replaced nor removed; move it away (or publish under another --partition)",
		failure.Exists, path, entry)
}

// checkOurs refuses the directory name in d when it holds anything
// batchmatch does not write (foreignEntry).
func checkOurs(d *outDir, name string) error {
	sub, err := d.sub(name, false)
	if err != nil {
		return err
	}
	defer sub.Close()
	entry, err := foreignEntry(sub)
	if err != nil {
		return err
	}
	if entry != "" {
		return errForeign(d.join(name), entry)
	}
	return nil
}

// recoverAttempt removes the staging directory name of a dead attempt (or
// of this one, at its end), first putting back any published partition
// that an interrupted replace left in it (aside/<partition>, or a legacy
// "replaced") when its place under OUT holds no intact published
// partition. Only putting back the run's own partition can fail it; every
// other trouble is a warning (what cannot be removed is left to a
// person, and the next runs try again).
func (c *committer) recoverAttempt(name string) error {
	st, ok, err := c.tmp.lstat(name)
	if err != nil || !ok {
		c.warnLeftover(c.tmp.join(name), err)
		return nil
	}
	if !isDir(st) {
		// A link or a file planted in the staging area: removed itself,
		// its target untouched.
		c.log.Warn("removing a stray entry from the staging area", "path", c.tmp.join(name))
		c.warnLeftover(c.tmp.join(name), c.tmp.removeAll(name))
		return nil
	}
	a, err := c.tmp.sub(name, false)
	if err != nil {
		c.warnLeftover(c.tmp.join(name), err)
		return nil
	}
	defer a.Close()
	type candidate struct {
		dir              *outDir
		entry, partition string
	}
	var cands []candidate
	keep := map[string]bool{} // entries of a that must stay (a partition that could not be put back)
	if st, ok, err := a.lstat(asideDir); err == nil && ok && isDir(st) {
		aside, err := a.sub(asideDir, false)
		if err != nil {
			c.warnLeftover(a.join(asideDir), err)
			return nil
		}
		defer aside.Close()
		ns, err := aside.names()
		if err != nil {
			c.warnLeftover(aside.path, err)
			return nil
		}
		for _, n := range ns {
			if pub, err := publishedIn(aside, n); err == nil && pub != nil && pub.Intact() {
				cands = append(cands, candidate{aside, n, n})
			}
		}
	}
	if pub, err := publishedIn(a, legacyReplaced); err == nil && pub != nil && pub.Intact() {
		// An earlier version staged partitions right in the attempt
		// directory, so a partition named "replaced" that was staged and
		// never published looks the same as the legacy place of a
		// replaced one: only a partition whose manifest names another
		// partition is provably the latter.
		switch p := legacyPartitionName(a); p {
		case "":
		case legacyReplaced:
			// Dead either way once OUT/replaced is published.
			if pub, err := c.publishedAt(legacyReplaced); err != nil || pub == nil || !pub.Intact() {
				c.log.Warn("cannot tell whether a partition left by an earlier version was published; left in place for a person",
					"path", a.join(legacyReplaced), "partition", p)
				keep[legacyReplaced] = true
			}
		default:
			cands = append(cands, candidate{a, legacyReplaced, p})
		}
	}
	for _, cd := range cands {
		if CheckPartition(cd.partition) != nil {
			continue
		}
		if err := c.restoreIfGone(cd.dir, cd.entry, cd.partition); err != nil {
			if cd.partition == c.partition {
				return fmt.Errorf("putting back the published partition %s from %s: %w", c.root.join(cd.partition), cd.dir.join(cd.entry), err)
			}
			c.log.Error("a published partition that an interrupted replace moved aside could not be put back; the next run tries again",
				"partition", c.root.join(cd.partition), "from", cd.dir.join(cd.entry), "error", err)
			if cd.dir == a {
				keep[cd.entry] = true
			} else {
				keep[asideDir] = true
			}
		}
	}
	ns, err := a.names()
	if err != nil {
		c.warnLeftover(a.path, err)
		return nil
	}
	kept := false
	for _, n := range ns {
		if keep[n] {
			kept = true
			continue
		}
		c.warnLeftover(a.join(n), a.removeAll(n))
	}
	if !kept {
		if err := unix.Unlinkat(c.tmp.fd(), name, unix.AT_REMOVEDIR); err != nil && !errors.Is(err, unix.ENOENT) {
			c.warnLeftover(a.path, fsError(err, "removing", a.path))
		}
	}
	return nil
}

// warnLeftover logs a leftover of a dead run that could not be removed
// (nothing when err is nil): it is left for a person and the next run.
func (c *committer) warnLeftover(path string, err error) {
	if err != nil {
		c.log.Warn("a leftover of an earlier run could not be removed; left in place (the next run tries again)", "path", path, "error", err)
	}
}

// restoreIfGone puts the published partition entry of src back as OUT/name
// unless OUT/name holds an intact published partition already (the
// replace finished: what is aside is the old one, and goes).
func (c *committer) restoreIfGone(src *outDir, entry, name string) error {
	pub, err := c.publishedAt(name)
	if err != nil {
		return err
	}
	if pub != nil && pub.Intact() {
		return nil
	}
	if err := c.restore(src, entry, name); err != nil {
		return err
	}
	c.log.Warn("put back a published partition that an interrupted replace had moved aside",
		"partition", c.root.join(name), "from", src.join(entry))
	return nil
}

// legacyPartitionName reads the partition name of a legacy "replaced"
// directory from its manifest ("" if unknown).
func legacyPartitionName(a *outDir) string {
	d, err := a.sub(legacyReplaced, false)
	if err != nil {
		return ""
	}
	defer d.Close()
	manifest := ManifestFile
	if body, ok, err := d.readFile(SuccessFile); err == nil && ok && validRel(ParseSuccess(body).ManifestName()) {
		manifest = ParseSuccess(body).ManifestName()
	}
	raw, ok, err := d.readFile(manifest)
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
// where no intact published partition is: by a rename, or, over an
// unfinished or damaged partition of batchmatch's, by an exchange (the
// one that was there lands in src and goes with it). A directory there
// without _SUCCESS that is not batchmatch's is refused.
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
		if pub, err := c.publishedAt(name); err != nil {
			return err
		} else if pub == nil {
			if err := checkOurs(c.root, name); err != nil {
				return err
			}
		}
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
	return c.staged.join(c.partition)
}

// publish writes _SUCCESS (listing every file of the partition with its
// size) into the staged partition, then puts the complete partition in
// place in one atomic step: a rename when none is published, an exchange
// with the published one otherwise (see the comment at the top of this
// file). A published partition is replaced only with overwrite, or when
// it is damaged (files missing) and of the same run id (a repair). A
// directory without _SUCCESS in its place that is not batchmatch's
// (foreignEntry) is never replaced.
func (c *committer) publish(overwrite bool, runID, manifest string) error {
	name := c.partition
	staged, err := c.staged.sub(name, false)
	if err != nil {
		return err
	}
	defer staged.Close()
	CrashPoint("tables")
	files, err := listFiles(staged.path)
	if err != nil {
		return fsError(err, "listing", staged.path)
	}
	sizes := map[string]int64{}
	for _, f := range files {
		if n, ok := staged.fileSize(f); ok {
			sizes[f] = n
		}
	}
	if err := c.hooks.writeFileSync(staged.join(SuccessFile), successBody(runID, c.attempt, manifest, files, sizes)); err != nil {
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
		if err := c.staged.rename(name, c.root, name); err != nil {
			return err
		}
		CrashPoint("renamed")
	case isLink(st):
		return errLink(c.final)
	case !isDir(st):
		return errNotDir(c.final)
	default:
		pub, err := c.publishedAt(name)
		if err != nil {
			return err
		}
		repair := pub != nil && !pub.Intact() && pub.RunID() == runID
		if pub != nil && !overwrite && !repair {
			return fmt.Errorf("%w: %s is already published by run %s; pass --overwrite to replace it", failure.Exists, c.final, pub.RunID())
		}
		// A partition without _SUCCESS (a publish that never finished) is
		// replaced like a published one: nobody may rely on it. But only
		// one of batchmatch's: a directory without _SUCCESS that holds
		// anything else (inputs delivered there, someone's files) is not.
		if pub == nil {
			if err := checkOurs(c.root, name); err != nil {
				return err
			}
		}
		err = c.staged.exchange(name, c.root, name)
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
	if err := c.staged.rename(name, c.root, name); err != nil {
		if rerr := aside.rename(name, c.root, name); rerr != nil {
			return fmt.Errorf("%w; putting the published partition back failed too (%v): it is kept at %s and the next run puts it back",
				err, rerr, aside.join(name))
		}
		return err
	}
	CrashPoint("renamed")
	return nil
}

// successRunID reads the run id out of a _SUCCESS body ("" if none).
func successRunID(body []byte) string { return ParseSuccess(body).RunID }

// PublishedDir reports whether dir is a completely published run: a
// directory (not a link) with a regular _SUCCESS whose listed files are
// all there.
func PublishedDir(dir string) bool {
	root, err := openDirNoFollow(dir)
	if err != nil {
		return false
	}
	defer root.Close()
	p, err := readPublished(root)
	return err == nil && p != nil && p.Intact()
}

// TablePath is where the published partition dir holds table: the file
// of that table its _SUCCESS lists (a partition of an earlier version, or
// one without _SUCCESS: part-00000.parquet).
func TablePath(dir, table string) string {
	if body, err := os.ReadFile(filepath.Join(dir, SuccessFile)); err == nil {
		for _, f := range ParseSuccess(body).Files {
			if strings.HasPrefix(f, table+"/") {
				return filepath.Join(dir, filepath.FromSlash(f))
			}
		}
	}
	return filepath.Join(dir, table, PartFile)
}

// ListedPath is where the published partition dir holds the file name (as
// earlier versions named it: "report.html", "manifest.json",
// "matches/part-00000.parquet"): the file its _SUCCESS lists under that
// name tagged with the publishing attempt, or dir/name.
func ListedPath(dir, name string) string {
	if body, err := os.ReadFile(filepath.Join(dir, SuccessFile)); err == nil {
		s := ParseSuccess(body)
		if tagged := taggedName(name, s.AttemptID); slices.Contains(s.Files, tagged) {
			return filepath.Join(dir, filepath.FromSlash(tagged))
		}
	}
	return filepath.Join(dir, filepath.FromSlash(name))
}

// ManifestPath is where the published partition dir holds its manifest:
// the one its _SUCCESS names (manifest.json when it names none).
func ManifestPath(dir string) string {
	name := ManifestFile
	if body, err := os.ReadFile(filepath.Join(dir, SuccessFile)); err == nil {
		name = ParseSuccess(body).ManifestName()
	}
	return filepath.Join(dir, filepath.FromSlash(name))
}

// cleanup removes the staging area, putting back first a published
// partition a failed replace left in it, and releases the lock. Safe to
// call twice.
func (c *committer) cleanup() {
	if c.stage != nil {
		c.staged.Close()
		c.staged = nil
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
	c.staged.Close()
	c.stage.Close()
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

// syncDir fsyncs the directory dir (opened as a directory, not through a
// link: nothing in its place can make the open block).
func (h *Hooks) syncDir(dir string) error {
	if err := h.fault("sync", dir); err != nil {
		return fsError(err, "syncing", dir)
	}
	d, err := os.OpenFile(dir, os.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err != nil {
		return fsError(err, "opening", dir)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, fs.ErrInvalid) {
		return fsError(err, "syncing", dir)
	}
	return nil
}
