package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"strings"

	"github.com/spf13/pflag"

	"github.com/osmosis/batchmatch/kernels"
	"github.com/osmosis/batchmatch/pipeline/publish"
)

// cmdVersion prints the tool version and the build's revision (from the
// build information: publish.Build), the spec and Go versions and which
// kernel implementation this CPU runs.
func cmdVersion(_ context.Context, args []string, stdout, stderr io.Writer) error {
	var o logOptions
	fs := pflag.NewFlagSet("batchmatch version", pflag.ContinueOnError)
	o.AddFlags(fs)
	if err := parse(fs, args, stderr); err != nil {
		return err
	}
	if _, err := o.logger(stderr); err != nil {
		return err
	}
	fmt.Fprintln(stdout, versionLine(publish.Build(), runtime.Version(), kernels.Implementation()))
	return nil
}

// versionLine is what `batchmatch version` prints: "batchmatch 0.1.0
// (build 0123456789ab-dirty, spec v1.1, go1.26.8, dot kernel avx512)"; the
// module version Go recorded when it says more than the version
// (a pseudo-version); "build unknown" without VCS information (the image).
func versionLine(b publish.BuildInfo, goVersion, kernel string) string {
	parts := []string{"build unknown"}
	if r := b.ShortRevision(); r != "" {
		parts[0] = "build " + r
	}
	if m := strings.TrimSuffix(b.Module, "+dirty"); m != "" && m != "(devel)" && m != "v"+b.Version {
		parts = append(parts, "module "+b.Module)
	}
	parts = append(parts, "spec v"+publish.SpecVersion, goVersion, "dot kernel "+kernel)
	return fmt.Sprintf("batchmatch %s (%s)", b.Version, strings.Join(parts, ", "))
}
