package pipeline

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/osmosis/batchmatch/pipeline/failure"
	"github.com/osmosis/batchmatch/pipeline/match"
	"github.com/osmosis/batchmatch/pipeline/publish"
	"github.com/osmosis/batchmatch/pipeline/store"
)

// CommitConfig is what `batchmatch commit` needs beyond the parts: where,
// for which date, and how to publish. The rest of the configuration comes
// from the parts themselves.
type CommitConfig struct {
	Out          string
	AsOf         time.Time
	Partition    string
	ShardCount   int // 0: whichever count has parts
	Overwrite    bool
	Workers      int
	Report       bool
	PseudonymKey string
	// SpoolDir is where a commit to object storage stages its work ("":
	// the system's temporary directory).
	SpoolDir string
}

// Commit gathers the parts of a sharded run, checks that they belong to one
// run over unchanged inputs, and publishes exactly what a single-machine run
// publishes: the matches with mutual flags, the soulmate assignment over the
// whole top-K graph, the rejects, the manifest and _SUCCESS. It holds the
// output lock; parts are removed once the run is published. An
// object-store --out is handled as for Run: the parts' manifests come down
// into the spool, the commit runs there (fetching the tables of the set it
// picks), the partition goes up.
func Commit(ctx context.Context, cc CommitConfig, env Env) (res *Result, err error) {
	log := env.logger()
	store.Default().SetLogger(log)
	partition := publish.PartitionOr(cc.Partition, cc.AsOf)
	t, err := publish.OpenTarget(ctx, publish.TargetConfig{Out: cc.Out, Partition: partition, SpoolDir: cc.SpoolDir, Published: true, Parts: true}, log, env.Hooks)
	if err != nil {
		return nil, err
	}
	defer t.Close()
	j := newJob(env, log)
	m := j.m
	defer func() {
		if err != nil {
			res = j.failed()
		}
	}()
	st, err := t.Lock(m.AttemptID, true)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	pub := st.Published()
	where := publish.RedactURL(st.PartsLocation())

	j.tm.begin(stageGather)
	sets, bad, err := st.GatherParts(cc.ShardCount)
	if err != nil {
		return nil, err
	}
	if pub != nil && !cc.Overwrite {
		var waiting []string
		for _, s := range sets {
			if !s.ConsumedBy(pub) {
				waiting = append(waiting, s.Describe())
			}
		}
		if len(waiting) > 0 {
			return nil, fmt.Errorf("%w: %s is already published by run %s, and parts of other runs are waiting under %s (%s): pass --overwrite to publish them instead",
				failure.Exists, publish.RedactURL(st.Location()), pub.RunID(), where, strings.Join(waiting, "; "))
		}
		// The commit already happened; what parts are left (a commit
		// killed after publishing) are its own, and dead.
		if err := st.RemoveParts(); err != nil {
			j.log.Warn("the shard parts of the published run could not be removed", "error", err)
		}
		j.log.Info("already published by this run: nothing to commit", "partition", publish.RedactURL(st.Location()), "run_id", pub.RunID())
		m.RunID, m.AsOf = pub.RunID(), cc.AsOf.Format(time.DateOnly)
		j.alreadyPublished(pub.Manifest())
		res = j.result(st.Location(), true)
		st.Close()
		t.DeleteParts(ctx)
		return res, nil
	}
	var complete []*publish.PartSet
	for _, s := range sets {
		if s.Complete() {
			complete = append(complete, s)
		}
	}
	if len(complete) == 0 {
		switch {
		case len(sets) == 0 && len(bad) > 0:
			return nil, fmt.Errorf("%w: the shard parts under %s are unreadable: %v", failure.BadData, where, bad)
		case len(sets) == 0:
			return nil, fmt.Errorf("%w: no complete shard part under %s yet", failure.NotReady, where)
		}
		return nil, fmt.Errorf("%w: no complete set of shard parts under %s: %s", failure.NotReady, where, describe(sets))
	}
	rec, cfg, err := commitConfig(cc, t, partition, complete[0].Config())
	if err != nil {
		return nil, err
	}
	m.AsOf, m.Config = rec.AsOf, rec
	pz, err := j.pseudonyms(cfg)
	if err != nil {
		return nil, err
	}
	L, err := j.read(ctx, cfg)
	if err != nil {
		return nil, err
	}
	pop := L.Pop
	fp := pop.Fingerprint()
	// The set to publish: the newest complete one over these inputs (sets
	// of other settings over the same inputs can be told apart without
	// reading the inputs again).
	var chosen *publish.PartSet
	for _, s := range complete {
		sc := s.Config()
		if !publish.SameInputs(sc, complete[0].Config()) {
			continue
		}
		if publish.RunID(publish.ConfigHash(sc, L.Dims, ""), fp) == s.RunID() {
			chosen = s
			break
		}
	}
	if chosen == nil {
		id := publish.RunID(publish.ConfigHash(rec, L.Dims, ""), fp)
		if len(complete) < len(sets) {
			// Shards of newer inputs may still be running.
			return nil, fmt.Errorf("%w: no complete set of shard parts is of the current inputs (run id %s) under %s: %s",
				failure.NotReady, id, where, describe(sets))
		}
		return nil, fmt.Errorf("%w: the profiles changed since the shards ran: they give run id %s now, and no complete set of parts under %s is of it (%s); run the shards again",
			failure.BadData, id, where, describe(sets))
	}
	if chosen != complete[0] {
		if rec, cfg, err = commitConfig(cc, t, partition, chosen.Config()); err != nil {
			return nil, err
		}
		m.Config = rec
	}
	for _, s := range complete {
		if s != chosen {
			j.log.Warn("ignoring stale shard parts of another run", "stale", s.Describe(), "using", chosen.RunID())
		}
	}
	if err := st.FetchParts(ctx, chosen); err != nil {
		return nil, err
	}
	m.ShardRunID = chosen.RunID()
	j.identify(pop, m.PseudonymKeyID)

	j.tm.begin(stageMergeParts)
	lists, used, examined, compatible, err := publish.ReadParts(chosen, pop, cfg.K)
	if err != nil {
		return nil, err
	}
	m.Counts.PairsExamined += examined
	m.Counts.PairsCompatible += compatible
	j.counted.Pairs = true
	m.Parts = append(m.Parts, used...)
	souls, err := j.assign(ctx, pop, lists, cfg.Workers)
	if err != nil {
		return nil, err
	}
	sc := &match.Scorer{P: pop, W: cfg.Weights}
	dir, err := j.publish(ctx, cfg, st, publish.Tables{Pop: pop, Scorer: sc, Lists: lists, Souls: souls, Rejects: L.Rejects, Pseudonyms: pz})
	if err != nil {
		return nil, err
	}
	publish.CrashPoint("committed")
	// The parts are consumed (all of them: the run is published); only a
	// part still being written is left alone.
	if err := st.RemoveParts(); err != nil {
		j.log.Warn("published, but the shard parts could not be removed", "error", err)
	}
	st.Close()
	already, err := t.Push(ctx, dir, cfg.Overwrite, m.RunID)
	if err != nil {
		return nil, err
	}
	res = j.result(t.Location(dir), already)
	t.DeleteParts(ctx)
	return res, nil
}

// commitConfig is the configuration of the commit: the parts' run (their
// record r), with the commit's output, partition and flags.
func commitConfig(cc CommitConfig, t *publish.Target, partition string, r publish.RunConfig) (publish.RunConfig, Config, error) {
	r.Out, r.Partition, r.Overwrite, r.Workers, r.Report = t.Root(), partition, cc.Overwrite, cc.Workers, cc.Report
	r.Shard, r.RemoteOut = match.ShardSpec{}, t.Remote()
	if want := cc.AsOf.Format(time.DateOnly); r.AsOf != want {
		return r, Config{}, failure.Usagef("the parts are for as-of %s, not %s", r.AsOf, want)
	}
	cfg, err := configOf(r)
	if err != nil {
		return r, Config{}, failure.Usagef("the parts are for as-of %s, not %s", r.AsOf, cc.AsOf.Format(time.DateOnly))
	}
	cfg.PseudonymKey, cfg.SpoolDir = cc.PseudonymKey, cc.SpoolDir
	return r, cfg, nil
}

// describe is one line per set of parts, for messages.
func describe(sets []*publish.PartSet) string {
	var ds []string
	for _, s := range sets {
		ds = append(ds, s.Describe())
	}
	return strings.Join(ds, "; ")
}
