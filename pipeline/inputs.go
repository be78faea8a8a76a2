package pipeline

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// resolveInputs expands files, directories and globs into a sorted, de-duplicated
// list of files. Directories are walked recursively for *.parquet files; names
// starting with "_" or "." (staging areas, markers, hidden files) are skipped, as
// Hive and Spark do. A spec that matches nothing is ErrNoInput.
func resolveInputs(what string, specs []string) ([]string, error) {
	var out []string
	for _, spec := range specs {
		if spec == "" {
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
