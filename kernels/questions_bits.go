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
