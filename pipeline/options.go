package pipeline

import (
	"fmt"
	"io"
	"math"
	"runtime"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/spf13/pflag"

	"github.com/osmosis/batchmatch/pipeline/failure"
	"github.com/osmosis/batchmatch/pipeline/match"
	"github.com/osmosis/batchmatch/pipeline/profile"
	"github.com/osmosis/batchmatch/pipeline/read"
)

// MaxK bounds --k: every member's heap holds K candidates per worker.
const MaxK = 10000

var defaultWeights = match.DefaultWeights.Array()

// Options are the flags of `batchmatch run` and `batchmatch validate`, as the
// user typed them. Config turns them into a checked Config.
type Options struct {
	Profiles       []string
	Out            string
	K              int
	AsOf           string
	Weights        []float64
	Blocks         []string
	Suppress       []string
	Workers        int
	MaxRejectRatio float64
	TraitDim       int
	Questions      int
	Overwrite      bool
	Partition      string
	PseudonymKey   string
	Report         bool
	Blocking       bool
	MemoryLimit    string
	SpoolDir       string
}

// AddFlags registers the options on fs with their defaults.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringArrayVar(&o.Profiles, "profiles", nil, "profile shards: Parquet files, directories or globs (repeatable or comma-separated; an existing path is taken literally)")
	fs.StringVar(&o.Out, "out", "", "output root, a directory or an s3://, gs://, file:// or mem:// URL; the run is published under OUT/dt=<as-of>/")
	fs.IntVar(&o.K, "k", 10, "matches kept per member")
	fs.StringVar(&o.AsOf, "as-of", "", "as-of date YYYY-MM-DD for ages and the output partition (default: today, UTC)")
	fs.Float64SliceVar(&o.Weights, "weights", defaultWeights[:], "component weights: trait,questions,biomarker,proximity")
	fs.StringArrayVar(&o.Blocks, "blocks", nil, "blocked pairs (user_id, blocked_id): Parquet files, directories or globs (as for --profiles)")
	fs.StringArrayVar(&o.Suppress, "suppress", nil, "members to erase (user_id): Parquet files, directories or globs (as for --profiles)")
	fs.IntVar(&o.Workers, "workers", runtime.GOMAXPROCS(0), "parallel workers")
	fs.Float64Var(&o.MaxRejectRatio, "max-reject-ratio", 0.001, "fail the run when quarantined rows exceed this fraction of rows read")
	fs.IntVar(&o.TraitDim, "trait-dim", 0, "trait width D when the schema does not fix it (0: from the data)")
	fs.IntVar(&o.Questions, "questions", 0, "question count Q when the schema does not fix it (0: from the data)")
	fs.BoolVar(&o.Overwrite, "overwrite", false, "replace an already published partition for the same as-of date")
	fs.StringVar(&o.PseudonymKey, "pseudonymize-key", "", "file with a secret key (≥ 16 bytes): write every id as HMAC-SHA256(key, id) truncated to int64")
	fs.StringVar(&o.MemoryLimit, "memory-limit", "", "Go heap soft limit for the run, e.g. 4GiB (default: GOMEMLIMIT if set, else none)")
	fs.BoolVar(&o.Blocking, "blocking", true, "skip tiles of members that cannot match (false: score every pair; same results, for verification)")
	fs.BoolVar(&o.Report, "report", false, "also write report.html (self-contained HTML, SVG charts) into the published partition")
	fs.StringVar(&o.Partition, "partition", "", "directory under --out the run publishes (default: Hive-style dt=<as-of>)")
	fs.StringVar(&o.SpoolDir, "spool-dir", "", "local directory where a run with an object-store --out (s3://, gs://, file://, mem://) stages its output before uploading (default: the system's temporary directory)")
}

// Config is a checked, immutable run configuration.
type Config struct {
	Profiles       []string      `json:"profiles"`
	Out            string        `json:"out"`
	K              int           `json:"k"`
	AsOf           time.Time     `json:"-"`
	AsOfDate       string        `json:"as_of"`
	Weights        match.Weights `json:"weights"`
	Blocks         []string      `json:"blocks,omitempty"`
	Suppress       []string      `json:"suppress,omitempty"`
	Workers        int           `json:"workers"`
	MaxRejectRatio float64       `json:"max_reject_ratio"`
	TraitDim       int           `json:"trait_dim_flag,omitempty"`
	Questions      int           `json:"questions_flag,omitempty"`
	Overwrite      bool          `json:"overwrite"`
	Partition      string        `json:"partition"`
	// PseudonymKey is the key file's path; neither it nor the key is
	// recorded (the manifest has a key id).
	PseudonymKey string `json:"-"`
	Report       bool   `json:"report"`
	// NoBlocking disables blocking (--blocking=false).
	NoBlocking bool `json:"no_blocking,omitempty"`
	// MemoryLimit is --memory-limit in bytes (0: unset).
	MemoryLimit int64 `json:"memory_limit_bytes,omitempty"`
	// ProgressBar, when set (a terminal), gets a progress bar; otherwise
	// progress is logged every ProgressEvery (default 30 s).
	ProgressBar   io.Writer     `json:"-"`
	ProgressEvery time.Duration `json:"-"`
	// Shard is this process's part of a sharded run (zero: a whole run).
	// It is not part of the configuration hash: every shard shares it.
	Shard match.ShardSpec `json:"shard,omitzero"`
	// RemoteOut is the object-store --out of a run staged in a spool
	// directory (then Out is the spool); see remote.go.
	RemoteOut string `json:"remote_out,omitempty"`
	// SpoolDir is where a run with an object-store --out stages its output
	// ("": the system's temporary directory).
	SpoolDir string `json:"-"`
	// remoteDst and remotePub are set by runRemote: the remote partition
	// and what it holds (nil: not published).
	remoteDst string
	remotePub *publishedInfo
	// Alloc is the Arrow allocator for reading inputs (nil: the default).
	// Tests pass a checked allocator to prove every buffer is released.
	Alloc memory.Allocator `json:"-"`
}

// Config checks the options and returns the run configuration. now supplies
// the default as-of date. needOut is false for commands that write nothing.
func (o *Options) Config(now time.Time, needOut bool) (Config, error) {
	c := Config{
		Profiles: o.Profiles, Out: o.Out, K: o.K, Blocks: o.Blocks, Suppress: o.Suppress,
		Workers: o.Workers, MaxRejectRatio: o.MaxRejectRatio, TraitDim: o.TraitDim,
		Questions: o.Questions, Overwrite: o.Overwrite,
	}
	if len(c.Profiles) == 0 {
		return c, failure.Usagef("--profiles is required")
	}
	if needOut && c.Out == "" {
		return c, failure.Usagef("--out is required")
	}
	if c.K < 1 {
		return c, failure.Usagef("--k must be at least 1, got %d", c.K)
	}
	if c.Workers < 1 {
		return c, failure.Usagef("--workers must be at least 1, got %d", c.Workers)
	}
	if !(c.MaxRejectRatio >= 0 && c.MaxRejectRatio <= 1) {
		return c, failure.Usagef("--max-reject-ratio must be in [0, 1], got %v", c.MaxRejectRatio)
	}
	if c.TraitDim < 0 || c.Questions < 0 || c.TraitDim > profile.MaxTraitDim || c.Questions > profile.MaxQuestions {
		return c, failure.Usagef("--trait-dim must be in [0, %d] and --questions in [0, %d]", profile.MaxTraitDim, profile.MaxQuestions)
	}
	if c.K > MaxK {
		return c, failure.Usagef("--k must be at most %d, got %d", MaxK, c.K)
	}
	w, err := ParseWeights(o.Weights)
	if err != nil {
		return c, err
	}
	c.Weights = w
	if o.AsOf == "" {
		c.AsOf = time.Date(now.UTC().Year(), now.UTC().Month(), now.UTC().Day(), 0, 0, 0, 0, time.UTC)
	} else {
		t, err := time.Parse(time.DateOnly, o.AsOf)
		if err != nil {
			return c, failure.Usagef("--as-of must be YYYY-MM-DD, got %q", o.AsOf)
		}
		c.AsOf = t
	}
	c.AsOfDate = c.AsOf.Format(time.DateOnly)
	c.Partition = o.Partition
	c.SpoolDir = o.SpoolDir
	c.PseudonymKey = o.PseudonymKey
	c.Report = o.Report
	c.NoBlocking = !o.Blocking
	if o.MemoryLimit != "" {
		n, err := ParseBytes(o.MemoryLimit)
		if err != nil {
			return c, failure.Usagef("--memory-limit: %v", err)
		}
		c.MemoryLimit = n
	}
	if c.Partition == "" {
		c.Partition = DefaultPartition(c.AsOf)
	}
	if err := CheckPartition(c.Partition); err != nil {
		return c, err
	}
	return c, nil
}

// ParseWeights checks the four component weights: each finite and
// non-negative, and W_t + W_q + W_d > 0 (spec §3).
func ParseWeights(ws []float64) (match.Weights, error) {
	if len(ws) != 4 {
		return match.Weights{}, failure.Usagef("--weights takes four numbers (trait,questions,biomarker,proximity), got %d", len(ws))
	}
	var a [4]float64
	for i, x := range ws {
		if math.IsNaN(x) || math.IsInf(x, 0) || x < 0 {
			return match.Weights{}, failure.Usagef("--weights: weight %d is %v; weights must be finite and non-negative", i+1, x)
		}
		// Weights are relative: only their ratios matter. Bounding them
		// keeps the weighted sums from overflowing (1e308 + 1e308) or
		// flushing products to zero (5e-324 · 0.3), which would publish
		// scores of 0 or NaN.
		if x != 0 && (x < match.MinWeight || x > match.MaxWeight) {
			return match.Weights{}, failure.Usagef("--weights: weight %d is %v; a weight is 0 or between %g and %g (only their ratios matter)", i+1, x, match.MinWeight, match.MaxWeight)
		}
		a[i] = x
	}
	w := match.WeightsOf(a)
	if w.Trait+w.Questions+w.Proximity <= 0 {
		return w, failure.Usagef("--weights: trait + questions + proximity must be positive, got %s", fmt.Sprint(ws))
	}
	return w, nil
}

// readConfig is what read.Load needs of the configuration.
func (c Config) readConfig() read.Config {
	return read.Config{
		Profiles: c.Profiles, Blocks: c.Blocks, Suppress: c.Suppress, AsOf: c.AsOf,
		TraitDim: c.TraitDim, Questions: c.Questions, MaxRejectRatio: c.MaxRejectRatio, Workers: c.Workers, Alloc: c.Alloc,
	}
}
