package publish

import (
	"math"

	"github.com/osmosis/batchmatch/pipeline/match"
)

// Churn compares a night with the previous published one (the manifest's
// "churn"): how the soulmate assignment moved, why members lost their
// soulmate, how the top-K lists changed and how scores drifted. Only
// counts: no member is named.
type Churn struct {
	// From is the previous night's partition and its as-of date.
	From     string `json:"from"`
	FromAsOf string `json:"from_as_of"`
	// Soulmate pairs of tonight that were pairs the night before (kept),
	// pairs of the night before that are not tonight (broken), and pairs
	// that are new tonight.
	SoulmatePairsKept   int64 `json:"soulmate_pairs_kept"`
	SoulmatePairsBroken int64 `json:"soulmate_pairs_broken"`
	SoulmatePairsNew    int64 `json:"soulmate_pairs_new"`
	// LostSoulmate counts the members eligible both nights who had a
	// soulmate the night before and do not have that one tonight, by why:
	// the partner left (or is no longer eligible), the partner was erased,
	// the pair became incompatible (a profile edit, a birthday, a block),
	// or the pair is still compatible and was out-scored (one of them
	// was assigned someone who scores higher with them, or the pair left
	// the top-K graph).
	LostSoulmate map[string]int64 `json:"lost_soulmate"`
	// MembersCompared are eligible both nights; TopKChanged of them have
	// a list that differs; TopKPlacesChanged[p] members have p of the K
	// places holding another member (or none) than the night before.
	MembersCompared   int64      `json:"members_compared"`
	TopKChanged       int64      `json:"topk_changed"`
	TopKPlacesChanged []int64    `json:"topk_places_changed"`
	Drift             ScoreDrift `json:"score_drift"`
}

// Reasons a member lost their soulmate (Churn.LostSoulmate).
const (
	LostPartnerLeft   = "partner_left"
	LostPartnerErased = "partner_erased"
	LostIncompatible  = "incompatible"
	LostOutScored     = "out_scored"
)

// ScoreDrift is how scores moved between two nights.
type ScoreDrift struct {
	// PairsInBoth are (member, match) rows listed both nights; of them,
	// PairsChanged have another score (one of the two changed).
	PairsInBoth  int64   `json:"pairs_in_both"`
	PairsChanged int64   `json:"pairs_changed"`
	MeanAbs      float64 `json:"mean_abs_change"`
	MaxAbs       float64 `json:"max_abs_change"`
	// Mean best score and mean list score of the members compared that
	// have a list both nights, the night before and tonight.
	MeanTop1Before float64 `json:"mean_top1_before"`
	MeanTop1       float64 `json:"mean_top1"`
	MeanListBefore float64 `json:"mean_list_score_before"`
	MeanList       float64 `json:"mean_list_score"`
}

// ChurnInput is what ComputeChurn compares: the previous night's lists and
// soulmates (in output ids), and tonight's (in member indices, with each
// member's output id).
type ChurnInput struct {
	From, FromAsOf string
	K              int
	PrevLists      *Lists
	PrevSouls      []SoulmateRow
	PrevState      *State // who was eligible the night before
	// OutIDs is every member's output id tonight; Index maps an output id
	// back to a member (-1: not eligible tonight).
	OutIDs []int64
	Index  func(out int64) int
	Lists  [][]match.Cand
	Souls  []match.Soulmate
	// Erased reports whether an output id is in tonight's suppression list.
	Erased func(out int64) bool
	// Compatible reports whether two members are compatible tonight.
	Compatible func(i, j int) bool
}

// ComputeChurn compares tonight with the previous night.
func ComputeChurn(in ChurnInput) *Churn {
	c := &Churn{From: in.From, FromAsOf: in.FromAsOf, LostSoulmate: map[string]int64{
		LostPartnerLeft: 0, LostPartnerErased: 0, LostIncompatible: 0, LostOutScored: 0}, TopKPlacesChanged: make([]int64, in.K+1)}
	pair := func(a, b int64) [2]int64 { return [2]int64{min(a, b), max(a, b)} }
	before := make(map[[2]int64]bool, len(in.PrevSouls))
	for _, s := range in.PrevSouls {
		before[pair(s.UserA, s.UserB)] = true
	}
	tonight := make(map[[2]int64]bool, len(in.Souls))
	for _, s := range in.Souls {
		p := pair(in.OutIDs[s.A], in.OutIDs[s.B])
		tonight[p] = true
		if before[p] {
			c.SoulmatePairsKept++
		} else {
			c.SoulmatePairsNew++
		}
	}
	c.SoulmatePairsBroken = int64(len(before)) - c.SoulmatePairsKept
	for _, s := range in.PrevSouls {
		if tonight[pair(s.UserA, s.UserB)] {
			continue
		}
		for _, side := range [][2]int64{{s.UserA, s.UserB}, {s.UserB, s.UserA}} {
			a := in.Index(side[0])
			if a < 0 {
				continue // gone themselves: not a member who lost a soulmate
			}
			b := in.Index(side[1])
			switch {
			case b < 0 && in.Erased(side[1]):
				c.LostSoulmate[LostPartnerErased]++
			case b < 0:
				c.LostSoulmate[LostPartnerLeft]++
			case !in.Compatible(a, b):
				c.LostSoulmate[LostIncompatible]++
			default:
				c.LostSoulmate[LostOutScored]++
			}
		}
	}
	d := &c.Drift
	var sumAbs, top1B, top1, listB, list float64
	var withLists, entriesB, entries int64
	for i, out := range in.OutIDs {
		if _, ok := in.PrevState.DigestOf(out); !ok {
			continue // not eligible the night before
		}
		c.MembersCompared++
		pm, ps := in.PrevLists.Of(out)
		now := in.Lists[i]
		places := 0
		for r := range in.K {
			var a, b int64 = -1, -1
			if r < len(pm) {
				a = pm[r]
			}
			if r < len(now) {
				b = in.OutIDs[now[r].J]
			}
			if a != b {
				places++
			}
		}
		c.TopKPlacesChanged[places]++
		if places > 0 {
			c.TopKChanged++
		}
		for r, m := range pm {
			j := in.Index(m)
			if j < 0 {
				continue
			}
			for _, cand := range now {
				if int(cand.J) == j {
					d.PairsInBoth++
					diff := math.Abs(float64(cand.S) - float64(ps[r]))
					if diff != 0 {
						d.PairsChanged++
					}
					sumAbs += diff
					d.MaxAbs = max(d.MaxAbs, diff)
					break
				}
			}
		}
		if len(pm) > 0 && len(now) > 0 {
			withLists++
			top1B += float64(ps[0])
			top1 += float64(now[0].S)
			for _, s := range ps {
				listB += float64(s)
			}
			for _, cand := range now {
				list += float64(cand.S)
			}
			entriesB += int64(len(ps))
			entries += int64(len(now))
		}
	}
	if d.PairsInBoth > 0 {
		d.MeanAbs = sumAbs / float64(d.PairsInBoth)
	}
	if withLists > 0 {
		d.MeanTop1Before, d.MeanTop1 = top1B/float64(withLists), top1/float64(withLists)
		d.MeanListBefore, d.MeanList = listB/float64(entriesB), list/float64(entries)
	}
	return c
}
