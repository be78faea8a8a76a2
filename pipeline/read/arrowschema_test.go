package read

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/osmosis/batchmatch/pipeline/failure"
)

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
