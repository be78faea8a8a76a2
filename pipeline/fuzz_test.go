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

	"github.com/apache/arrow-go/v18/arrow/memory"
)

// FuzzReadProfiles feeds arbitrary bytes to the profile reader as a Parquet
// shard. Whatever the bytes, the reader must not crash: it returns a chunk in
// which every row is accounted for (valid or rejected) and every valid row
// satisfies the spec's ranges, or an ErrBadData naming the file.
func FuzzReadProfiles(f *testing.F) {
	dir := f.TempDir()
	for i, form := range []writeForm{formArrowFixed, formArrowVariable, formParquetGo} {
		k := defaultKnobs(12)
		k.Invalid = 0.3
		ms := genTestPop(uint64(i), k)
		if !form.canHold(ms, k.D, k.Q) {
			ms = genTestPop(uint64(i), defaultKnobs(12))
		}
		p := writeProfiles(f, filepath.Join(dir, form.String()), ms, k.D, k.Q, 1, form)[0]
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
		path := filepath.Join(t.TempDir(), "fuzz.parquet")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		c, d, err := readOne(path)
		if err != nil {
			if !errors.Is(err, ErrBadData) || !bytes.Contains([]byte(err.Error()), []byte(path)) {
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
	pf, err := openParquet(path, mem)
	if err != nil {
		return nil, dims{}, err
	}
	defer pf.Close()
	fixed, err := checkProfileSchema(pf)
	if err != nil {
		return nil, dims{}, err
	}
	d, _, err := resolveDims(context.Background(), []*parquetFile{pf}, []dims{fixed}, Config{})
	if err != nil {
		return nil, d, err
	}
	if d.D > 1<<12 || d.Q > 1<<12 {
		return nil, d, errors.Join(ErrBadData, errors.New(path+": implausible width"))
	}
	c, err := readProfileFile(context.Background(), pf, 0, d, testAsOf, nil)
	return c, d, err
}

// TestCorruptArrowSchemaIsBounded replays the fuzz input whose footer made
// arrow-go allocate 22 GB: it must now fail as bad data, allocating little.
func TestCorruptArrowSchemaIsBounded(t *testing.T) {
	raw, err := os.ReadFile("testdata/fuzz/FuzzReadProfiles/arrow-schema-alloc-bomb")
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
	if !errors.Is(err, ErrBadData) || !strings.Contains(err.Error(), "ARROW:schema") {
		t.Fatalf("got %v, want a corrupt ARROW:schema error", err)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 64<<20 {
		t.Fatalf("rejecting a %d-byte file allocated %d MiB", len(q), n>>20)
	}
}
