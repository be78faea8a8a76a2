package main

import (
	"fmt"
	"io"
	"runtime"

	"github.com/osmosis/batchmatch/kernels"
	"github.com/osmosis/batchmatch/pipeline/publish"
)

// cmdVersion prints the tool and spec versions, the Go version and which
// kernel implementation this CPU runs.
func cmdVersion(stdout io.Writer) error {
	fmt.Fprintf(stdout, "batchmatch %s (spec v%s, %s, dot kernel %s)\n", publish.Version, publish.SpecVersion, runtime.Version(), kernels.Implementation())
	return nil
}
