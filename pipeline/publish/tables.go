package publish

import (
	"cmp"
	"context"
	"path/filepath"
	"slices"

	"golang.org/x/sync/errgroup"

	"github.com/osmosis/batchmatch/pipeline/match"
	"github.com/osmosis/batchmatch/pipeline/read"
)

// Tables are what a run publishes, in internal ids: every eligible member's
// top-K list, the soulmate assignment and the rejected rows.
type Tables struct {
	Pop     *read.Population
	Scorer  *match.Scorer // recomputes the components of the K rows per member (Pair)
	Lists   [][]match.Cand
	Souls   []match.Soulmate
	Rejects []read.Reject
	// Pseudonyms, when set, rewrites every id (--pseudonymize-key).
	Pseudonyms *Pseudonymizer
}

// WriteTables writes the matches, soulmates and rejects tables into the
// staged partition, each as one zstd Parquet file named after the attempt
// on object storage, fsynced with its directory, and records them in m
// (Outputs, and the counts of matches, mutual matches and members without
// a match). Footer metadata is deterministic: the content run id, the
// as-of date, versions and the configuration hash of m, never an attempt id
// or a time. Match rows are built in parallel on workers.
func (s *Staging) WriteTables(ctx context.Context, t Tables, m *Manifest, workers int) error {
	var err error
	pop, lists, souls, pz := t.Pop, t.Lists, t.Souls, t.Pseudonyms
	dir := s.Dir()
	tableFile := func(table string) string { return filepath.Join(table, s.Tagged(PartFile)) }
	// Footer metadata is deterministic (a content run id, no attempt id or
	// timestamp) so that the same population and configuration give
	// byte-identical tables however the input was sharded.
	meta := map[string]string{"batchmatch.run_id": m.RunID, "batchmatch.as_of": m.AsOf,
		"batchmatch.spec_version": SpecVersion, "batchmatch.version": Build().Version, "batchmatch.config_hash": m.ConfigHash}
	// Output ids: internal ids, or their pseudonyms. Rows are written in
	// output-id order so that the tables stay sorted either way.
	ids, order := pop.ID, make([]int32, pop.N)
	for i := range order {
		order[i] = int32(i)
	}
	if pz != nil {
		if ids, err = pz.mapPopulation(pop.ID); err != nil {
			return err
		}
		slices.SortFunc(order, func(a, b int32) int { return cmp.Compare(ids[a], ids[b]) })
		meta["batchmatch.pseudonym_key_id"] = pz.keyID
	}
	m.Outputs = map[string]Table{}
	rows, err := writeTable(filepath.Join(dir, tableFile("matches")), meta, matchesLayout, s.com.hooks, func(add func(MatchRow) error) error {
		// Rows are built in parallel a chunk of members at a time (the
		// components are recomputed by Pair, bit-identical to the scores in
		// the lists), then added in order: memory stays one chunk deep.
		const chunk = 1 << 14
		buf := make([][]MatchRow, chunk)
		for lo := 0; lo < len(order); lo += chunk {
			hi := min(lo+chunk, len(order))
			g, gctx := errgroup.WithContext(ctx)
			g.SetLimit(workers)
			for w0 := lo; w0 < hi; w0 += 1024 {
				g.Go(func() error {
					if gctx.Err() != nil {
						return gctx.Err()
					}
					for k := w0; k < min(w0+1024, hi); k++ {
						i := int(order[k])
						out := buf[k-lo][:0]
						for r, c := range lists[i] {
							ps, _ := t.Scorer.Pair(i, int(c.J))
							row := MatchRow{
								UserID: ids[i], Rank: int32(r + 1), MatchID: ids[c.J], Score: c.S,
								STrait: ps.Trait, SQuestions: ps.Questions, SProximity: ps.Proximity,
								DistanceKm: ps.DistanceKm, Mutual: match.RankOf(lists[c.J], int32(i)) != 0,
							}
							if ps.HasBiomarker {
								b := ps.Biomarker
								row.SBiomarker = &b
							}
							out = append(out, row)
						}
						buf[k-lo] = out
					}
					return nil
				})
			}
			if err := g.Wait(); err != nil {
				return err
			}
			for _, member := range buf[:hi-lo] {
				if len(member) == 0 {
					m.Counts.MembersWithoutMatch++
				}
				for _, row := range member {
					if row.Mutual {
						m.Counts.MutualMatches++
					}
					if err := add(row); err != nil {
						return err
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	m.Counts.Matches = rows
	m.Outputs["matches"] = Table{Path: tableFile("matches"), Rows: rows}

	rows, err = writeTable(filepath.Join(dir, tableFile("soulmates")), meta, soulmatesLayout, s.com.hooks, func(add func(SoulmateRow) error) error {
		rows := make([]SoulmateRow, len(souls))
		for k, s := range souls {
			r := SoulmateRow{UserA: ids[s.A], UserB: ids[s.B], Score: s.S, RankA: s.RankA, RankB: s.RankB}
			if r.UserA > r.UserB { // pseudonyms do not keep the order
				r.UserA, r.UserB, r.RankA, r.RankB = r.UserB, r.UserA, r.RankB, r.RankA
			}
			rows[k] = r
		}
		if pz != nil {
			slices.SortFunc(rows, func(a, b SoulmateRow) int { return cmp.Compare(a.UserA, b.UserA) })
		}
		for _, r := range rows {
			if err := add(r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	m.Outputs["soulmates"] = Table{Path: tableFile("soulmates"), Rows: rows}

	rows, err = writeTable(filepath.Join(dir, tableFile("rejects")), meta, rejectsLayout, s.com.hooks, func(add func(RejectRow) error) error {
		for _, r := range t.Rejects {
			uid := r.UserID
			if pz != nil && uid != nil {
				p := pz.id(*uid)
				uid = &p
			}
			if err := add(RejectRow{SourceFile: r.File, Row: r.Row, UserID: uid, Reason: string(r.Reason)}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	m.Outputs["rejects"] = Table{Path: tableFile("rejects"), Rows: rows}
	for _, table := range []string{"matches", "soulmates", "rejects"} {
		if err := s.com.hooks.syncDir(filepath.Join(dir, table)); err != nil {
			return err
		}
	}
	return ctx.Err()

}
