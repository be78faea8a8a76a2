package kernels

import "math/bits"

// Bit-sliced questionnaires. A member's Q answers, accept masks and
// importance levels become masks of W = QWords(Q) 64-bit words each, laid
// out one after another (QMaskWords masks):
//
//	mask 0          answered: question q answered (answer ≠ 0)
//	masks 1..8      answered with option o (o = 1..8)
//	masks 9..16     option o acceptable (accept bit o-1 set)
//	masks 17..21    importance level l (l = 0..4)
//
// so that comparing two members costs a few word operations per 64
// questions instead of a loop over bytes.
const QMaskWords = 22

const (
	qAnswered = 0
	qAnswer   = 1  // + option-1
	qAccept   = 9  // + option-1
	qImp      = 17 // + level
)

// QImportanceMask is the index of the first importance-level mask: mask
// QImportanceMask+l holds the questions of importance level l (so
// QImportanceMask+Dealbreaker marks a member's dealbreaker questions).
const QImportanceMask = qImp

// QWords is the number of 64-bit words per mask for q questions.
func QWords(q int) int { return (q + 63) / 64 }

// PackQuestions writes the bit-sliced form of one member's answers, accept
// masks and importance levels (each of length q; importance bytes ≤ 4) into
// dst, which must hold QMaskWords·QWords(q) words and is overwritten.
func PackQuestions(dst []uint64, ans, acc, imp []byte) {
	w := QWords(len(ans))
	clear(dst[:QMaskWords*w])
	for q := range ans {
		k, bit := q/64, uint64(1)<<(q%64)
		if a := ans[q]; a != 0 {
			dst[qAnswered*w+k] |= bit
			dst[(qAnswer+int(a-1)&7)*w+k] |= bit
		}
		for o := 0; o < 8; o++ {
			if acc[q]&(1<<o) != 0 {
				dst[(qAccept+o)*w+k] |= bit
			}
		}
		dst[(qImp+int(imp[q]))*w+k] |= bit
	}
}

// QuestionsBits is Questions on the bit-sliced form of two members (each
// QMaskWords·w words). It returns exactly what Questions returns.
//
//	for k := 0; k < w; k++ {
//		c := answeredA & answeredB
//		okAB := OR over o of (answerB[o] & acceptA[o])   // B's answer acceptable to A
//		okBA := OR over o of (answerA[o] & acceptB[o])
//		dealbreak |= impA[4] & answeredB &^ okAB != 0 || impB[4] & answeredA &^ okBA != 0
//		common += popcount(c)
//		for l in 1..4: denAB += w[l]·popcount(impA[l] & c); numAB += w[l]·popcount(impA[l] & c & okAB)  (and BA)
//	}
func QuestionsBits(a, b []uint64, w int) QStats {
	if len(a) < QMaskWords*w || len(b) < QMaskWords*w {
		panic("kernels: QuestionsBits slice too short")
	}
	if w == 1 {
		return questions1Impl((*[QMaskWords]uint64)(a), (*[QMaskWords]uint64)(b))
	}
	var s QStats
	for k := 0; k < w; k++ {
		ansA, ansB := a[qAnswered*w+k], b[qAnswered*w+k]
		var okAB, okBA uint64
		for o := 0; o < 8; o++ {
			okAB |= b[(qAnswer+o)*w+k] & a[(qAccept+o)*w+k]
			okBA |= a[(qAnswer+o)*w+k] & b[(qAccept+o)*w+k]
		}
		if a[(qImp+Dealbreaker)*w+k]&ansB&^okAB != 0 || b[(qImp+Dealbreaker)*w+k]&ansA&^okBA != 0 {
			s.Dealbreak = true
		}
		c := ansA & ansB
		s.Common += int32(bits.OnesCount64(c))
		for l := 1; l <= Dealbreaker; l++ {
			wl := ImportanceWeight[l]
			ma, mb := a[(qImp+l)*w+k]&c, b[(qImp+l)*w+k]&c
			s.DenAB += wl * int32(bits.OnesCount64(ma))
			s.NumAB += wl * int32(bits.OnesCount64(ma&okAB))
			s.DenBA += wl * int32(bits.OnesCount64(mb))
			s.NumBA += wl * int32(bits.OnesCount64(mb&okBA))
		}
	}
	return s
}

// questions1Impl is QuestionsBits for one word per mask: questionsBits1,
// or the POPCNT assembly on amd64 (dot_amd64.go).
var questions1Impl = questionsBits1

// questionsBits1 is QuestionsBits for up to 64 questions (one word per
// mask), with the masks at fixed offsets so that no index is computed or
// bounds-checked in the loop.
func questionsBits1(a, b *[QMaskWords]uint64) QStats {
	ansA, ansB := a[qAnswered], b[qAnswered]
	okAB := b[qAnswer]&a[qAccept] | b[qAnswer+1]&a[qAccept+1] | b[qAnswer+2]&a[qAccept+2] | b[qAnswer+3]&a[qAccept+3] |
		b[qAnswer+4]&a[qAccept+4] | b[qAnswer+5]&a[qAccept+5] | b[qAnswer+6]&a[qAccept+6] | b[qAnswer+7]&a[qAccept+7]
	okBA := a[qAnswer]&b[qAccept] | a[qAnswer+1]&b[qAccept+1] | a[qAnswer+2]&b[qAccept+2] | a[qAnswer+3]&b[qAccept+3] |
		a[qAnswer+4]&b[qAccept+4] | a[qAnswer+5]&b[qAccept+5] | a[qAnswer+6]&b[qAccept+6] | a[qAnswer+7]&b[qAccept+7]
	var s QStats
	s.Dealbreak = a[qImp+Dealbreaker]&ansB&^okAB != 0 || b[qImp+Dealbreaker]&ansA&^okBA != 0
	c := ansA & ansB
	s.Common = int32(bits.OnesCount64(c))
	a1, a2, a3, a4 := a[qImp+1]&c, a[qImp+2]&c, a[qImp+3]&c, a[qImp+4]&c
	b1, b2, b3, b4 := b[qImp+1]&c, b[qImp+2]&c, b[qImp+3]&c, b[qImp+4]&c
	pc := func(x uint64) int32 { return int32(bits.OnesCount64(x)) }
	s.DenAB = pc(a1) + 10*pc(a2) + 50*pc(a3) + 250*pc(a4)
	s.NumAB = pc(a1&okAB) + 10*pc(a2&okAB) + 50*pc(a3&okAB) + 250*pc(a4&okAB)
	s.DenBA = pc(b1) + 10*pc(b2) + 50*pc(b3) + 250*pc(b4)
	s.NumBA = pc(b1&okBA) + 10*pc(b2&okBA) + 50*pc(b3&okBA) + 250*pc(b4&okBA)
	return s
}

// questionsRowsImpl is QuestionsRows' implementation.
var questionsRowsImpl = questionsRowsGeneric

// QuestionsRows compares member a (QMaskWords·w words) with the candidates
// whose masks are rows idx[k] of rows (row r at rows[r·QMaskWords·w:]),
// writing out[k]: one call per query and batch of candidates instead of one
// per pair. It panics if an index is out of range or out is too short.
//
//	for k, r := range idx {
//		out[k] = QuestionsBits(a, rows[r*QMaskWords*w:(r+1)*QMaskWords*w], w)
//	}
func QuestionsRows(out []QStats, a, rows []uint64, idx []int32, w int) {
	S := QMaskWords * w
	if len(out) < len(idx) || len(a) < S {
		panic("kernels: QuestionsRows slice too short")
	}
	n := int32(0)
	if S > 0 {
		n = int32(len(rows) / S)
	}
	for _, r := range idx {
		if r < 0 || r >= n {
			panic("kernels: QuestionsRows index out of range")
		}
	}
	questionsRowsImpl(out, a, rows, idx, w)
}

func questionsRowsGeneric(out []QStats, a, rows []uint64, idx []int32, w int) {
	S := QMaskWords * w
	for k, r := range idx {
		out[k] = QuestionsBits(a, rows[int(r)*S:(int(r)+1)*S], w)
	}
}

// UnpackQuestions is the inverse of PackQuestions: it recovers the answers,
// accept masks and importance levels of q = len(ans) questions from their
// bit-sliced form (acc and imp must have the same length as ans).
func UnpackQuestions(ans, acc, imp []byte, src []uint64) {
	w := QWords(len(ans))
	for q := range ans {
		k, bit := q/64, uint64(1)<<(q%64)
		ans[q], acc[q], imp[q] = 0, 0, 0
		for o := 0; o < 8; o++ {
			if src[(qAnswer+o)*w+k]&bit != 0 {
				ans[q] = byte(o + 1)
			}
			if src[(qAccept+o)*w+k]&bit != 0 {
				acc[q] |= 1 << o
			}
		}
		for l := 0; l <= Dealbreaker; l++ {
			if src[(qImp+l)*w+k]&bit != 0 {
				imp[q] = byte(l)
			}
		}
	}
}
