package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/osmosis/batchmatch/pipeline/failure"
	"github.com/osmosis/batchmatch/pipeline/publish"
	"github.com/osmosis/batchmatch/pipeline/read"
	"github.com/osmosis/batchmatch/pipeline/store"
)

// setupStore checks the object-store settings of the environment (an
// invalid one is a usage error, never silently ignored) and sends the
// store's retry logs to log.
func setupStore(log *slog.Logger) error {
	if err := store.CheckEnv(); err != nil {
		return fmt.Errorf("%w: %w", failure.Usage, err)
	}
	store.Default().SetLogger(log)
	return nil
}

// checkInputsOutsideOut refuses an input inside the output location (a
// usage error naming it): the job owns what it finds in its partitions and
// staging area, and inputs delivered there (Hive-style, into OUT/dt=DATE/)
// would be read and then replaced or removed with the partition. Both
// sides are compared with their links resolved, local paths and file://
// URLs alike; object-store URLs by bucket and key prefix.
func checkInputsOutsideOut(ctx context.Context, cfg Config) error {
	out, outURL := outsideKey(cfg.Out, true)
	for _, in := range []struct {
		flag  string
		specs []string
	}{{"profiles", cfg.Profiles}, {"blocks", cfg.Blocks}, {"suppress", cfg.Suppress}} {
		if len(in.specs) == 0 {
			continue
		}
		files, err := read.ResolveInputs(ctx, in.flag, in.specs)
		if err != nil {
			return err
		}
		for _, f := range files {
			key, isURL := outsideKey(f, false)
			if isURL != outURL || !within(key, out) {
				continue
			}
			return failure.Usagef("--%s %s is inside --out %s: batchmatch replaces and removes what it finds in its output (a partition holding inputs would be replaced with them); deliver the inputs elsewhere",
				in.flag, publish.RedactURL(f), publish.RedactURL(cfg.Out))
		}
	}
	return nil
}

// outsideKey is what checkInputsOutsideOut compares of a location: a local
// path (file:// URLs too) made absolute with its links resolved as far as
// it exists (out need not exist yet), or scheme://bucket/key for an
// object store.
func outsideKey(loc string, isOut bool) (string, bool) {
	if store.IsURL(loc) {
		u, err := url.Parse(loc)
		if err != nil {
			return loc, true
		}
		if u.Scheme != "file" {
			return u.Scheme + "://" + u.Host + "/" + strings.Trim(u.Path, "/"), true
		}
		loc = u.Path
	}
	abs, err := filepath.Abs(loc)
	if err != nil {
		return loc, false
	}
	// Resolve the longest existing prefix.
	rest := ""
	for p := abs; ; p = filepath.Dir(p) {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			return filepath.Join(r, rest), false
		}
		if p == filepath.Dir(p) {
			return abs, false
		}
		rest = filepath.Join(filepath.Base(p), rest)
	}
}

// within reports whether key is at or below dir (both as outsideKey gives).
func within(key, dir string) bool {
	dir = strings.TrimSuffix(dir, "/")
	return key == dir || strings.HasPrefix(key, dir+"/")
}
