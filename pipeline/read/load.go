// Package read is the first stages of a run: it resolves the input paths,
// reads the profile shards and the side inputs (suppression list, blocked
// pairs) from Parquet, validates every row (spec §1, one reason code per
// rejected row), decides D and Q, and builds the Population of eligible
// members that scoring works on.
package read

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"golang.org/x/sync/errgroup"

	"github.com/osmosis/batchmatch/pipeline/failure"
	"github.com/osmosis/batchmatch/pipeline/profile"
)

// Config says what Load reads and how.
type Config struct {
	Profiles []string // files, directories or globs (resolveInputs)
	Blocks   []string
	Suppress []string
	// AsOf is the date ages are computed at (and birth dates checked against).
	AsOf time.Time
	// TraitDim and Questions are --trait-dim and --questions (0: from the
	// schema or the data).
	TraitDim, Questions int
	// MaxRejectRatio fails Load when more rows are quarantined.
	MaxRejectRatio float64
	// Workers bounds the files read at once.
	Workers int
	// Alloc is the Arrow allocator (nil: the default). Tests pass a
	// checked allocator to prove every buffer is released.
	Alloc memory.Allocator
}

// Loaded is the validated input of a run.
type Loaded struct {
	Pop     *Population
	Rejects []Reject
	Dims    Dims
	Inputs  Inputs
	Counts  Counts
	// Suppressed are the ids of the suppression list, sorted (whether a
	// member who left was erased: churn's reasons).
	Suppressed []int64
}

// Dims are the trait width and question count of the run and where they
// came from (the manifest's dims).
type Dims struct {
	D      int    `json:"trait_dim"`
	Q      int    `json:"questions"`
	Source string `json:"source"`
}

// InputFile is one input file of the run: its fingerprint is path, size and
// the SHA-256 of its bytes.
type InputFile struct {
	Path   string `json:"path"`
	Size   int64  `json:"size_bytes"`
	SHA256 string `json:"sha256"`
	Rows   int64  `json:"rows"`
}

// Inputs lists the run's input files by role (the manifest's inputs).
type Inputs struct {
	Profiles []InputFile `json:"profiles"`
	Blocks   []InputFile `json:"blocks,omitempty"`
	Suppress []InputFile `json:"suppress,omitempty"`
}

// Counts are the row counts of reading and validation, the first of the
// manifest's counts.
type Counts struct {
	RowsRead            int64            `json:"rows_read"`
	RowsSuppressed      int64            `json:"rows_suppressed"`
	RowsQuarantined     int64            `json:"rows_quarantined"`
	QuarantinedByReason map[string]int64 `json:"quarantined_by_reason"`
	RowsValid           int64            `json:"rows_valid"`
	IneligibleNoConsent int64            `json:"ineligible_no_consent"`
	Eligible            int64            `json:"eligible"`
	BlockPairs          int64            `json:"block_pairs"`
	BlockRowsInvalid    int64            `json:"block_rows_invalid"`
	SuppressIDs         int64            `json:"suppress_ids"`
	SuppressRowsInvalid int64            `json:"suppress_rows_invalid"`
}

// The stages Load goes through, as it reports them to its stage callback.
const (
	StageReadSuppress = "read_suppress"
	StageReadProfiles = "read_profiles"
	StageValidate     = "validate"
	StageReadBlocks   = "read_blocks"
)

// Load resolves, reads and validates the inputs of cfg: profiles, suppression
// list and blocks. It fails when the rejected rows exceed cfg.MaxRejectRatio
// (returning what it counted with the error). stage, when not nil, is
// called as each stage begins (for timings and logs).
func Load(ctx context.Context, cfg Config, log *slog.Logger, stage func(name string)) (*Loaded, error) {
	if stage == nil {
		stage = func(string) {}
	}
	mem := cfg.Alloc
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	profiles, err := ResolveInputs(ctx, "profiles", cfg.Profiles)
	if err != nil {
		return nil, err
	}
	L := &Loaded{}
	L.Counts.QuarantinedByReason = map[string]int64{}

	stage(StageReadSuppress)
	suppress := map[int64]struct{}{}
	if len(cfg.Suppress) > 0 {
		files, err := ResolveInputs(ctx, "suppress", cfg.Suppress)
		if err != nil {
			return nil, err
		}
		for _, path := range files {
			fi, err := readSideInput(ctx, path, []string{profile.UserID}, mem, func(v []int64, ok bool) {
				if !ok {
					L.Counts.SuppressRowsInvalid++
					return
				}
				suppress[v[0]] = struct{}{}
			})
			if err != nil {
				return nil, err
			}
			L.Inputs.Suppress = append(L.Inputs.Suppress, fi)
		}
		if L.Counts.SuppressRowsInvalid > 0 {
			log.Warn("suppression list rows with a null or out-of-range user_id were skipped", "rows", L.Counts.SuppressRowsInvalid)
		}
	}
	L.Counts.SuppressIDs = int64(len(suppress))
	L.Suppressed = slices.Sorted(maps.Keys(suppress))

	stage(StageReadProfiles)
	files := make([]*parquetFile, len(profiles))
	defer func() {
		for _, f := range files {
			if f != nil {
				f.Close()
			}
		}
	}()
	fixed := make([]widths, len(profiles))
	for i, path := range profiles {
		if files[i], err = openParquet(ctx, path, mem); err != nil {
			return nil, err
		}
		if fixed[i], err = checkProfileSchema(files[i]); err != nil {
			return nil, err
		}
	}
	d, src, err := resolveDims(ctx, files, fixed, cfg, suppress)
	if err != nil {
		return nil, err
	}
	L.Dims = Dims{D: d.D, Q: d.Q, Source: src}
	log.Info("profile shards opened", "files", len(files), "trait_dim", d.D, "questions", d.Q, "dims_from", src)

	// One array holds every file's traits, each file appending its valid
	// rows to a region of it (reserveRows rows), so that buildPopulation
	// can put them in population order in place instead of copying them
	// (the traits are the largest column: 512 MB at 1 M members, D = 128),
	// with room for whole tiles (RowGroup rows) after them.
	regions := make([]int, len(files)+1)
	for i, pf := range files {
		regions[i+1] = regions[i] + reserveRows(pf, d)
	}
	traits := make([]float32, (regions[len(files)]+RowGroup-1)/RowGroup*RowGroup*d.D)
	chunks := make([]*chunk, len(files))
	sums := make([]string, len(files))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(cfg.Workers)
	for i, pf := range files {
		g.Go(func() (err error) {
			defer func() {
				if r := recover(); r != nil {
					err = failure.FileError(failure.BadData, pf.path, "", fmt.Errorf("panic while reading: %v", r))
				}
			}()
			if sums[i], err = pf.sha256(gctx); err != nil {
				return err
			}
			if chunks[i], err = readProfileFile(gctx, pf, i, d, cfg.AsOf, suppress, traits[regions[i]*d.D:regions[i]*d.D:regions[i+1]*d.D]); err != nil {
				return err
			}
			return pf.checkUnchanged()
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	for i, c := range chunks {
		L.Inputs.Profiles = append(L.Inputs.Profiles, InputFile{Path: files[i].path, Size: files[i].size, SHA256: sums[i], Rows: c.read})
		L.Counts.RowsRead += c.read
		L.Counts.RowsSuppressed += c.suppressed
		files[i].Close()
		files[i] = nil
	}

	stage(StageValidate)
	pop, rejects, bst, err := buildPopulation(ctx, chunks, profiles, d, &sharedTraits{rows: traits, regions: regions})
	traits = nil
	if err != nil {
		return nil, err
	}
	chunks = nil
	L.Pop, L.Rejects = pop, rejects
	for _, r := range rejects {
		L.Counts.QuarantinedByReason[string(r.Reason)]++
	}
	L.Counts.RowsQuarantined = int64(len(rejects))
	L.Counts.RowsValid = L.Counts.RowsRead - L.Counts.RowsSuppressed - L.Counts.RowsQuarantined
	L.Counts.IneligibleNoConsent = bst.NoConsent
	L.Counts.Eligible = int64(pop.N)
	log.Info("profiles validated", "rows_read", L.Counts.RowsRead, "suppressed", L.Counts.RowsSuppressed,
		"quarantined", L.Counts.RowsQuarantined, "eligible", pop.N)
	if base := L.Counts.RowsRead - L.Counts.RowsSuppressed; base > 0 {
		ratio := float64(L.Counts.RowsQuarantined) / float64(base)
		if ratio > cfg.MaxRejectRatio {
			return L, fmt.Errorf("%w: %d of %d rows quarantined (%.4g%%), above --max-reject-ratio %g; by reason: %v",
				failure.BadData, L.Counts.RowsQuarantined, base, 100*ratio, cfg.MaxRejectRatio, reasonCounts(L.Counts.QuarantinedByReason))
		}
	}

	stage(StageReadBlocks)
	if len(cfg.Blocks) > 0 {
		bfiles, err := ResolveInputs(ctx, "blocks", cfg.Blocks)
		if err != nil {
			return nil, err
		}
		var pairs [][2]int64
		for _, path := range bfiles {
			fi, err := readSideInput(ctx, path, []string{profile.UserID, colBlockedID}, mem, func(v []int64, ok bool) {
				if !ok {
					L.Counts.BlockRowsInvalid++
					return
				}
				pairs = append(pairs, [2]int64{v[0], v[1]})
			})
			if err != nil {
				return nil, err
			}
			L.Inputs.Blocks = append(L.Inputs.Blocks, fi)
		}
		L.Counts.BlockPairs = int64(len(pairs))
		if L.Counts.BlockRowsInvalid > 0 {
			log.Warn("block rows with a null or out-of-range id were skipped", "rows", L.Counts.BlockRowsInvalid)
		}
		pop.setBlocks(pairs)
	}
	return L, nil
}

// reasonCounts lists counts by reason for a message: "reason=count"
// sorted by reason, comma-separated.
func reasonCounts(by map[string]int64) string {
	parts := make([]string, 0, len(by))
	for _, r := range slices.Sorted(maps.Keys(by)) {
		parts = append(parts, fmt.Sprintf("%s=%d", r, by[r]))
	}
	return strings.Join(parts, ", ")
}
