// Command batchmatch is Osmosis's nightly matching job: it reads Parquet
// profile shards, scores every compatible pair and writes the matches,
// soulmates and rejects tables (see SPEC.md and README.md).
//
//	batchmatch gen      --out DIR [--n N --shards S --seed X ...]
//	batchmatch run      --profiles DIR --out OUT [--k 10 --as-of DATE ...]
//	batchmatch validate --profiles DIR
//	batchmatch version
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/osmosis/batchmatch/pipeline"
)

// Exit codes (sysexits.h), which schedulers key retries on.
const (
	exitOK          = 0
	exitFailure     = 1   // anything else
	exitUsage       = 64  // EX_USAGE: bad flags or configuration
	exitDataErr     = 65  // EX_DATAERR: unreadable shard, wrong schema, too many rejects
	exitNoInput     = 66  // EX_NOINPUT: an input path is missing or not a regular file
	exitSoftware    = 70  // EX_SOFTWARE: an internal consistency check failed (a bug)
	exitOSErr       = 71  // EX_OSERR: an operating-system limit, e.g. too many open files
	exitCantCreat   = 73  // EX_CANTCREAT: the partition is already published (no --overwrite)
	exitIOErr       = 74  // EX_IOERR: writing or publishing the output failed
	exitTempFail    = 75  // EX_TEMPFAIL: another run holds the output lock
	exitNoPerm      = 77  // EX_NOPERM: permission denied, read-only file system
	exitConfig      = 78  // EX_CONFIG: TLS trust, credentials
	exitInterrupted = 130 // SIGINT
	exitTerminated  = 143 // SIGTERM
)

func main() {
	termCtx, stopTerm := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	ctx, stopInt := signal.NotifyContext(context.WithValue(termCtx, termKey{}, termCtx), os.Interrupt)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	code := exitCodeFor(ctx, err)
	stopInt()
	stopTerm()
	if err != nil && !errors.Is(err, errHelp) {
		fmt.Fprintln(os.Stderr, "batchmatch:", err)
	}
	os.Exit(code)
}

// termKey keys the SIGTERM context in the run's context, so that the exit
// code can tell SIGTERM (143) from SIGINT (130).
type termKey struct{}

// exitCodeFor is exitCode with the signal state read from ctx.
func exitCodeFor(ctx context.Context, err error) int {
	terminated := false
	if t, ok := ctx.Value(termKey{}).(context.Context); ok {
		terminated = t.Err() != nil
	}
	return exitCode(err, terminated, ctx.Err() != nil)
}

// exitCode maps an error to the process exit code; this is the only place
// that does.
func exitCode(err error, terminated, interrupted bool) int {
	switch {
	case err == nil || errors.Is(err, errHelp):
		return exitOK
	case terminated:
		return exitTerminated
	case interrupted || errors.Is(err, context.Canceled):
		return exitInterrupted
	case errors.Is(err, pipeline.ErrUsage):
		return exitUsage
	case errors.Is(err, pipeline.ErrPermission):
		return exitNoPerm
	case errors.Is(err, pipeline.ErrConfig):
		return exitConfig
	case errors.Is(err, pipeline.ErrInternal):
		return exitSoftware
	case errors.Is(err, pipeline.ErrSystem):
		return exitOSErr
	case errors.Is(err, pipeline.ErrNoInput):
		return exitNoInput
	case errors.Is(err, pipeline.ErrBadData):
		return exitDataErr
	case errors.Is(err, pipeline.ErrExists):
		return exitCantCreat
	case errors.Is(err, pipeline.ErrLocked), errors.Is(err, pipeline.ErrNotReady):
		return exitTempFail
	case errors.Is(err, pipeline.ErrIO):
		return exitIOErr
	}
	return exitFailure
}
