// Package publish is the last stage of a run: it writes the tables (matches,
// soulmates, rejects; pseudonymized on request), the manifest and its
// coverage aggregates, and publishes them all or nothing, by the local
// commit protocol (commit.go, outfs.go: lock, staging area, one atomic
// rename or exchange) or, for an object-store --out, through a local spool
// then a conditional _SUCCESS (remote.go). It also writes and gathers the
// parts of sharded runs (parts.go, partsready.go). Target is where a run
// publishes, decided once from --out.
package publish

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/osmosis/batchmatch/pipeline/match"
	"github.com/osmosis/batchmatch/pipeline/read"
)

// Manifest describes one run: what it read, how it was configured, what it
// counted at every stage and how long each stage took. It holds no member data.
type Manifest struct {
	Tool        string    `json:"tool"`
	Version     string    `json:"version"`
	SpecVersion string    `json:"spec_version"`
	RunID       string    `json:"run_id"`     // content id: config hash + population fingerprint
	AttemptID   string    `json:"attempt_id"` // this process's attempt (staging area, _SUCCESS)
	AsOf        string    `json:"as_of"`
	StartedAt   time.Time `json:"started_at"`
	FinishedAt  time.Time `json:"finished_at"`
	Config      RunConfig `json:"config"`
	ConfigHash  string    `json:"config_hash"`
	// PseudonymKeyID identifies the key ids were pseudonymized with; empty
	// when the tables carry internal ids.
	PseudonymKeyID string           `json:"pseudonym_key_id,omitempty"`
	Dims           read.Dims        `json:"dims"`
	Inputs         read.Inputs      `json:"inputs"`
	Counts         Counts           `json:"counts"`
	Outputs        map[string]Table `json:"outputs,omitempty"`
	Coverage       *Coverage        `json:"coverage,omitempty"`
	Memory         MemoryStats      `json:"memory"`
	TimingsMs      map[string]int64 `json:"timings_ms"`
	// Parts are the shard parts a commit gathered (sharded runs only).
	Parts []PartRef `json:"parts,omitempty"`
	// ShardRunID is the run id the parts carry (sharded runs only): parts
	// left with it are known to be consumed.
	ShardRunID string `json:"shard_run_id,omitempty"`
	// ScoringVersion is match.ScoringVersion of the build that scored:
	// an incremental run trusts the scores of a night with its own.
	ScoringVersion int `json:"scoring_version"`
	// Night says how the lists were computed: a full run, or an
	// incremental one from an earlier night (and why not, when asked).
	Night *NightInfo `json:"night,omitempty"`
	// Churn compares tonight's lists and soulmates with the previous
	// published night's.
	Churn *Churn `json:"churn,omitempty"`
	// Stability is the certificate of the soulmate assignment against
	// every compatible pair of the population.
	Stability *match.Certificate `json:"stability,omitempty"`
}

// NightInfo is how a night's lists were computed (the manifest's "night").
type NightInfo struct {
	// Mode is "full" or "incremental".
	Mode string `json:"mode"`
	// IncrementalRequested: the run was asked for --incremental.
	IncrementalRequested bool `json:"incremental_requested"`
	// FullReason is why a run asked for --incremental ran in full.
	FullReason string `json:"full_reason,omitempty"`
	// From is the partition an incremental run started from, its run id
	// and as-of date.
	From      string `json:"from,omitempty"`
	FromRunID string `json:"from_run_id,omitempty"`
	FromAsOf  string `json:"from_as_of,omitempty"`
	// MembersRescored were scored against everyone (changed + repaired).
	MembersRescored int64 `json:"members_rescored"`
	// MembersGone were in the previous night's state and are not eligible
	// tonight.
	MembersGone int64 `json:"members_gone,omitempty"`
	match.IncrementalStats
}

// Counts are the row and pair counts of every stage: reading and
// validation's, then scoring's and the outputs'.
type Counts struct {
	read.Counts
	PairsExamined          int64 `json:"pairs_examined"`
	PairsCompatible        int64 `json:"pairs_compatible"`
	Matches                int64 `json:"matches"`
	MutualMatches          int64 `json:"mutual_matches"`
	Soulmates              int64 `json:"soulmates"`
	MembersWithoutMatch    int64 `json:"members_without_match"`
	MembersWithoutSoulmate int64 `json:"members_without_soulmate"`
}

// MemoryStats are the run's memory limit and peaks.
type MemoryStats struct {
	LimitBytes    int64  `json:"limit_bytes"`     // Go soft memory limit in force (0: none)
	PeakHeapBytes uint64 `json:"peak_heap_bytes"` // live heap, sampled every 250 ms while scoring and at stage ends
	PeakRSSBytes  int64  `json:"peak_rss_bytes"`  // getrusage maximum resident set size
}

// Table is one published output table: where it is in the partition, its
// rows, and its size and SHA-256 as written (an incremental run checks the
// previous night's tables against them).
type Table struct {
	Path   string `json:"path"`
	Rows   int64  `json:"rows"`
	Bytes  int64  `json:"bytes,omitempty"`
	SHA256 string `json:"sha256,omitempty"`
}

// RunConfig is the configuration a run was computed with, as the manifest
// records it ("config"): what the user asked for, with the output's local
// root (the spool directory of an object-store run, whose URL is
// RemoteOut). A commit rebuilds the run's configuration from the record its
// shards wrote.
type RunConfig struct {
	Profiles       []string        `json:"profiles"`
	Out            string          `json:"out"`
	K              int             `json:"k"`
	AsOf           string          `json:"as_of"`
	Weights        match.Weights   `json:"weights"`
	Blocks         []string        `json:"blocks,omitempty"`
	Suppress       []string        `json:"suppress,omitempty"`
	Workers        int             `json:"workers"`
	MaxRejectRatio float64         `json:"max_reject_ratio"`
	TraitDim       int             `json:"trait_dim_flag,omitempty"`
	Questions      int             `json:"questions_flag,omitempty"`
	Overwrite      bool            `json:"overwrite"`
	Partition      string          `json:"partition"`
	Report         bool            `json:"report"`
	NoBlocking     bool            `json:"no_blocking,omitempty"` // --blocking=false
	MemoryLimit    int64           `json:"memory_limit_bytes,omitempty"`
	Shard          match.ShardSpec `json:"shard,omitzero"` // not in the configuration hash: every shard shares it
	RemoteOut      string          `json:"remote_out,omitempty"`
}

// SameInputs reports whether two runs read the same inputs the same way
// (so that one read serves both).
func SameInputs(a, b RunConfig) bool {
	return slices.Equal(a.Profiles, b.Profiles) && slices.Equal(a.Blocks, b.Blocks) && slices.Equal(a.Suppress, b.Suppress) &&
		a.AsOf == b.AsOf && a.MaxRejectRatio == b.MaxRejectRatio && a.TraitDim == b.TraitDim && a.Questions == b.Questions
}

// ConfigHash is a SHA-256 over everything in the configuration that can
// change the tables (not workers, paths or --overwrite), with the tool and
// spec versions and the pseudonym key's id: equal hashes on equal inputs
// mean equal outputs.
func ConfigHash(c RunConfig, d read.Dims, keyID string) string {
	h := sha256.New()
	fmt.Fprintf(h, "batchmatch %s spec %s\nk=%d as_of=%s weights=%v max_reject_ratio=%v D=%d Q=%d pseudonym_key=%s\n",
		Version, SpecVersion, c.K, c.AsOf, c.Weights, c.MaxRejectRatio, d.D, d.Q, keyID)
	return hex.EncodeToString(h.Sum(nil))
}

// RunID is a run's content id: a hash of its configuration hash and of the
// population's fingerprint (read.Population.Fingerprint), the same for
// every run that computes the same tables, however its input was sharded.
func RunID(configHash, fingerprint string) string {
	id := sha256.Sum256([]byte(configHash + fingerprint))
	return hex.EncodeToString(id[:16])
}

// Encode is the manifest as written: indented JSON and a newline.
func (m *Manifest) Encode() ([]byte, error) {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
