package publish

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/osmosis/batchmatch/pipeline/failure"
)

// File-system operations inside OUT.
//
// The job often runs with more rights than the people who can write into
// OUT, so nothing inside OUT is trusted: a symbolic link planted where the
// job keeps its lock, its staging area or anything it removes must never
// send it elsewhere. Every such operation goes through an outDir, a
// directory opened with O_NOFOLLOW, and names one path element relative to
// it (openat, mkdirat, unlinkat, renameat, renameat2), so no link is
// followed, whatever changes under the job meanwhile. OUT itself may be a
// link: the operator names it.
//
// Table files are written by path inside the attempt's own staging
// directory, which the job has just created (0750) through an outDir, with
// O_EXCL: a file that exists, or a link, is never opened for writing.

// outDir is a directory opened without following a symbolic link.
type outDir struct {
	f     *os.File
	path  string // for messages and for writers that take paths
	hooks *Hooks // test hooks, handed on to subdirectories
}

// errLink is the refusal to follow a symbolic link inside OUT (exit 77:
// a person must look at the output directory; see README, exit codes).
func errLink(path string) error {
	target, _ := os.Readlink(path)
	return fmt.Errorf("%w: %s is a symbolic link (to %q): batchmatch never follows a link inside its output directory; remove it",
		failure.Permission, path, target)
}

// errNotDir is the refusal of something else than a directory where the
// job keeps one.
func errNotDir(path string) error {
	return fmt.Errorf("%w: %s is not a directory: batchmatch keeps its own directory there; remove it", failure.Permission, path)
}

// fsError classifies a failed operation on path: permission denied and a
// read-only file system are failure.Permission, a full disk or any other
// failure failure.IO (transient).
func fsError(err error, what, path string) error {
	return fmt.Errorf("%w: %s %s: %w", failure.OSKind(err, failure.IO), what, path, err)
}

// openOutRoot creates OUT (0750) if needed and opens it.
func openOutRoot(out string, h *Hooks) (*outDir, error) {
	if err := h.fault("mkdir", out); err != nil {
		return nil, fsError(err, "creating output directory", out)
	}
	if err := os.MkdirAll(out, 0o750); err != nil {
		return nil, pathError(err, "--out", "creating output directory", out)
	}
	f, err := os.OpenFile(out, os.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, pathError(err, "--out", "opening output directory", out)
	}
	return &outDir{f: f, path: out, hooks: h}, nil
}

// pathError classifies a failure to create or open a directory the
// operator named (flag): a path that cannot be a directory (a component is
// a file, a name too long, a link loop) or, for a directory that must
// exist (anything but --out, which is created), one that does not, is a
// configuration error (exit 78) naming it; anything else as fsError.
func pathError(err error, flag, what, path string) error {
	if errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ENAMETOOLONG) || errors.Is(err, unix.ELOOP) ||
		flag != "--out" && errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("%w: %s %s cannot be used as a directory: %s: %w", failure.Config, flag, path, what, err)
	}
	return fsError(err, what, path)
}

// openDirNoFollow opens the directory dir, refusing a link as its last
// element (earlier elements are the operator's path).
func openDirNoFollow(dir string) (*outDir, error) {
	f, err := os.OpenFile(dir, os.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	return &outDir{f: f, path: dir}, nil
}

func (d *outDir) fd() int { return int(d.f.Fd()) }

func (d *outDir) join(name string) string { return filepath.Join(d.path, name) }

// Close releases the directory.
func (d *outDir) Close() error {
	if d == nil || d.f == nil {
		return nil
	}
	err := d.f.Close()
	d.f = nil
	return err
}

// lstat describes name without following it; ok is false when it does not exist.
func (d *outDir) lstat(name string) (st unix.Stat_t, ok bool, err error) {
	err = unix.Fstatat(d.fd(), name, &st, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return st, false, nil
	}
	if err != nil {
		return st, false, fsError(err, "inspecting", d.join(name))
	}
	return st, true, nil
}

func isDir(st unix.Stat_t) bool  { return st.Mode&unix.S_IFMT == unix.S_IFDIR }
func isLink(st unix.Stat_t) bool { return st.Mode&unix.S_IFMT == unix.S_IFLNK }
func isReg(st unix.Stat_t) bool  { return st.Mode&unix.S_IFMT == unix.S_IFREG }

// sub opens the directory name inside d, creating it (0750) when create is
// set. A link or a non-directory there is refused.
func (d *outDir) sub(name string, create bool) (*outDir, error) {
	path := d.join(name)
	if create {
		if err := d.hooks.fault("mkdir", path); err != nil {
			return nil, fsError(err, "creating", path)
		}
		if err := unix.Mkdirat(d.fd(), name, 0o750); err != nil && !errors.Is(err, unix.EEXIST) {
			return nil, fsError(err, "creating", path)
		}
	}
	fd, err := unix.Openat(d.fd(), name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		if st, ok, _ := d.lstat(name); ok && isLink(st) {
			return nil, errLink(path)
		} else if ok && !isDir(st) {
			return nil, errNotDir(path)
		}
		if errors.Is(err, unix.ENOENT) {
			return nil, fmt.Errorf("%w: %s: %w", failure.IO, path, fs.ErrNotExist)
		}
		return nil, fsError(err, "opening", path)
	}
	return &outDir{f: os.NewFile(uintptr(fd), path), path: path, hooks: d.hooks}, nil
}

// open opens the file name inside d without following a link (flag as for
// os.OpenFile). A link is refused, anything but a regular file too.
func (d *outDir) open(name string, flag int, perm os.FileMode) (*os.File, error) {
	path := d.join(name)
	if flag&os.O_CREATE != 0 {
		if err := d.hooks.fault("create", path); err != nil {
			return nil, fsError(err, "creating", path)
		}
	}
	fd, err := unix.Openat(d.fd(), name, flag|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, uint32(perm.Perm()))
	if errors.Is(err, unix.ELOOP) {
		return nil, errLink(path)
	}
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	// O_NONBLOCK only kept a FIFO planted there from blocking the open.
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, fsError(err, "inspecting", path)
	}
	if !isReg(st) {
		unix.Close(fd)
		return nil, fmt.Errorf("%w: %s is not a regular file: batchmatch keeps its own file there; remove it", failure.Permission, path)
	}
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err == nil {
		_, err = unix.FcntlInt(uintptr(fd), unix.F_SETFL, fl&^unix.O_NONBLOCK)
	}
	if err != nil {
		unix.Close(fd)
		return nil, fsError(err, "opening", path)
	}
	return os.NewFile(uintptr(fd), path), nil
}

// walk opens the directory holding the last element of the slash path rel
// inside d (d itself, or a subdirectory opened element by element without
// following a link) and returns it with that element; close is nil when
// it is d.
func (d *outDir) walk(rel string) (dir *outDir, last string, close func(), err error) {
	elems := strings.Split(rel, "/")
	dir, close = d, func() {}
	for _, e := range elems[:len(elems)-1] {
		next, err := dir.sub(e, false)
		close()
		if err != nil {
			return nil, "", nil, err
		}
		dir, close = next, func() { next.Close() }
	}
	return dir, elems[len(elems)-1], close, nil
}

// fileSize is the size of the regular file at the slash path rel inside d
// (not through a link); ok is false when there is none.
func (d *outDir) fileSize(rel string) (int64, bool) {
	if !validRel(rel) {
		return 0, false
	}
	dir, last, close, err := d.walk(rel)
	if err != nil {
		return 0, false
	}
	defer close()
	st, ok, err := dir.lstat(last)
	if err != nil || !ok || !isReg(st) {
		return 0, false
	}
	return st.Size, true
}

// openRel opens the regular file at the slash path rel inside d for
// reading, as open does (no link followed on the way or at the end, never
// blocking on a FIFO, refusing anything but a regular file).
func (d *outDir) openRel(rel string) (*os.File, error) {
	if !validRel(rel) {
		return nil, fmt.Errorf("%w: %s: not a path inside %s", failure.Internal, rel, d.path)
	}
	dir, last, close, err := d.walk(rel)
	if err != nil {
		return nil, err
	}
	defer close()
	return dir.open(last, os.O_RDONLY, 0)
}

// readFile returns the content of the regular file name inside d (not
// through a link); ok is false when there is none.
func (d *outDir) readFile(name string) (data []byte, ok bool, err error) {
	f, err := d.open(name, os.O_RDONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	data, err = io.ReadAll(f)
	if err != nil {
		return nil, false, fsError(err, "reading", d.join(name))
	}
	return data, true, nil
}

// names lists d's entries, sorted.
func (d *outDir) names() ([]string, error) {
	fd, err := unix.Openat(d.fd(), ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fsError(err, "reading", d.path)
	}
	f := os.NewFile(uintptr(fd), d.path)
	defer f.Close()
	ns, err := f.Readdirnames(-1)
	if err != nil {
		return nil, fsError(err, "reading", d.path)
	}
	slices.Sort(ns)
	return ns, nil
}

// removeAll removes name inside d and, when it is a directory, everything
// below it, never following a link (a link is removed, not its target).
// It goes on past what it cannot remove and returns the first failure.
func (d *outDir) removeAll(name string) error {
	path := d.join(name)
	if err := d.hooks.fault("remove", path); err != nil {
		return fsError(err, "removing", path)
	}
	st, ok, err := d.lstat(name)
	if err != nil || !ok {
		return err
	}
	if !isDir(st) {
		if err := unix.Unlinkat(d.fd(), name, 0); err != nil && !errors.Is(err, unix.ENOENT) {
			return fsError(err, "removing", path)
		}
		CrashPoint("removing")
		return nil
	}
	sub, err := d.sub(name, false)
	if err != nil {
		return err
	}
	ns, err := sub.names()
	if err == nil {
		for _, n := range ns {
			if rerr := sub.removeAll(n); rerr != nil && err == nil {
				err = rerr
			}
		}
	}
	sub.Close()
	if err != nil {
		return err
	}
	if err := unix.Unlinkat(d.fd(), name, unix.AT_REMOVEDIR); err != nil && !errors.Is(err, unix.ENOENT) {
		return fsError(err, "removing", path)
	}
	return nil
}

// rename moves name in d to toName in to (renameat: the entry itself,
// never a link's target).
func (d *outDir) rename(name string, to *outDir, toName string) error {
	if err := d.hooks.fault("rename", d.join(name)); err != nil {
		return fsError(err, "renaming", d.join(name))
	}
	if err := unix.Renameat(d.fd(), name, to.fd(), toName); err != nil {
		return fsError(err, "renaming "+d.join(name)+" to", to.join(toName))
	}
	return nil
}

// errNoExchange: the file system cannot swap two directories atomically.
var errNoExchange = errors.New("atomic exchange not supported")

// exchange swaps name in d and toName in to atomically (renameat2 with
// RENAME_EXCHANGE): each is visible under the other's name at once, with
// no moment where either name is missing. errNoExchange when the file
// system cannot.
func (d *outDir) exchange(name string, to *outDir, toName string) error {
	if d.hooks.noExchange() {
		return errNoExchange
	}
	if err := d.hooks.fault("exchange", d.join(name)); err != nil {
		return fsError(err, "exchanging "+d.join(name)+" with", to.join(toName))
	}
	err := unix.Renameat2(d.fd(), name, to.fd(), toName, unix.RENAME_EXCHANGE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EOPNOTSUPP) {
		return errNoExchange
	}
	if err != nil {
		return fsError(err, "exchanging "+d.join(name)+" with", to.join(toName))
	}
	return nil
}

// sync fsyncs the directory (its entries: creations, renames, removals).
func (d *outDir) sync() error {
	if err := d.hooks.fault("sync", d.path); err != nil {
		return fsError(err, "syncing", d.path)
	}
	if err := d.f.Sync(); err != nil && !errors.Is(err, fs.ErrInvalid) {
		return fsError(err, "syncing", d.path)
	}
	return nil
}

// flockNB takes an exclusive flock on f without waiting; false when
// another process holds it.
func flockNB(f *os.File) (bool, error) {
	err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		return false, nil
	}
	return err == nil, err
}

// ownerLock marks a directory in d as owned by a live process: before the
// directory (lockName without ".lock") is created, its owner creates
// lockName next to it and holds an flock on it for its lifetime; the lock
// dies with the process, however it dies. A cleaner may remove the
// directory only when it can take the lock itself, or when there is no
// lock file: the owner creates the lock before the directory and removes
// it only after the directory is gone (ownedDead). The lock is checked to
// still be linked after it is taken, so that a cleaner that removed it in
// between cannot leave the owner holding a lock nobody else can see.
func ownerLock(d *outDir, lockName string) (*os.File, error) {
	for range 3 {
		f, err := d.open(lockName, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o640)
		if err != nil {
			return nil, fsError(err, "creating", d.join(lockName))
		}
		ok, err := flockNB(f)
		if err == nil && ok {
			var a, b unix.Stat_t
			if unix.Fstat(int(f.Fd()), &a) == nil && unix.Fstatat(d.fd(), lockName, &b, unix.AT_SYMLINK_NOFOLLOW) == nil &&
				a.Ino == b.Ino && a.Dev == b.Dev {
				return f, nil
			}
		}
		f.Close()
		if err != nil {
			return nil, fsError(err, "locking", d.join(lockName))
		}
	}
	return nil, fmt.Errorf("%w: %s: could not hold the lock (removed as soon as created)", failure.IO, d.join(lockName))
}

// releaseOwner removes the lock file of a finished owner and releases it.
func releaseOwner(d *outDir, lockName string, f *os.File) {
	if f == nil {
		return
	}
	_ = unix.Unlinkat(d.fd(), lockName, 0)
	f.Close()
}

// ownedDead reports whether the owner of a directory marked by lockName in
// d is provably dead: no lock file, or one nobody holds. When dead, the
// returned release (non-nil) must be called after the directory is
// removed: it removes the lock file and releases it.
func ownedDead(d *outDir, lockName string) (dead bool, release func(), err error) {
	f, err := d.open(lockName, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return true, func() {}, nil
	}
	if err != nil {
		return false, nil, err
	}
	ok, err := flockNB(f)
	if err != nil || !ok {
		f.Close()
		return false, nil, err
	}
	return true, func() { releaseOwner(d, lockName, f) }, nil
}

// Hooks are the test hooks of the output protocol; production passes nil.
// (Crash points, which kill the process, are set through the environment:
// crashPoint.)
type Hooks struct {
	// Fault, when set, is called before each file-system operation of the
	// output protocol (op names it: mkdir, create, write, sync, rename,
	// exchange, remove); an error it returns is that operation's error, as
	// a full disk would fail it.
	Fault func(op, path string) error
	// NoExchange makes exchange report errNoExchange, as on file systems
	// without RENAME_EXCHANGE (NFS, some FUSE). $BATCHMATCH_TEST_NO_EXCHANGE
	// sets it for a whole process.
	NoExchange bool
	// BeforeMarker, when set, runs just before the write of a remote
	// _SUCCESS: the place where a racing publisher can get ahead.
	BeforeMarker func()
	// AfterMarker, when set, runs just after a remote _SUCCESS was
	// written, before what it does not list is removed.
	AfterMarker func()
}

// fault is the fault-injection point of the output protocol (Hooks.Fault).
func (h *Hooks) fault(op, path string) error {
	if h == nil || h.Fault == nil {
		return nil
	}
	return h.Fault(op, path)
}

// envNoExchange is $BATCHMATCH_TEST_NO_EXCHANGE (process-level tests).
var envNoExchange = os.Getenv("BATCHMATCH_TEST_NO_EXCHANGE") != ""

func (h *Hooks) noExchange() bool { return envNoExchange || (h != nil && h.NoExchange) }

func (h *Hooks) beforeMarker() {
	if h != nil && h.BeforeMarker != nil {
		h.BeforeMarker()
	}
}

func (h *Hooks) afterMarker() {
	if h != nil && h.AfterMarker != nil {
		h.AfterMarker()
	}
}

// crashAt names the step of the publish at which the process kills itself
// with SIGKILL (tests only: $BATCHMATCH_TEST_CRASH_AT; see crashPoint).
var crashAt = os.Getenv("BATCHMATCH_TEST_CRASH_AT")

// CrashPoint kills the process without any cleanup when step is the one
// $BATCHMATCH_TEST_CRASH_AT names: the crash-point tests stop a publish
// at each of its steps as kill -9 would.
func CrashPoint(step string) {
	if crashAt != "" && crashAt == step {
		_ = unix.Kill(os.Getpid(), unix.SIGKILL)
		select {} // the signal is on its way
	}
}
