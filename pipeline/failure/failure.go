// Package failure holds the kinds of error batchmatch returns. Every error
// a batchmatch package returns wraps exactly one kind (with %w), so that
// cmd/batchmatch maps it to a sysexits code in one place. The split that
// matters to a scheduler is whether a retry can help: only IO, Locked and
// NotReady are transient.
package failure

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"syscall"

	"github.com/osmosis/batchmatch/pipeline/store"
)

// Error kinds.
var (
	// Usage is a bad flag or configuration (exit 64).
	Usage = errors.New("usage error")
	// BadData is input that exists but cannot be used: unreadable
	// Parquet, a wrong schema, too many rejected rows (exit 65).
	BadData = errors.New("bad input data")
	// NoInput is an input path that does not exist or matches nothing,
	// or that is not a regular file (exit 66).
	NoInput = errors.New("input missing")
	// Internal is a bug in batchmatch or a library it uses, caught by a
	// consistency check before it could reach the output (exit 70).
	Internal = errors.New("internal error")
	// System is a resource limit of the operating system, such as too
	// many open files (exit 71).
	System = errors.New("system error")
	// Exists is a run whose partition is already published, without
	// --overwrite (exit 73, EX_CANTCREAT).
	Exists = errors.New("output already exists")
	// IO is a transient failure to read or write: an I/O error, a full
	// disk, an object store that keeps failing (exit 74).
	IO = errors.New("i/o error")
	// Locked is another run holding the output location's lock (exit 75).
	Locked = errors.New("output locked by another run")
	// NotReady is a commit whose shard parts are not all there yet (exit
	// 75, EX_TEMPFAIL: retry later).
	NotReady = errors.New("shard parts not ready")
	// Permission is permission denied on an input or the output, a
	// read-only file system, or an object store refusing access (exit 77).
	// A retry cannot help.
	Permission = errors.New("permission denied")
	// Config is a deployment problem a retry cannot fix: TLS trust,
	// missing or invalid credentials (exit 78).
	Config = errors.New("configuration error")
)

// Usagef is a usage error with a formatted message.
func Usagef(format string, args ...any) error {
	return fmt.Errorf("%w: %s", Usage, fmt.Sprintf(format, args...))
}

// IOf is an IO error with a formatted message (which may wrap with %w).
func IOf(format string, args ...any) error {
	return fmt.Errorf("%w: %w", IO, fmt.Errorf(format, args...))
}

// FileError wraps err in kind with the file (and, when known, the column)
// it concerns.
func FileError(kind error, path, column string, err error) error {
	if column != "" {
		return fmt.Errorf("%w: %s: column %q: %w", kind, path, column, err)
	}
	return fmt.Errorf("%w: %s: %w", kind, path, err)
}

// OSKind classifies an operating-system or TLS error into the kind that
// tells a scheduler the truth, or returns fallback when err says nothing
// more specific (e.g. NoInput for a failed open of an input, IO for a
// failed write).
func OSKind(err error, fallback error) error {
	var errno syscall.Errno
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	var verify *tls.CertificateVerificationError
	switch {
	case errors.Is(err, fs.ErrPermission), errors.Is(err, syscall.EROFS), errors.Is(err, store.ErrDenied):
		return Permission
	case errors.As(err, &unknownCA), errors.As(err, &hostname), errors.As(err, &invalid), errors.As(err, &verify),
		errors.Is(err, store.ErrConfig):
		return Config
	case errors.As(err, &errno) && (errno == syscall.EMFILE || errno == syscall.ENFILE):
		return System
	case errors.Is(err, store.ErrNoBucket):
		// A missing bucket: a missing input, or an output location that
		// is configured wrongly.
		if fallback == NoInput || errors.Is(err, NoInput) {
			return NoInput
		}
		return Config
	case errors.Is(err, store.ErrSetting):
		return Usage
	case errors.Is(err, fs.ErrNotExist) && fallback == NoInput:
		return NoInput
	}
	return fallback
}

// OSError wraps err (naming what) in the kind OSKind gives it.
func OSError(err error, fallback error, what string) error {
	return fmt.Errorf("%w: %s: %w", OSKind(err, fallback), what, err)
}

// Kind returns the kind of err that decides the exit code, or nil when err
// wraps none (a bug: every error batchmatch returns should). A permanent
// condition anywhere in err's chain (permission denied, a read-only file
// system, an object store refusing access, TLS trust or credentials, an
// operating-system limit) outranks the kind of the operation that met it
// (IO, NoInput, BadData): a scheduler must never be told to retry what a
// retry cannot fix. The kinds that are decisions (Usage, Internal,
// Exists, Locked, NotReady) stand as they are.
func Kind(err error) error {
	if err == nil {
		return nil
	}
	for _, k := range []error{Usage, Internal, Exists, Locked, NotReady} {
		if errors.Is(err, k) {
			return k
		}
	}
	if k := OSKind(err, nil); k != nil {
		return k
	}
	for _, k := range []error{Permission, Config, System, NoInput, BadData, IO} {
		if errors.Is(err, k) {
			return k
		}
	}
	return nil
}
