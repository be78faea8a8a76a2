package main

import (
	"fmt"
	"math"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/osmosis/batchmatch/pipeline"
	"github.com/osmosis/batchmatch/pipeline/failure"
	"github.com/osmosis/batchmatch/pipeline/match"
	"github.com/osmosis/batchmatch/pipeline/profile"
	"github.com/osmosis/batchmatch/pipeline/publish"
)

// The flags of the commands that read profiles: run and night take them
// all, validate the input flags, explain the input and score flags.

// defaultWeights is the default of --weights.
var defaultWeights = match.DefaultWeights.Array()

// JobOptions are the flags of the commands that read profiles (run, night,
// validate, explain), as the user typed them; each command registers the
// groups it takes. Config turns them into a checked pipeline.Config.
type JobOptions struct {
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

// DefaultJobOptions are the defaults of every job flag, also of those a
// command does not take (validate has no --k, but its configuration is
// checked as a whole).
func DefaultJobOptions() JobOptions {
	return JobOptions{K: 10, Weights: defaultWeights[:], Workers: runtime.GOMAXPROCS(0), MaxRejectRatio: 0.001, Blocking: true}
}

// AddFlags registers every job flag (run and night take them all).
func (o *JobOptions) AddFlags(fs *pflag.FlagSet) {
	o.AddInputFlags(fs)
	o.AddScoreFlags(fs)
	o.AddOutputFlags(fs)
}

// AddInputFlags registers what reading and validating the inputs needs
// (validate takes these only).
func (o *JobOptions) AddInputFlags(fs *pflag.FlagSet) {
	d := DefaultJobOptions()
	fs.StringArrayVar(&o.Profiles, "profiles", nil, "profile shards: Parquet files, directories or globs (repeatable or comma-separated; an existing path is taken literally)")
	fs.StringVar(&o.AsOf, "as-of", "", "as-of date YYYY-MM-DD for ages and the output partition (default: today, UTC)")
	fs.StringArrayVar(&o.Blocks, "blocks", nil, "blocked pairs (user_id, blocked_id): Parquet files, directories or globs (as for --profiles)")
	fs.StringArrayVar(&o.Suppress, "suppress", nil, "members to erase (user_id): Parquet files, directories or globs (as for --profiles)")
	fs.IntVar(&o.Workers, "workers", d.Workers, "parallel workers")
	fs.Float64Var(&o.MaxRejectRatio, "max-reject-ratio", d.MaxRejectRatio, "fail (exit 65) when quarantined rows exceed this fraction of rows read")
	fs.IntVar(&o.TraitDim, "trait-dim", 0, "trait width D when the schema does not fix it (0: from the data)")
	fs.IntVar(&o.Questions, "questions", 0, "question count Q when the schema does not fix it (0: from the data)")
}

// AddScoreFlags registers what scoring needs (explain takes these and the
// input flags).
func (o *JobOptions) AddScoreFlags(fs *pflag.FlagSet) {
	d := DefaultJobOptions()
	fs.IntVar(&o.K, "k", d.K, "matches kept per member")
	fs.Float64SliceVar(&o.Weights, "weights", d.Weights, "four component `weights`, comma-separated: trait,questions,biomarker,proximity")
	// pflag would show the default as [0.400000,0.350000,0.150000,0.100000]
	fs.Lookup("weights").DefValue = formatWeights(d.Weights)
}

// AddOutputFlags registers what only a run (or night) needs: where and how
// it publishes, memory and blocking.
func (o *JobOptions) AddOutputFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Out, "out", "", "output root, a directory or an s3://, gs://, file:// or mem:// URL; the run is published under OUT/dt=<as-of>/")
	fs.BoolVar(&o.Overwrite, "overwrite", false, "replace an already published partition for the same as-of date")
	fs.StringVar(&o.PseudonymKey, "pseudonymize-key", "", "file with a secret key (≥ 16 bytes): write every id as HMAC-SHA256(key, id) truncated to int64")
	fs.StringVar(&o.MemoryLimit, "memory-limit", "", "Go heap soft limit for the run, e.g. 4GiB (default: GOMEMLIMIT if set, else none)")
	fs.BoolVar(&o.Blocking, "blocking", true, "skip tiles of members that cannot match (false: score every pair; same results, for verification)")
	fs.BoolVar(&o.Report, "report", false, "also write report.html (self-contained HTML, SVG charts) into the published partition")
	fs.StringVar(&o.Partition, "partition", "", "directory under --out the run publishes (default: Hive-style dt=<as-of>)")
	fs.StringVar(&o.SpoolDir, "spool-dir", "", "local directory where a run with an object-store --out (s3://, gs://, file://, mem://) stages its output before uploading (default: the system's temporary directory)")
}

// formatWeights writes weights as --weights takes them: 0.4,0.35,0.15,0.1.
func formatWeights(ws []float64) string {
	s := make([]string, len(ws))
	for i, w := range ws {
		s[i] = strconv.FormatFloat(w, 'g', -1, 64)
	}
	return strings.Join(s, ",")
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

// ParseBytes reads a size like 4GiB, 512MiB, 3G or 1000000.
func ParseBytes(s string) (int64, error) {
	s = strings.TrimSpace(s)
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
		{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"T", 1 << 40}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("not a positive size: %q", s)
	}
	return int64(v * float64(mult)), nil
}

// Config checks the options and returns the run configuration. now supplies
// the default as-of date. needOut is false for commands that write nothing.
func (o *JobOptions) Config(now time.Time, needOut bool) (pipeline.Config, error) {
	c := pipeline.Config{
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
	if c.K > match.MaxK {
		return c, failure.Usagef("--k must be at most %d, got %d", match.MaxK, c.K)
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
		c.Partition = publish.DefaultPartition(c.AsOf)
	}
	if err := publish.CheckPartition(c.Partition); err != nil {
		return c, err
	}
	return c, nil
}
