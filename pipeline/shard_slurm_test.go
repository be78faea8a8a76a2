package pipeline

import "testing"

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
		want         ShardSpec
		err          bool
	}{
		{-1, 0, "0", "4", ShardSpec{0, 4}, false},
		{-1, 0, "3", "4", ShardSpec{3, 4}, false},
		{-1, 4, "2", "", ShardSpec{2, 4}, false},  // count from the flag
		{-1, 8, "2", "4", ShardSpec{2, 8}, false}, // the flag's count wins
		{1, 4, "3", "4", ShardSpec{1, 4}, false},  // the flag's index wins
		{-1, 0, "4", "4", ShardSpec{}, true},      // --array=1-4: the last task fails
		{-1, 0, "2", "", ShardSpec{}, true},       // no count at all
		{-1, 0, "two", "4", ShardSpec{}, true},    // not a number
		{-1, 0, "1", "many", ShardSpec{}, true},   // not a number
		{-1, 0, "", "", ShardSpec{}, false},       // not a Slurm array: a whole run
	} {
		got, err := ResolveShard(c.index, c.count, env(c.id, c.n))
		if (err != nil) != c.err || got != c.want {
			t.Errorf("ResolveShard(%d, %d) with SLURM_ARRAY_TASK_ID=%q SLURM_ARRAY_TASK_COUNT=%q: %v, %v; want %v (error %v)",
				c.index, c.count, c.id, c.n, got, err, c.want, c.err)
		}
	}
}
