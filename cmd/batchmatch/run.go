package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"sort"
	"strconv"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/osmosis/batchmatch/kernels"
	"github.com/osmosis/batchmatch/pipeline"
	"github.com/osmosis/batchmatch/pipeline/failure"
)

// errHelp is returned after printing help: exit 0, nothing more to say.
var errHelp = errors.New("help requested")

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

// logOptions are the logging flags every command shares.
type logOptions struct {
	Format string
	Level  string
}

func (o *logOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Format, "log-format", "auto", "log format: text, json, or auto (text on a terminal, json otherwise)")
	fs.StringVar(&o.Level, "log-level", "info", "log level: debug, info, warn, error")
}

func (o *logOptions) logger(w io.Writer) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(o.Level)); err != nil {
		return nil, fmt.Errorf("%w: --log-level %q: %v", failure.Usage, o.Level, err)
	}
	hopts := &slog.HandlerOptions{Level: lvl}
	format := o.Format
	if format == "auto" {
		format = "json"
		if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			format = "text"
		}
	}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, hopts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, hopts)), nil
	}
	return nil, fmt.Errorf("%w: --log-format must be text, json or auto, got %q", failure.Usage, o.Format)
}

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
		fmt.Fprintf(stdout, "batchmatch %s (spec v%s, %s, dot kernel %s)\n", pipeline.Version, pipeline.SpecVersion, runtime.Version(), kernels.Implementation())
		return nil
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

// jobCommand holds the flags shared by the commands that read profiles
// (run, validate, explain).
type jobCommand struct {
	o  pipeline.Options
	lo logOptions
	fs *pflag.FlagSet
}

func newJobCommand(name string) *jobCommand {
	c := &jobCommand{fs: pflag.NewFlagSet("batchmatch "+name, pflag.ContinueOnError)}
	c.o.AddFlags(c.fs)
	c.lo.AddFlags(c.fs)
	return c
}

// setup parses args (positional ones only when allowed) and returns the
// checked configuration and the logger.
func (c *jobCommand) setup(args []string, stderr io.Writer, needOut, positional bool) (pipeline.Config, *slog.Logger, error) {
	var err error
	if positional {
		err = parseWithArgs(c.fs, args, stderr)
	} else {
		err = parse(c.fs, args, stderr)
	}
	if err != nil {
		return pipeline.Config{}, nil, err
	}
	log, err := c.lo.logger(stderr)
	if err != nil {
		return pipeline.Config{}, nil, err
	}
	cfg, err := c.o.Config(time.Now(), needOut)
	return cfg, log, err
}

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	var mo pipeline.MetricsOptions
	var so pipeline.ShardOptions
	jc := newJobCommand("run")
	mo.AddFlags(jc.fs)
	so.AddFlags(jc.fs)
	cfg, log, err := jc.setup(args, stderr, true, false)
	if err != nil {
		return err
	}
	if cfg.Shard, err = so.Resolve(); err != nil {
		return err
	}
	if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) && jc.lo.Format != "json" {
		cfg.ProgressBar = stderr // a person is watching: a bar instead of periodic progress lines
	}
	res, err := pipeline.Run(ctx, cfg, log)
	// Metrics go out for failed runs too; a metrics failure is logged and
	// does not change the run's outcome.
	var m *pipeline.Manifest
	if res != nil {
		m = res.Manifest
	}
	host, _ := os.Hostname()
	if merr := pipeline.PublishMetrics(mo, m, exitCodeFor(ctx, err), host); merr != nil {
		log.Warn("publishing metrics failed", "err", merr)
	}
	if err != nil {
		log.Error("run failed", "exit_code", exitCodeFor(ctx, err), "err", err)
		return err
	}
	if cfg.Shard.Count > 1 {
		c := res.Manifest.Counts
		fmt.Fprintf(stdout, "shard %s part written to %s\n  eligible %d, pairs examined %d, compatible %d\n",
			cfg.Shard, res.Published, c.Eligible, c.PairsExamined, c.PairsCompatible)
		return nil
	}
	printSummary(stdout, res)
	return nil
}

// printSummary prints what a published run wrote.
func printSummary(stdout io.Writer, res *pipeline.Result) {
	if res.AlreadyPublished {
		fmt.Fprintf(stdout, "already published %s by the same run (run id %s): nothing written\n", res.Published, res.Manifest.RunID)
		return
	}
	c := res.Manifest.Counts
	fmt.Fprintf(stdout, "published %s\n  rows read %d, suppressed %d, quarantined %d, eligible %d\n"+
		"  pairs examined %d, compatible %d\n  matches %d (mutual %d), soulmate pairs %d, members without a match %d\n",
		res.Published, c.RowsRead, c.RowsSuppressed, c.RowsQuarantined, c.Eligible,
		c.PairsExamined, c.PairsCompatible, c.Matches, c.MutualMatches, c.Soulmates, c.MembersWithoutMatch)
}

// cmdCommit publishes a sharded run from its parts.
func cmdCommit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var lo logOptions
	var mo pipeline.MetricsOptions
	var cc pipeline.CommitConfig
	var asOf string
	fs := pflag.NewFlagSet("batchmatch commit", pflag.ContinueOnError)
	fs.StringVar(&cc.Out, "out", "", "output root the shards wrote their parts under (a directory, or an s3://, gs://, file:// or mem:// URL)")
	fs.StringVar(&asOf, "as-of", "", "the shards' as-of date, YYYY-MM-DD (default: today, UTC)")
	fs.StringVar(&cc.Partition, "partition", "", "directory under --out to publish (default: dt=<as-of>)")
	fs.IntVar(&cc.ShardCount, "shard-count", 0, "shard count of the run (default: the only one with parts)")
	fs.BoolVar(&cc.Overwrite, "overwrite", false, "replace an already published partition")
	fs.IntVar(&cc.Workers, "workers", runtime.GOMAXPROCS(0), "parallel workers")
	fs.BoolVar(&cc.Report, "report", false, "also write report.html into the published partition")
	fs.StringVar(&cc.PseudonymKey, "pseudonymize-key", "", "file with the secret key to pseudonymize ids with (as for run)")
	fs.StringVar(&cc.SpoolDir, "spool-dir", "", "local directory where a commit to object storage stages its work (default: the system's temporary directory)")
	lo.AddFlags(fs)
	mo.AddFlags(fs)
	if err := parse(fs, args, stderr); err != nil {
		return err
	}
	log, err := lo.logger(stderr)
	if err != nil {
		return err
	}
	if cc.Out == "" {
		return fmt.Errorf("%w: --out is required", failure.Usage)
	}
	if cc.Partition != "" {
		if err := pipeline.CheckPartition(cc.Partition); err != nil {
			return err
		}
	}
	if cc.Workers < 1 {
		return fmt.Errorf("%w: --workers must be at least 1", failure.Usage)
	}
	now := time.Now().UTC()
	cc.AsOf = time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	if asOf != "" {
		if cc.AsOf, err = time.Parse(time.DateOnly, asOf); err != nil {
			return fmt.Errorf("%w: --as-of must be YYYY-MM-DD, got %q", failure.Usage, asOf)
		}
	}
	res, err := pipeline.Commit(ctx, cc, log)
	var m *pipeline.Manifest
	if res != nil {
		m = res.Manifest
	}
	host, _ := os.Hostname()
	if merr := pipeline.PublishMetrics(mo, m, exitCodeFor(ctx, err), host); merr != nil {
		log.Warn("publishing metrics failed", "err", merr)
	}
	if err != nil {
		log.Error("commit failed", "exit_code", exitCodeFor(ctx, err), "err", err)
		return err
	}
	printSummary(stdout, res)
	return nil
}

func cmdValidate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, log, err := newJobCommand("validate").setup(args, stderr, false, false)
	if err != nil {
		return err
	}
	L, lerr := pipeline.Validate(ctx, cfg, log)
	if L == nil {
		return lerr
	}
	c := L.Counts
	fmt.Fprintf(stdout, "rows read %d, suppressed %d, quarantined %d, valid %d, eligible %d (D=%d, Q=%d, %s)\n",
		c.RowsRead, c.RowsSuppressed, c.RowsQuarantined, c.RowsValid, c.Eligible, L.Dims.D, L.Dims.Q, L.Dims.Source)
	reasons := make([]string, 0, len(c.QuarantinedByReason))
	for r := range c.QuarantinedByReason {
		reasons = append(reasons, r)
	}
	sort.Strings(reasons)
	for _, r := range reasons {
		fmt.Fprintf(stdout, "  %-28s %d\n", r, c.QuarantinedByReason[r])
	}
	if len(reasons) == 0 {
		fmt.Fprintln(stdout, "  no rows quarantined")
	}
	return lerr
}

func cmdExplain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	jc := newJobCommand("explain")
	cfg, log, err := jc.setup(args, stderr, false, true)
	if err != nil {
		return err
	}
	var ids []int64
	for _, a := range jc.fs.Args() {
		id, err := strconv.ParseInt(a, 10, 64)
		if err != nil {
			return fmt.Errorf("%w: member id %q is not an integer", failure.Usage, a)
		}
		ids = append(ids, id)
	}
	return pipeline.Explain(ctx, cfg, log, stdout, ids)
}

func cmdReport(args []string, stdout, stderr io.Writer) error {
	fs := pflag.NewFlagSet("batchmatch report", pflag.ContinueOnError)
	output := fs.StringP("output", "o", "", "write the HTML here (default: standard output)")
	if err := parseWithArgs(fs, args, stderr); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: report takes one published partition (OUT/dt=YYYY-MM-DD, a directory or an object-store URL)", failure.Usage)
	}
	var b bytes.Buffer
	if err := pipeline.WriteReport(&b, fs.Arg(0)); err != nil {
		return err
	}
	if *output == "" {
		_, err := stdout.Write(b.Bytes())
		return err
	}
	if err := os.WriteFile(*output, b.Bytes(), 0o640); err != nil {
		return fmt.Errorf("%w: writing the report: %w", failure.IO, err) // failure.Kind tells permission denied apart
	}
	return nil
}
