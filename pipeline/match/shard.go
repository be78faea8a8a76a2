package match

import "fmt"

// ShardSpec names one part of a run spread over Count processes.
type ShardSpec struct {
	Index int `json:"index"`
	Count int `json:"count"`
}

// ShardOf returns the shard, of n, that key belongs to: a fixed, seedless
// mix of the key (the SplitMix64 finalizer) modulo n, the same on every
// machine. Shards own scoring tasks by tile number (Scorer.Shard).
func ShardOf(key int64, n int) int {
	x := uint64(key)
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return int(x % uint64(n))
}

// String names the shard as "index-of-count".
func (s ShardSpec) String() string { return fmt.Sprintf("%d-of-%d", s.Index, s.Count) }
