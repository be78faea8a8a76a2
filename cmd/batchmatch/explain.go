package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/spf13/pflag"

	"github.com/osmosis/batchmatch/pipeline"
	"github.com/osmosis/batchmatch/pipeline/failure"
)

// ExplainOptions are the flags of `batchmatch explain`: the reading flags
// of the recomputing form, whose --partition (a run's partition name) here
// names a published night to answer from instead (OUT/dt=DATE: its
// manifest gives the settings; the other flags are not needed).
type ExplainOptions struct {
	Read ReadOptions
}

// AddFlags registers the flags.
func (o *ExplainOptions) AddFlags(fs *pflag.FlagSet) {
	o.Read.AddFlags(fs)
	fs.Lookup("partition").Usage = "answer from this published night (OUT/dt=DATE, a directory or an object-store URL): its manifest and tables, in under a second; the profiles it lists only for what the tables cannot tell"
}

// cmdExplain answers support questions about one member or one pair:
// from a published night (--partition, pipeline.ExplainPartition), or by
// recomputing the run from the same inputs and flags (pipeline.Explain).
func cmdExplain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o ExplainOptions
	fs := pflag.NewFlagSet("batchmatch explain", pflag.ContinueOnError)
	o.AddFlags(fs)
	if err := parseWithArgs(fs, args, stderr); err != nil {
		return err
	}
	log, err := o.Read.Log.logger(stderr)
	if err != nil {
		return err
	}
	var ids []int64
	for _, a := range fs.Args() {
		id, err := strconv.ParseInt(a, 10, 64)
		if err != nil {
			return fmt.Errorf("%w: member id %q is not an integer", failure.Usage, a)
		}
		ids = append(ids, id)
	}
	if fs.Changed("partition") {
		for _, f := range []string{"profiles", "blocks", "suppress", "as-of", "k", "weights", "trait-dim", "questions"} {
			if fs.Changed(f) {
				return failure.Usagef("explain --partition takes its settings from the partition's manifest: --%s is not allowed with it", f)
			}
		}
		return pipeline.ExplainPartition(ctx, o.Read.Job.Partition, ids, stdout, o.Read.Job.Workers)
	}
	cfg, err := o.Read.Job.Config(time.Now(), false)
	if err != nil {
		return err
	}
	return pipeline.Explain(ctx, cfg, pipeline.Env{Log: log}, stdout, ids)
}
