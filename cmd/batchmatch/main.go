// Command batchmatch is Osmosis's nightly matching job: it reads Parquet
// profile shards, scores every compatible pair and writes the matches,
// soulmates and rejects tables (see SPEC.md and README.md).
//
//	batchmatch gen      --out DIR [--n N --shards S --seed X ...]   a synthetic population (gen.go)
//	batchmatch run      --profiles PATH --out OUT [--k 10 --as-of DATE ...] [--shard-index I --shard-count N]
//	                                                               the job, or one shard of it (run.go)
//	batchmatch commit   --out OUT --as-of DATE                     publish a sharded run from its parts (commit.go)
//	batchmatch night    RUN FLAGS                                  a scheduled shard: run, then commit if it completed the set (night.go)
//	batchmatch validate --profiles PATH                            read and check only (validate.go)
//	batchmatch explain  --profiles PATH MEMBER [OTHER]             why a member got what it got (explain.go)
//	batchmatch report   PARTITION [--output FILE]                  the HTML report of a published run (report.go)
//	batchmatch version                                             versions and kernel implementation (version.go)
//
// This package is the only one that knows flags (each command's Options
// with AddFlags), Prometheus (metrics.go) and exit codes (exitCode, below:
// the one place that maps an error's kind to a number). main is thin: it
// sets up the signal context and maps run's error to the exit code.
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

	"github.com/spf13/pflag"

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

// errHelp is returned after printing help: exit 0, nothing more to say.
var errHelp = errors.New("help requested")

// usage is the help of the command line.
const usage = `batchmatch: Osmosis's nightly matching job

Usage:
  batchmatch gen      --out DIR [--n 10000] [--shards 4] [--seed 1] [--invalid-ratio 0]
  batchmatch run      --profiles PATH --out OUT [--k 10] [--as-of YYYY-MM-DD] [--weights 0.4,0.35,0.15,0.1]
                      [--blocks PATH] [--suppress PATH] [--workers N] [--max-reject-ratio 0.001] [--overwrite]
                      [--shard-index I --shard-count N]   (one shard of a sharded run; see commit)
  batchmatch commit   --out OUT --as-of YYYY-MM-DD [--shard-count N] [--overwrite]   (publish a sharded run)
  batchmatch night    RUN FLAGS   (a scheduled shard: run, then commit if its part completed the set)
  batchmatch validate --profiles PATH [--as-of YYYY-MM-DD]
  batchmatch explain  --profiles PATH [--blocks PATH] [--suppress PATH] [--as-of DATE] MEMBER [OTHER]
  batchmatch report   PARTITION_DIR [--output FILE]
  batchmatch version

Run "batchmatch COMMAND --help" for a command's flags.
Exit codes (retry? in brackets): 0 published or already published by the same
run; 64 usage [no]; 65 bad input data [no]; 66 input missing [after upstream];
70 internal error [no]; 71 OS limit, e.g. open files [no]; 73 published by
another run, no --overwrite [no]; 74 transient I/O error [yes]; 75 output locked,
or (commit) shard parts not ready [later]; 77 permission denied [no]; 78 TLS
trust or credentials [no]; 130/143 interrupted [yes]. See README.md.
`

// run executes one command line (without the program name).
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("%w: no command given", failure.Usage)
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return errHelp
	case "version", "--version":
		return cmdVersion(stdout)
	case "gen":
		return cmdGen(ctx, args, stdout, stderr)
	case "run":
		return cmdRun(ctx, args, stdout, stderr)
	case "validate":
		return cmdValidate(ctx, args, stdout, stderr)
	case "explain":
		return cmdExplain(ctx, args, stdout, stderr)
	case "report":
		return cmdReport(args, stdout, stderr)
	case "commit":
		return cmdCommit(ctx, args, stdout, stderr)
	case "night":
		return cmdNight(ctx, args, stdout, stderr)
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("%w: unknown command %q", failure.Usage, cmd)
}

// parse parses a command's flags, turning pflag errors into usage errors.
// Commands without positional arguments reject them.
func parse(fs *pflag.FlagSet, args []string, stderr io.Writer) error {
	if err := parseWithArgs(fs, args, stderr); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", failure.Usage, fs.Arg(0))
	}
	return nil
}

// parseWithArgs is parse for commands that take positional arguments.
func parseWithArgs(fs *pflag.FlagSet, args []string, stderr io.Writer) error {
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return errHelp
		}
		return fmt.Errorf("%w: %v", failure.Usage, err)
	}
	return nil
}
