package read

import "testing"

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
