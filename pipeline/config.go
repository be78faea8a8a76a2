// Package pipeline is the flow of a batchmatch run, as straight calls of
// its stages: read → validate (pipeline/read) → block → score
// (pipeline/match) → assign (match's soulmates) → publish
// (pipeline/publish), to a target chosen once from --out. Run is a whole
// run; RunShard and Commit split it over several processes; Validate and
// Explain are the commands that stop early. It owns no logic of its own
// beyond the order of the stages, the run's identity (its configuration
// hash and run id) and its manifest.
package pipeline

import (
	"io"
	"log/slog"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/osmosis/batchmatch/pipeline/failure"
	"github.com/osmosis/batchmatch/pipeline/match"
	"github.com/osmosis/batchmatch/pipeline/publish"
	"github.com/osmosis/batchmatch/pipeline/read"
)

// Config is what the user asked of a run, checked (cmd/batchmatch turns
// the flags into it).
type Config struct {
	Profiles []string // profile shards: files, directories, globs or URLs
	Blocks   []string // blocked pairs
	Suppress []string // members to erase
	// Out is the output root: a directory or an object-store URL.
	Out string
	// Partition is the directory under Out the run publishes ("": the
	// Hive-style dt=<as-of>).
	Partition string
	// AsOf is the date ages are computed at and the default partition's.
	AsOf           time.Time
	K              int
	Weights        match.Weights
	Workers        int
	MaxRejectRatio float64
	// TraitDim and Questions fix D and Q when the schema does not (0:
	// from the data).
	TraitDim, Questions int
	Overwrite           bool
	// PseudonymKey is the key file's path; neither it nor the key is
	// recorded (the manifest has a key id).
	PseudonymKey string
	Report       bool
	// NoBlocking scores every pair (--blocking=false).
	NoBlocking bool
	// MemoryLimit is the Go heap soft limit in bytes (0: unset).
	MemoryLimit int64
	// SpoolDir is where a run with an object-store Out stages its output
	// ("": the system's temporary directory).
	SpoolDir string
	// Shard is this process's part of a sharded run (zero: a whole run).
	Shard match.ShardSpec
	// Incremental computes the lists from the latest night published
	// under Out before AsOf when it can be trusted (--incremental).
	Incremental bool
}

// Env is the runtime wiring of a run: where its logs and progress go, and
// what tests plug in. The zero Env logs nowhere.
type Env struct {
	Log *slog.Logger
	// ProgressBar, when set (a terminal), gets a progress bar while
	// scoring; otherwise progress is logged every ProgressEvery (default
	// 30 s).
	ProgressBar   io.Writer
	ProgressEvery time.Duration
	// Alloc is the Arrow allocator for reading inputs (nil: the default).
	// Tests pass a checked allocator to prove every buffer is released.
	Alloc memory.Allocator
	// Hooks are the output protocol's test hooks (nil in production).
	Hooks *publish.Hooks
}

func (e Env) logger() *slog.Logger {
	if e.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return e.Log
}

// partition is the partition the run publishes.
func (c Config) partition() string { return publish.PartitionOr(c.Partition, c.AsOf) }

// asOfDate is the as-of date as the manifest writes it.
func (c Config) asOfDate() string { return c.AsOf.Format(time.DateOnly) }

// record is the configuration as the manifest records it, for a run whose
// output protocol runs in the local root of t.
func (c Config) record(t *publish.Target) publish.RunConfig {
	return publish.RunConfig{
		Profiles: c.Profiles, Out: t.Root(), K: c.K, AsOf: c.asOfDate(), Weights: c.Weights,
		Blocks: c.Blocks, Suppress: c.Suppress, Workers: c.Workers, MaxRejectRatio: c.MaxRejectRatio,
		TraitDim: c.TraitDim, Questions: c.Questions, Overwrite: c.Overwrite, Partition: c.Partition,
		Report: c.Report, NoBlocking: c.NoBlocking, MemoryLimit: c.MemoryLimit, Shard: c.Shard, RemoteOut: t.Remote(),
	}
}

// configOf is the configuration a record describes (a commit's, from its
// parts).
func configOf(r publish.RunConfig) (Config, error) {
	asOf, err := time.Parse(time.DateOnly, r.AsOf)
	if err != nil {
		return Config{}, failure.Usagef("the parts are for as-of %q, not a date", r.AsOf)
	}
	return Config{
		Profiles: r.Profiles, Blocks: r.Blocks, Suppress: r.Suppress, Out: r.Out, Partition: r.Partition, AsOf: asOf,
		K: r.K, Weights: r.Weights, Workers: r.Workers, MaxRejectRatio: r.MaxRejectRatio, TraitDim: r.TraitDim,
		Questions: r.Questions, Overwrite: r.Overwrite, Report: r.Report, NoBlocking: r.NoBlocking,
		MemoryLimit: r.MemoryLimit, Shard: r.Shard,
	}, nil
}

// readConfig is what read.Load needs of the configuration.
func (c Config) readConfig(alloc memory.Allocator) read.Config {
	return read.Config{
		Profiles: c.Profiles, Blocks: c.Blocks, Suppress: c.Suppress, AsOf: c.AsOf,
		TraitDim: c.TraitDim, Questions: c.Questions, MaxRejectRatio: c.MaxRejectRatio, Workers: c.Workers, Alloc: alloc,
	}
}
