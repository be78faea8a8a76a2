package pipeline

import (
	"errors"
	"fmt"
)

// Error kinds. Every error the pipeline returns wraps exactly one of these
// (with %w), so cmd/batchmatch can map it to a sysexits code in one place.
var (
	// ErrUsage is a bad flag or configuration (exit 64).
	ErrUsage = errors.New("usage error")
	// ErrBadData is input that exists but cannot be used: unreadable
	// Parquet, a wrong schema, too many rejected rows (exit 65).
	ErrBadData = errors.New("bad input data")
	// ErrNoInput is an input path that does not exist or matches nothing (exit 66).
	ErrNoInput = errors.New("input missing")
	// ErrIO is a failure to write or publish the output (exit 74).
	ErrIO = errors.New("i/o error")
	// ErrLocked is another run holding the output location's lock (exit 75).
	ErrLocked = errors.New("output locked by another run")
)

func usageErrorf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUsage, fmt.Sprintf(format, args...))
}

// fileError wraps err with the file (and, when known, the column) it concerns.
func fileError(kind error, path, column string, err error) error {
	if column != "" {
		return fmt.Errorf("%w: %s: column %q: %w", kind, path, column, err)
	}
	return fmt.Errorf("%w: %s: %w", kind, path, err)
}

func ioErrorf(format string, args ...any) error {
	return fmt.Errorf("%w: %w", ErrIO, fmt.Errorf(format, args...))
}

// ErrExists is a run whose partition is already published, without
// --overwrite (exit 73, EX_CANTCREAT).
var ErrExists = errors.New("output already exists")

// ErrNotReady is a commit whose shard parts are not all there yet (exit 75,
// EX_TEMPFAIL: retry later).
var ErrNotReady = errors.New("shard parts not ready")
