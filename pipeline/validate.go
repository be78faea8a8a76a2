package pipeline

import (
	"context"
	"log/slog"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/osmosis/batchmatch/pipeline/read"
)

// Validate is the read and validate half of a run (`batchmatch validate`):
// it reads the inputs of cfg and returns what was read, with an error when
// the rejected rows exceed cfg.MaxRejectRatio (the Loaded is returned then
// too, for the counts).
func Validate(ctx context.Context, cfg Config, env Env) (*read.Loaded, error) {
	return load(ctx, cfg, env.Alloc, env.logger(), nil)
}

// load runs read.Load on cfg's inputs, timing its stages with tm (nil: a
// timer of its own, which logs them).
func load(ctx context.Context, cfg Config, alloc memory.Allocator, log *slog.Logger, tm *stageTimer) (*read.Loaded, error) {
	if err := setupStore(log); err != nil {
		return nil, err
	}
	if tm == nil {
		tm = newStageTimer(log)
	}
	L, err := read.Load(ctx, cfg.readConfig(alloc), log, tm.begin)
	if err == nil {
		tm.end()
	}
	return L, err
}
