package main

import (
	"testing"

	"github.com/osmosis/batchmatch/pipeline/match"
)

func TestResolveShard(t *testing.T) {
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	for _, c := range []struct {
		index, count int
		env          func(string) string
		want         match.ShardSpec
		err          bool
	}{
		{-1, 0, env(), match.ShardSpec{}, false},
		{2, 5, env(), match.ShardSpec{Index: 2, Count: 5}, false},
		{-1, 4, env("JOB_COMPLETION_INDEX", "3"), match.ShardSpec{Index: 3, Count: 4}, false},
		{-1, 0, env("AWS_BATCH_JOB_ARRAY_INDEX", "1", "AWS_BATCH_JOB_ARRAY_SIZE", "6"), match.ShardSpec{Index: 1, Count: 6}, false},
		{-1, 0, env("CLOUD_RUN_TASK_INDEX", "0", "CLOUD_RUN_TASK_COUNT", "2"), match.ShardSpec{Index: 0, Count: 2}, false},
		{1, 3, env("JOB_COMPLETION_INDEX", "2"), match.ShardSpec{Index: 1, Count: 3}, false}, // flags win
		{-1, 0, env("JOB_COMPLETION_INDEX", "3"), match.ShardSpec{}, true},                   // Kubernetes gives no count
		{-1, 4, env("JOB_COMPLETION_INDEX", "x"), match.ShardSpec{}, true},
		{4, 4, env(), match.ShardSpec{}, true},
		{-1, 3, env(), match.ShardSpec{}, true},
	} {
		got, err := ResolveShard(c.index, c.count, c.env)
		if (err != nil) != c.err || got != c.want {
			t.Errorf("ResolveShard(%d, %d): %v, %v; want %v (error %v)", c.index, c.count, got, err, c.want, c.err)
		}
	}
}
