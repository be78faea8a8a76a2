package main

import (
	"context"
	"fmt"
	"io"
	"strconv"

	"github.com/osmosis/batchmatch/pipeline"
	"github.com/osmosis/batchmatch/pipeline/failure"
)

// cmdExplain answers support questions about one member or one pair
// (pipeline.Explain), from the same inputs and flags as the run.
func cmdExplain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, log, positional, err := parseRead("explain", args, stderr, true)
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
