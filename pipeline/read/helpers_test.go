package read

import (
	"log/slog"
	"path/filepath"

	"github.com/osmosis/batchmatch/pipeline/synth"
)

var discard = slog.New(slog.DiscardHandler)

// baseConfig reads dir/profiles at synth.AsOf, quarantining any share of rows.
func baseConfig(dir string) Config {
	return Config{Profiles: []string{filepath.Join(dir, "profiles")}, AsOf: synth.AsOf, Workers: 2, MaxRejectRatio: 1}
}
