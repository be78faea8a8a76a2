package main

import (
	"testing"

	"github.com/osmosis/batchmatch/pipeline/match"
)

// TestResolveShardSlurm: a Slurm array task finds its shard in
// SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT; flags still win, and an
// array not numbered from 0 fails on its last task instead of writing a part
// under a wrong index.
func TestResolveShardSlurm(t *testing.T) {
	env := func(id, count string) func(string) string {
		return func(k string) string {
			switch k {
			case "SLURM_ARRAY_TASK_ID":
				return id
			case "SLURM_ARRAY_TASK_COUNT":
				return count
			}
			return ""
		}
	}
	for _, c := range []struct {
		index, count int
		id, n        string
		want         match.ShardSpec
		err          bool
	}{
		{-1, 0, "0", "4", match.ShardSpec{Index: 0, Count: 4}, false},
		{-1, 0, "3", "4", match.ShardSpec{Index: 3, Count: 4}, false},
		{-1, 4, "2", "", match.ShardSpec{Index: 2, Count: 4}, false},  // count from the flag
		{-1, 8, "2", "4", match.ShardSpec{Index: 2, Count: 8}, false}, // the flag's count wins
		{1, 4, "3", "4", match.ShardSpec{Index: 1, Count: 4}, false},  // the flag's index wins
		{-1, 0, "4", "4", match.ShardSpec{}, true},                    // --array=1-4: the last task fails
		{-1, 0, "2", "", match.ShardSpec{}, true},                     // no count at all
		{-1, 0, "two", "4", match.ShardSpec{}, true},                  // not a number
		{-1, 0, "1", "many", match.ShardSpec{}, true},                 // not a number
		{-1, 0, "", "", match.ShardSpec{}, false},                     // not a Slurm array: a whole run
	} {
		got, err := ResolveShard(c.index, c.count, env(c.id, c.n))
		if (err != nil) != c.err || got != c.want {
			t.Errorf("ResolveShard(%d, %d) with SLURM_ARRAY_TASK_ID=%q SLURM_ARRAY_TASK_COUNT=%q: %v, %v; want %v (error %v)",
				c.index, c.count, c.id, c.n, got, err, c.want, c.err)
		}
	}
}
