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

// ReadOptions are the flags of `batchmatch validate` and `batchmatch
// explain`: a job's flags (only those about reading matter) and logging.
type ReadOptions struct {
	Job JobOptions
	Log logOptions
}

// AddFlags registers the flags.
func (o *ReadOptions) AddFlags(fs *pflag.FlagSet) {
	o.Job.AddFlags(fs)
	o.Log.AddFlags(fs)
}

// parseRead parses the flags of the reading command name (with its
// positional arguments when positional) and returns the configuration, the
// logger and the positional arguments.
func parseRead(name string, args []string, stderr io.Writer, positional bool) (pipeline.Config, *slog.Logger, []string, error) {
	var o ReadOptions
	fs := pflag.NewFlagSet("batchmatch "+name, pflag.ContinueOnError)
	o.AddFlags(fs)
	var err error
	if positional {
		err = parseWithArgs(fs, args, stderr)
	} else {
		err = parse(fs, args, stderr)
	}
	if err != nil {
		return pipeline.Config{}, nil, nil, err
	}
	log, err := o.Log.logger(stderr)
	if err != nil {
		return pipeline.Config{}, nil, nil, err
	}
	cfg, err := o.Job.Config(time.Now(), false)
	return cfg, log, fs.Args(), err
}

// cmdValidate reads and checks the profiles only (pipeline.Validate) and
// prints the counts by reject reason; too many rejects is its error.
func cmdValidate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, log, _, err := parseRead("validate", args, stderr, false)
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
