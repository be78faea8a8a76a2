package kernels

import "math"

// ImportanceWeight maps an importance level 0..4 to its weight in the
// satisfaction sums (spec §3). Level 4 is a dealbreaker.
var ImportanceWeight = [5]int32{0, 1, 10, 50, 250}

// Dealbreaker is the importance level whose failure makes a pair incompatible.
const Dealbreaker = 4

// QStats holds the integer sums of one pair's questionnaire comparison.
// NumAB/DenAB are A's weighted satisfaction with B's answers, NumBA/DenBA the
// reverse, Common the number of questions both answered, and Dealbreak
// whether a dealbreaker failed in either direction.
type QStats struct {
	NumAB, DenAB int32
	NumBA, DenBA int32
	Common       int32
	Dealbreak    bool
}

// Questions compares two members' answers (1..8, 0 = unanswered), accept
// bitmasks and importance levels (0..4) over Q questions. All six slices must
// have the same length and importance bytes must be ≤ 4; it panics otherwise.
//
//	for q := range ansA {
//		a, b := ansA[q], ansB[q]
//		if b != 0 && impA[q] == 4 && accA[q]&(1<<(b-1)) == 0 { s.Dealbreak = true }
//		if a != 0 && impB[q] == 4 && accB[q]&(1<<(a-1)) == 0 { s.Dealbreak = true }
//		if a != 0 && b != 0 {
//			s.Common++
//			s.DenAB += w[impA[q]]; if accA[q]&(1<<(b-1)) != 0 { s.NumAB += w[impA[q]] }
//			s.DenBA += w[impB[q]]; if accB[q]&(1<<(a-1)) != 0 { s.NumBA += w[impB[q]] }
//		}
//	}
func Questions(ansA, accA, impA, ansB, accB, impB []byte) QStats {
	n := len(ansA)
	if len(accA) != n || len(impA) != n || len(ansB) != n || len(accB) != n || len(impB) != n {
		panic("kernels: Questions length mismatch")
	}
	var s QStats
	w := &ImportanceWeight
	for q := 0; q < n; q++ {
		a, b := ansA[q], ansB[q]
		// okAB: B's answer is acceptable to A (false when B did not answer).
		okAB := b != 0 && accA[q]&(1<<((b-1)&7)) != 0
		okBA := a != 0 && accB[q]&(1<<((a-1)&7)) != 0
		if (b != 0 && impA[q] == Dealbreaker && !okAB) || (a != 0 && impB[q] == Dealbreaker && !okBA) {
			s.Dealbreak = true
		}
		if a != 0 && b != 0 {
			s.Common++
			wa, wb := w[impA[q]], w[impB[q]]
			s.DenAB += wa
			s.DenBA += wb
			if okAB {
				s.NumAB += wa
			}
			if okBA {
				s.NumBA += wb
			}
		}
	}
	return s
}

// QuestionScore turns QStats into the questions component (spec §3):
// max(0, sqrt(sat(A→B)·sat(B→A)) − 1/|C|), 0 when C is empty, where a
// direction with zero total weight is fully satisfied.
func QuestionScore(s QStats) float64 {
	if s.Common == 0 {
		return 0
	}
	satAB, satBA := 1.0, 1.0
	if s.DenAB != 0 {
		satAB = float64(s.NumAB) / float64(s.DenAB)
	}
	if s.DenBA != 0 {
		satBA = float64(s.NumBA) / float64(s.DenBA)
	}
	return max(0, math.Sqrt(satAB*satBA)-1/float64(s.Common)) // builtin max: math.Max semantics, inlined
}
