package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"

	"github.com/spf13/pflag"

	"github.com/osmosis/batchmatch/pipeline/failure"
	"github.com/osmosis/batchmatch/pipeline/report"
)

// ReportOptions are the flags of `batchmatch report`.
type ReportOptions struct {
	Output string
	Log    logOptions
}

// AddFlags registers the report's flags.
func (o *ReportOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVarP(&o.Output, "output", "o", "", "write the HTML here (default: standard output)")
	o.Log.AddFlags(fs)
}

// cmdReport writes the HTML report of a published partition
// (report.WritePartition). Its logs are the object store's retries, through
// slog's default logger (main).
func cmdReport(_ context.Context, args []string, stdout, stderr io.Writer) error {
	var o ReportOptions
	fs := pflag.NewFlagSet("batchmatch report", pflag.ContinueOnError)
	o.AddFlags(fs)
	if err := parseWithArgs(fs, args, stderr); err != nil {
		return err
	}
	if _, err := o.Log.logger(stderr); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: report takes one published partition (OUT/dt=YYYY-MM-DD, a directory or an object-store URL)", failure.Usage)
	}
	var b bytes.Buffer
	if err := report.WritePartition(&b, fs.Arg(0)); err != nil {
		return err
	}
	if o.Output == "" {
		_, err := stdout.Write(b.Bytes())
		return err
	}
	if err := os.WriteFile(o.Output, b.Bytes(), 0o640); err != nil {
		return fmt.Errorf("%w: writing the report: %w", failure.IO, err) // failure.Kind tells permission denied apart
	}
	return nil
}
