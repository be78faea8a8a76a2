package match

import "context"

// PrevCand is one entry of a member's list on the previous night, in
// tonight's terms: the candidate's id, score and rank order as published,
// and whether tonight's population holds the candidate unchanged (same
// digest: every pair with an unchanged member scores as it did).
type PrevCand struct {
	ID int64   // the candidate's internal id; meaningful when IDKnown
	S  float32 // the published score
	// J is the candidate's index tonight when it is unchanged, else -1
	// (changed, gone, or unknown).
	J int32
	// IDKnown is false for a departed member of a pseudonymized table,
	// whose internal id cannot be recovered.
	IDKnown bool
}

// CarryOver is the list tonight of a member whose own data did not change,
// from its list of the previous night (prev, best first, as published,
// with the same k) and fresh: the best k of its pairs with the members
// that changed tonight (new ones included), scored tonight. ids maps an
// index of tonight to its id.
//
// Every pair between two unchanged members scores as it did, so the
// member's pairs tonight are its unchanged pairs and fresh. Its previous
// list holds the best of its unchanged pairs: the entries whose candidate
// is unchanged (kept) are the top of the unchanged pairs, and every
// unchanged pair not listed ranks below the previous k-th entry. The best
// k of kept and fresh is therefore tonight's list exactly when the
// previous list was not full (every unchanged pair is in it), when no
// entry dropped out, or when the k-th of the result ranks at or above the
// previous k-th entry (no unlisted unchanged pair can reach it). Otherwise
// exact is false and the member must be rescored against everyone.
func CarryOver(k int, prev []PrevCand, fresh []Cand, ids []int64) (list []Cand, exact bool) {
	m := topK{k: k, h: make([]Cand, 0, k)}
	dropped := false
	for _, c := range prev {
		if c.J < 0 {
			dropped = true
			continue
		}
		m.offer(Cand{J: c.J, S: c.S})
	}
	for _, c := range fresh {
		m.offer(c)
	}
	list = m.sorted()
	if len(prev) < k || !dropped {
		return list, true
	}
	if len(list) < k {
		return list, false
	}
	last, bound := list[k-1], prev[k-1]
	if last.S != bound.S {
		return list, last.S > bound.S
	}
	if !bound.IDKnown {
		return list, false // a tie with an id that cannot be compared
	}
	return list, ids[last.J] <= bound.ID // equal: the same entry, kept
}

// IncrementalStats are what an incremental scoring did.
type IncrementalStats struct {
	// Changed members were scored against everyone: new, or their data
	// (profile, age, blocks) changed.
	Changed int64 `json:"members_changed"`
	// Repaired members did not change, but their previous list lost an
	// entry that nothing tonight could replace with certainty: they were
	// rescored against everyone too.
	Repaired int64 `json:"members_rescored_lost_candidate"`
	// Carried members kept their previous list, merged with their pairs
	// against the changed members.
	Carried int64 `json:"members_carried"`
	ScoreStats
}

// Rescored is how many members were scored against everyone.
func (s IncrementalStats) Rescored() int64 { return s.Changed + s.Repaired }

// Incremental computes every member's top k from the previous night's
// lists: prev[i] is member i's previous list when i did not change (nil
// for a changed or new member, whose changed[i] is true). Changed members
// are scored against everyone (ScoreSubset, which also gives every other
// member its best k against them); every other member's list is carried
// over (CarryOver), and the members whose carry-over is not certain are
// scored against everyone in a second pass. The result is TopK's, list for
// list (TestIncrementalMatchesTopK).
func (s *Scorer) Incremental(ctx context.Context, b *Blocking, prev [][]PrevCand, changed []bool, k, workers int) ([][]Cand, IncrementalStats, error) {
	p := s.P
	var st IncrementalStats
	var sub []int32
	for i, c := range changed {
		if c {
			sub = append(sub, int32(i))
		}
	}
	st.Changed = int64(len(sub))
	first, s1, err := s.ScoreSubset(ctx, b, sub, k, workers, true)
	if err != nil {
		return nil, st, err
	}
	lists := make([][]Cand, p.N)
	var repair []int32
	for i := range p.N {
		if changed[i] {
			lists[i] = first.Own[i]
			continue
		}
		l, exact := CarryOver(k, prev[i], first.Others[i], p.ID)
		if !exact {
			repair = append(repair, int32(i))
			continue
		}
		lists[i] = l
	}
	st.Repaired = int64(len(repair))
	st.Carried = int64(p.N) - st.Changed - st.Repaired
	first = nil
	second, s2, err := s.ScoreSubset(ctx, b, repair, k, workers, false)
	if err != nil {
		return nil, st, err
	}
	for _, i := range repair {
		lists[i] = second.Own[i]
	}
	st.PairsExamined = s1.PairsExamined + s2.PairsExamined
	st.PairsCompatible = s1.PairsCompatible + s2.PairsCompatible
	return lists, st, nil
}
