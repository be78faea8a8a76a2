package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/osmosis/batchmatch/pipeline/failure"
	"github.com/osmosis/batchmatch/pipeline/match"
	"github.com/osmosis/batchmatch/pipeline/publish"
	"github.com/osmosis/batchmatch/pipeline/read"
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

// Commit gathers the parts of a sharded run, picks the complete set of the
// current inputs (publish.Decide, the decision `batchmatch night` makes
// too), and publishes exactly what a single-machine run publishes: the
// matches with mutual flags, the soulmate assignment over the whole top-K
// graph, the rejects, the manifest and _SUCCESS. It holds the output lock;
// parts are removed once the run is published. An object-store --out is
// handled as for Run: the parts' manifests come down into the spool, the
// commit runs there (fetching the tables of the set it picks), the
// partition goes up.
//
// A partition already published, intact, by the run the parts (or, when
// no part is left, the inputs) give is success without writing, with
// --overwrite too: the commit, or its retry, already happened.
func Commit(ctx context.Context, cc CommitConfig, env Env) (res *Result, err error) {
	log := env.logger()
	if err := setupStore(log); err != nil {
		return nil, err
	}
	partition := publish.PartitionOr(cc.Partition, cc.AsOf)
	t, err := publish.OpenTarget(ctx, publish.TargetConfig{Out: cc.Out, Partition: partition, SpoolDir: cc.SpoolDir,
		Published: true, Parts: true, ShardCount: cc.ShardCount}, log, env.Hooks)
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
	intact := pub != nil && pub.Intact()
	// done is the result of a commit that finds its work done: the
	// partition is published, intact, by these parts' (or inputs') run.
	done := func() (*Result, error) {
		st.RemoveParts()
		j.log.Info("already published by this run: nothing to commit", "partition", publish.RedactURL(st.Location()), "run_id", pub.RunID())
		m.RunID, m.AsOf = pub.RunID(), cc.AsOf.Format(time.DateOnly)
		j.alreadyPublished(pub.Manifest())
		res := j.result(st.Location(), true)
		st.Close()
		t.DeleteParts(ctx)
		t.SweepParts(ctx, partition)
		return res, nil
	}

	j.tm.begin(stageGather)
	parts, err := st.GatherParts(cc.ShardCount)
	if err != nil {
		return nil, err
	}
	if intact && !cc.Overwrite {
		var waiting []string
		for _, s := range parts.Sets {
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
		return done()
	}
	if intact && len(parts.Sets) > 0 && !slices.ContainsFunc(parts.Sets, func(s *publish.PartSet) bool { return !s.ConsumedBy(pub) }) {
		return done() // --overwrite, but every part left is what is published
	}

	// The set to publish: the newest complete one over the current inputs
	// (sets of other settings over the same inputs can be told apart
	// without reading the inputs again).
	var L *read.Loaded
	var loadedCfg publish.RunConfig
	current := func(s *publish.PartSet) (bool, error) {
		sc := s.Config()
		if L == nil {
			rec, cfg, err := commitConfig(cc, t, partition, sc)
			if err != nil {
				return false, err
			}
			m.AsOf, m.Config = rec.AsOf, rec
			if err := checkInputsOutsideOut(ctx, Config{Profiles: cfg.Profiles, Blocks: cfg.Blocks, Suppress: cfg.Suppress, Out: cc.Out}); err != nil {
				return false, err
			}
			if L, err = j.read(ctx, cfg); err != nil {
				return false, err
			}
			loadedCfg = sc
		}
		return publish.SameInputs(sc, loadedCfg) && publish.RunID(publish.ConfigHash(sc, L.Dims, ""), L.Pop.Fingerprint()) == s.RunID(), nil
	}
	d, err := publish.Decide(parts, "", current)
	if err != nil {
		return nil, err
	}
	switch d.Verdict {
	case publish.Waiting:
		if intact && len(parts.Sets) == 0 {
			// --overwrite retried after its commit removed the parts: done
			// when the inputs give the published run id.
			if same, err := j.publishedByInputs(ctx, cc, t, partition, pub); err != nil {
				return nil, err
			} else if same {
				return done()
			}
		}
		switch {
		case len(parts.Sets) == 0 && len(parts.Bad) > 0:
			return nil, fmt.Errorf("%w: the shard parts under %s are unreadable: %v", failure.BadData, where, parts.Bad)
		case len(parts.Sets) == 0:
			return nil, fmt.Errorf("%w: no complete shard part under %s yet", failure.NotReady, where)
		}
		return nil, fmt.Errorf("%w: no complete set of shard parts under %s yet: shards %v have no part: %s", failure.NotReady, where, d.Missing, d.Describe())
	case publish.Mixed:
		id := ""
		if L != nil {
			id = " (they give run id " + publish.RunID(publish.ConfigHash(loadedCfg, L.Dims, ""), L.Pop.Fingerprint()) + ")"
		}
		return nil, fmt.Errorf("%w: the inputs changed while the shards ran: every shard has a part, but no complete set of parts under %s is of the current inputs%s: %s; run the shards again (a night: run the night again)",
			failure.BadData, where, id, d.Describe())
	}
	chosen := d.Set
	switch {
	case intact && chosen.ConsumedBy(pub):
		return done()
	case pub != nil && !cc.Overwrite && !chosen.ConsumedBy(pub):
		return nil, fmt.Errorf("%w: %s is already published by run %s (files missing: %v), and the parts under %s are of another run (%s): pass --overwrite to publish them instead",
			failure.Exists, publish.RedactURL(st.Location()), pub.RunID(), pub.Missing(), where, chosen.Describe())
	case pub != nil && !intact:
		j.log.Warn("the partition is published by this run, but files its _SUCCESS lists are missing: publishing it again",
			"partition", publish.RedactURL(st.Location()), "missing", pub.Missing())
	}
	rec, cfg, err := commitConfig(cc, t, partition, chosen.Config())
	if err != nil {
		return nil, err
	}
	m.Config = rec
	pz, err := j.pseudonyms(cfg)
	if err != nil {
		return nil, err
	}
	for _, s := range parts.Sets {
		if s != chosen && s.Complete() {
			j.log.Warn("ignoring stale shard parts of another run", "stale", s.Describe(), "using", chosen.RunID())
		}
	}
	if err := st.FetchParts(ctx, chosen); err != nil {
		if errors.Is(err, publish.ErrPartsGone) {
			// Another commit of this night published them and removed them.
			now, rerr := t.Republished(ctx, st)
			if rerr == nil && now != nil && now.Intact() && chosen.ConsumedBy(now) {
				pub = now
				return done()
			}
			return nil, fmt.Errorf("%w: %w (retry: the commit that removed them may have published the night)", failure.NotReady, err)
		}
		return nil, err
	}
	pop := L.Pop
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
	// A sharded night is computed in full; the previous night, when
	// readable, serves the churn figures.
	out, err := newOutIDs(pop, pz)
	if err != nil {
		return nil, err
	}
	pc := cfg
	pc.Out = cc.Out // the output root (cfg.Out is the spool of an object-store commit)
	j.outRoot = cc.Out
	prev, _, err := j.readPrevious(ctx, pc)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		j.log.Warn("the previous night could not be read", "error", err)
		prev = nil
	}
	m.Night = &publish.NightInfo{Mode: "full", MembersRescored: int64(pop.N)}
	if err := j.nightStats(ctx, sc, L, prev, out, lists, souls, cfg.K, cfg.Workers); err != nil {
		return nil, err
	}
	digests := pop.Digests(digestSalt(pz), cfg.Workers)
	dir, err := j.publish(ctx, cfg, st, publish.Tables{Pop: pop, Scorer: sc, Lists: lists, Souls: souls, Rejects: L.Rejects, Pseudonyms: pz, Digests: digests})
	if err != nil {
		return nil, err
	}
	publish.CrashPoint("committed")
	// The parts are consumed (all of them: the run is published); only a
	// part still being written is left alone.
	st.RemoveParts()
	st.Close()
	already, err := t.Push(ctx, dir, cfg.Overwrite, m.RunID)
	if err != nil {
		return nil, err
	}
	res = j.result(t.Location(dir), already)
	t.DeleteParts(ctx)
	t.SweepParts(ctx, partition)
	return res, nil
}

// publishedByInputs reports whether the current inputs, read with the
// published run's configuration, give the published run id: a commit that
// finds no parts left and the partition published by them has nothing to
// do.
func (j *job) publishedByInputs(ctx context.Context, cc CommitConfig, t *publish.Target, partition string, pub *publish.Published) (bool, error) {
	pm := pub.Manifest()
	if pm == nil {
		return false, nil
	}
	_, cfg, err := commitConfig(cc, t, partition, pm.Config)
	if err != nil {
		return false, nil // another date or partition: not this commit's
	}
	keyID := ""
	if cc.PseudonymKey != "" {
		pz, err := publish.LoadPseudonymizer(cc.PseudonymKey)
		if err != nil {
			return false, err
		}
		keyID = pz.KeyID()
	}
	L, err := load(ctx, cfg, j.env.Alloc, j.log, nil)
	if err != nil {
		return false, err
	}
	return publish.RunID(publish.ConfigHash(pm.Config, L.Dims, keyID), L.Pop.Fingerprint()) == pub.RunID(), nil
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
