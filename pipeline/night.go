package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/osmosis/batchmatch/pipeline/match"
	"github.com/osmosis/batchmatch/pipeline/publish"
	"github.com/osmosis/batchmatch/pipeline/read"
)

// A night is more than its tables: it is compared with the previous
// published night (churn), its assignment is certified against the whole
// compatible graph (stability), and, with --incremental, its lists are
// computed from the previous night's (match.Scorer.Incremental) when that
// night can be trusted. This file is those stages.

// The stages a night adds (timings_ms).
const (
	stagePrevious  = "read_previous" // the previous night: manifest, state, lists, soulmates
	stageStability = "stability"     // the certificate
	stageChurn     = "churn"         // tonight against the previous night
)

// outIDs are the ids a night's tables carry for its members: internal ids,
// or their pseudonyms; with the index back from them.
type outIDs struct {
	ids   []int64
	index func(int64) int
	pz    *publish.Pseudonymizer // nil: output ids are internal ids
}

func newOutIDs(pop *read.Population, pz *publish.Pseudonymizer) (*outIDs, error) {
	if pz == nil {
		return &outIDs{ids: pop.ID, index: publish.NewIndex(pop.ID).Of}, nil
	}
	ids, err := pz.IDs(pop.ID)
	if err != nil {
		return nil, err
	}
	return &outIDs{ids: ids, index: publish.NewIndex(ids).Of, pz: pz}, nil
}

// erased returns whether an output id is that of a suppressed id.
func (o *outIDs) erased(suppressed []int64) func(int64) bool {
	out := suppressed
	if o.pz != nil {
		out = make([]int64, len(suppressed))
		for k, id := range suppressed {
			out[k] = o.pz.ID(id)
		}
		slices.Sort(out)
	}
	return func(u int64) bool { _, ok := slices.BinarySearch(out, u); return ok }
}

// previous is the previous published night as tonight reads it.
type previous struct {
	night *publish.PublishedNight
	lists *publish.Lists
	souls []publish.SoulmateRow
	state *publish.State
	// why is set when the night cannot seed an incremental run (it may
	// still serve the churn figures when lists, souls and state are read).
	why string
}

// digestSalt is what member digests are salted with: nothing for internal
// ids, the key's MAC for a pseudonymized export.
func digestSalt(pz *publish.Pseudonymizer) []byte {
	if pz == nil {
		return nil
	}
	return pz.DigestSalt()
}

// readPrevious finds the latest night published under cfg.Out before
// cfg.AsOf and reads its tables (checked against its manifest), and says
// whether an incremental run may start from it (why empty). It returns nil
// when there is no such night or its tables cannot be read as published
// (why gives the reason; a read error of the store fails the run only
// when it is not about the night's content).
func (j *job) readPrevious(ctx context.Context, cfg Config) (*previous, string, error) {
	j.tm.begin(stagePrevious)
	pn, err := publish.PreviousNight(ctx, cfg.Out, cfg.AsOf)
	if err != nil {
		return nil, "", err
	}
	if pn == nil {
		return nil, "no night published before " + cfg.asOfDate(), nil
	}
	pm := pn.Manifest
	if pm.PseudonymKeyID != j.m.PseudonymKeyID {
		return nil, fmt.Sprintf("%s was pseudonymized with another key (or not at all): its ids cannot be mapped to tonight's", pn.Name), nil
	}
	p := &previous{night: pn}
	raw, err := pn.Table(ctx, "state")
	if err == nil {
		p.state, err = publish.ParseState(raw)
	}
	if err == nil {
		raw, err = pn.Table(ctx, "matches")
	}
	if err == nil {
		p.lists, err = publish.ParseLists(raw, pm.Config.K)
	}
	if err == nil {
		raw, err = pn.Table(ctx, "soulmates")
	}
	if err == nil {
		p.souls, err = publish.ParseSoulmates(raw)
	}
	if err != nil {
		if errors.Is(err, publish.ErrUntrusted) {
			return nil, fmt.Sprintf("%s: %v", pn.Name, err), nil
		}
		return nil, "", err
	}
	p.why = j.trusts(pm, cfg)
	return p, "", nil
}

// trusts says why the previous night's manifest pm cannot seed tonight's
// lists ("" when it can): the same configuration but for the date (the
// configuration hash recomputed with tonight's as-of date), the same
// scoring version, a manifest consistent with this build.
func (j *job) trusts(pm *publish.Manifest, cfg Config) string {
	switch {
	case pm.ScoringVersion != match.ScoringVersion:
		return fmt.Sprintf("it was scored by scoring version %d, this build is %d", pm.ScoringVersion, match.ScoringVersion)
	case pm.ConfigHash != publish.ConfigHash(pm.Config, pm.Dims, pm.PseudonymKeyID):
		return "its configuration hash is not this build's for its configuration (another version of batchmatch)"
	case pm.Config.K != cfg.K:
		return fmt.Sprintf("K changed from %d to %d", pm.Config.K, cfg.K)
	case pm.Config.Weights != cfg.Weights:
		return fmt.Sprintf("the weights changed from %v to %v", pm.Config.Weights, cfg.Weights)
	case pm.Dims.D != j.m.Dims.D || pm.Dims.Q != j.m.Dims.Q:
		return fmt.Sprintf("D and Q changed from %d and %d to %d and %d", pm.Dims.D, pm.Dims.Q, j.m.Dims.D, j.m.Dims.Q)
	}
	rc := pm.Config
	rc.AsOf = j.m.AsOf
	if publish.ConfigHash(rc, pm.Dims, pm.PseudonymKeyID) != j.m.ConfigHash {
		return "its configuration hash differs from tonight's (other settings)"
	}
	if pm.Outputs["state"].Rows != pm.Counts.Eligible {
		return "its state table does not hold every eligible member"
	}
	return ""
}

// incremental computes tonight's lists from the previous night's:
// members are changed when new or their digest differs; the others carry
// their lists over (match.Scorer.Incremental).
func (j *job) incremental(ctx context.Context, sc *match.Scorer, prev *previous, out *outIDs, digests []read.Digest, k, workers int) ([][]match.Cand, error) {
	j.tm.begin(stageScore)
	pop := sc.P
	changed := make([]bool, pop.N)
	parallel(pop.N, workers, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			d, ok := prev.state.DigestOf(out.ids[i])
			changed[i] = !ok || d != digests[i]
		}
	})
	gone := int64(0)
	for _, u := range prev.state.User {
		if out.index(u) < 0 {
			gone++
		}
	}
	lists := make([][]match.PrevCand, pop.N)
	parallel(pop.N, workers, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			if changed[i] {
				continue
			}
			ms, ss := prev.lists.Of(out.ids[i])
			l := make([]match.PrevCand, len(ms))
			for r, m := range ms {
				c := match.PrevCand{S: ss[r], J: -1}
				if jj := out.index(m); jj >= 0 {
					c.ID, c.IDKnown = pop.ID[jj], true
					if !changed[jj] {
						c.J = int32(jj)
					}
				} else if out.pz == nil {
					c.ID, c.IDKnown = m, true // internal ids: a departed member's id is its output id
				}
				l[r] = c
			}
			lists[i] = l
		}
	})
	sc.Progress = match.NewProgress()
	stop := reportProgress(ctx, j.log, sc.Progress, j.env.ProgressBar, j.progressEvery, &j.peakHeap)
	res, st, err := sc.Incremental(ctx, match.Block(pop), lists, changed, k, workers)
	stop()
	sampleHeap(&j.peakHeap)
	if err != nil {
		return nil, err
	}
	pm := prev.night.Manifest
	j.m.Night = &publish.NightInfo{Mode: "incremental", IncrementalRequested: true, From: prev.night.Name, FromRunID: pm.RunID,
		FromAsOf: pm.AsOf, MembersRescored: st.Rescored(), MembersGone: gone, IncrementalStats: st}
	j.m.Counts.PairsExamined, j.m.Counts.PairsCompatible = st.PairsExamined, st.PairsCompatible
	j.log.Info("incremental scoring", "from", prev.night.Name, "changed", st.Changed, "repaired", st.Repaired,
		"carried", st.Carried, "gone", gone, "pairs_examined", st.PairsExamined)
	return res, nil
}

// nightStats records what a night adds to its tables: the stability
// certificate of the assignment and, when the previous night could be
// read with ids comparable to tonight's, the churn against it.
func (j *job) nightStats(ctx context.Context, sc *match.Scorer, L *read.Loaded, prev *previous, out *outIDs, lists [][]match.Cand,
	souls []match.Soulmate, k, workers int) error {
	j.tm.begin(stageStability)
	cert, err := sc.Stability(ctx, lists, souls, k, workers)
	if err != nil {
		return err
	}
	j.m.Stability = cert
	if prev == nil {
		return nil
	}
	j.tm.begin(stageChurn)
	j.m.Churn = publish.ComputeChurn(publish.ChurnInput{
		From: prev.night.Name, FromAsOf: prev.night.Manifest.AsOf, K: k,
		PrevLists: prev.lists, PrevSouls: prev.souls, PrevState: prev.state,
		OutIDs: out.ids, Index: out.index, Lists: lists, Souls: souls, Erased: out.erased(L.Suppressed),
		Compatible: func(i, j int) bool { _, ok := sc.Pair(i, j); return ok },
	})
	return nil
}

// lists computes every member's top K: incrementally from the previous
// night when cfg.Incremental and that night can be trusted, in full
// otherwise (the reason logged and recorded). It also returns the previous
// night as read (nil when none could be), for the churn figures.
func (j *job) lists(ctx context.Context, cfg Config, sc *match.Scorer, out *outIDs, digests []read.Digest) (*previous, [][]match.Cand, error) {
	prev, why, err := j.readPrevious(ctx, cfg)
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		j.log.Warn("the previous night could not be read", "error", err)
		prev, why = nil, "the previous night could not be read: "+err.Error()
	}
	if prev != nil && why == "" {
		why = prev.why
		if why != "" {
			why = prev.night.Name + ": " + why
		}
	}
	if cfg.Incremental && why == "" {
		lists, err := j.incremental(ctx, sc, prev, out, digests, cfg.K, cfg.Workers)
		return prev, lists, err
	}
	night := &publish.NightInfo{Mode: "full", IncrementalRequested: cfg.Incremental}
	if cfg.Incremental {
		night.FullReason = why
		j.log.Warn("incremental run not possible: running in full", "reason", why)
	}
	lists, err := j.score(ctx, sc, cfg.K, cfg.Workers)
	if err != nil {
		return nil, nil, err
	}
	night.MembersRescored = int64(sc.P.N)
	j.m.Night = night
	return prev, lists, nil
}

// parallel calls f on n items cut into ranges, on workers goroutines.
func parallel(n, workers int, f func(lo, hi int)) {
	var wg sync.WaitGroup
	step := max(1, (n+workers*4-1)/max(workers*4, 1))
	sem := make(chan struct{}, max(workers, 1))
	for lo := 0; lo < n; lo += step {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			f(lo, min(lo+step, n))
		})
	}
	wg.Wait()
}
