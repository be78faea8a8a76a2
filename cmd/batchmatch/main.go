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
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/osmosis/batchmatch/pipeline/failure"
)

// Exit codes (sysexits.h), which schedulers key retries on. README.md has
// the table; TestExitCodeTable produces every one with a real failure.
const (
	exitOK          = 0
	exitCrash       = 2   // the Go runtime gave up (a fatal error such as out of memory): not ours to choose
	exitUsage       = 64  // EX_USAGE: bad flags or configuration
	exitDataErr     = 65  // EX_DATAERR: unreadable shard, wrong schema, too many rejects, stale parts
	exitNoInput     = 66  // EX_NOINPUT: an input path is missing or not a regular file
	exitSoftware    = 70  // EX_SOFTWARE: a bug: a consistency check failed, a panic was caught, an error was not classified
	exitOSErr       = 71  // EX_OSERR: an operating-system limit, e.g. too many open files
	exitCantCreat   = 73  // EX_CANTCREAT: the partition is already published by another run (no --overwrite)
	exitIOErr       = 74  // EX_IOERR: a transient I/O failure: a full disk, an object store that keeps failing or stalling
	exitTempFail    = 75  // EX_TEMPFAIL: another run holds the output lock; commit: shard parts not all there yet
	exitNoPerm      = 77  // EX_NOPERM: permission denied (input or output), read-only file system, access denied by the store, a link inside OUT
	exitConfig      = 78  // EX_CONFIG: TLS trust, credentials, an object-store URL that cannot be opened
	exitInterrupted = 130 // SIGINT
	exitTerminated  = 143 // SIGTERM
)

func main() {
	termCtx, stopTerm := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	ctx, stopInt := signal.NotifyContext(context.WithValue(termCtx, termKey{}, termCtx), os.Interrupt)
	err := runCaught(ctx, os.Args[1:], os.Stdout, os.Stderr)
	code := exitCodeFor(ctx, err)
	stopInt()
	stopTerm()
	if err != nil && !errors.Is(err, errHelp) {
		if k := failure.Kind(err); k != nil && !strings.HasPrefix(err.Error(), k.Error()) {
			// A permanent cause decided the code, not the operation's kind
			// the message starts with: say so first.
			fmt.Fprintf(os.Stderr, "batchmatch: %v (exit %d): %v\n", k, code, err)
		} else {
			fmt.Fprintln(os.Stderr, "batchmatch:", err)
		}
	}
	os.Exit(code)
}

// runCaught is run with a panic of the main goroutine turned into an
// internal error (exit 70) that names it.
func runCaught(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: panic: %v\n%s", failure.Internal, r, debug.Stack())
		}
	}()
	if os.Getenv("BATCHMATCH_TEST_PANIC") != "" {
		// Exit 70 is a bug, which no input may cause: the exit-code test
		// plants one here.
		panic("planted by $BATCHMATCH_TEST_PANIC")
	}
	return run(ctx, args, stdout, stderr)
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
// that does. failure.Kind decides the kind (a permanent cause such as
// permission denied outranks the generic kind of the operation that met
// it); an error of no kind is a bug in batchmatch (70).
func exitCode(err error, terminated, interrupted bool) int {
	switch {
	case err == nil || errors.Is(err, errHelp):
		return exitOK
	case terminated:
		return exitTerminated
	case interrupted || errors.Is(err, context.Canceled):
		return exitInterrupted
	}
	switch failure.Kind(err) {
	case failure.Usage:
		return exitUsage
	case failure.Permission:
		return exitNoPerm
	case failure.Config:
		return exitConfig
	case failure.Internal:
		return exitSoftware
	case failure.System:
		return exitOSErr
	case failure.NoInput:
		return exitNoInput
	case failure.BadData:
		return exitDataErr
	case failure.Exists:
		return exitCantCreat
	case failure.Locked, failure.NotReady:
		return exitTempFail
	case failure.IO:
		return exitIOErr
	}
	return exitSoftware
}
