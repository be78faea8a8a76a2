package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"unsafe"
)

type questionRowsCase struct {
	name string
	fn   func(out []QStats, a, rows []uint64, idx []int32, w int)
}

var questionRowsImpls = []questionRowsCase{{"generic", questionsRowsGeneric}}

// TestQStatsLayout pins the layout the assembly writes.
func TestQStatsLayout(t *testing.T) {
	var s QStats
	if unsafe.Sizeof(s) != 24 || unsafe.Offsetof(s.DenAB) != 4 || unsafe.Offsetof(s.NumBA) != 8 ||
		unsafe.Offsetof(s.DenBA) != 12 || unsafe.Offsetof(s.Common) != 16 || unsafe.Offsetof(s.Dealbreak) != 20 {
		t.Fatalf("QStats layout changed: size %d", unsafe.Sizeof(s))
	}
}

// TestQuestionsRows: every implementation equals the byte-level reference
// for each picked row, for every question count 0..130 (one, two and three
// words), random and repeated indices, the output guard band untouched.
func TestQuestionsRows(t *testing.T) {
	r := rand.New(rand.NewPCG(51, 52))
	for _, impl := range questionRowsImpls {
		t.Run(impl.name, func(t *testing.T) {
			for q := 0; q <= 130; q++ {
				w := QWords(q)
				S := QMaskWords * w
				const nRows = 37
				type member struct{ ans, acc, imp []byte }
				ms := make([]member, nRows)
				rows := make([]uint64, nRows*S)
				for i := range ms {
					ms[i].ans, ms[i].acc, ms[i].imp = randQuestions(r, q)
					PackQuestions(rows[i*S:(i+1)*S], ms[i].ans, ms[i].acc, ms[i].imp)
				}
				qa, qc, qi := randQuestions(r, q)
				a := make([]uint64, S)
				PackQuestions(a, qa, qc, qi)
				n := r.IntN(50)
				idx := make([]int32, n)
				for k := range idx {
					idx[k] = int32(r.IntN(nRows))
				}
				out := make([]QStats, n+1)
				out[n] = QStats{NumAB: 12345}
				impl.fn(out[:n], a, rows, idx, w)
				for k, ix := range idx {
					m := ms[ix]
					if want := refQuestions(qa, qc, qi, m.ans, m.acc, m.imp); out[k] != want {
						t.Fatalf("q=%d k=%d row %d: %+v, want %+v", q, k, ix, out[k], want)
					}
				}
				if out[n].NumAB != 12345 {
					t.Fatalf("q=%d: wrote past the batch", q)
				}
			}
		})
	}
}

func TestQuestionsRowsRejectsBadIndex(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("an index past the rows was accepted")
		}
	}()
	QuestionsRows(make([]QStats, 1), make([]uint64, QMaskWords), make([]uint64, 2*QMaskWords), []int32{2}, 1)
}

func BenchmarkQuestionsRows(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	S := QMaskWords
	rows := make([]uint64, 64*S)
	for i := range 64 {
		x, y, z := randQuestions(r, 64)
		PackQuestions(rows[i*S:(i+1)*S], x, y, z)
	}
	idx := make([]int32, 64)
	for k := range idx {
		idx[k] = int32(k)
	}
	out := make([]QStats, 64)
	for _, impl := range questionRowsImpls {
		b.Run(fmt.Sprintf("%s/64", impl.name), func(b *testing.B) {
			for b.Loop() {
				impl.fn(out, rows[:S], rows, idx, 1)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(64*b.N), "ns/pair")
		})
	}
}

// BenchmarkQuestionsBits times the bit-sliced kernel on packed members
// (packing happens once per member, not per pair).
func BenchmarkQuestionsBits(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	for _, n := range []int{16, 64, 256} {
		a1, a2, a3 := randQuestions(r, n)
		b1, b2, b3 := randQuestions(r, n)
		w := QWords(n)
		pa, pb := make([]uint64, QMaskWords*w), make([]uint64, QMaskWords*w)
		PackQuestions(pa, a1, a2, a3)
		PackQuestions(pb, b1, b2, b3)
		b.Run(fmt.Sprintf("bitsliced/%d", n), func(b *testing.B) {
			for b.Loop() {
				_ = QuestionsBits(pa, pb, w)
			}
		})
	}
}

func BenchmarkQuestions1(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	a1, a2, a3 := randQuestions(r, 64)
	b1, b2, b3 := randQuestions(r, 64)
	var pa, pb [QMaskWords]uint64
	PackQuestions(pa[:], a1, a2, a3)
	PackQuestions(pb[:], b1, b2, b3)
	for _, impl := range questions1Impls {
		b.Run(impl.name+"/64", func(b *testing.B) {
			var s int32
			for b.Loop() {
				s += impl.fn(&pa, &pb).NumAB
			}
			_ = s
		})
	}
}

// TestUnpackQuestions: unpacking gives back exactly what was packed, for
// every question count around the word boundaries.
func TestUnpackQuestions(t *testing.T) {
	r := rand.New(rand.NewPCG(81, 82))
	for _, n := range testLengths() {
		a, c, i := randQuestions(r, n)
		bits := make([]uint64, QMaskWords*QWords(n))
		PackQuestions(bits, a, c, i)
		a2, c2, i2 := make([]byte, n), make([]byte, n), make([]byte, n)
		UnpackQuestions(a2, c2, i2, bits)
		if string(a2) != string(a) || string(c2) != string(c) || string(i2) != string(i) {
			t.Fatalf("n=%d: round trip changed the questionnaire", n)
		}
	}
}
