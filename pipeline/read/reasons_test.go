package read

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/osmosis/batchmatch/pipeline/failure"
	"github.com/osmosis/batchmatch/pipeline/synth"
)

// TestRejectRatioMessage: the exit-65 message lists the rejects as sorted
// reason=count pairs, never a Go map.
func TestRejectRatioMessage(t *testing.T) {
	for _, tc := range []struct {
		by   map[string]int64
		want string
	}{
		{nil, ""},
		{map[string]int64{"trait_nan": 2}, "trait_nan=2"},
		{map[string]int64{"trait_nan": 2, "birth_date_after_as_of": 1, "null_user_id": 30}, "birth_date_after_as_of=1, null_user_id=30, trait_nan=2"},
	} {
		if got := reasonCounts(tc.by); got != tc.want {
			t.Errorf("reasonCounts(%v) = %q, want %q", tc.by, got, tc.want)
		}
	}

	dir := t.TempDir()
	k := synth.DefaultKnobs(400)
	k.Invalid = 0.1
	synth.MustWriteProfiles(t, filepath.Join(dir, "profiles"), synth.Random(3, k), 8, 4, 2, synth.ArrowVariable)
	cfg := baseConfig(dir)
	cfg.MaxRejectRatio = 0
	L, err := Load(context.Background(), cfg, discard, nil)
	if !errors.Is(err, failure.BadData) || L == nil {
		t.Fatalf("got %v, want a reject-ratio failure", err)
	}
	var pairs []string
	for _, r := range slices.Sorted(maps.Keys(L.Counts.QuarantinedByReason)) {
		pairs = append(pairs, fmt.Sprintf("%s=%d", r, L.Counts.QuarantinedByReason[r]))
	}
	if len(pairs) < 2 || strings.Contains(err.Error(), "map[") || !strings.HasSuffix(err.Error(), "by reason: "+strings.Join(pairs, ", ")) {
		t.Errorf("message %q does not end with the sorted reason=count list %v", err, pairs)
	}
}
