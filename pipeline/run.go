package pipeline

import (
	"context"
	"fmt"

	"github.com/osmosis/batchmatch/pipeline/failure"
	"github.com/osmosis/batchmatch/pipeline/match"
	"github.com/osmosis/batchmatch/pipeline/publish"
)

// Run executes a whole run: read and validate the inputs, block and score,
// assign soulmates, write the tables, the manifest (and the report) to a
// staging area and publish them in one step, to the target --out names (a
// directory, or an object store through a local spool). A configuration of
// several shards is RunShard's. A partition already published by the same
// run id is left as it is (Result.AlreadyPublished); one of another run id
// is failure.Exists without cfg.Overwrite.
//
// On failure it returns the error with a Result whose Manifest holds what
// was counted so far (for metrics), or none when the target could not even
// be opened.
func Run(ctx context.Context, cfg Config, env Env) (res *Result, err error) {
	if cfg.Shard.Count > 1 {
		return RunShard(ctx, cfg, env)
	}
	log := env.logger()
	if err := setupStore(log); err != nil {
		return nil, err
	}
	t, err := publish.OpenTarget(ctx, publish.TargetConfig{Out: cfg.Out, Partition: cfg.partition(), SpoolDir: cfg.SpoolDir, Published: true}, log, env.Hooks)
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
	pz, sampleMemory, err := j.prepare(ctx, cfg)
	defer sampleMemory()
	if err != nil {
		return nil, err
	}
	st, err := t.Lock(m.AttemptID, false)
	if err != nil {
		return nil, err
	}
	defer st.Close()

	L, err := j.read(ctx, cfg)
	if err != nil {
		return nil, err
	}
	pop := L.Pop
	j.identify(pop, m.PseudonymKeyID)
	j.log.Info("population fingerprinted", "run_id", m.RunID)
	if pub := st.Published(); pub != nil {
		switch {
		case pub.RunID() == m.RunID && !pub.Intact():
			// Published by this run, but files _SUCCESS lists are gone:
			// not done. Publish again (a repair), --overwrite or not.
			j.log.Warn("the partition is published by this run, but files its _SUCCESS lists are missing: publishing it again",
				"partition", st.Location(), "run_id", m.RunID, "missing", pub.Missing())
		case cfg.Overwrite:
		case pub.RunID() != m.RunID:
			return nil, fmt.Errorf("%w: %s is already published by run %s, and this run's inputs and settings give run %s: pass --overwrite to replace it",
				failure.Exists, st.Location(), pub.RunID(), m.RunID)
		default:
			// A re-run of the same night (a retry after a crash or a lost
			// exit status): the published tables are the ones this run
			// would write, byte for byte.
			j.log.Info("already published by this run: nothing to do", "partition", st.Location(), "run_id", m.RunID)
			j.alreadyPublished(pub.Manifest())
			st.Close()
			t.SweepParts(ctx, "")
			return j.result(st.Location(), true), nil
		}
	}

	out, err := newOutIDs(pop, pz)
	if err != nil {
		return nil, err
	}
	digests := pop.Digests(digestSalt(pz), cfg.Workers)
	sc := &match.Scorer{P: pop, W: cfg.Weights, NoBlocking: cfg.NoBlocking, ReleaseColumns: true}
	prev, lists, err := j.lists(ctx, cfg, sc, out, digests)
	if err != nil {
		return nil, err
	}
	souls, err := j.assign(ctx, pop, lists, cfg.Workers)
	if err != nil {
		return nil, err
	}
	if err := j.nightStats(ctx, sc, L, prev, out, lists, souls, cfg.K, cfg.Workers); err != nil {
		return nil, err
	}
	dir, err := j.publish(ctx, cfg, st, publish.Tables{Pop: pop, Scorer: sc, Lists: lists, Souls: souls, Rejects: L.Rejects, Pseudonyms: pz, Digests: digests})
	if err != nil {
		return nil, err
	}
	st.Close()
	already, err := t.Push(ctx, dir, cfg.Overwrite, m.RunID)
	if err != nil {
		return nil, err
	}
	t.SweepParts(ctx, "")
	return j.result(t.Location(dir), already), nil
}
