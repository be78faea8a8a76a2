package match

import (
	"cmp"
	"fmt"
	"io"
	"slices"

	"github.com/osmosis/batchmatch/kernels"
	"github.com/osmosis/batchmatch/pipeline/read"
)

// Verdict is one hard filter's outcome for a pair, named from A's side.
type Verdict struct {
	Filter string
	Pass   bool
	Detail string // counts or distances only, never a profile value
}

// PairExplanation is why two members are or are not compatible and how
// their score is made up. The score is computed even for incompatible
// pairs ("what it would have been").
type PairExplanation struct {
	A, B       int64
	Compatible bool
	Verdicts   []Verdict
	// Components and weighted contributions to the score, in the spec's
	// order (trait, questions, biomarker, proximity), and the weights; the
	// biomarker has weight 0 when it does not count.
	Components    [4]float64
	Weights       Weights
	Contributions [4]float64
	Biomarker     bool
	DistanceKm    float64
	Score         float64
}

// ExplainPair explains members i and j of the scorer's population.
func (s *Scorer) ExplainPair(i, j int) PairExplanation {
	p := s.P
	e := PairExplanation{A: p.ID[i], B: p.ID[j]}
	add := func(name string, ok bool, detail string) { e.Verdicts = append(e.Verdicts, Verdict{name, ok, detail}) }
	add("A is open to B's gender", p.Seeking[i]&(1<<p.Gender[j]) != 0, "")
	add("B is open to A's gender", p.Seeking[j]&(1<<p.Gender[i]) != 0, "")
	add("B's age is in A's accepted range", p.Age[j] >= p.AgeMin[i] && p.Age[j] <= p.AgeMax[i], "")
	add("A's age is in B's accepted range", p.Age[i] >= p.AgeMin[j] && p.Age[i] <= p.AgeMax[j], "")
	d := kernels.DistanceFromA(kernels.HaversineA(&p.Geo[i], &p.Geo[j]))
	e.DistanceKm = d
	add("within A's maximum distance", d <= float64(p.MaxKm[i]), fmt.Sprintf("%.1f km apart", d))
	add("within B's maximum distance", d <= float64(p.MaxKm[j]), "")
	add("not blocked", !p.IsBlocked(i, j), "")
	ansI, accI, impI := s.Questionnaire(i)
	ansJ, accJ, impJ := s.Questionnaire(j)
	failAB, failBA := dealbreakerFailures(ansJ, accI, impI), dealbreakerFailures(ansI, accJ, impJ)
	add("B passes A's dealbreakers", failAB == 0, fmt.Sprintf("%d failed", failAB))
	add("A passes B's dealbreakers", failBA == 0, fmt.Sprintf("%d failed", failBA))
	e.Compatible = i != j
	for _, v := range e.Verdicts {
		e.Compatible = e.Compatible && v.Pass
	}
	qs := kernels.Questions(ansI, accI, impI, ansJ, accJ, impJ)
	bufs := pairBufPool.Get().(*pairBufs)
	defer pairBufPool.Put(bufs)
	e.Components[0] = min(max((1+float64(kernels.Dot(s.trait(i, bufs.ti[:0]), s.trait(j, bufs.tj[:0]))))/2, 0), 1)
	e.Components[1] = kernels.QuestionScore(qs)
	lim := float64(min(p.MaxKm[i], p.MaxKm[j]))
	e.Components[3] = min(max(1-d/lim, 0), 1)
	e.Weights = s.W
	e.Biomarker = p.Health[i] && p.Health[j]
	if e.Biomarker {
		H := kernels.HLAWords
		e.Components[2] = kernels.HLAScore(kernels.XorOrCount(p.HLA[i*H:(i+1)*H], p.HLA[j*H:(j+1)*H]))
	} else {
		e.Weights.Biomarker = 0
	}
	var den float64
	weights := e.Weights.Array()
	for _, w := range weights {
		den += w
	}
	for k := range e.Components {
		e.Contributions[k] = weights[k] * e.Components[k] / den
		e.Score += e.Contributions[k]
	}
	if e.Compatible {
		ps, _ := s.Pair(i, j)
		e.Score = float64(ps.S) // exactly the value the job writes
	}
	return e
}

// dealbreakerFailures counts A's dealbreaker questions that B answered with
// an option A does not accept.
func dealbreakerFailures(ansB, accA, impA []byte) int {
	n := 0
	for q := range ansB {
		if impA[q] == kernels.Dealbreaker && ansB[q] != 0 && accA[q]&(1<<((ansB[q]-1)&7)) == 0 {
			n++
		}
	}
	return n
}

// Write prints the explanation for a support agent.
func (e PairExplanation) Write(w io.Writer) {
	verdict := "compatible"
	if !e.Compatible {
		verdict = "NOT compatible"
	}
	fmt.Fprintf(w, "pair %d (A) – %d (B): %s\n", e.A, e.B, verdict)
	for _, v := range e.Verdicts {
		mark := "pass"
		if !v.Pass {
			mark = "FAIL"
		}
		if v.Detail != "" {
			fmt.Fprintf(w, "  %-4s %s (%s)\n", mark, v.Filter, v.Detail)
		} else {
			fmt.Fprintf(w, "  %-4s %s\n", mark, v.Filter)
		}
	}
	names := [4]string{"trait", "questions", "biomarker", "proximity"}
	weights := e.Weights.Array()
	for k, n := range names {
		if k == 2 && !e.Biomarker {
			fmt.Fprintf(w, "  %-10s not counted: one of them has no health consent\n", n)
			continue
		}
		fmt.Fprintf(w, "  %-10s %.4f × weight %.2f → %.4f\n", n, e.Components[k], weights[k], e.Contributions[k])
	}
	if e.Compatible {
		fmt.Fprintf(w, "  score      %.6f\n", e.Score)
	} else {
		fmt.Fprintf(w, "  score      %.6f (had they been compatible)\n", e.Score)
	}
}

// MemberExplanation says why a member got the soulmate they got, and what
// became of their best-scoring candidates.
type MemberExplanation struct {
	ID       int64
	Soulmate *Soulmate // nil: none
	Lists    [][]Cand
	Cands    []CandidateOutcome
}

// CandidateOutcome is one of the member's best-scoring candidates.
type CandidateOutcome struct {
	ID      int64
	Score   float64
	Rank    int32  // rank in the member's top-K, 0 when absent
	Outcome string // verdicts and scores only
}

// ExplainMember explains member i given every member's top-K lists and the
// soulmate assignment: the n best-scoring compatible candidates, then the n
// best-scoring incompatible ones (near misses) with the filters they fail.
func (s *Scorer) ExplainMember(i int, lists [][]Cand, souls []Soulmate, n int) MemberExplanation {
	p := s.P
	soulOf := make(map[int32]Soulmate, 2*len(souls))
	for _, sm := range souls {
		soulOf[sm.A], soulOf[sm.B] = sm, sm
	}
	other := func(sm Soulmate, x int32) int32 {
		if sm.A == x {
			return sm.B
		}
		return sm.A
	}
	me := MemberExplanation{ID: p.ID[i], Lists: lists}
	mine, hasSoul := soulOf[int32(i)]
	if hasSoul {
		me.Soulmate = &mine
	}
	type scored struct {
		j int
		e PairExplanation
	}
	var all []scored
	for j := 0; j < p.N; j++ {
		if j != i {
			all = append(all, scored{j, s.ExplainPair(i, j)})
		}
	}
	slices.SortFunc(all, func(a, b scored) int {
		return cmp.Or(-cmp.Compare(btoi(a.e.Compatible), btoi(b.e.Compatible)), cmp.Compare(b.e.Score, a.e.Score), cmp.Compare(a.j, b.j))
	})
	var shown []scored
	nc, ni := 0, 0
	for _, c := range all {
		if c.e.Compatible && nc < n {
			shown, nc = append(shown, c), nc+1
		} else if !c.e.Compatible && ni < n {
			shown, ni = append(shown, c), ni+1
		}
	}
	for _, c := range shown {
		j := int32(c.j)
		out := CandidateOutcome{ID: p.ID[j], Score: c.e.Score, Rank: RankOf(lists[i], j)}
		switch {
		case !c.e.Compatible:
			var failed []string
			for _, v := range c.e.Verdicts {
				if !v.Pass {
					failed = append(failed, v.Filter)
				}
			}
			out.Outcome = fmt.Sprintf("not compatible: fails %q", failed)
		case hasSoul && other(mine, int32(i)) == j:
			out.Outcome = "became the soulmate"
		case out.Rank == 0 && RankOf(lists[j], int32(i)) == 0:
			out.Outcome = "compatible, but neither is in the other's top K"
		default:
			theirs, taken := soulOf[j]
			switch {
			case hasSoul && (mine.S > float32(c.e.Score) || (mine.S == float32(c.e.Score) && less(mine, i, int(j)))):
				out.Outcome = fmt.Sprintf("the member was assigned first, to a soulmate scoring %.6f", mine.S)
			case taken:
				out.Outcome = fmt.Sprintf("taken: their soulmate %d scored %.6f with them", p.ID[other(theirs, j)], theirs.S)
			default:
				out.Outcome = "compatible and unassigned (should not happen: report this)"
			}
		}
		me.Cands = append(me.Cands, out)
	}
	return me
}

// less reports whether soulmate edge sm comes before the edge (i, j) in the
// greedy order at equal scores (smaller min id, then smaller max id).
func less(sm Soulmate, i, j int) bool {
	a, b := min(i, j), max(i, j)
	return int(sm.A) < a || (int(sm.A) == a && int(sm.B) < b)
}

// Write prints the member explanation for a support agent.
func (me MemberExplanation) Write(w io.Writer, p *read.Population) {
	fmt.Fprintf(w, "member %d\n", me.ID)
	if me.Soulmate == nil {
		fmt.Fprintln(w, "  soulmate: none")
	} else {
		o := me.Soulmate.A
		if p.ID[o] == me.ID {
			o = me.Soulmate.B
		}
		fmt.Fprintf(w, "  soulmate: %d (score %.6f)\n", p.ID[o], me.Soulmate.S)
	}
	fmt.Fprintln(w, "  best-scoring candidates (in the filters, A is this member and B the candidate):")
	for _, c := range me.Cands {
		rank := "-"
		if c.Rank > 0 {
			rank = fmt.Sprint(c.Rank)
		}
		fmt.Fprintf(w, "    %d  score %.6f  rank %s  %s\n", c.ID, c.Score, rank, c.Outcome)
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
