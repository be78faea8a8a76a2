package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"time"

	"github.com/spf13/pflag"

	"github.com/osmosis/batchmatch/pipeline"
)

// ValidateOptions are the flags of `batchmatch validate`: what reading
// the inputs needs (no output, scoring or metrics flags) and logging.
type ValidateOptions struct {
	Job JobOptions
	Log logOptions
}

// AddFlags registers the flags.
func (o *ValidateOptions) AddFlags(fs *pflag.FlagSet) {
	o.Job = DefaultJobOptions()
	o.Job.AddInputFlags(fs)
	o.Log.AddFlags(fs)
}

// ExplainOptions are the flags of `batchmatch explain`: reading and
// scoring as a run does (no output or metrics flags) and logging.
type ExplainOptions struct {
	Job JobOptions
	Log logOptions
	// Partition names a published night to answer from (OUT/dt=DATE): its
	// manifest gives the settings, and the input and score flags are then
	// refused.
	Partition string
}

// AddFlags registers the flags.
func (o *ExplainOptions) AddFlags(fs *pflag.FlagSet) {
	o.Job = DefaultJobOptions()
	o.Job.AddInputFlags(fs)
	o.Job.AddScoreFlags(fs)
	o.Log.AddFlags(fs)
	fs.StringVar(&o.Partition, "partition", "", "answer from this published night (OUT/dt=DATE, a directory or an object-store URL): its manifest and tables, in under a second; the profiles it lists only for what the tables cannot tell")
}

// parseRead parses the flags of a reading command, registered by add into
// fs (and the positional arguments when positional), and returns the
// configuration, the logger and the positional arguments.
func parseRead(fs *pflag.FlagSet, job *JobOptions, lo *logOptions, args []string, stderr io.Writer, positional bool) (pipeline.Config, *slog.Logger, []string, error) {
	var err error
	if positional {
		err = parseWithArgs(fs, args, stderr)
	} else {
		err = parse(fs, args, stderr)
	}
	if err != nil {
		return pipeline.Config{}, nil, nil, err
	}
	log, err := lo.logger(stderr)
	if err != nil {
		return pipeline.Config{}, nil, nil, err
	}
	cfg, err := job.Config(time.Now(), false)
	return cfg, log, fs.Args(), err
}

// cmdValidate reads and checks the profiles only (pipeline.Validate) and
// prints the counts by reject reason; too many rejects is its error.
func cmdValidate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o ValidateOptions
	fs := pflag.NewFlagSet("batchmatch validate", pflag.ContinueOnError)
	o.AddFlags(fs)
	cfg, log, _, err := parseRead(fs, &o.Job, &o.Log, args, stderr, false)
	if err != nil {
		return err
	}
	L, lerr := pipeline.Validate(ctx, cfg, pipeline.Env{Log: log})
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
