package read

import (
	"context"
	"log/slog"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/osmosis/batchmatch/pipeline/synth"
)

// TestSharedTraitsInPlace: the traits are put in order in place only while
// every file's rows still lie in its region of the shared array; a file
// that held more rows than its region grew its own array, and then the
// traits are copied (the copy path is explain's and is tested with it).
func TestSharedTraitsInPlace(t *testing.T) {
	const D = 2
	shared := &sharedTraits{rows: make([]float32, 8*D), regions: []int{0, 4, 8}}
	region := func(f int) []float32 {
		return shared.rows[shared.regions[f]*D : shared.regions[f]*D : shared.regions[f+1]*D]
	}
	c0, c1 := &chunk{trait: region(0)}, &chunk{trait: region(1)}
	c0.trait = append(c0.trait, 1, 2, 3, 4, 5, 6) // 3 rows of 4
	if !shared.inPlace([]*chunk{c0, c1}, D) {
		t.Fatal("rows within their regions (one file empty) are not in place")
	}
	c1.trait = append(c1.trait, 1, 2, 3, 4, 5, 6, 7, 8) // 4 rows of 4: full, still in place
	if !shared.inPlace([]*chunk{c0, c1}, D) {
		t.Fatal("a full region is not in place")
	}
	c1.trait = append(c1.trait, 9, 10) // a fifth row: the file outgrew its region
	if shared.inPlace([]*chunk{c0, c1}, D) {
		t.Fatal("a file that outgrew its region counted as in place")
	}
	if (*sharedTraits)(nil).inPlace([]*chunk{c0}, D) {
		t.Fatal("no shared array counted as in place")
	}
}

// TestTraitsHeldOnce: the population's traits hold no more memory than
// their rows (with room for whole tiles) when most rows are not kept (30 %
// consent): swapping them for an exact copy frees almost nothing. Sharing
// the array every file appended to would keep it all alive (7 MB here).
func TestTraitsHeldOnce(t *testing.T) {
	dir := t.TempDir()
	k := synth.DefaultKnobs(20000)
	k.D, k.ConsentP = 128, 0.3
	synth.MustWriteProfiles(t, filepath.Join(dir, "profiles"), synth.Random(3, k), k.D, k.Q, 2, synth.ArrowVariable)
	cfg := Config{Profiles: []string{filepath.Join(dir, "profiles")}, AsOf: synth.AsOf, Workers: 2, MaxRejectRatio: 1}
	L, err := Load(context.Background(), cfg, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	p := L.Pop
	exact := make([]float32, len(p.Trait), cap(p.Trait))
	copy(exact, p.Trait)
	p.Trait = exact
	runtime.GC()
	runtime.ReadMemStats(&after)
	if freed := int64(before.HeapAlloc) - int64(after.HeapAlloc); freed > 1<<20 {
		t.Errorf("%d members of %d rows: their traits (%d bytes) kept %d more bytes alive", p.N, L.Counts.RowsRead, cap(p.Trait)*4, freed)
	}
	runtime.KeepAlive(L)
}
