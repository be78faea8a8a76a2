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
