package pipeline

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/osmosis/batchmatch/pipeline/failure"
	"github.com/osmosis/batchmatch/pipeline/internal/reference"
	"github.com/osmosis/batchmatch/pipeline/synth"
)

// FuzzReadProfiles feeds arbitrary bytes to the profile reader as a Parquet
// shard. Whatever the bytes, the reader must not crash: it returns a chunk in
// which every row is accounted for (valid or rejected) and every valid row
// satisfies the spec's ranges, or an failure.BadData naming the file.
func FuzzReadProfiles(f *testing.F) {
	dir := f.TempDir()
	for i, form := range []synth.Form{synth.ArrowFixed, synth.ArrowVariable, synth.ParquetGo} {
		k := synth.DefaultKnobs(12)
		k.Invalid = 0.3
		ms := synth.Random(uint64(i), k)
		if !form.CanHold(ms, k.D, k.Q) {
			ms = synth.Random(uint64(i), synth.DefaultKnobs(12))
		}
		p := synth.MustWriteProfiles(f, filepath.Join(dir, form.String()), ms, k.D, k.Q, 1, form)[0]
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)-9]) // footer length and magic cut
	}
	f.Add([]byte("PAR1PAR1"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<16 {
			return
		}
		if p := os.Getenv("FUZZ_WATCHDOG"); p != "" { // diagnosis: dump stacks and the input of any exec over 5 s
			done := make(chan struct{})
			defer close(done)
			go func() {
				select {
				case <-done:
				case <-time.After(5 * time.Second):
					buf := make([]byte, 1<<22)
					os.WriteFile(p+".stack", buf[:runtime.Stack(buf, true)], 0o600)
					os.WriteFile(p+".input", data, 0o600)
				}
			}()
		}
		path := filepath.Join(t.TempDir(), "fuzz.parquet")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		c, d, err := readOne(path)
		if err != nil {
			if !errors.Is(err, failure.BadData) || !bytes.Contains([]byte(err.Error()), []byte(path)) {
				t.Fatalf("error is not a bad-data error naming the file: %v", err)
			}
			return
		}
		if int64(c.valid()+len(c.rejects)) != c.read {
			t.Fatalf("%d valid + %d rejected != %d read", c.valid(), len(c.rejects), c.read)
		}
		for i := range c.id {
			if c.gender[i] > 2 || c.seeking[i] == 0 || c.seeking[i] > 7 || c.ageMin[i] > c.ageMax[i] ||
				!(c.maxKm[i] > 0) || c.lat[i] < -90 || c.lat[i] > 90 || c.lon[i] < -180 || c.lon[i] > 180 {
				t.Fatalf("row %d passed validation with out-of-range values", c.rows[i])
			}
			for _, b := range c.ans[i*d.Q : (i+1)*d.Q] {
				if b > 8 {
					t.Fatalf("answer %d passed validation", b)
				}
			}
			for _, b := range c.imp[i*d.Q : (i+1)*d.Q] {
				if b > 4 {
					t.Fatalf("importance %d passed validation", b)
				}
			}
		}
	})
}

// readOne opens, checks and reads one profile file as Load does.
func readOne(path string) (*chunk, dims, error) {
	mem := memory.NewGoAllocator()
	pf, err := openParquet(context.Background(), path, mem)
	if err != nil {
		return nil, dims{}, err
	}
	defer pf.Close()
	fixed, err := checkProfileSchema(pf)
	if err != nil {
		return nil, dims{}, err
	}
	d, _, err := resolveDims(context.Background(), []*parquetFile{pf}, []dims{fixed}, Config{}, nil)
	if err != nil {
		return nil, d, err
	}
	if d.D > 1<<12 || d.Q > 1<<12 {
		return nil, d, errors.Join(failure.BadData, errors.New(path+": implausible width"))
	}
	c, err := readProfileFile(context.Background(), pf, 0, d, synth.AsOf, nil)
	return c, d, err
}

// TestCorruptArrowSchemaIsBounded replays the fuzz inputs whose footers
// made arrow-go allocate 22 GB (vector length) and 32 GB (message body
// length, a fatal out-of-memory): they must now fail as bad data,
// allocating little.
func TestCorruptArrowSchemaIsBounded(t *testing.T) {
	for _, seed := range []string{"arrow-schema-alloc-bomb", "arrow-schema-body-length-bomb"} {
		t.Run(seed, func(t *testing.T) { replayBounded(t, "testdata/fuzz/FuzzReadProfiles/"+seed) })
	}
}

func replayBounded(t *testing.T, seed string) {
	raw, err := os.ReadFile(seed)
	if err != nil {
		t.Fatal(err)
	}
	s := string(raw)
	q, err := strconv.Unquote(s[strings.Index(s, "[]byte(")+len("[]byte(") : strings.LastIndex(s, ")")])
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "bomb.parquet")
	os.WriteFile(path, []byte(q), 0o600)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, _, err = readOne(path)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, failure.BadData) || !strings.Contains(err.Error(), "ARROW:schema") {
		t.Fatalf("got %v, want a corrupt ARROW:schema error", err)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 64<<20 {
		t.Fatalf("rejecting a %d-byte file allocated %d MiB", len(q), n>>20)
	}
}

// FuzzValidateRow writes one profile row of arbitrary values and checks the
// reader's verdict against the reference validation (ref_test.go): the same
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
		c, err := readProfileFile(context.Background(), pf, 0, dims{D: 2, Q: q}, synth.AsOf, nil)
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		if len(c.rejects) == 1 {
			got = c.rejects[0].Reason
		}
		if want := string(reference.Reason(m, 2, q, synth.AsOf)); got != want {
			t.Fatalf("%s: reader says %q, reference %q for %+v", form, got, want, m)
		}
	})
}
