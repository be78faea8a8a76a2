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
//	batchmatch help     [COMMAND]                                  the commands, or one command's flags
//
// This package is the only one that knows flags (each command's Options
// with AddFlags, exactly the flags the command uses), logging (logs.go),
// Prometheus (metrics.go) and exit codes (exitCode, below: the one place
// that maps an error's kind to a number). main is thin: it sets up the
// signal context and runs the command line as an invocation, which finds
// the logging and metrics flags before anything can fail (so that a usage
// error is logged and reported like any other outcome), runs the command,
// reports the exit code and writes the final error line.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

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
	inv := newInvocation(os.Args[1:], os.Stdout, os.Stderr)
	// What logs through slog's default logger or the log package (the
	// object store of validate, explain and report; libraries) logs as the
	// command line asks: in JSON mode, JSON too.
	slog.SetDefault(inv.log)
	code := inv.execute(ctx, os.Args[1:])
	stopInt()
	stopTerm()
	os.Exit(code)
}

// invocation is one command line being executed: its streams, the logger
// and the metrics targets its flags ask for, found before the command
// parses them (scanFlags), so that an error in the flags themselves is
// logged in the format asked for and reported to the metrics.
type invocation struct {
	command        string // the first argument; "" when none
	stdout, stderr io.Writer
	log            *slog.Logger
	json           bool           // lines on stderr are JSON
	metrics        *metricsReport // nil: no metrics (a command without them, or no target)
}

// newInvocation prepares the command line args (without the program name).
func newInvocation(args []string, stdout, stderr io.Writer) *invocation {
	inv := &invocation{stdout: stdout, stderr: stderr}
	var rest []string
	if len(args) > 0 {
		inv.command, rest = args[0], args[1:]
	}
	sc := scanFlags(rest)
	// A bad value is reported as a usage error by the command; until then
	// its default stands in.
	lo := sc.log
	if _, err := lo.format(stderr); err != nil {
		lo.Format = defaultLogOptions.Format
	}
	if _, err := lo.logger(stderr); err != nil {
		lo.Level = defaultLogOptions.Level
	}
	inv.log, _ = lo.logger(stderr)
	inv.json = lo.json(stderr)
	if c, ok := lookupCommand(inv.command); ok && c.metrics && sc.metrics.configured() {
		inv.metrics = &metricsReport{opts: sc.metrics, group: sc.group, started: time.Now(), last: -1}
	}
	return inv
}

// scanned is what scanFlags finds.
type scanned struct {
	log     logOptions
	metrics MetricsOptions
	group   metricsGroup
}

// scanFlags finds the logging and metrics flags, the output and the shard
// in a command's arguments, ignoring every other flag and every error: the
// command parses them all again.
func scanFlags(args []string) scanned {
	sc := scanned{log: defaultLogOptions}
	var out string
	var shard ShardOptions
	fs := pflag.NewFlagSet("scan", pflag.ContinueOnError)
	fs.ParseErrorsAllowlist.UnknownFlags = true
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	sc.log.AddFlags(fs)
	sc.metrics.AddFlags(fs)
	shard.AddFlags(fs)
	fs.StringVar(&out, "out", "", "")
	_ = fs.Parse(args) // what was found before an error stands
	sc.group.Instance = metricsInstance(out)
	if s, err := shard.Resolve(); err == nil && s.Count > 1 {
		sc.group.Shard = fmt.Sprint(s.Index)
	}
	return sc
}

// invocationKey keys the invocation in the command's context.
type invocationKey struct{}

// invocationOf is the invocation running ctx's command (an empty one
// outside any).
func invocationOf(ctx context.Context) *invocation {
	if inv, ok := ctx.Value(invocationKey{}).(*invocation); ok {
		return inv
	}
	return &invocation{log: slog.New(slog.DiscardHandler)}
}

// execute runs the command line and returns the exit code, after
// reporting it to the metrics (if no command did) and writing the final
// error line.
func (inv *invocation) execute(ctx context.Context, args []string) int {
	ctx = context.WithValue(ctx, invocationKey{}, inv)
	err := runCaught(ctx, inv, args)
	code := exitCodeFor(ctx, err)
	inv.metrics.final(code, inv.log)
	if err != nil && !errors.Is(err, errHelp) {
		inv.finalLine(err, code)
	}
	return code
}

// finalLine writes the last line of a failed command on stderr: text,
// "batchmatch: <cause>", or, in JSON mode, a record "<command> failed"
// with exit_code, error, the error's kind and the signal.
func (inv *invocation) finalLine(err error, code int) {
	text, sig := errorText(err, code)
	if !inv.json {
		fmt.Fprintln(inv.stderr, "batchmatch: "+text)
		return
	}
	attrs := []slog.Attr{slog.Int("exit_code", code), slog.String("error", text)}
	if k := failure.Kind(err); k != nil && sig == "" {
		attrs = append(attrs, slog.String("kind", k.Error()))
	}
	if sig != "" {
		attrs = append(attrs, slog.String("signal", sig))
	}
	name := "batchmatch"
	if _, ok := lookupCommand(inv.command); ok {
		name = inv.command
	}
	inv.log.LogAttrs(context.Background(), slog.LevelError, name+" failed", attrs...)
}

// errorText is what the final line says of err, which gave exit code code,
// and the signal that ended the process ("" when none did).
func errorText(err error, code int) (text, signal string) {
	switch code {
	case exitTerminated:
		return "terminated by SIGTERM (exit 143)", "SIGTERM"
	case exitInterrupted:
		return "interrupted by SIGINT (exit 130)", "SIGINT"
	}
	if k := failure.Kind(err); k != nil && !strings.HasPrefix(err.Error(), k.Error()) {
		// A permanent cause decided the code, not the operation's kind
		// the message starts with: say so first.
		return fmt.Sprintf("%v (exit %d): %v", k, code, err), ""
	}
	return err.Error(), ""
}

// runCaught is the command line run with a panic of the main goroutine
// turned into an internal error (exit 70) that names it.
func runCaught(ctx context.Context, inv *invocation, args []string) (err error) {
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
	return inv.dispatch(ctx, args)
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

// command is one of batchmatch's commands.
type command struct {
	name    string
	args    string // the synopsis after "batchmatch <name>"
	summary string
	// flags registers exactly the command's flags (for its help)
	flags func(fs *pflag.FlagSet)
	run   func(ctx context.Context, args []string, stdout, stderr io.Writer) error
	// metrics: the command takes --metrics-push and --metrics-textfile
	metrics bool
}

// commands are batchmatch's commands, in the order the help lists them.
func commands() []command {
	return []command{
		{"gen", "--out DIR [--n 10000] [--shards 4] [--seed 1] [flags]",
			"Write a synthetic population of profile shards, deterministic by --seed.",
			func(fs *pflag.FlagSet) { new(GenOptions).AddFlags(fs) }, cmdGen, false},
		{"run", "--profiles PATH --out OUT [--as-of YYYY-MM-DD] [--k 10] [flags]",
			"The job: read and validate the profiles, score every compatible pair, publish the matches, soulmates and rejects " +
				"under OUT/dt=<as-of>/, all or nothing. With --shard-index and --shard-count, one shard of a sharded run: " +
				"its scoring tasks only, written as a part for \"batchmatch commit\".",
			func(fs *pflag.FlagSet) { new(RunOptions).AddFlags(fs) }, cmdRun, true},
		{"commit", "--out OUT --as-of YYYY-MM-DD [--shard-count N] [flags]",
			"Publish a sharded run from its shards' parts: the tables a single run publishes.",
			func(fs *pflag.FlagSet) { new(CommitOptions).AddFlags(fs) }, cmdCommit, true},
		{"night", "--profiles PATH --out OUT --shard-count N [flags]",
			"One shard of the scheduled night (run's flags): the as-of date from the schedule ($BATCHMATCH_AS_OF, " +
				"$BATCHMATCH_SCHEDULED_TIME or $BATCHMATCH_JOB_NAME) unless --as-of is given, the shard's run, then the commit " +
				"if its part completed the set.",
			func(fs *pflag.FlagSet) { new(RunOptions).AddFlags(fs) }, cmdNight, true},
		{"validate", "--profiles PATH [--as-of YYYY-MM-DD] [flags]",
			"Read and check the profiles only; print the counts by reject reason (exit 65 when --max-reject-ratio is exceeded).",
			func(fs *pflag.FlagSet) { new(ValidateOptions).AddFlags(fs) }, cmdValidate, false},
		{"explain", "--profiles PATH [flags] MEMBER [OTHER]",
			"Explain one member's matches and soulmate, or one pair's filters and score, from the run's inputs and flags.",
			func(fs *pflag.FlagSet) { new(ExplainOptions).AddFlags(fs) }, cmdExplain, false},
		{"report", "PARTITION [--output FILE] [flags]",
			"Write the self-contained HTML report of a published partition (a directory or an object-store URL).",
			func(fs *pflag.FlagSet) { new(ReportOptions).AddFlags(fs) }, cmdReport, false},
		{"version", "[flags]",
			"Print the version, the build's revision, the spec and Go versions and the dot-product kernel this CPU runs.",
			func(fs *pflag.FlagSet) { new(logOptions).AddFlags(fs) }, cmdVersion, false},
	}
}

// lookupCommand finds a command by name.
func lookupCommand(name string) (command, bool) {
	for _, c := range commands() {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

// commandNames lists the commands for messages.
func commandNames() string {
	var names []string
	for _, c := range commands() {
		names = append(names, c.name)
	}
	return strings.Join(names, ", ") + " and help"
}

// usage is the help of the command line.
func usage() string {
	var b strings.Builder
	b.WriteString("batchmatch: Osmosis's nightly matching job\n\nUsage:\n")
	for _, c := range commands() {
		fmt.Fprintf(&b, "  batchmatch %-8s %s\n", c.name, c.args)
	}
	fmt.Fprintf(&b, "  batchmatch %-8s %s\n", "help", "[COMMAND]")
	b.WriteString(`
Run "batchmatch help COMMAND" (or "batchmatch COMMAND --help") for what a
command does and its flags. Every command takes --log-format text|json|auto
and --log-level.
Exit codes (retry? in brackets): 0 published or already published by the same
run; 64 usage [no]; 65 bad input data [no]; 66 input missing [after upstream];
70 internal error [no]; 71 OS limit, e.g. open files [no]; 73 published by
another run, no --overwrite [no]; 74 transient I/O error [yes]; 75 output locked,
or (commit) shard parts not ready [later]; 77 permission denied [no]; 78 TLS
trust or credentials [no]; 130/143 interrupted [yes]. See README.md.
`)
	return b.String()
}

// help is the help of command c: its synopsis, what it does, its flags.
func (c command) help() string {
	fs := pflag.NewFlagSet("batchmatch "+c.name, pflag.ContinueOnError)
	c.flags(fs)
	return fmt.Sprintf("Usage: batchmatch %s %s\n\n%s\n\nFlags:\n%s", c.name, c.args, wrap(c.summary, 78), fs.FlagUsages())
}

// wrap breaks s into lines of at most width characters.
func wrap(s string, width int) string {
	var b strings.Builder
	n := 0
	for _, w := range strings.Fields(s) {
		if n > 0 && n+1+len(w) > width {
			b.WriteByte('\n')
			n = 0
		} else if n > 0 {
			b.WriteByte(' ')
			n++
		}
		b.WriteString(w)
		n += len(w)
	}
	return b.String()
}

// run executes one command line (without the program name) as main does,
// but returns the command's error: no final line, no metrics of its own.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	inv := newInvocation(args, stdout, stderr)
	return inv.dispatch(context.WithValue(ctx, invocationKey{}, inv), args)
}

// dispatch runs the command args name; help goes to stdout.
func (inv *invocation) dispatch(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(inv.stdout, usage())
		return failure.Usagef("no command given: name one of %s (the usage is on standard output; \"batchmatch help COMMAND\" describes a command)", commandNames())
	}
	name, rest := args[0], args[1:]
	switch name {
	case "-h", "--help":
		if len(rest) > 0 {
			return inv.help(rest)
		}
		fmt.Fprint(inv.stdout, usage())
		return errHelp
	case "help":
		return inv.help(rest)
	case "--version":
		name = "version"
	}
	c, ok := lookupCommand(name)
	if !ok {
		return failure.Usagef("unknown command %q: the commands are %s (\"batchmatch help\" describes them)", name, commandNames())
	}
	err := c.run(ctx, rest, inv.stdout, inv.stderr)
	if errors.Is(err, errHelp) {
		fmt.Fprint(inv.stdout, c.help())
	}
	return err
}

// help is `batchmatch help [COMMAND]`.
func (inv *invocation) help(args []string) error {
	if len(args) == 0 || (len(args) == 1 && args[0] == "help") {
		fmt.Fprint(inv.stdout, usage())
		return errHelp
	}
	if len(args) > 1 {
		return failure.Usagef("help takes one command, got %q", strings.Join(args, " "))
	}
	c, ok := lookupCommand(args[0])
	if !ok {
		return failure.Usagef("help: unknown command %q: the commands are %s", args[0], commandNames())
	}
	fmt.Fprint(inv.stdout, c.help())
	return errHelp
}

// parse parses a command's flags, turning pflag errors into usage errors.
// Commands without positional arguments reject them. pflag prints nothing
// (the last argument is unused): the error goes into the final line, and
// help, asked for with -h or --help (errHelp), to stdout (dispatch).
func parse(fs *pflag.FlagSet, args []string, _ io.Writer) error {
	if err := parseWithArgs(fs, args, nil); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q (%q describes the command)", failure.Usage, fs.Arg(0), fs.Name()+" --help")
	}
	return nil
}

// parseWithArgs is parse for commands that take positional arguments.
func parseWithArgs(fs *pflag.FlagSet, args []string, _ io.Writer) error {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return errHelp
		}
		return fmt.Errorf("%w: %v (%q lists the flags)", failure.Usage, err, fs.Name()+" --help")
	}
	return nil
}
