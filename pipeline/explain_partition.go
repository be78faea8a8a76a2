package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/osmosis/batchmatch/pipeline/failure"
	"github.com/osmosis/batchmatch/pipeline/match"
	"github.com/osmosis/batchmatch/pipeline/publish"
	"github.com/osmosis/batchmatch/pipeline/read"
	"github.com/osmosis/batchmatch/pipeline/store"
)

// ExplainPartition answers a support agent's question about one member, or
// a pair, from a published night (`explain --partition OUT/dt=DATE`): the
// as-of date, K and the weights come from its manifest; the member's list,
// ranks, mutual flags and soulmates from its tables, of which it reads only
// the pages that hold the members asked about. Only what the tables cannot
// tell is computed from the night's profiles (as the manifest lists them):
// for a member without a match, how many candidates each hard filter
// rules out (only the filter columns are read), and for a pair outside
// both lists, the pair recomputed (only the two members' row groups are
// read). Plain sentences; ids, ranks, scores and distances only, never a
// profile value. A member who is not eligible that night is "not an
// eligible member", whatever the reason, so that erasures stay invisible.
func ExplainPartition(ctx context.Context, partition string, ids []int64, w io.Writer, workers int) error {
	if len(ids) < 1 || len(ids) > 2 {
		return failure.Usagef("explain takes one member id or two")
	}
	if len(ids) == 2 && ids[0] == ids[1] {
		return failure.Usagef("explain: the two member ids are the same member (%d): give one id to explain a member, two different ones for a pair", ids[0])
	}
	if strings.TrimSpace(partition) == "" {
		return failure.Usagef("explain --partition needs a published partition, OUT/dt=YYYY-MM-DD")
	}
	pn, err := publish.OpenNight(ctx, partition)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s is not a published partition (no %s): %w", failure.NoInput, partition, publish.SuccessFile, err)
	}
	if err != nil {
		return err
	}
	e := &partitionExplainer{ctx: ctx, pn: pn, m: pn.Manifest, w: w, workers: workers, lists: map[int64][]publish.MatchRow{}}
	defer e.close()
	if err := e.open(); err != nil {
		return err
	}
	e.header()
	for _, id := range ids {
		ok, err := e.state.HasState(id)
		if err != nil {
			return err
		}
		if !ok {
			fmt.Fprintf(w, "Member %d is not an eligible member of this night (unknown, quarantined, without consent, or erased).\n", id)
			return nil
		}
	}
	if len(ids) == 1 {
		return e.member(ids[0])
	}
	return e.pair(ids[0], ids[1])
}

// partitionExplainer holds the open tables of the night explained.
type partitionExplainer struct {
	ctx                   context.Context
	pn                    *publish.PublishedNight
	m                     *publish.Manifest
	w                     io.Writer
	workers               int
	matches, souls, state *publish.TableFile
	lists                 map[int64][]publish.MatchRow
	soulmates             map[int64]publish.SoulmateRow
	asOf                  time.Time
	pseudonymized         bool
}

func (e *partitionExplainer) open() (err error) {
	if e.asOf, err = time.Parse(time.DateOnly, e.m.AsOf); err != nil {
		return fmt.Errorf("%w: the manifest's as-of date %q", failure.BadData, e.m.AsOf)
	}
	e.pseudonymized = e.m.PseudonymKeyID != ""
	if e.matches, err = e.pn.OpenTable(e.ctx, "matches"); err != nil {
		return err
	}
	if e.souls, err = e.pn.OpenTable(e.ctx, "soulmates"); err != nil {
		return err
	}
	if _, ok := e.m.Outputs["state"]; !ok {
		return fmt.Errorf("%w: %s has no state table (published by an earlier version): explain it with --profiles and the run's flags", failure.NoInput, e.pn.Name)
	}
	e.state, err = e.pn.OpenTable(e.ctx, "state")
	return err
}

func (e *partitionExplainer) close() {
	for _, t := range []*publish.TableFile{e.matches, e.souls, e.state} {
		if t != nil {
			t.Close()
		}
	}
}

// header says which night and settings the answer is about.
func (e *partitionExplainer) header() {
	m := e.m
	w := m.Config.Weights
	how := "computed in full"
	if m.Night != nil && m.Night.Mode == "incremental" {
		how = "computed incrementally from " + m.Night.From
	}
	fmt.Fprintf(e.w, "Night of %s (%s, run %s, %s): each member's %d best matches, weights trait %.2f, questions %.2f, biomarker %.2f, proximity %.2f.\n",
		m.AsOf, e.pn.Name, m.RunID, how, m.Config.K, w.Trait, w.Questions, w.Biomarker, w.Proximity)
}

// listOf returns member u's matches (cached).
func (e *partitionExplainer) listOf(u int64) ([]publish.MatchRow, error) {
	if l, ok := e.lists[u]; ok {
		return l, nil
	}
	l, err := e.matches.MatchesOf(u)
	if err == nil {
		e.lists[u] = l
	}
	return l, err
}

// rankIn is u's rank on list, 0 when absent.
func rankIn(list []publish.MatchRow, u int64) int32 {
	for _, r := range list {
		if r.MatchID == u {
			return r.Rank
		}
	}
	return 0
}

// soulmate returns u's soulmate, its score and their ranks on each other's
// lists (ok false: none). e.soulmates must hold u's row.
func (e *partitionExplainer) soulmate(u int64) (other int64, row publish.SoulmateRow, ok bool) {
	row, ok = e.soulmates[u]
	if !ok {
		return 0, row, false
	}
	if row.UserA == u {
		return row.UserB, row, true
	}
	return row.UserA, publish.SoulmateRow{UserA: u, UserB: row.UserA, Score: row.Score, RankA: row.RankB, RankB: row.RankA}, true
}

// components describes a match row's score.
func components(r publish.MatchRow) string {
	bio := "not counted (no health consent on one side)"
	if r.SBiomarker != nil {
		bio = fmt.Sprintf("%.2f", *r.SBiomarker)
	}
	return fmt.Sprintf("score %.4f: trait %.2f, questions %.2f, biomarker %s, proximity %.2f; %.1f km apart",
		r.Score, r.STrait, r.SQuestions, bio, r.SProximity, r.DistanceKm)
}

// member explains one member: their soulmate and their list, or, without
// a match, which filters rule their candidates out.
func (e *partitionExplainer) member(a int64) error {
	list, err := e.listOf(a)
	if err != nil {
		return err
	}
	ids := []int64{a}
	for _, r := range list {
		ids = append(ids, r.MatchID)
	}
	if e.soulmates, err = e.souls.SoulmatesOf(ids...); err != nil {
		return err
	}
	w := e.w
	if len(list) == 0 {
		fmt.Fprintf(w, "Member %d has no match this night: no other eligible member is compatible with them.\n", a)
		return e.funnel(a)
	}
	k := e.m.Config.K
	if len(list) < k {
		fmt.Fprintf(w, "Member %d has %d matches this night, fewer than %d: these are all the members compatible with them.\n", a, len(list), k)
	} else {
		fmt.Fprintf(w, "Member %d has %d matches this night (their best %d compatible members).\n", a, len(list), k)
	}
	if s, row, ok := e.soulmate(a); ok {
		fmt.Fprintf(w, "Their soulmate is member %d (score %.4f). %s\n", s, row.Score, rankSentence(a, s, row.RankA, row.RankB))
	} else {
		fmt.Fprintf(w, "They have no soulmate this night: each member on their list was paired with someone who scores at least as high with them.\n")
	}
	fmt.Fprintln(w, "Their list:")
	for _, r := range list {
		other, err := e.listOf(r.MatchID)
		if err != nil {
			return err
		}
		var notes []string
		if back := rankIn(other, a); back > 0 {
			notes = append(notes, fmt.Sprintf("mutual: %d is number %d on their list", a, back))
		} else {
			notes = append(notes, fmt.Sprintf("not mutual: %d is not on their list", a))
		}
		if s, row, ok := e.soulmate(r.MatchID); ok {
			if s == a {
				notes = append(notes, "their soulmate")
			} else {
				notes = append(notes, fmt.Sprintf("paired with member %d (score %.4f)", s, row.Score))
			}
		} else {
			notes = append(notes, "no soulmate")
		}
		fmt.Fprintf(w, "  %d. member %d, %s. %s.\n", r.Rank, r.MatchID, components(r), capitalize(strings.Join(notes, "; ")))
	}
	return nil
}

// rankSentence says where a and b stand on each other's lists.
func rankSentence(a, b int64, rankAB, rankBA int32) string {
	var s []string
	if rankAB > 0 {
		s = append(s, fmt.Sprintf("%d is number %d on %d's list", b, rankAB, a))
	} else {
		s = append(s, fmt.Sprintf("%d is not on %d's list", b, a))
	}
	if rankBA > 0 {
		s = append(s, fmt.Sprintf("%d is number %d on %d's list", a, rankBA, b))
	} else {
		s = append(s, fmt.Sprintf("%d is not on %d's list", a, b))
	}
	return capitalize(strings.Join(s, ", and ")) + "."
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// pair explains a pair: where each stands on the other's list, their
// soulmates, and, outside both lists, the pair recomputed.
func (e *partitionExplainer) pair(a, b int64) error {
	la, err := e.listOf(a)
	if err != nil {
		return err
	}
	lb, err := e.listOf(b)
	if err != nil {
		return err
	}
	if e.soulmates, err = e.souls.SoulmatesOf(a, b); err != nil {
		return err
	}
	w := e.w
	rab, rba := rankIn(la, b), rankIn(lb, a)
	fmt.Fprintln(w, rankSentence(a, b, rab, rba))
	var row *publish.MatchRow
	for _, r := range la {
		if r.MatchID == b {
			row = &r
		}
	}
	for _, r := range lb {
		if r.MatchID == a && row == nil {
			row = &r
		}
	}
	if row != nil {
		fmt.Fprintf(w, "Their pair: %s.\n", components(*row))
		if rab > 0 && rba > 0 {
			fmt.Fprintln(w, "The match is mutual.")
		}
	}
	sa, rowA, okA := e.soulmate(a)
	sb, rowB, okB := e.soulmate(b)
	switch {
	case okA && sa == b:
		fmt.Fprintf(w, "They are each other's soulmate (score %.4f).\n", rowA.Score)
	default:
		for _, x := range []struct {
			id, soul int64
			row      publish.SoulmateRow
			ok       bool
		}{{a, sa, rowA, okA}, {b, sb, rowB, okB}} {
			if x.ok {
				fmt.Fprintf(w, "Member %d's soulmate is member %d (score %.4f).\n", x.id, x.soul, x.row.Score)
			} else {
				fmt.Fprintf(w, "Member %d has no soulmate this night.\n", x.id)
			}
		}
	}
	if row != nil {
		return nil
	}
	// Neither is on the other's list: the tables cannot say why.
	return e.recompute(a, b, la, lb)
}

// profilesAvailable reports whether the night's profile files are still
// where the manifest says, with the sizes it recorded ("" when they are),
// so that what is computed from them is about that night.
func (e *partitionExplainer) profilesAvailable() string {
	if e.pseudonymized {
		return "this partition is a pseudonymized export: its ids are not the profiles' ids"
	}
	ins := e.m.Inputs
	if len(ins.Profiles) == 0 {
		return "the manifest lists no profile files"
	}
	for _, group := range [][]read.InputFile{ins.Profiles, ins.Blocks} {
		for _, f := range group {
			var size int64
			if store.IsURL(f.Path) {
				n, err := store.Default().Size(e.ctx, f.Path)
				if err != nil {
					return fmt.Sprintf("%s cannot be read (%v)", publish.RedactURL(f.Path), err)
				}
				size = n
			} else {
				st, err := os.Stat(f.Path)
				if err != nil {
					return fmt.Sprintf("%s is no longer there", f.Path)
				}
				size = st.Size()
			}
			if size != f.Size {
				return fmt.Sprintf("%s has changed since that night (%d bytes, the manifest says %d)", f.Path, size, f.Size)
			}
		}
	}
	return ""
}

func paths(fs []read.InputFile) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Path)
	}
	return out
}

// funnel tells, for a member without a match, how many of the other
// eligible members each hard filter rules out, from the night's profiles
// (the filter columns only) and blocked pairs.
func (e *partitionExplainer) funnel(a int64) error {
	w := e.w
	if why := e.profilesAvailable(); why != "" {
		fmt.Fprintf(w, "Which filters ruled their candidates out cannot be counted: %s.\n", why)
		return nil
	}
	eligible, err := e.state.StateIDs()
	if err != nil {
		return err
	}
	fc, err := read.ReadFilterColumns(e.ctx, paths(e.m.Inputs.Profiles), e.asOf, func(id int64) bool {
		_, ok := slices.BinarySearch(eligible, id)
		return ok
	}, e.workers)
	if err != nil {
		return err
	}
	i := slices.Index(fc.ID, a)
	if i < 0 {
		fmt.Fprintf(w, "Their row is no longer in the night's profiles: which filters ruled their candidates out cannot be counted.\n")
		return nil
	}
	blocked, err := e.blockedWith(a)
	if err != nil {
		return err
	}
	f := match.FilterFunnel(fc, i, func(id int64) bool { return blocked[id] })
	fmt.Fprintf(w, "Of the %d other eligible members, %d are ruled out by gender: one of the two does not seek the other's gender; "+
		"%d of the rest by age: one of the two is outside the ages the other accepts; "+
		"%d of the rest by distance: they live farther apart than the smaller of their two maximum distances; "+
		"%d of the rest are blocked; "+
		"and the remaining %d each fail a dealbreaker question, theirs or the member's.\n",
		f.Candidates, f.Orientation, f.Age, f.Distance, f.Blocked, f.Passed)
	return nil
}

// blockedWith returns the ids member a is blocked with (either way).
func (e *partitionExplainer) blockedWith(a int64) (map[int64]bool, error) {
	pairs, err := read.BlockedPairs(e.ctx, paths(e.m.Inputs.Blocks), a)
	out := map[int64]bool{}
	for _, p := range pairs {
		if p[0] == a {
			out[p[1]] = true
		} else {
			out[p[0]] = true
		}
	}
	return out, err
}

// recompute explains a pair outside both lists with the night's settings,
// from the two members' rows of the night's profiles.
func (e *partitionExplainer) recompute(a, b int64, la, lb []publish.MatchRow) error {
	w := e.w
	if why := e.profilesAvailable(); why != "" {
		fmt.Fprintf(w, "Why they were not matched cannot be recomputed: %s.\n", why)
		return nil
	}
	pop, err := read.LoadMembers(e.ctx, paths(e.m.Inputs.Profiles), paths(e.m.Inputs.Blocks), e.m.Dims.D, e.m.Dims.Q, e.asOf, []int64{a, b})
	if err != nil {
		return err
	}
	i, j := pop.Index(a), pop.Index(b)
	if i < 0 || j < 0 {
		fmt.Fprintf(w, "Their rows are no longer in the night's profiles: why they were not matched cannot be recomputed.\n")
		return nil
	}
	ex := (&match.Scorer{P: pop, W: e.m.Config.Weights}).ExplainPair(i, j)
	if !ex.Compatible {
		var failed []string
		for _, v := range ex.Verdicts {
			if !v.Pass {
				failed = append(failed, plainVerdict(v, a, b))
			}
		}
		fmt.Fprintf(w, "Recomputed with the night's settings, they are not compatible: %s.\n", strings.Join(failed, "; "))
		return nil
	}
	k := e.m.Config.K
	fmt.Fprintf(w, "Recomputed with the night's settings, they are compatible and score %.4f together (%.1f km apart), ", ex.Score, ex.DistanceKm)
	var why []string
	for _, x := range []struct {
		id   int64
		list []publish.MatchRow
	}{{a, la}, {b, lb}} {
		if len(x.list) >= k {
			why = append(why, fmt.Sprintf("below member %d's %dth match (score %.4f)", x.id, k, x.list[k-1].Score))
		}
	}
	if len(why) == 0 {
		fmt.Fprintln(w, "yet neither is on the other's list: the night's profiles must have changed since; please report this.")
		return nil
	}
	fmt.Fprintf(w, "%s: neither list had room for the other.\n", strings.Join(why, " and "))
	return nil
}

// plainVerdict words a failed filter of a pair explanation for members a
// and b (match.ExplainPair's verdicts, in their order).
func plainVerdict(v match.Verdict, a, b int64) string {
	switch v.Filter {
	case "A is open to B's gender":
		return fmt.Sprintf("%d does not seek %d's gender", a, b)
	case "B is open to A's gender":
		return fmt.Sprintf("%d does not seek %d's gender", b, a)
	case "B's age is in A's accepted range":
		return fmt.Sprintf("%d's age is outside the ages %d accepts", b, a)
	case "A's age is in B's accepted range":
		return fmt.Sprintf("%d's age is outside the ages %d accepts", a, b)
	case "within A's maximum distance":
		return fmt.Sprintf("they live %s, farther than %d's maximum distance", v.Detail, a)
	case "within B's maximum distance":
		return fmt.Sprintf("they live farther apart than %d's maximum distance", b)
	case "not blocked":
		return "one of them blocked the other"
	case "B passes A's dealbreakers":
		return fmt.Sprintf("%d's answers fail %s of %d's dealbreaker questions", b, strings.TrimSuffix(v.Detail, " failed"), a)
	case "A passes B's dealbreakers":
		return fmt.Sprintf("%d's answers fail %s of %d's dealbreaker questions", a, strings.TrimSuffix(v.Detail, " failed"), b)
	}
	return v.Filter + " fails"
}
