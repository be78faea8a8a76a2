package read

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/osmosis/batchmatch/pipeline/failure"
	"github.com/osmosis/batchmatch/pipeline/internal/reference"
	"github.com/osmosis/batchmatch/pipeline/profile"
	"github.com/osmosis/batchmatch/pipeline/synth"
)

// TestModifiedInPlace: a local input modified in place while it is read
// (same inode) fails with failure.IO (retry) naming the file: its hash and its
// rows could describe different bytes.
func TestModifiedInPlace(t *testing.T) {
	dir := t.TempDir()
	p := synth.MustWriteProfiles(t, filepath.Join(dir, "p"), synth.Random(1, synth.DefaultKnobs(30)), 16, 12, 1, synth.ArrowFixed)[0]
	pf, err := openParquet(context.Background(), p, memory.NewGoAllocator())
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	if err := pf.checkUnchanged(); err != nil {
		t.Fatalf("unchanged file: %v", err)
	}
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("12345678"), 100) // same size, same inode
	f.Close()
	// a file system with coarse timestamps could leave mtime equal within
	// its tick; move it on so the test does not depend on the tick
	later := pf.opened.ModTime().Add(time.Second)
	os.Chtimes(p, later, later)
	if err := pf.checkUnchanged(); !errors.Is(err, failure.IO) || !strings.Contains(err.Error(), p) {
		t.Fatalf("got %v, want failure.IO naming %s", err, p)
	}
}

// TestReadDeltaEncodedBinary reads byte columns in parquet-go's default
// DELTA_LENGTH_BYTE_ARRAY encoding (no allocator check: see pqgoRow).
func TestReadDeltaEncodedBinary(t *testing.T) {
	ms := synth.Random(8, synth.DefaultKnobs(30))
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "profiles"), 0o755)
	p := filepath.Join(dir, "profiles", "delta.parquet")
	synth.MustWriteParquetGo(t, p, ms) // parquet-go's default encodings
	L, err := Load(context.Background(), baseConfig(dir), discard, nil)
	if err != nil {
		t.Fatal(err)
	}
	ref := reference.Load(map[string][]synth.Member{p: ms}, nil, nil, 16, 12, synth.AsOf, reference.Weights{Trait: 0.40, Questions: 0.35, Biomarker: 0.15, Proximity: 0.10})
	if L.Pop.N != len(ref.IDs) || len(L.Rejects) != len(ref.Rejects) {
		t.Fatalf("eligible %d rejects %d, reference %d and %d", L.Pop.N, len(L.Rejects), len(ref.IDs), len(ref.Rejects))
	}
	for i, id := range ref.IDs {
		m := ref.Eligible[id].M
		ans, _, imp := L.Pop.Questionnaire(i)
		if L.Pop.ID[i] != id || !bytes.Equal(ans, m.Ans) || !bytes.Equal(imp, m.Imp) {
			t.Fatalf("member %d read back wrong", id)
		}
	}
}

// TestWriteFormsPhysicalTypes pins what each test form puts on disk, as
// arrow-go reads it, so the reader really sees every accepted form.
func TestWriteFormsPhysicalTypes(t *testing.T) {
	want := map[synth.Form][4]arrow.Type{ // user_id, trait, hla, answers
		synth.ArrowFixed:     {arrow.INT64, arrow.FIXED_SIZE_LIST, arrow.FIXED_SIZE_BINARY, arrow.FIXED_SIZE_BINARY},
		synth.ArrowVariable:  {arrow.INT64, arrow.LIST, arrow.BINARY, arrow.BINARY},
		synth.ParquetGo:      {arrow.INT64, arrow.LIST, arrow.BINARY, arrow.BINARY},
		synth.ParquetGoFixed: {arrow.UINT64, arrow.LIST, arrow.FIXED_SIZE_BINARY, arrow.FIXED_SIZE_BINARY},
	}
	for form, types := range want {
		p := synth.MustWriteProfiles(t, filepath.Join(t.TempDir(), "p"), synth.Random(1, synth.DefaultKnobs(5)), 16, 12, 1, form)[0]
		pf, err := openParquet(context.Background(), p, memory.DefaultAllocator)
		if err != nil {
			t.Fatal(err)
		}
		for i, c := range []string{profile.UserID, profile.Trait, profile.HLA, profile.Answers} {
			if got := pf.schema.Field(pf.fields[c]).Type.ID(); got != types[i] {
				t.Errorf("%s: %s is %s, want %s", form, c, got, types[i])
			}
		}
		pf.Close()
	}
}
