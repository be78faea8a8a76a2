package pipeline

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"syscall"

	"github.com/osmosis/batchmatch/pipeline/store"
)

// Error kinds. Every error the pipeline returns wraps exactly one of these
// (with %w), so cmd/batchmatch can map it to a sysexits code in one place.
// The split that matters to a scheduler is whether a retry can help: only
// ErrIO, ErrLocked and ErrNotReady are transient.
var (
	// ErrUsage is a bad flag or configuration (exit 64).
	ErrUsage = errors.New("usage error")
	// ErrBadData is input that exists but cannot be used: unreadable
	// Parquet, a wrong schema, too many rejected rows (exit 65).
	ErrBadData = errors.New("bad input data")
	// ErrNoInput is an input path that does not exist or matches nothing,
	// or that is not a regular file (exit 66).
	ErrNoInput = errors.New("input missing")
	// ErrInternal is a bug in batchmatch or a library it uses, caught by a
	// consistency check before it could reach the output (exit 70).
	ErrInternal = errors.New("internal error")
	// ErrSystem is a resource limit of the operating system, such as too
	// many open files (exit 71).
	ErrSystem = errors.New("system error")
	// ErrIO is a transient failure to read or write: an I/O error, a full
	// disk, an object store that keeps failing (exit 74).
	ErrIO = errors.New("i/o error")
	// ErrLocked is another run holding the output location's lock (exit 75).
	ErrLocked = errors.New("output locked by another run")
	// ErrPermission is permission denied on an input or the output, a
	// read-only file system, or an object store refusing access (exit 77).
	// A retry cannot help.
	ErrPermission = errors.New("permission denied")
	// ErrConfig is a deployment problem a retry cannot fix: TLS trust,
	// missing or invalid credentials (exit 78).
	ErrConfig = errors.New("configuration error")
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

// osKind classifies an operating-system or TLS error into the kind that
// tells a scheduler the truth, or returns fallback when err says nothing
// more specific (e.g. ErrNoInput for a failed open of an input, ErrIO for a
// failed write).
func osKind(err error, fallback error) error {
	var errno syscall.Errno
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	var verify *tls.CertificateVerificationError
	switch {
	case errors.Is(err, fs.ErrPermission), errors.Is(err, syscall.EROFS), errors.Is(err, store.ErrDenied):
		return ErrPermission
	case errors.As(err, &unknownCA), errors.As(err, &hostname), errors.As(err, &invalid), errors.As(err, &verify),
		errors.Is(err, store.ErrConfig):
		return ErrConfig
	case errors.As(err, &errno) && (errno == syscall.EMFILE || errno == syscall.ENFILE):
		return ErrSystem
	case errors.Is(err, fs.ErrNotExist) && fallback == ErrNoInput:
		return ErrNoInput
	}
	return fallback
}

// osError wraps err (naming what) in the kind osKind gives it.
func osError(err error, fallback error, what string) error {
	return fmt.Errorf("%w: %s: %w", osKind(err, fallback), what, err)
}

// ErrExists is a run whose partition is already published, without
// --overwrite (exit 73, EX_CANTCREAT).
var ErrExists = errors.New("output already exists")

// ErrNotReady is a commit whose shard parts are not all there yet (exit 75,
// EX_TEMPFAIL: retry later).
var ErrNotReady = errors.New("shard parts not ready")

// Kind returns the kind of err that decides the exit code, or nil when err
// wraps none (a bug: every error the pipeline returns should). A permanent
// condition anywhere in err's chain (permission denied, a read-only file
// system, an object store refusing access, TLS trust or credentials, an
// operating-system limit) outranks the kind of the operation that met it
// (ErrIO, ErrNoInput, ErrBadData): a scheduler must never be told to retry
// what a retry cannot fix. The kinds that are decisions (ErrUsage,
// ErrInternal, ErrExists, ErrLocked, ErrNotReady) stand as they are.
func Kind(err error) error {
	if err == nil {
		return nil
	}
	for _, k := range []error{ErrUsage, ErrInternal, ErrExists, ErrLocked, ErrNotReady} {
		if errors.Is(err, k) {
			return k
		}
	}
	if k := osKind(err, nil); k != nil {
		return k
	}
	for _, k := range []error{ErrPermission, ErrConfig, ErrSystem, ErrNoInput, ErrBadData, ErrIO} {
		if errors.Is(err, k) {
			return k
		}
	}
	return nil
}
