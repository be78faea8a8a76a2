package synth

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	pq "github.com/parquet-go/parquet-go"

	"github.com/osmosis/batchmatch/pipeline/failure"
)

// The layout GenerateNight writes under --out.
const (
	NightProfilesDir = "profiles"         // the profile shards
	NightSuppress    = "suppress.parquet" // every id erased so far (user_id)
	NightBlocks      = "blocks.parquet"   // every pair blocked so far (user_id, blocked_id)
)

// NightFiles are what GenerateNight wrote: the profile shards, the
// suppression list and the blocked pairs, and tonight's changes by kind.
type NightFiles struct {
	Profiles []string
	Suppress string
	Blocks   string
	Rows     int
	Events   map[string]int
}

// BaseAsOf is the date night 0 of an evolving population was drawn
// against: night K's as-of date less K days. Members' birth dates are
// drawn against it, so as the run's as-of date advances a day per night,
// birthdays happen by themselves.
func BaseAsOf(asOf time.Time, night int) time.Time { return asOf.AddDate(0, 0, -night) }

// GenerateNight writes night o.Night of the realistic population evolving
// by o.Churn a night, deterministically from o.Seed: the profiles under
// o.Out/profiles (night 0's shards are byte for byte Generate's with the
// same options), o.Out/suppress.parquet and o.Out/blocks.parquet (empty
// on night 0). o.AsOf is night K's date: night 0 was drawn against it
// less K days (BaseAsOf), so members age as the nights advance.
func GenerateNight(ctx context.Context, o Options, workers int) (*NightFiles, error) {
	if o.Night < 0 || !(o.Churn >= 0 && o.Churn <= 1) {
		return nil, failure.Usagef("gen: --night must be ≥ 0 and --churn in [0, 1]")
	}
	if o.N < 0 || o.Shards < 1 || o.D < 1 || o.Q < 0 || !(o.InvalidRatio >= 0 && o.InvalidRatio <= 1) || o.Out == "" {
		return nil, failure.Usagef("gen: need --out, --n ≥ 0, --shards ≥ 1, --trait-dim ≥ 1, --questions ≥ 0 and --invalid-ratio in [0, 1]")
	}
	asOf := time.Now().UTC().Truncate(24 * time.Hour)
	if o.AsOf != "" {
		t, err := time.Parse(time.DateOnly, o.AsOf)
		if err != nil {
			return nil, failure.Usagef("--as-of must be YYYY-MM-DD, got %q", o.AsOf)
		}
		asOf = t
	}
	w := newWorld(o, BaseAsOf(asOf, o.Night))
	ev := &Evolution{Seed: o.Seed, N0: o.N, Churn: o.Churn, Base: w.row,
		ID: func(slot int) (int64, bool) {
			m := w.row(slot) // a broken row may have lost or changed its id
			if m.ID == nil {
				return 0, false
			}
			return *m.ID, true
		}}
	if o.InvalidRatio == 0 {
		ev.ID = func(slot int) (int64, bool) { return genID(o.Seed, slot), true }
	}
	night := ev.Night(o.Night)
	dir := filepath.Join(o.Out, NightProfilesDir)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, failure.IOf("creating %s: %w", dir, err)
	}
	paths, err := w.writeShards(ctx, dir, night.Rows(), night.Member, workers)
	if err != nil {
		return nil, err
	}
	nf := &NightFiles{Profiles: paths, Suppress: filepath.Join(o.Out, NightSuppress), Blocks: filepath.Join(o.Out, NightBlocks),
		Rows: night.Rows(), Events: map[string]int{}}
	if err := WriteSuppress(nf.Suppress, night.Suppress); err != nil {
		return nil, err
	}
	if err := WriteBlocks(nf.Blocks, night.Blocks); err != nil {
		return nil, err
	}
	for k, n := range night.Events {
		nf.Events[EventKind(k).String()] = n
	}
	return nf, nil
}

type suppressRow struct {
	UserID int64 `parquet:"user_id"`
}

type blockRow struct {
	UserID    int64 `parquet:"user_id"`
	BlockedID int64 `parquet:"blocked_id"`
}

// WriteSuppress writes a suppression list (user_id) to path.
func WriteSuppress(path string, ids []int64) error {
	rows := make([]suppressRow, len(ids))
	for i, id := range ids {
		rows[i].UserID = id
	}
	return writeSide(path, rows)
}

// WriteBlocks writes blocked pairs (user_id, blocked_id) to path.
func WriteBlocks(path string, pairs [][2]int64) error {
	rows := make([]blockRow, len(pairs))
	for i, p := range pairs {
		rows[i] = blockRow{p[0], p[1]}
	}
	return writeSide(path, rows)
}

// writeSide writes rows to path through a temporary file renamed into place.
func writeSide[T any](path string, rows []T) error {
	tmp := path + ".tmp"
	if err := pq.WriteFile(tmp, rows, pq.Compression(&pq.Zstd)); err != nil {
		os.Remove(tmp)
		return failure.IOf("writing %s: %w", path, err)
	}
	if err := os.Chmod(tmp, 0o640); err != nil {
		os.Remove(tmp)
		return failure.IOf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return failure.IOf("renaming %s: %w", tmp, err)
	}
	return nil
}

// RunHint is how to run the job on a night GenerateNight wrote.
func (nf *NightFiles) RunHint() string {
	return fmt.Sprintf("--profiles %s --suppress %s --blocks %s", filepath.Dir(nf.Profiles[0]), nf.Suppress, nf.Blocks)
}
