package main

import (
	"context"
	"io"
	"runtime"
	"time"

	"github.com/spf13/pflag"

	"github.com/osmosis/batchmatch/pipeline/failure"
	"github.com/osmosis/batchmatch/pipeline/synth"
)

// GenOptions are the flags of `batchmatch gen`.
type GenOptions struct {
	synth.Options
	Workers int
	Log     logOptions
}

// AddFlags registers the generator's flags.
func (o *GenOptions) AddFlags(fs *pflag.FlagSet) {
	fs.IntVar(&o.N, "n", 10000, "members to generate")
	fs.IntVar(&o.Shards, "shards", 4, "Parquet files to spread them over")
	fs.Uint64Var(&o.Seed, "seed", 1, "random seed; the same seed gives the same population")
	fs.StringVar(&o.Out, "out", "", "output directory for the profile shards")
	fs.IntVar(&o.D, "trait-dim", 128, "trait embedding width D")
	fs.IntVar(&o.Q, "questions", 64, "question count Q")
	fs.Float64Var(&o.InvalidRatio, "invalid-ratio", 0, "fraction of rows made invalid, of every kind the spec lists")
	fs.StringVar(&o.AsOf, "as-of", "", "date ages are drawn against, YYYY-MM-DD (default: today, UTC)")
	fs.BoolVar(&o.Variable, "variable-width", false, "write trait as list<float32> and byte columns as binary (the forms DuckDB and pandas write)")
	fs.BoolVar(&o.Open, "open", false, "make every pair compatible: all consent, seek every gender, accept ages 18-99 and any distance, no dealbreakers (benchmark workloads)")
	fs.IntVar(&o.Night, "night", 0, "write night K of an evolving population: DIR/profiles/, DIR/suppress.parquet, DIR/blocks.parquet (night 0's profiles are plain gen's); --as-of is night K's date")
	fs.Float64Var(&o.Churn, "churn", 0, "with --night: fraction of the members that change each night (sign-ups, edits, leaving, erasure, consent, blocks)")
	o.Log.AddFlags(fs)
	fs.IntVar(&o.Workers, "workers", runtime.GOMAXPROCS(0), "parallel shard writers")
}

// cmdGen writes a synthetic population (synth.Generate).
func cmdGen(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o GenOptions
	fs := pflag.NewFlagSet("batchmatch gen", pflag.ContinueOnError)
	o.AddFlags(fs)
	if err := parse(fs, args, stderr); err != nil {
		return err
	}
	log, err := o.Log.logger(stderr)
	if err != nil {
		return err
	}
	start := time.Now()
	if fs.Changed("night") {
		nf, err := synth.GenerateNight(ctx, o.Options, o.Workers)
		if err != nil {
			return err
		}
		log.Info("night generated", "night", o.Night, "churn", o.Churn, "rows", nf.Rows, "shards", len(nf.Profiles),
			"dir", o.Out, "seed", o.Seed, "changes", nf.Events, "run_with", nf.RunHint(),
			"elapsed", time.Since(start).Round(time.Millisecond).String())
		return nil
	}
	if fs.Changed("churn") {
		return failure.Usagef("gen: --churn needs --night")
	}
	paths, err := synth.Generate(ctx, o.Options, o.Workers)
	if err != nil {
		return err
	}
	log.Info("population generated", "members", o.N, "shards", len(paths), "dir", o.Out,
		"seed", o.Seed, "elapsed_seconds", time.Since(start).Round(time.Millisecond).Seconds())
	return nil
}
