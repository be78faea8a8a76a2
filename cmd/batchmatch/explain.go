package main

import (
	"context"
	"fmt"
	"io"
	"strconv"

	"github.com/spf13/pflag"

	"github.com/osmosis/batchmatch/pipeline"
	"github.com/osmosis/batchmatch/pipeline/failure"
)

// cmdExplain answers support questions about one member or one pair
// (pipeline.Explain), from the same inputs and flags as the run.
func cmdExplain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o ExplainOptions
	fs := pflag.NewFlagSet("batchmatch explain", pflag.ContinueOnError)
	o.AddFlags(fs)
	cfg, log, positional, err := parseRead(fs, &o.Job, &o.Log, args, stderr, true)
	if err != nil {
		return err
	}
	var ids []int64
	for _, a := range positional {
		id, err := strconv.ParseInt(a, 10, 64)
		if err != nil {
			return fmt.Errorf("%w: member id %q is not an integer", failure.Usage, a)
		}
		ids = append(ids, id)
	}
	return pipeline.Explain(ctx, cfg, pipeline.Env{Log: log}, stdout, ids)
}
