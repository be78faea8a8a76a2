package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"time"

	"github.com/spf13/pflag"

	"github.com/osmosis/batchmatch/pipeline"
	"github.com/osmosis/batchmatch/pipeline/failure"
	"github.com/osmosis/batchmatch/pipeline/match"
	"github.com/osmosis/batchmatch/pipeline/publish"
)

// CommitOptions are the flags of `batchmatch commit`.
type CommitOptions struct {
	Out          string
	AsOf         string
	Partition    string
	ShardCount   int
	Overwrite    bool
	Workers      int
	Report       bool
	PseudonymKey string
	SpoolDir     string
	Log          logOptions
	Metrics      MetricsOptions
}

// AddFlags registers the commit's flags.
func (o *CommitOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Out, "out", "", "output root the shards wrote their parts under (a directory, or an s3://, gs://, file:// or mem:// URL)")
	fs.StringVar(&o.AsOf, "as-of", "", "the shards' as-of date, YYYY-MM-DD (default: today, UTC)")
	fs.StringVar(&o.Partition, "partition", "", "directory under --out to publish (default: dt=<as-of>)")
	fs.IntVar(&o.ShardCount, "shard-count", 0, "shard count of the run (default: the only one with parts)")
	fs.BoolVar(&o.Overwrite, "overwrite", false, "replace an already published partition")
	fs.IntVar(&o.Workers, "workers", runtime.GOMAXPROCS(0), "parallel workers")
	fs.BoolVar(&o.Report, "report", false, "also write report.html into the published partition")
	fs.StringVar(&o.PseudonymKey, "pseudonymize-key", "", "file with the secret key to pseudonymize ids with (as for run)")
	fs.StringVar(&o.SpoolDir, "spool-dir", "", "local directory where a commit to object storage stages its work (default: the system's temporary directory)")
	o.Log.AddFlags(fs)
	o.Metrics.AddFlags(fs)
}

// Config checks the options and returns the commit's configuration; now
// supplies the default as-of date.
func (o *CommitOptions) Config(now time.Time) (pipeline.CommitConfig, error) {
	cc := pipeline.CommitConfig{Out: o.Out, Partition: o.Partition, ShardCount: o.ShardCount, Overwrite: o.Overwrite,
		Workers: o.Workers, Report: o.Report, PseudonymKey: o.PseudonymKey, SpoolDir: o.SpoolDir}
	if cc.Out == "" {
		return cc, fmt.Errorf("%w: --out is required", failure.Usage)
	}
	if cc.Partition != "" {
		if err := publish.CheckPartition(cc.Partition); err != nil {
			return cc, err
		}
	}
	if cc.Workers < 1 {
		return cc, fmt.Errorf("%w: --workers must be at least 1", failure.Usage)
	}
	now = now.UTC()
	cc.AsOf = time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	if o.AsOf != "" {
		var err error
		if cc.AsOf, err = time.Parse(time.DateOnly, o.AsOf); err != nil {
			return cc, fmt.Errorf("%w: --as-of must be YYYY-MM-DD, got %q", failure.Usage, o.AsOf)
		}
	}
	return cc, nil
}

// cmdCommit publishes a sharded run from its parts (pipeline.Commit).
func cmdCommit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o CommitOptions
	fs := pflag.NewFlagSet("batchmatch commit", pflag.ContinueOnError)
	o.AddFlags(fs)
	if err := parse(fs, args, stderr); err != nil {
		return err
	}
	log, err := o.Log.logger(stderr)
	if err != nil {
		return err
	}
	cc, err := o.Config(time.Now())
	if err != nil {
		return err
	}
	o.Metrics.groupBy(cc.Out, match.ShardSpec{})
	res, err := pipeline.Commit(ctx, cc, pipeline.Env{Log: log})
	publishMetrics(ctx, o.Metrics, res, err, log)
	if err != nil {
		return err // the final line says it (invocation.finalLine)
	}
	printSummary(stdout, res)
	return nil
}
