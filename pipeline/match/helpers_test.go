package match

import (
	"context"
	"log/slog"
	"path/filepath"

	"github.com/osmosis/batchmatch/pipeline/read"
	"github.com/osmosis/batchmatch/pipeline/synth"
)

var discard = slog.New(slog.DiscardHandler)

// topK blocks and scores s's population (Block, then TopK).
func (s *Scorer) topK(ctx context.Context, k, workers int) ([][]Cand, ScoreStats, error) {
	return s.TopK(ctx, Block(s.P), k, workers)
}

// baseConfig reads dir/profiles at synth.AsOf.
func baseConfig(dir string) read.Config {
	return read.Config{Profiles: []string{filepath.Join(dir, "profiles")}, AsOf: synth.AsOf, Workers: 2, MaxRejectRatio: 1}
}
