package pipeline

import (
	"fmt"
	"strconv"
)

// ShardSpec names one part of a run spread over Count processes.
type ShardSpec struct {
	Index int `json:"index"`
	Count int `json:"count"`
}

// ShardOf returns the shard, of n, that member id belongs to: a fixed,
// seedless mix of the id (the SplitMix64 finalizer) modulo n, so that the
// same id lands in the same shard on every machine, every night.
func ShardOf(id int64, n int) int {
	x := uint64(id)
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return int(x % uint64(n))
}

// shardEnv are the environment variables array schedulers set, as (index,
// count) pairs; a Kubernetes Indexed Job sets only the index, the count
// comes from --shard-count.
var shardEnv = [][2]string{
	{"JOB_COMPLETION_INDEX", ""},
	{"AWS_BATCH_JOB_ARRAY_INDEX", "AWS_BATCH_JOB_ARRAY_SIZE"},
	{"CLOUD_RUN_TASK_INDEX", "CLOUD_RUN_TASK_COUNT"},
}

// ResolveShard decides the shard of this process: the flags when set
// (index -1 and count 0 mean unset), else the first scheduler variable
// present in getenv. No shard at all is the zero ShardSpec (a whole run).
func ResolveShard(index, count int, getenv func(string) string) (ShardSpec, error) {
	if index < 0 {
		for _, e := range shardEnv {
			v := getenv(e[0])
			if v == "" {
				continue
			}
			i, err := strconv.Atoi(v)
			if err != nil {
				return ShardSpec{}, usageErrorf("%s=%q is not a shard index", e[0], v)
			}
			index = i
			if count == 0 && e[1] != "" {
				if c := getenv(e[1]); c != "" {
					if count, err = strconv.Atoi(c); err != nil {
						return ShardSpec{}, usageErrorf("%s=%q is not a shard count", e[1], c)
					}
				}
			}
			break
		}
	}
	switch {
	case index < 0 && count == 0:
		return ShardSpec{}, nil
	case index < 0:
		return ShardSpec{}, usageErrorf("--shard-count %d without a shard index (--shard-index or a scheduler's index variable)", count)
	case count < 1:
		return ShardSpec{}, usageErrorf("shard index %d without a shard count (--shard-count)", index)
	case index >= count:
		return ShardSpec{}, usageErrorf("shard index %d is not below the shard count %d", index, count)
	}
	return ShardSpec{Index: index, Count: count}, nil
}

func (s ShardSpec) String() string { return fmt.Sprintf("%d-of-%d", s.Index, s.Count) }
