package read

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/osmosis/batchmatch/pipeline/failure"
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
func readOne(path string) (*chunk, widths, error) {
	mem := memory.NewGoAllocator()
	pf, err := openParquet(context.Background(), path, mem)
	if err != nil {
		return nil, widths{}, err
	}
	defer pf.Close()
	fixed, err := checkProfileSchema(pf)
	if err != nil {
		return nil, widths{}, err
	}
	d, _, err := resolveDims(context.Background(), []*parquetFile{pf}, []widths{fixed}, Config{}, nil)
	if err != nil {
		return nil, d, err
	}
	if d.D > 1<<12 || d.Q > 1<<12 {
		return nil, d, errors.Join(failure.BadData, errors.New(path+": implausible width"))
	}
	c, err := readProfileFile(context.Background(), pf, 0, d, synth.AsOf, nil, nil)
	return c, d, err
}
