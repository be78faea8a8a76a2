package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/spf13/pflag"

	"github.com/osmosis/batchmatch/pipeline"
	"github.com/osmosis/batchmatch/pipeline/failure"
)

// RunOptions are the flags of `batchmatch run` (and of `batchmatch night`,
// which takes exactly the same).
type RunOptions struct {
	Job     JobOptions
	Log     logOptions
	Metrics MetricsOptions
	Shard   ShardOptions
	// Incremental: compute the lists from the latest night published
	// under --out before --as-of, when it can be trusted.
	Incremental bool
}

// AddFlags registers the run's flags.
func (o *RunOptions) AddFlags(fs *pflag.FlagSet) {
	o.Job.AddFlags(fs)
	o.Log.AddFlags(fs)
	o.Metrics.AddFlags(fs)
	o.Shard.AddFlags(fs)
	fs.BoolVar(&o.Incremental, "incremental", false, "rescore only what can have changed since the latest night published under --out before --as-of (same tables as a full run; a full run, logged with the reason, when that night cannot be trusted)")
}

// parseRun parses the flags of the run command name and returns the
// checked configuration (with the shard of this process) and the logger.
func parseRun(name string, args []string, stderr io.Writer) (*RunOptions, pipeline.Config, *slog.Logger, error) {
	var o RunOptions
	fs := pflag.NewFlagSet("batchmatch "+name, pflag.ContinueOnError)
	o.AddFlags(fs)
	if err := parse(fs, args, stderr); err != nil {
		return nil, pipeline.Config{}, nil, err
	}
	log, err := o.Log.logger(stderr)
	if err != nil {
		return nil, pipeline.Config{}, nil, err
	}
	cfg, err := o.Job.Config(time.Now(), true)
	if err != nil {
		return &o, cfg, log, err
	}
	cfg.Incremental = o.Incremental
	cfg.Shard, err = o.Shard.Resolve()
	if err == nil && cfg.Incremental && cfg.Shard.Count > 1 {
		// a shard scores tile pairs, not members: it has no lists to carry
		// over (the commit that follows writes the state table, so the
		// next single-process --incremental run can start from its night)
		err = failure.Usagef("--incremental is for a whole run: a shard of a sharded run (--shard-count %d) always scores its tasks in full", cfg.Shard.Count)
	}
	return &o, cfg, log, err
}

// cmdRun is `batchmatch run`: a whole run, or one shard of a sharded run
// (pipeline.Run), with its metrics and a summary on stdout.
func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	_, err := runCommand(ctx, args, stdout, stderr)
	return err
}

// runCommand is cmdRun, returning the run's result (`batchmatch night`
// needs its shard run id).
func runCommand(ctx context.Context, args []string, stdout, stderr io.Writer) (*pipeline.Result, error) {
	o, cfg, log, err := parseRun("run", args, stderr)
	if err != nil {
		return nil, err // reported by the invocation: exit 64
	}
	o.Metrics.groupBy(cfg.Out, cfg.Shard)
	env := pipeline.Env{Log: log}
	if isTerminal(stderr) && !o.Log.json(stderr) {
		env.ProgressBar = stderr // a person is watching: a bar instead of periodic progress lines
	}
	res, err := pipeline.Run(ctx, cfg, env)
	// Metrics go out for failed runs too; a metrics failure is logged and
	// does not change the run's outcome.
	publishMetrics(ctx, o.Metrics, res, err, log)
	if err != nil {
		return nil, err // the final line says it (invocation.finalLine)
	}
	if cfg.Shard.Count > 1 {
		c := res.Manifest.Counts
		fmt.Fprintf(stdout, "shard %s part written to %s\n  eligible %d, pairs examined %d, compatible %d\n",
			cfg.Shard, res.Published, c.Eligible, c.PairsExamined, c.PairsCompatible)
		return res, nil
	}
	printSummary(stdout, res)
	return res, nil
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
