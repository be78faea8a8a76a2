package pipeline

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

	"github.com/osmosis/batchmatch/pipeline/store"
)

// resolveInputs expands files, directories and globs into a sorted, de-duplicated
// list of files. Directories are walked recursively for *.parquet files; names
// starting with "_" or "." (staging areas, markers, hidden files) are skipped, as
// Hive and Spark do. A spec that matches nothing is ErrNoInput.
func resolveInputs(ctx context.Context, what string, specs []string) ([]string, error) {
	var out []string
	for _, spec := range specs {
		if spec == "" {
			continue
		}
		if store.IsURL(spec) {
			objs, err := resolveObjects(ctx, what, spec)
			if err != nil {
				return nil, err
			}
			out = append(out, objs...)
			continue
		}
		if strings.ContainsAny(spec, "*?[") {
			m, err := filepath.Glob(spec)
			if err != nil {
				return nil, usageErrorf("--%s: bad pattern %q: %v", what, spec, err)
			}
			if len(m) == 0 {
				return nil, fmt.Errorf("%w: --%s: %q matches no file", ErrNoInput, what, spec)
			}
			for _, p := range m {
				files, err := expandPath(what, p)
				if err != nil {
					return nil, err
				}
				out = append(out, files...)
			}
			continue
		}
		files, err := expandPath(what, spec)
		if err != nil {
			return nil, err
		}
		out = append(out, files...)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

func expandPath(what, p string) ([]string, error) {
	st, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: --%s: %s does not exist", ErrNoInput, what, p)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: --%s: %w", ErrNoInput, what, err)
	}
	if !st.IsDir() {
		return []string{p}, nil
	}
	var files []string
	err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if path != p && (strings.HasPrefix(name, "_") || strings.HasPrefix(name, ".")) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Type().IsRegular() && strings.EqualFold(filepath.Ext(name), ".parquet") {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w: --%s: %w", ErrNoInput, what, err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%w: --%s: directory %s holds no .parquet file", ErrNoInput, what, p)
	}
	return files, nil
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
			return nil, usageErrorf("--%s: bad pattern %q: %v", what, spec, err)
		}
		keys, err := st.List(ctx, withQuery(root))
		if err != nil {
			return nil, fmt.Errorf("%w: --%s: listing %s: %w", ErrIO, what, root, err)
		}
		var out []string
		for _, k := range keys {
			if ok, _ := path.Match(pattern, k); ok && !hidden(k) {
				out = append(out, store.Join(withQuery(root), k))
			}
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("%w: --%s: %q matches no object", ErrNoInput, what, base)
		}
		return out, nil
	}
	ok, err := st.Exists(ctx, spec)
	if err != nil {
		return nil, fmt.Errorf("%w: --%s: %w", ErrIO, what, err)
	}
	if ok {
		return []string{spec}, nil
	}
	keys, err := st.List(ctx, spec)
	if err != nil {
		return nil, fmt.Errorf("%w: --%s: listing %s: %w", ErrIO, what, base, err)
	}
	var out []string
	for _, k := range keys {
		if strings.EqualFold(path.Ext(k), ".parquet") && !hidden(k) {
			out = append(out, store.Join(spec, k))
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: --%s: no object %s and no .parquet object under it", ErrNoInput, what, base)
	}
	return out, nil
}
