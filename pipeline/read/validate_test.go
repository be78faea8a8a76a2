package read

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/osmosis/batchmatch/pipeline/internal/reference"
	"github.com/osmosis/batchmatch/pipeline/profile"
	"github.com/osmosis/batchmatch/pipeline/synth"
)

// FuzzValidateRow writes one profile row of arbitrary values and checks the
// reader's verdict against the reference validation (pipeline/internal/reference): the same
// reason, or valid on both sides.
func FuzzValidateRow(f *testing.F) {
	f.Add(int64(1), true, int64(0), int64(2), int32(9000), int64(25), int64(35), 48.85, 2.35, float32(50), float32(1), float32(0), []byte{1, 2}, []byte{3, 255}, []byte{4, 0}, []byte{1}, false)
	f.Add(int64(-5), false, int64(3), int64(0), int32(30000), int64(40), int64(30), 91.0, -181.0, float32(0), float32(0), float32(0), []byte{9, 0}, []byte{0, 0}, []byte{5, 5}, []byte{}, true)
	f.Fuzz(func(t *testing.T, id int64, consent bool, gender, seeking int64, birth int32, ageMin, ageMax int64,
		lat, lon float64, maxKm, t0, t1 float32, ans, acc, imp, hla []byte, variable bool) {
		const q = 2
		if len(ans) > 4 || len(acc) > 4 || len(imp) > 4 || len(hla) > 40 {
			return
		}
		clamp := func(v, lo, hi int64) int64 { return min(max(v, lo), hi) } // the test schema's uint16/uint8 columns
		m := synth.Member{ID: &id, Consent: &consent, Health: synth.Ptr(true), Gender: synth.Ptr(clamp(gender, 0, 65535)),
			Seeking: synth.Ptr(clamp(seeking, 0, 255)), Birth: &birth, AgeMin: synth.Ptr(clamp(ageMin, 0, 255)), AgeMax: synth.Ptr(clamp(ageMax, 0, 255)),
			Lat: &lat, Lon: &lon, MaxKm: &maxKm, Trait: []float32{t0, t1}, Ans: ans, Acc: acc, Imp: imp}
		if len(hla) > 0 {
			m.HLA = hla
		}
		form := synth.ArrowVariable
		if !variable && synth.ArrowFixed.CanHold([]synth.Member{m}, 2, q) {
			form = synth.ArrowFixed
		}
		p := synth.MustWriteProfiles(t, filepath.Join(t.TempDir(), "p"), []synth.Member{m}, 2, q, 1, form)[0]
		pf, err := openParquet(context.Background(), p, memory.NewGoAllocator())
		if err != nil {
			t.Fatal(err)
		}
		defer pf.Close()
		c, err := readProfileFile(context.Background(), pf, 0, widths{D: 2, Q: q}, synth.AsOf, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		var got profile.Reason
		if len(c.rejects) == 1 {
			got = c.rejects[0].Reason
		}
		if want := reference.Reason(m, 2, q, synth.AsOf); got != want {
			t.Fatalf("%s: reader says %q, reference %q for %+v", form, got, want, m)
		}
	})
}
