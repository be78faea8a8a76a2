package publish

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"golang.org/x/sync/errgroup"

	"github.com/osmosis/batchmatch/pipeline/failure"
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
	// Digests are the members' digests (read.Population.Digests, salted
	// with Pseudonyms.DigestSalt when pseudonymized): the state table.
	Digests []read.Digest
}

// TableNames is the list of the tables a partition holds, in the order they
// are written: the spec's three, then the state the next night's
// incremental run starts from.
var TableNames = []string{"matches", "soulmates", "rejects", "state"}

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
		// components are recomputed as Pair computes them, ListScores,
		// bit-identical to the scores in the lists), then added in order,
		// the next chunk built while this one is encoded: memory stays two
		// chunks deep.
		const chunk = 1 << 14
		bctx, cancel := context.WithCancel(ctx)
		defer cancel()
		build := func(lo, hi int, buf [][]MatchRow) error {
			g, gctx := errgroup.WithContext(bctx)
			g.SetLimit(workers)
			for w0 := lo; w0 < hi; w0 += 1024 {
				g.Go(func() error {
					var scratch match.RowScratch
					if gctx.Err() != nil {
						return gctx.Err()
					}
					for k := w0; k < min(w0+1024, hi); k++ {
						i := int(order[k])
						out := buf[k-lo][:0]
						pss, err := t.Scorer.ListScores(i, lists[i], &scratch)
						if err != nil {
							return err
						}
						for r, c := range lists[i] {
							ps := pss[r]
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
			return g.Wait()
		}
		type built struct {
			lo, hi, slot int
			err          error
		}
		bufs := [2][][]MatchRow{make([][]MatchRow, chunk), make([][]MatchRow, chunk)}
		next := make(chan built, 1)
		start := func(lo, slot int) {
			hi := min(lo+chunk, len(order))
			go func() { next <- built{lo, hi, slot, build(lo, hi, bufs[slot])} }()
		}
		if len(order) > 0 {
			start(0, 0)
		}
		for done := 0; done < len(order); {
			b := <-next
			if b.err != nil {
				return b.err
			}
			done = b.hi
			if b.hi < len(order) {
				start(b.hi, 1-b.slot) // the other buffer: free since its rows were added
			}
			for _, member := range bufs[b.slot][:b.hi-b.lo] {
				if len(member) == 0 {
					m.Counts.MembersWithoutMatch++
				}
				for _, row := range member {
					if row.Mutual {
						m.Counts.MutualMatches++
					}
					if err := add(row); err != nil {
						cancel()
						if b.hi < len(order) {
							<-next // the build in flight writes into a buffer: wait for it
						}
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

	if len(t.Digests) != pop.N {
		return fmt.Errorf("%w: %d member digests for %d members", failure.Internal, len(t.Digests), pop.N)
	}
	rows, err = writeTable(filepath.Join(dir, tableFile("state")), meta, stateLayout, s.com.hooks, func(add func(StateRow) error) error {
		for _, i := range order {
			if err := add(StateRow{UserID: ids[i], Digest: t.Digests[i]}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	m.Outputs["state"] = Table{Path: tableFile("state"), Rows: rows}
	// Each table's size and SHA-256 as written, read back from the page
	// cache, tables in parallel.
	sums := make([]Table, len(TableNames))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(workers)
	for k, table := range TableNames {
		if err := s.com.hooks.syncDir(filepath.Join(dir, table)); err != nil {
			return err
		}
		sums[k] = m.Outputs[table]
		g.Go(func() (err error) {
			sums[k].Bytes, sums[k].SHA256, err = fileSHA256(gctx, filepath.Join(dir, sums[k].Path))
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for k, table := range TableNames {
		m.Outputs[table] = sums[k]
	}
	return ctx.Err()

}

// fileSHA256 returns the size and the hex SHA-256 of a file.
func fileSHA256(ctx context.Context, path string) (int64, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, "", fsError(err, "reading back", path)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return 0, "", fsError(err, "reading back", path)
	}
	return n, hex.EncodeToString(h.Sum(nil)), ctx.Err()
}
