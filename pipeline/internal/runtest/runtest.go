// Package runtest is what the tests that drive whole runs share, across
// the packages whose files they test: a base configuration over synthetic
// profiles, a quiet environment, what a failed run must not leave behind,
// and the tables and partitions read back independently (the tables with
// arrow-go, the library that did not write them). Imported by tests only.
package runtest

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/osmosis/batchmatch/pipeline"
	"github.com/osmosis/batchmatch/pipeline/match"
	"github.com/osmosis/batchmatch/pipeline/publish"
	"github.com/osmosis/batchmatch/pipeline/synth"
)

// Discard is a logger that logs nothing.
var Discard = slog.New(slog.DiscardHandler)

// Quiet is the environment of a run that logs nothing.
var Quiet = pipeline.Env{Log: Discard}

// BaseConfig is a run over dir/profiles into dir/out at synth.AsOf, K = 3,
// the default weights, two workers, any share of rows quarantined.
func BaseConfig(dir string) pipeline.Config {
	return pipeline.Config{
		Profiles: []string{filepath.Join(dir, "profiles")}, Out: filepath.Join(dir, "out"),
		K: 3, AsOf: synth.AsOf, Weights: match.DefaultWeights, Workers: 2, MaxRejectRatio: 1,
	}
}

// PartitionDir is the published partition of a run at synth.AsOf under out.
func PartitionDir(out string) string { return publish.PartitionDir(out, synth.AsOf) }

// AssertNothingPublished checks that a failed run left no partition, no
// _SUCCESS and no staging area behind.
func AssertNothingPublished(t *testing.T, out string) {
	t.Helper()
	if _, err := os.Stat(PartitionDir(out)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed run published %s (stat: %v)", PartitionDir(out), err)
	}
	if _, err := os.Stat(filepath.Join(out, publish.StagingDir)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed run left its staging area behind (stat: %v)", err)
	}
}

// PartitionState reads a local partition as a reader should: _SUCCESS,
// then the files it lists (all must exist). ok is false when there is no
// published partition.
func PartitionState(t *testing.T, part string) (runID string, matches []byte, ok bool) {
	t.Helper()
	body, err := os.ReadFile(filepath.Join(part, publish.SuccessFile))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil, false
	}
	if err != nil {
		t.Fatal(err)
	}
	s := publish.ParseSuccess(body)
	if len(s.Files) == 0 {
		t.Fatalf("%s lists no files:\n%s", publish.SuccessFile, body)
	}
	for _, f := range s.Files {
		b, err := os.ReadFile(filepath.Join(part, filepath.FromSlash(f)))
		if err != nil {
			t.Fatalf("%s of run %s lists %s, which is not there: %v", publish.SuccessFile, s.RunID, f, err)
		}
		if strings.HasPrefix(f, "matches/") {
			matches = b
		}
	}
	return s.RunID, matches, true
}
