package read

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/osmosis/batchmatch/pipeline/failure"
	"github.com/osmosis/batchmatch/pipeline/store"
)

// ResolveInputs expands the values of a path flag into a sorted list of
// distinct files. A value that names an existing local path is taken
// literally, whatever characters it holds ('[', ',', '*'); otherwise commas
// separate several paths (or URLs) and '*', '?' and '[' make a glob ('\'
// escapes them). Directories are walked recursively, following symbolic
// links (a link back to a folder above it is a loop, refused; a folder
// reached twice is walked once), for Parquet files: files named *.parquet,
// and other regular files that begin with Parquet's magic bytes (Hive
// writes shards named 000000_0). Names starting with "_" or "." (staging
// areas, markers, hidden files) are skipped, as Hive and Spark do, in a
// glob's matches too unless the pattern names them. Nothing else is ever
// skipped: a dangling link, a link loop, a directory that cannot be read,
// or a *.parquet name that is not a regular file (a FIFO would block the
// open) fails the run. A file reached by several paths is read once. A
// spec that matches nothing is failure.NoInput.
func ResolveInputs(ctx context.Context, what string, specs []string) ([]string, error) {
	var out []string
	w := &inputWalk{ctx: ctx, what: what, onPath: map[fileKey]bool{}, seen: map[fileKey]bool{}}
	for _, spec := range specs {
		if spec == "" {
			continue
		}
		if store.IsURL(spec) {
			for _, u := range splitURLs(spec) {
				objs, err := resolveObjects(ctx, what, u)
				if err != nil {
					return nil, err
				}
				out = append(out, objs...)
			}
			continue
		}
		parts := []string{spec}
		if _, err := os.Lstat(spec); err != nil && strings.Contains(spec, ",") {
			parts = strings.Split(spec, ",")
		}
		for _, part := range parts {
			files, err := w.resolveLocal(part)
			if err != nil {
				return nil, err
			}
			out = append(out, files...)
		}
	}
	slices.Sort(out)
	out = slices.Compact(out)
	return dedupeFiles(what, out)
}

// splitURLs splits a comma-separated list of URLs at the commas that start
// another URL (a comma inside an object key stays).
func splitURLs(spec string) []string {
	var out []string
	for {
		cut := -1
		for _, scheme := range []string{",s3://", ",gs://", ",file://", ",mem://"} {
			if i := strings.Index(spec, scheme); i >= 0 && (cut < 0 || i < cut) {
				cut = i
			}
		}
		if cut < 0 {
			return append(out, spec)
		}
		out = append(out, spec[:cut])
		spec = spec[cut+1:]
	}
}

// resolveLocal expands one local path or glob.
func (w *inputWalk) resolveLocal(spec string) ([]string, error) {
	if spec == "" {
		return nil, nil
	}
	if _, err := os.Lstat(spec); err == nil || !strings.ContainsAny(spec, "*?[") {
		return w.expand(spec, true)
	}
	m, err := filepath.Glob(spec)
	if err != nil {
		return nil, failure.Usagef("--%s: bad pattern %q: %v", w.what, spec, err)
	}
	m = slices.DeleteFunc(m, func(p string) bool { return hiddenMatch(spec, p) })
	if len(m) == 0 {
		// filepath.Glob ignores folders it cannot read: say so rather than
		// "matches nothing" when the pattern's folder is unreadable.
		if dir := literalPrefix(spec); dir != "" {
			if _, err := os.ReadDir(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return nil, failure.OSError(err, failure.NoInput, "--"+w.what)
			}
		}
		return nil, fmt.Errorf("%w: --%s: %q matches no file", failure.NoInput, w.what, spec)
	}
	var out []string
	for _, p := range m {
		files, err := w.expand(p, false)
		if err != nil {
			return nil, err
		}
		out = append(out, files...)
	}
	return out, nil
}

// literalPrefix is the folder of a glob pattern above its first
// metacharacter.
func literalPrefix(pattern string) string {
	i := strings.IndexAny(pattern, "*?[")
	if i < 0 {
		return filepath.Dir(pattern)
	}
	return filepath.Dir(pattern[:i] + "x")
}

// hiddenMatch reports whether a glob match has a name starting with "_" or
// "." where the pattern's own segment does not start with that character:
// the glob form skips what a folder walk skips ('*' does match ".x" in Go).
func hiddenMatch(pattern, match string) bool {
	ps := strings.Split(filepath.Clean(pattern), string(filepath.Separator))
	ms := strings.Split(filepath.Clean(match), string(filepath.Separator))
	if len(ps) != len(ms) {
		return false
	}
	for i, seg := range ms {
		if (strings.HasPrefix(seg, "_") || strings.HasPrefix(seg, ".")) && !strings.HasPrefix(ps[i], seg[:1]) {
			return true
		}
	}
	return false
}

// expand returns p itself when it is a regular file (or a link to one),
// or the Parquet files below it when it is a directory. A directory named
// on the command line must hold at least one (must); one matched by a
// glob may be empty.
func (w *inputWalk) expand(p string, must bool) ([]string, error) {
	st, err := statInput(w.what, p)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return []string{p}, nil
	}
	before := len(w.files)
	if err := w.dir(p, st); err != nil {
		return nil, err
	}
	files := slices.Clone(w.files[before:])
	if len(files) == 0 && must {
		return nil, fmt.Errorf("%w: --%s: directory %s holds no .parquet file (nor any other Parquet file)", failure.NoInput, w.what, p)
	}
	return files, nil
}

// statInput stats p following links and refuses what cannot be an input:
// a missing path or dangling link, and anything that is neither a regular
// file nor a directory.
func statInput(what, p string) (fs.FileInfo, error) {
	st, err := os.Stat(p)
	if err != nil {
		return nil, statError(what, p, err)
	}
	if !st.IsDir() && !st.Mode().IsRegular() {
		return nil, notRegular(what, p, st.Mode())
	}
	return st, nil
}

// statError describes a failed stat of an input path.
func statError(what, p string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if lst, lerr := os.Lstat(p); lerr == nil && lst.Mode()&fs.ModeSymlink != 0 {
			target, _ := os.Readlink(p)
			return fmt.Errorf("%w: --%s: %s is a symbolic link to %s, which does not exist", failure.NoInput, what, p, target)
		}
		return fmt.Errorf("%w: --%s: %s does not exist", failure.NoInput, what, p)
	case errors.Is(err, syscall.ELOOP):
		return fmt.Errorf("%w: --%s: %s: too many levels of symbolic links (a loop, or a chain of more than 40)", failure.NoInput, what, p)
	}
	return failure.OSError(err, failure.NoInput, "--"+what)
}

// notRegular refuses an input that is not a regular file: opening a FIFO
// blocks until a writer appears, and no device or socket is a shard.
func notRegular(what, p string, m fs.FileMode) error {
	return fmt.Errorf("%w: --%s: %s is not a regular file (%s): refused, opening it could block", failure.NoInput, what, p, fileKind(m))
}

func fileKind(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	}
	return m.Type().String()
}

// fileKey identifies a file or directory by device and inode.
type fileKey struct{ dev, ino uint64 }

func keyOf(st fs.FileInfo) (fileKey, bool) {
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		return fileKey{uint64(sys.Dev), sys.Ino}, true
	}
	return fileKey{}, false
}

// inputWalk walks directory trees following links. onPath holds the
// folders between the root and the current one, so that a link back to
// one of them is a loop; seen holds every folder walked, so that a folder
// reached by several links is walked once (links reaching the same folders
// many ways would otherwise make the walk exponential).
type inputWalk struct {
	ctx    context.Context
	what   string
	onPath map[fileKey]bool
	seen   map[fileKey]bool
	files  []string
}

func (w *inputWalk) dir(path string, st fs.FileInfo) error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	if k, ok := keyOf(st); ok {
		if w.onPath[k] {
			return fmt.Errorf("%w: --%s: %s: symbolic link loop (leads back to a directory above it)", failure.NoInput, w.what, path)
		}
		if w.seen[k] {
			return nil
		}
		w.onPath[k], w.seen[k] = true, true
		defer delete(w.onPath, k)
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return failure.OSError(err, failure.NoInput, "--"+w.what)
	}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, "_") || strings.HasPrefix(name, ".") {
			continue
		}
		full := filepath.Join(path, name)
		isParquet := strings.EqualFold(filepath.Ext(name), ".parquet")
		t := e.Type()
		var est fs.FileInfo
		if t&fs.ModeSymlink != 0 {
			// A dangling link, a loop or an unreadable target is an error
			// whatever its name: it may stand for a folder of shards.
			if est, err = os.Stat(full); err != nil {
				return statError(w.what, full, err)
			}
			t = est.Mode().Type()
		}
		switch {
		case t.IsDir():
			if est == nil {
				if est, err = os.Lstat(full); err != nil {
					return failure.OSError(err, failure.NoInput, "--"+w.what)
				}
			}
			if err := w.dir(full, est); err != nil {
				return err
			}
		case t.IsRegular():
			if isParquet {
				w.files = append(w.files, full)
			} else if ok, err := hasParquetMagic(full); err != nil {
				return failure.OSError(err, failure.NoInput, "--"+w.what)
			} else if ok {
				w.files = append(w.files, full)
			}
		case isParquet: // a FIFO, socket or device named like a shard
			return notRegular(w.what, full, t)
		}
	}
	return nil
}

// hasParquetMagic reports whether a regular file begins with "PAR1".
func hasParquetMagic(path string) (bool, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		return false, err
	}
	defer f.Close()
	var b [4]byte
	n, err := f.ReadAt(b[:], 0)
	if n < 4 {
		return false, nil
	}
	return string(b[:]) == "PAR1", err
}

// dedupeFiles drops paths that name a file already listed (through a
// link, or a directory and a file inside it), keeping the first in order.
func dedupeFiles(what string, paths []string) ([]string, error) {
	seen := map[fileKey]bool{}
	out := paths[:0]
	for _, p := range paths {
		if !store.IsURL(p) {
			st, err := os.Stat(p)
			if err != nil {
				return nil, failure.OSError(err, failure.NoInput, "--"+what)
			}
			if k, ok := keyOf(st); ok {
				if seen[k] {
					continue
				}
				seen[k] = true
			}
		}
		out = append(out, p)
	}
	return out, nil
}

// objectKind is the kind of a failure to find an input on object storage: a
// bucket that does not exist is an input missing (66), anything else the
// store's trouble (failure.IO, or a refusal that failure.Kind finds in
// err).
func objectKind(err error) error {
	if errors.Is(err, store.ErrNoBucket) {
		return failure.NoInput
	}
	return failure.IO
}

// resolveObjects is resolveInputs for an object-store URL: an object, a
// prefix standing for a directory (every *.parquet object below it, names
// starting with "_" or "." skipped at any level), or a glob whose
// metacharacters sit in the key (matched like filepath.Glob: '*' does not
// cross '/').
func resolveObjects(ctx context.Context, what, spec string) ([]string, error) {
	st := store.Default()
	base, query, _ := strings.Cut(spec, "?")
	withQuery := func(b string) string {
		if query != "" {
			return b + "?" + query
		}
		return b
	}
	hidden := func(rel string) bool {
		for _, seg := range strings.Split(rel, "/") {
			if strings.HasPrefix(seg, "_") || strings.HasPrefix(seg, ".") {
				return true
			}
		}
		return false
	}
	if i := strings.IndexAny(base, "*?["); i >= 0 {
		slash := strings.LastIndex(base[:i], "/")
		root, pattern := base[:slash], base[slash+1:]
		if _, err := path.Match(pattern, ""); err != nil {
			return nil, failure.Usagef("--%s: bad pattern %q: %v", what, spec, err)
		}
		keys, err := st.List(ctx, withQuery(root))
		if err != nil {
			return nil, fmt.Errorf("%w: --%s: listing %s: %w", objectKind(err), what, root, err)
		}
		var out []string
		for _, k := range keys {
			if ok, _ := path.Match(pattern, k); ok && !hidden(k) {
				out = append(out, store.Join(withQuery(root), k))
			}
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("%w: --%s: %q matches no object", failure.NoInput, what, base)
		}
		return out, nil
	}
	ok, err := st.Exists(ctx, spec)
	if err != nil {
		return nil, fmt.Errorf("%w: --%s: %w", objectKind(err), what, err)
	}
	if ok {
		return []string{spec}, nil
	}
	keys, err := st.List(ctx, spec)
	if err != nil {
		return nil, fmt.Errorf("%w: --%s: listing %s: %w", objectKind(err), what, base, err)
	}
	var out []string
	for _, k := range keys {
		if strings.EqualFold(path.Ext(k), ".parquet") && !hidden(k) {
			out = append(out, store.Join(spec, k))
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: --%s: no object %s and no .parquet object under it", failure.NoInput, what, base)
	}
	return out, nil
}
