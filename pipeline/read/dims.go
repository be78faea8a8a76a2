package read

import (
	"context"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/osmosis/batchmatch/pipeline/failure"
	"github.com/osmosis/batchmatch/pipeline/profile"
)

// resolveDims applies spec §1: a fixed-size schema type gives D and Q (and
// all files that fix them must agree), else the flags, else the most common
// length among the rows that are not suppressed (ties: the smaller).
func resolveDims(ctx context.Context, files []*parquetFile, fixed []widths, cfg Config, suppress map[int64]struct{}) (widths, string, error) {
	var d widths
	src := map[string]string{}
	for i, f := range fixed {
		if f.D != 0 {
			if d.D != 0 && d.D != f.D {
				return d, "", failure.FileError(failure.BadData, files[i].path, profile.Trait, fmt.Errorf("fixed width %d, but another shard fixes %d", f.D, d.D))
			}
			d.D, src["D"] = f.D, "schema"
		}
		if f.Q != 0 {
			if d.Q != 0 && d.Q != f.Q {
				return d, "", failure.FileError(failure.BadData, files[i].path, profile.Answers, fmt.Errorf("fixed width %d, but another shard fixes %d", f.Q, d.Q))
			}
			d.Q, src["Q"] = f.Q, "schema"
		}
	}
	if cfg.TraitDim != 0 {
		if d.D != 0 && d.D != cfg.TraitDim {
			return d, "", failure.Usagef("--trait-dim %d disagrees with the schema's fixed width %d", cfg.TraitDim, d.D)
		}
		d.D, src["D"] = cfg.TraitDim, "flag"
	}
	if cfg.Questions != 0 {
		if d.Q != 0 && d.Q != cfg.Questions {
			return d, "", failure.Usagef("--questions %d disagrees with the schema's fixed width %d", cfg.Questions, d.Q)
		}
		d.Q, src["Q"] = cfg.Questions, "flag"
	}
	if d.D == 0 || d.Q == 0 {
		hd, hq := map[int]int64{}, map[int]int64{}
		for _, f := range files {
			if err := lengthHistogram(ctx, f, d.D == 0, d.Q == 0, suppress, hd, hq); err != nil {
				return d, "", err
			}
		}
		if d.D == 0 {
			d.D, src["D"] = mostCommon(hd), "data"
		}
		if d.Q == 0 {
			d.Q, src["Q"] = mostCommon(hq), "data"
		}
	}
	if d.D > profile.MaxTraitDim || d.Q > profile.MaxQuestions {
		return d, "", fmt.Errorf("%w: trait width %d or question count %d (%s) above the maximum %d or %d",
			failure.BadData, d.D, d.Q, fmt.Sprintf("D from %s, Q from %s", orNone(src["D"]), orNone(src["Q"])), profile.MaxTraitDim, profile.MaxQuestions)
	}
	if d.D == 0 && len(files) > 0 {
		// No row has a trait at all: every row will be rejected; keep D at 1
		// so that buffers are well formed.
		d.D = 1
	}
	return d, fmt.Sprintf("D from %s, Q from %s", orNone(src["D"]), orNone(src["Q"])), nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// lengthHistogram counts the lengths of the trait and question columns of a
// file whose schema does not fix them, for the "most common length" rule:
// over the rows whose member is not suppressed (suppressed rows decide
// nothing, spec v1.1), D over trait and Q over answers, accept and
// importance together. A row whose user_id is null or out of range cannot
// be suppressed and counts.
func lengthHistogram(ctx context.Context, pf *parquetFile, needD, needQ bool, suppress map[int64]struct{}, hd, hq map[int]int64) error {
	cols := []string{profile.UserID}
	if needD {
		cols = append(cols, profile.Trait)
	}
	if needQ {
		cols = append(cols, profile.Answers, profile.Accept, profile.Importance)
	}
	return pf.records(ctx, cols, func(rec arrow.RecordBatch) error {
		idArr := column(rec, profile.UserID)
		ids, err := intAccessor(idArr)
		if err != nil {
			return failure.FileError(failure.BadData, pf.path, profile.UserID, err)
		}
		suppressed := func(i int) bool {
			if len(suppress) == 0 || idArr.IsNull(i) {
				return false
			}
			id, fits := ids(i)
			_, gone := suppress[id]
			return fits && gone
		}
		var fl *floatList
		if needD {
			if fl, err = newFloatList(column(rec, profile.Trait)); err != nil {
				return failure.FileError(failure.BadData, pf.path, profile.Trait, err)
			}
		}
		var qget [3]func(int) []byte
		var qarr [3]arrow.Array
		if needQ {
			for k, c := range []string{profile.Answers, profile.Accept, profile.Importance} {
				qarr[k] = column(rec, c)
				if qget[k], err = bytesAccessor(qarr[k]); err != nil {
					return failure.FileError(failure.BadData, pf.path, c, err)
				}
			}
		}
		for i := 0; i < int(rec.NumRows()); i++ {
			if suppressed(i) {
				continue
			}
			if fl != nil && !fl.list.IsNull(i) && fl.length(i) > 0 { // an empty trait has no width
				hd[fl.length(i)]++
			}
			if needQ {
				for k := range qarr {
					if !qarr[k].IsNull(i) {
						hq[len(qget[k](i))]++
					}
				}
			}
		}
		return nil
	})
}

// mostCommon returns the most frequent key (ties: the smaller), or 0.
func mostCommon(h map[int]int64) int {
	best, bestN := 0, int64(0)
	for k, n := range h {
		if n > bestN || (n == bestN && k < best) {
			best, bestN = k, n
		}
	}
	return best
}
