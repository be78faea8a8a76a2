package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

var questionImpls = []struct {
	name string
	fn   func(ansA, accA, impA, ansB, accB, impB []byte) QStats
}{
	{"generic", Questions},
	{"bitsliced", func(ansA, accA, impA, ansB, accB, impB []byte) QStats {
		w := QWords(len(ansA))
		pa, pb := make([]uint64, QMaskWords*w), make([]uint64, QMaskWords*w)
		PackQuestions(pa, ansA, accA, impA)
		PackQuestions(pb, ansB, accB, impB)
		return QuestionsBits(pa, pb, w)
	}},
}

// one-word implementations (Q ≤ 64) side by side; dot_amd64_test.go adds
// the POPCNT assembly.
var questions1Impls = []struct {
	name string
	fn   func(a, b *[QMaskWords]uint64) QStats
}{{"generic", questionsBits1}}

func init() {
	for _, impl := range questions1Impls {
		questionImpls = append(questionImpls, struct {
			name string
			fn   func(ansA, accA, impA, ansB, accB, impB []byte) QStats
		}{"words1-" + impl.name, func(ansA, accA, impA, ansB, accB, impB []byte) QStats {
			if len(ansA) > 64 {
				return Questions(ansA, accA, impA, ansB, accB, impB) // one word holds 64 questions
			}
			var pa, pb [QMaskWords]uint64
			PackQuestions(pa[:], ansA, accA, impA)
			PackQuestions(pb[:], ansB, accB, impB)
			return impl.fn(&pa, &pb)
		}})
	}
}

// refQuestions is the spec's definition, question by question.
func refQuestions(ansA, accA, impA, ansB, accB, impB []byte) QStats {
	w := []int32{0, 1, 10, 50, 250}
	var s QStats
	for q := range ansA {
		if impA[q] == 4 && ansB[q] != 0 && accA[q]&(1<<(ansB[q]-1)) == 0 {
			s.Dealbreak = true
		}
		if impB[q] == 4 && ansA[q] != 0 && accB[q]&(1<<(ansA[q]-1)) == 0 {
			s.Dealbreak = true
		}
		if ansA[q] == 0 || ansB[q] == 0 {
			continue
		}
		s.Common++
		s.DenAB += w[impA[q]]
		s.DenBA += w[impB[q]]
		if accA[q]&(1<<(ansB[q]-1)) != 0 {
			s.NumAB += w[impA[q]]
		}
		if accB[q]&(1<<(ansA[q]-1)) != 0 {
			s.NumBA += w[impB[q]]
		}
	}
	return s
}

func randQuestions(r *rand.Rand, n int) (ans, acc, imp []byte) {
	ans, acc, imp = make([]byte, n), make([]byte, n), make([]byte, n)
	for q := range n {
		ans[q] = byte(r.IntN(9))
		acc[q] = byte(r.IntN(256))
		imp[q] = byte(r.IntN(5))
	}
	return
}

func TestQuestions(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, impl := range questionImpls {
		t.Run(impl.name, func(t *testing.T) {
			for _, n := range testLengths() {
				for range 20 {
					a1, a2, a3 := randQuestions(r, n)
					b1, b2, b3 := randQuestions(r, n)
					got := impl.fn(a1, a2, a3, b1, b2, b3)
					if want := refQuestions(a1, a2, a3, b1, b2, b3); got != want {
						t.Fatalf("n=%d: got %+v, want %+v", n, got, want)
					}
					rev := impl.fn(b1, b2, b3, a1, a2, a3)
					if rev.NumAB != got.NumBA || rev.DenAB != got.DenBA || rev.Common != got.Common || rev.Dealbreak != got.Dealbreak {
						t.Fatalf("n=%d: not symmetric: %+v vs %+v", n, got, rev)
					}
				}
			}
		})
	}
}

func TestQuestionScore(t *testing.T) {
	for _, tc := range []struct {
		s    QStats
		want float64
	}{
		{QStats{}, 0},             // C empty
		{QStats{Common: 1}, 0},    // sat 1·1 − 1/1
		{QStats{Common: 4}, 0.75}, // zero weights: fully satisfied
		{QStats{NumAB: 50, DenAB: 100, NumBA: 50, DenBA: 50, Common: 10}, math.Sqrt(0.5) - 0.1},
		{QStats{NumAB: 0, DenAB: 100, NumBA: 50, DenBA: 50, Common: 10}, 0}, // clamped at 0
	} {
		if got := QuestionScore(tc.s); math.Abs(got-tc.want) > 1e-15 {
			t.Errorf("%+v: got %v, want %v", tc.s, got, tc.want)
		}
	}
}

func FuzzQuestions(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4, 0, 255, 4, 3, 2, 1, 8, 8})
	f.Fuzz(func(t *testing.T, data []byte) {
		n := len(data) / 6
		col := func(k int, max byte) []byte {
			c := make([]byte, n)
			for i := range c {
				c[i] = byte(int(data[k*n+i]) % (int(max) + 1))
			}
			return c
		}
		a1, a2, a3, b1, b2, b3 := col(0, 8), col(1, 255), col(2, 4), col(3, 8), col(4, 255), col(5, 4)
		want := refQuestions(a1, a2, a3, b1, b2, b3)
		for _, impl := range questionImpls {
			if got := impl.fn(a1, a2, a3, b1, b2, b3); got != want {
				t.Fatalf("%s n=%d: got %+v, want %+v", impl.name, n, got, want)
			}
		}
		s := QuestionScore(want)
		if !(s >= 0 && s <= 1) {
			t.Fatalf("QuestionScore %v out of [0, 1]", s)
		}
	})
}

func BenchmarkQuestions(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	for _, impl := range questionImpls[:1] { // the bit-sliced row packs per call: see BenchmarkQuestionsBits
		for _, n := range []int{16, 64, 256} {
			a1, a2, a3 := randQuestions(r, n)
			b1, b2, b3 := randQuestions(r, n)
			b.Run(fmt.Sprintf("%s/%d", impl.name, n), func(b *testing.B) {
				for b.Loop() {
					_ = impl.fn(a1, a2, a3, b1, b2, b3)
				}
			})
		}
	}
}
