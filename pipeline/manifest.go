package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

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
	Config      Config    `json:"config"`
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

// Table is one published output table.
type Table struct {
	Path string `json:"path"`
	Rows int64  `json:"rows"`
}

// configHash is a SHA-256 over everything in the configuration that can
// change the tables (not workers, paths or --overwrite), with the tool and
// spec versions: equal hashes on equal inputs mean equal outputs.
func configHash(c Config, d read.Dims, keyID string) string {
	h := sha256.New()
	fmt.Fprintf(h, "batchmatch %s spec %s\nk=%d as_of=%s weights=%v max_reject_ratio=%v D=%d Q=%d pseudonym_key=%s\n",
		Version, SpecVersion, c.K, c.AsOfDate, c.Weights, c.MaxRejectRatio, d.D, d.Q, keyID)
	return hex.EncodeToString(h.Sum(nil))
}

func (m *Manifest) encode() ([]byte, error) {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
