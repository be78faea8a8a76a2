package read

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"golang.org/x/sync/errgroup"

	"github.com/osmosis/batchmatch/kernels"
	"github.com/osmosis/batchmatch/pipeline/failure"
	"github.com/osmosis/batchmatch/pipeline/profile"
)

// What `explain --partition` reads of a night's profiles: the hard-filter
// columns of every eligible member (to count which filter rules a member's
// candidates out), and the whole rows of the members it explains, no more.

// FilterColumns are the hard-filter columns of members, in structure of
// arrays, as a Population holds them.
type FilterColumns struct {
	ID                  []int64
	Gender, Seeking     []uint8
	Age, AgeMin, AgeMax []uint16
	Geo                 []kernels.GeoPoint
	MaxKm               []float32
	HavMax              []float64
}

// filterColumnNames are the columns ReadFilterColumns decodes.
var filterColumnNames = []string{profile.UserID, profile.Consent, profile.Gender, profile.Seeking, profile.BirthDate,
	profile.AgeMin, profile.AgeMax, profile.Lat, profile.Lon, profile.MaxKm}

// ReadFilterColumns reads the hard-filter columns of the rows of profiles
// whose id eligible accepts (the eligible members of a published night:
// its state table), with ages at asOf and locations as a run computes them.
// Other columns are not decoded. Files are read in parallel.
func ReadFilterColumns(ctx context.Context, profiles []string, asOf time.Time, eligible func(int64) bool, workers int) (*FilterColumns, error) {
	parts := make([]*FilterColumns, len(profiles))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(workers, 1))
	for k, path := range profiles {
		g.Go(func() error {
			pf, err := openParquet(gctx, path, memory.DefaultAllocator)
			if err != nil {
				return err
			}
			defer pf.Close()
			if _, err := checkProfileSchema(pf); err != nil {
				return err
			}
			fc := &FilterColumns{}
			err = pf.records(gctx, filterColumnNames, func(rec arrow.RecordBatch) error {
				ids, err := intAccessor(column(rec, profile.UserID))
				if err != nil {
					return err
				}
				consent, ok := column(rec, profile.Consent).(*array.Boolean)
				if !ok {
					return fmt.Errorf("%w: %s: consent is not bool", failure.BadData, path)
				}
				ints := map[string]intGetter{}
				for _, c := range []string{profile.Gender, profile.Seeking, profile.AgeMin, profile.AgeMax} {
					if ints[c], err = intAccessor(column(rec, c)); err != nil {
						return failure.FileError(failure.BadData, path, c, err)
					}
				}
				floats := map[string]func(int) float64{}
				for _, c := range []string{profile.Lat, profile.Lon, profile.MaxKm} {
					if floats[c], err = floatAccessor(column(rec, c)); err != nil {
						return failure.FileError(failure.BadData, path, c, err)
					}
				}
				birth, err := dateAccessor(column(rec, profile.BirthDate))
				if err != nil {
					return failure.FileError(failure.BadData, path, profile.BirthDate, err)
				}
				idArr := column(rec, profile.UserID)
				for i := 0; i < int(rec.NumRows()); i++ {
					if idArr.IsNull(i) || !consent.IsValid(i) || !consent.Value(i) {
						continue
					}
					id, fits := ids(i)
					if !fits || !eligible(id) {
						continue
					}
					// an eligible member's row is valid: no nulls, values in range
					g, _ := ints[profile.Gender](i)
					s, _ := ints[profile.Seeking](i)
					lo, _ := ints[profile.AgeMin](i)
					hi, _ := ints[profile.AgeMax](i)
					maxKm := float32(floats[profile.MaxKm](i))
					fc.ID = append(fc.ID, id)
					fc.Gender = append(fc.Gender, uint8(g))
					fc.Seeking = append(fc.Seeking, uint8(s))
					fc.Age = append(fc.Age, ageAt(birth(i), asOf))
					fc.AgeMin, fc.AgeMax = append(fc.AgeMin, uint16(lo)), append(fc.AgeMax, uint16(hi))
					fc.Geo = append(fc.Geo, kernels.NewGeoPoint(floats[profile.Lat](i), floats[profile.Lon](i)))
					fc.MaxKm = append(fc.MaxKm, maxKm)
					half := math.Min(float64(maxKm)/(2*kernels.EarthRadiusKm), math.Pi/2)
					fc.HavMax = append(fc.HavMax, math.Sin(half)*math.Sin(half))
				}
				return nil
			})
			parts[k] = fc
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	out := &FilterColumns{}
	for _, p := range parts {
		out.ID = append(out.ID, p.ID...)
		out.Gender = append(out.Gender, p.Gender...)
		out.Seeking = append(out.Seeking, p.Seeking...)
		out.Age = append(out.Age, p.Age...)
		out.AgeMin = append(out.AgeMin, p.AgeMin...)
		out.AgeMax = append(out.AgeMax, p.AgeMax...)
		out.Geo = append(out.Geo, p.Geo...)
		out.MaxKm = append(out.MaxKm, p.MaxKm...)
		out.HavMax = append(out.HavMax, p.HavMax...)
	}
	return out, nil
}

// LoadMembers reads and validates, as Load does, the rows of profiles that
// hold the members ids (and the others of their row groups), with traits
// of width d and q questions, ages at asOf, and the blocked pairs among them
// from blocks. It finds the row groups from the user_id column alone and
// decodes only those: a few row groups instead of the whole population.
// Only their rows are validated; members not found, or whose row is
// invalid or without consent, are not in the population returned.
func LoadMembers(ctx context.Context, profiles, blocks []string, d, q int, asOf time.Time, ids []int64) (*Population, error) {
	want := map[int64]bool{}
	for _, id := range ids {
		want[id] = true
	}
	var chunks []*chunk
	for k, path := range profiles {
		pf, err := openParquet(ctx, path, memory.DefaultAllocator)
		if err != nil {
			return nil, err
		}
		c, err := func() (*chunk, error) {
			defer pf.Close()
			if _, err := checkProfileSchema(pf); err != nil {
				return nil, err
			}
			only := map[int]bool{}
			md := pf.pr.MetaData()
			rg, rgEnd := 0, md.RowGroup(0).NumRows()
			var row int64
			err := readIDColumns(ctx, pf, []string{profile.UserID}, func(_ int64, v []int64, ok bool) {
				for row >= rgEnd && rg+1 < md.NumRowGroups() {
					rg++
					rgEnd += md.RowGroup(rg).NumRows()
				}
				if ok && want[v[0]] {
					only[rg] = true
				}
				row++
			})
			if err != nil || len(only) == 0 {
				return nil, err
			}
			pf.only, pf.keep = only, want
			return readProfileFile(ctx, pf, k, widths{d, q}, asOf, nil, nil)
		}()
		if err != nil {
			return nil, err
		}
		if c != nil {
			chunks = append(chunks, c)
		}
	}
	pop, _, _, err := buildPopulation(ctx, chunks, profiles, widths{d, q}, nil)
	if err != nil {
		return nil, err
	}
	var pairs [][2]int64
	for _, path := range blocks {
		_, err := readSideInput(ctx, path, []string{profile.UserID, colBlockedID}, memory.DefaultAllocator, func(v []int64, ok bool) {
			if ok && (want[v[0]] || want[v[1]]) {
				pairs = append(pairs, [2]int64{v[0], v[1]})
			}
		})
		if err != nil {
			return nil, err
		}
	}
	pop.setBlocks(pairs)
	return pop, nil
}

// HasAll reports whether every id is a member of p.
func (p *Population) HasAll(ids ...int64) bool {
	return !slices.ContainsFunc(ids, func(id int64) bool { return p.Index(id) < 0 })
}

// BlockedPairs returns the pairs of the blocks files that involve id.
func BlockedPairs(ctx context.Context, blocks []string, id int64) ([][2]int64, error) {
	var pairs [][2]int64
	for _, path := range blocks {
		_, err := readSideInput(ctx, path, []string{profile.UserID, colBlockedID}, memory.DefaultAllocator, func(v []int64, ok bool) {
			if ok && (v[0] == id || v[1] == id) {
				pairs = append(pairs, [2]int64{v[0], v[1]})
			}
		})
		if err != nil {
			return nil, err
		}
	}
	return pairs, nil
}
