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
	log, err := o.Log.logger(stderr)
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
		for _, f := range []string{"profiles", "blocks", "suppress", "as-of", "k", "weights", "trait-dim", "questions", "max-reject-ratio"} {
			if fs.Changed(f) {
				return failure.Usagef("explain --partition takes its settings from the partition's manifest: --%s is not allowed with it", f)
			}
		}
		return pipeline.ExplainPartition(ctx, o.Partition, ids, stdout, o.Job.Workers)
	}
	cfg, err := o.Job.Config(time.Now(), false)
	if err != nil {
		return err
	}
	return pipeline.Explain(ctx, cfg, pipeline.Env{Log: log}, stdout, ids)
}
