package pipeline

import (
	"context"
	"time"

	"github.com/osmosis/batchmatch/pipeline/match"
	"github.com/osmosis/batchmatch/pipeline/publish"
)

// RunShard runs one shard of a run spread over cfg.Shard.Count processes:
// it reads the whole population (any task may need any member), scores
// the tasks of its shard (match.Scorer.Shard: each unordered pair once
// over all shards) and writes every member's partial top K as its part,
// renamed into place when complete (and then uploaded, on object storage).
// It takes no lock and publishes nothing: Commit does, from the parts.
func RunShard(ctx context.Context, cfg Config, env Env) (res *Result, err error) {
	log := env.logger()
	if err := setupStore(log); err != nil {
		return nil, err
	}
	t, err := publish.OpenTarget(ctx, publish.TargetConfig{Out: cfg.Out, Partition: cfg.partition(), SpoolDir: cfg.SpoolDir}, log, env.Hooks)
	if err != nil {
		return nil, err
	}
	defer t.Close()
	j := newJob(env, log)
	m := j.m
	m.AsOf, m.Config = cfg.asOfDate(), cfg.record(t)
	defer func() {
		if err != nil {
			res = j.failed()
		}
	}()
	// The pseudonym key is checked (and its id recorded) here too: a bad
	// key fails every shard, not only the commit.
	_, sampleMemory, err := j.prepare(ctx, cfg)
	defer sampleMemory()
	if err != nil {
		return nil, err
	}
	j.log = j.log.With("shard", cfg.Shard.String())

	L, err := j.read(ctx, cfg)
	if err != nil {
		return nil, err
	}
	pop := L.Pop
	j.identify(pop, "") // the shard run id: every shard and the commit agree on it
	sc := &match.Scorer{P: pop, W: cfg.Weights, NoBlocking: cfg.NoBlocking, Shard: cfg.Shard, ReleaseColumns: true}
	lists, err := j.score(ctx, sc, cfg.K, cfg.Workers)
	if err != nil {
		return nil, err
	}

	j.tm.begin(stageWritePart)
	pw, err := t.CreatePart(cfg.Shard, m.AttemptID)
	if err != nil {
		return nil, err
	}
	defer pw.Close()
	if err := pw.WriteRows(m.RunID, pop.ID, lists); err != nil {
		return nil, err
	}
	j.finish()
	dir, err := pw.Finish(m)
	if err != nil {
		return nil, err
	}
	part := pw.Part()
	j.log.Info("shard part written", "dir", dir, "members", part.Members, "rows", part.Rows,
		"pairs_examined", m.Counts.PairsExamined, "elapsed_seconds", time.Since(j.started).Round(time.Millisecond).Seconds())
	pw.Close()
	where, err := t.UploadPart(ctx, dir)
	if err != nil {
		return nil, err
	}
	return j.result(where, false), nil
}
