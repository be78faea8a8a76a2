package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

type traitRowCase struct {
	name string
	fn   func(out, dots *[TileWidth]float32, w, den float64, minA float32, minB *[TileWidth]float32) uint64
}

var traitRowImpls = []traitRowCase{{"generic", traitRowGeneric}}

// TestTraitScoreRow: every implementation equals the generic one bit for
// bit (scores and mask), with dot products across [-1, 1] and beyond, ±0,
// NaN and ±Inf in every lane, minima at exactly the scores (ties reach),
// ±Inf minima; and the generic scores equal a float64 reading of the
// formula rounded once to float32.
func TestTraitScoreRow(t *testing.T) {
	r := rand.New(rand.NewPCG(71, 72))
	specials := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), 0, float32(math.Copysign(0, -1)), -1, 1, 1.5, -1.5}
	for _, impl := range traitRowImpls {
		t.Run(impl.name, func(t *testing.T) {
			for trial := range 5000 {
				var dots, minB, out, want [TileWidth]float32
				for j := range dots {
					dots[j] = float32(2*r.Float64() - 1)
					if (j+trial)%7 == 0 {
						dots[j] = specials[(j+trial)%len(specials)]
					}
				}
				w := []float64{1, 0.4, 0.25, 1e-3}[trial%4]
				den := []float64{1, 1, 0.85, 0.5}[trial%4]
				minA := float32(r.Float64())
				switch trial % 5 {
				case 0:
					minA = float32(math.Inf(-1))
				case 1:
					minA = float32(math.Inf(1))
				}
				traitRowGeneric(&want, &dots, w, den, 0, &minB) // scores, to place minima on them
				for j := range minB {
					minB[j] = float32(r.Float64())
					if j%5 == 0 {
						minB[j] = want[j] // a tie reaches the heap
					}
					if j%11 == 0 {
						minB[j] = float32(math.Inf(1))
					}
				}
				got := impl.fn(&out, &dots, w, den, minA, &minB)
				wantBeat := traitRowGeneric(&want, &dots, w, den, minA, &minB)
				if got != wantBeat {
					t.Fatalf("trial %d: mask %064b, generic %064b", trial, got, wantBeat)
				}
				for j := range out {
					if math.Float32bits(out[j]) != math.Float32bits(want[j]) {
						t.Fatalf("trial %d lane %d (dot %v): %v, generic %v", trial, j, dots[j], out[j], want[j])
					}
					d := float64(dots[j])
					st := math.Min(math.Max((1+d)/2, 0), 1)
					if d != d {
						st = 0
					}
					if ref := float32(w * st / den); math.Abs(float64(ref-want[j])) > 1e-7*float64(max(ref, 1)) {
						t.Fatalf("trial %d lane %d: generic %v, float64 reading %v", trial, j, want[j], ref)
					}
					if beat := want[j] >= minA || want[j] >= minB[j]; beat != (wantBeat&(1<<j) != 0) {
						t.Fatalf("trial %d lane %d: mask bit %v, want %v", trial, j, !beat, beat)
					}
				}
			}
		})
	}
}

func FuzzTraitScoreRow(f *testing.F) {
	f.Add(uint64(1), float32(0.5), float32(-0.25), 0.4, 0.85)
	f.Add(uint64(2), float32(-1), float32(0.75), 1.0, 1.0) // the unit fast path
	f.Fuzz(func(t *testing.T, seed uint64, d0, m0 float32, w, den float64) {
		r := rand.New(rand.NewPCG(seed, 3))
		var dots, minB, out, want [TileWidth]float32
		for j := range dots {
			dots[j] = math.Float32frombits(r.Uint32())
			minB[j] = float32(r.Float64())
		}
		dots[0], minB[1] = d0, m0
		beat := traitRowGeneric(&want, &dots, w, den, m0, &minB)
		for _, impl := range traitRowImpls[1:] {
			if got := impl.fn(&out, &dots, w, den, m0, &minB); got != beat {
				t.Fatalf("%s: mask %x, generic %x", impl.name, got, beat)
			}
			for j := range out {
				if math.Float32bits(out[j]) != math.Float32bits(want[j]) && !(out[j] != out[j] && want[j] != want[j]) {
					t.Fatalf("%s lane %d: %v, generic %v", impl.name, j, out[j], want[j])
				}
			}
		}
	})
}

func BenchmarkTraitScoreRow(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	var dots, minB, out [TileWidth]float32
	for j := range dots {
		dots[j], minB[j] = float32(2*r.Float64()-1), 0.9
	}
	for _, impl := range traitRowImpls {
		b.Run(impl.name+"/64", func(b *testing.B) {
			var acc uint64
			for b.Loop() {
				acc += impl.fn(&out, &dots, 0.4, 0.85, 0.9, &minB)
			}
			_ = acc
		})
		b.Run(impl.name+"-unit/64", func(b *testing.B) { // w = den = 1: the trait weight alone
			var acc uint64
			for b.Loop() {
				acc += impl.fn(&out, &dots, 1, 1, 0.9, &minB)
			}
			_ = acc
		})
	}
}
