package publish

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"os"
	"slices"

	"github.com/osmosis/batchmatch/pipeline/failure"
)

// Pseudonymizer rewrites member ids as HMAC-SHA256(key, id) truncated to a
// non-negative int64, for exports to teams that must not see internal ids.
// It is not safe for concurrent use.
type Pseudonymizer struct {
	mac   hash.Hash
	buf   [8]byte
	sum   []byte
	keyID string
}

// minKeyBytes is the shortest key accepted (128 bits).
const minKeyBytes = 16

// LoadPseudonymizer reads a key file. The key id recorded in the manifest is
// a hash of the key under a fixed label, never the key.
func LoadPseudonymizer(path string) (*Pseudonymizer, error) {
	key, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: --pseudonymize-key: %w", failure.NoInput, err)
	}
	if len(key) < minKeyBytes {
		return nil, failure.Usagef("--pseudonymize-key: the key has %d bytes, want at least %d", len(key), minKeyBytes)
	}
	id := sha256.Sum256(append([]byte("batchmatch pseudonymization key id\x00"), key...))
	return &Pseudonymizer{mac: hmac.New(sha256.New, key), keyID: hex.EncodeToString(id[:8])}, nil
}

// KeyID identifies the key (a hash of it under a fixed label): what the
// manifest and the footers record, never the key.
func (p *Pseudonymizer) KeyID() string { return p.keyID }

// id returns the pseudonym of a member id.
func (p *Pseudonymizer) id(v int64) int64 {
	p.mac.Reset()
	binary.LittleEndian.PutUint64(p.buf[:], uint64(v))
	p.mac.Write(p.buf[:])
	p.sum = p.mac.Sum(p.sum[:0])
	return int64(binary.BigEndian.Uint64(p.sum) >> 1)
}

// mapPopulation returns the pseudonym of every member, failing on a
// collision (about 1 in 10^7 for a million members with a 63-bit range).
func (p *Pseudonymizer) mapPopulation(ids []int64) ([]int64, error) {
	out := make([]int64, len(ids))
	for i, v := range ids {
		out[i] = p.id(v)
	}
	sorted := slices.Clone(out)
	slices.Sort(sorted)
	for i := 1; i < len(sorted); i++ {
		if sorted[i] == sorted[i-1] {
			return nil, fmt.Errorf("pseudonym collision under key %s: choose another key", p.keyID)
		}
	}
	return out, nil
}

// ID returns the pseudonym of a member id.
func (p *Pseudonymizer) ID(v int64) int64 { return p.id(v) }

// IDs returns the pseudonym of every id, failing on a collision.
func (p *Pseudonymizer) IDs(ids []int64) ([]int64, error) { return p.mapPopulation(ids) }

// DigestSalt is what member digests (read.Population.Digests) are salted
// with in a pseudonymized export: a MAC of a fixed label under the key, so
// that the state table of an export cannot be joined with an internal
// one's to map pseudonyms back to ids.
func (p *Pseudonymizer) DigestSalt() []byte {
	p.mac.Reset()
	p.mac.Write([]byte("batchmatch member digest"))
	return p.mac.Sum(nil)
}
