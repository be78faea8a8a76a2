package main

import (
	"os"
	"strconv"

	"github.com/spf13/pflag"

	"github.com/osmosis/batchmatch/pipeline/failure"
	"github.com/osmosis/batchmatch/pipeline/match"
)

// The shard of a sharded run this process is: flags, or the index and count
// variables of the schedulers that start shards as array tasks.

// shardEnv are the environment variables array schedulers set, as (index,
// count) pairs; a Kubernetes Indexed Job sets only the index, the count
// comes from --shard-count. A Slurm array must be numbered 0..N-1
// (--array=0-N-1): the task id is the index.
var shardEnv = [][2]string{
	{"JOB_COMPLETION_INDEX", ""},
	{"AWS_BATCH_JOB_ARRAY_INDEX", "AWS_BATCH_JOB_ARRAY_SIZE"},
	{"CLOUD_RUN_TASK_INDEX", "CLOUD_RUN_TASK_COUNT"},
	{"SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT"},
}

// ResolveShard decides the shard of this process: the flags when set
// (index -1 and count 0 mean unset), else the first scheduler variable
// present in getenv. No shard at all is the zero match.ShardSpec (a whole run).
func ResolveShard(index, count int, getenv func(string) string) (match.ShardSpec, error) {
	if index < 0 {
		for _, e := range shardEnv {
			v := getenv(e[0])
			if v == "" {
				continue
			}
			i, err := strconv.Atoi(v)
			if err != nil {
				return match.ShardSpec{}, failure.Usagef("%s=%q is not a shard index", e[0], v)
			}
			index = i
			if count == 0 && e[1] != "" {
				if c := getenv(e[1]); c != "" {
					if count, err = strconv.Atoi(c); err != nil {
						return match.ShardSpec{}, failure.Usagef("%s=%q is not a shard count", e[1], c)
					}
				}
			}
			break
		}
	}
	switch {
	case index < 0 && count == 0:
		return match.ShardSpec{}, nil
	case index < 0:
		return match.ShardSpec{}, failure.Usagef("--shard-count %d without a shard index (--shard-index or a scheduler's index variable)", count)
	case count < 1:
		return match.ShardSpec{}, failure.Usagef("shard index %d without a shard count (--shard-count)", index)
	case index >= count:
		return match.ShardSpec{}, failure.Usagef("shard index %d is not below the shard count %d", index, count)
	}
	return match.ShardSpec{Index: index, Count: count}, nil
}

// ShardOptions are the flags that make `batchmatch run` one shard of a
// sharded run.
type ShardOptions struct {
	Index, Count int
}

// AddFlags registers the shard flags.
func (o *ShardOptions) AddFlags(fs *pflag.FlagSet) {
	// No backticks in these texts: pflag takes a back-quoted word for the
	// value's name.
	fs.IntVar(&o.Index, "shard-index", -1, "run only this shard's scoring tasks (those whose blocking tile hashes to the index, 0 to N-1) and write its part for \"batchmatch commit\" "+
		"instead of publishing (default: $JOB_COMPLETION_INDEX, $AWS_BATCH_JOB_ARRAY_INDEX, $CLOUD_RUN_TASK_INDEX or $SLURM_ARRAY_TASK_ID; -1: none)")
	fs.IntVar(&o.Count, "shard-count", 0, "number of shards N the run's tasks are split over (default: $AWS_BATCH_JOB_ARRAY_SIZE, $CLOUD_RUN_TASK_COUNT or $SLURM_ARRAY_TASK_COUNT; required with $JOB_COMPLETION_INDEX)")
}

// Resolve applies the flags, falling back to the scheduler's variables.
func (o *ShardOptions) Resolve() (match.ShardSpec, error) {
	return ResolveShard(o.Index, o.Count, os.Getenv)
}
