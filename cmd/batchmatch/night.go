package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/spf13/pflag"

	"github.com/osmosis/batchmatch/pipeline"
	"github.com/osmosis/batchmatch/pipeline/failure"
	"github.com/osmosis/batchmatch/pipeline/publish"
)

// cmdNight is one shard of the nightly run as a scheduler starts it (a pod
// of the Kubernetes Indexed Job, a task of a Slurm array; README "The night
// as one unit"). It takes exactly `run`'s flags and:
//
//  1. fixes the as-of date from the schedule, never from the wall clock,
//     unless --as-of is given (nightAsOf);
//  2. runs the shard as `batchmatch run` does (same logs, metrics, exit
//     codes);
//  3. decides from the parts there are, as `commit` decides
//     (publish.Decide), with this shard's run id as the current one: a
//     complete set of it means this shard's part completed the set, and
//     it publishes the night as `batchmatch commit` does; a shard index
//     without a part (of this night's scheduler run) means another shard
//     is still running, and it exits 0: the shard that completes the set
//     publishes; every index with a part but no complete set of this run
//     means the inputs changed during the night: no shard can ever
//     complete it, and it fails with 65 (re-run the night).
//
// The last shard to finish always sees every part (each part is complete
// before its shard looks), so exactly the shards that find the set complete
// commit, usually one. Two that finish together both commit: on a local
// --out the second waits for the output lock (failure.Locked) and finds
// the partition published by this run; on object storage the conditional
// write of _SUCCESS lets one publish and the other find it published by
// the same run id. A retry of one shard after the night was published (a
// pod lost after its commit) finds the partition published by its run and
// exits 0.
func cmdNight(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o RunOptions
	fs := pflag.NewFlagSet("batchmatch night", pflag.ContinueOnError)
	o.AddFlags(fs)
	if err := parse(fs, args, stderr); err != nil {
		return err
	}
	log, err := o.Log.logger(stderr)
	if err != nil {
		return err
	}
	runArgs := slices.Clip(args)
	if o.Job.AsOf == "" {
		asOf, from, err := nightAsOf(os.Getenv)
		if err != nil {
			return err
		}
		o.Job.AsOf = asOf
		runArgs = append(runArgs, "--as-of="+asOf)
		log.Info("night: as-of date from the schedule", "as_of", asOf, "from", from)
	}
	cfg, err := o.Job.Config(time.Now(), true)
	if err != nil {
		return err
	}
	shard, err := o.Shard.Resolve()
	if err != nil {
		return err
	}
	res, err := runCommand(ctx, runArgs, stdout, stderr)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		// signalled after the shard could no longer stop (its part may be
		// complete): no commit on a process that is being terminated
		return err
	}
	if shard.Count <= 1 {
		return nil // a whole run has published itself
	}
	cc := pipeline.CommitConfig{
		Out: cfg.Out, AsOf: cfg.AsOf, Partition: cfg.Partition, ShardCount: shard.Count,
		Overwrite: cfg.Overwrite, Workers: cfg.Workers, Report: cfg.Report,
		PseudonymKey: cfg.PseudonymKey, SpoolDir: cfg.SpoolDir,
	}
	return nightCommit(ctx, cc, res.Manifest.RunID, o.Metrics, log, stdout)
}

// nightLockWait bounds how long a shard that found every part waits for
// the output lock held by another shard's commit (about 6 minutes at 10 M
// members, docs/SCALE.md); then it exits 75 and the scheduler retries it.
var nightLockWait = 30 * time.Minute

// nightCommit publishes the night if this shard's part (of shard run id
// runID) completed the set: see cmdNight.
func nightCommit(ctx context.Context, cc pipeline.CommitConfig, runID string, mo MetricsOptions, log *slog.Logger, stdout io.Writer) error {
	fail := func(msg string, err error) error {
		publishMetrics(ctx, mo, nil, err, log)
		log.Error(msg, "exit_code", exitCodeFor(ctx, err), "err", err)
		return err
	}
	partition := publish.PartitionOr(cc.Partition, cc.AsOf)
	view, err := publish.ViewParts(ctx, cc.Out, partition, cc.ShardCount)
	if err != nil {
		return fail("night: listing the parts failed", err)
	}
	if pub := view.Published; pub != nil && pub.Intact() && publish.ConsumedByRun(pub, runID) {
		log.Info("night: the night is already published by this run", "run_id", pub.RunID())
		return nil
	}
	d, err := publish.Decide(view.Parts, publish.SchedulerRunID(os.Getenv), func(s *publish.PartSet) (bool, error) {
		return s.RunID() == runID, nil
	})
	if err != nil {
		return fail("night: deciding from the parts failed", err)
	}
	switch d.Verdict {
	case publish.Waiting:
		log.Info("night: part written; the shard that completes the set publishes", "waiting_for", d.Missing, "parts", d.Describe())
		return nil
	case publish.Mixed:
		return fail("night: the night cannot complete", fmt.Errorf(
			"%w: the inputs changed during the night: every shard has finished, but no complete set of parts under %s is of one run (this shard's is %s): %s; re-run the night",
			failure.BadData, view.Where, runID, d.Describe()))
	}
	log.Info("night: every shard has a part: committing", "shards", cc.ShardCount)
	deadline := time.Now().Add(nightLockWait)
	wait := time.Second
	for {
		res, err := pipeline.Commit(ctx, cc, pipeline.Env{Log: log})
		switch {
		case err == nil:
			publishMetrics(ctx, mo, res, nil, log)
			printSummary(stdout, res)
			return nil
		case errors.Is(err, failure.NotReady):
			// the parts the listing saw are no set commit can publish now
			// (e.g. another shard's commit has just taken them)
			log.Info("night: part written; the shard that completes the set publishes", "parts", err.Error())
			return nil
		case errors.Is(err, failure.Locked) && time.Now().Before(deadline):
			log.Info("night: another commit holds the output lock; waiting", "retry_in_seconds", wait.Seconds())
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(wait):
			}
			wait = min(2*wait, 30*time.Second)
			continue
		}
		publishMetrics(ctx, mo, res, err, log)
		log.Error("night: commit failed", "exit_code", exitCodeFor(ctx, err), "err", err)
		return err
	}
}

// The schedule reaches the process through the environment:
//
//	BATCHMATCH_AS_OF          the date itself, YYYY-MM-DD (a Slurm submission, a manual run)
//	BATCHMATCH_SCHEDULED_TIME the scheduled time, RFC 3339 (the CronJob's
//	                          batch.kubernetes.io/cronjob-scheduled-timestamp, a workflow engine)
//	BATCHMATCH_JOB_NAME       the Kubernetes Job's name, from the pod label
//	                          batch.kubernetes.io/job-name (downward API)
const (
	envAsOf          = "BATCHMATCH_AS_OF"
	envScheduledTime = "BATCHMATCH_SCHEDULED_TIME"
	envJobName       = "BATCHMATCH_JOB_NAME"
)

var (
	jobNameMinutes = regexp.MustCompile(`-([0-9]+)$`)
	jobNameDate    = regexp.MustCompile(`-([0-9]{4}-[0-9]{2}-[0-9]{2})$`)
	// a Job name's minute suffix is read as a scheduled time only from
	// 2020 on (and before 2100), so that neither a name like "nightly-2"
	// (1970) nor a date without dashes, "-20261124" (2008), passes for one
	minutesFrom = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC).Unix() / 60
	minutesTo   = time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC).Unix() / 60
)

// nightAsOf returns the as-of date of a night started without --as-of and
// where it came from, in this order: BATCHMATCH_AS_OF; the date of
// BATCHMATCH_SCHEDULED_TIME in the time zone it is written in; the Job name
// in BATCHMATCH_JOB_NAME, which a CronJob makes <cronjob>-<scheduled time
// in minutes since 1970> (UTC date) and a Job created by hand may end in
// -YYYY-MM-DD. Without any of them it is a usage error: a night that
// started late, or a retry after midnight, must not pick another date.
func nightAsOf(getenv func(string) string) (date, from string, err error) {
	if v := getenv(envAsOf); v != "" {
		if _, err := time.Parse(time.DateOnly, v); err != nil {
			return "", "", fmt.Errorf("%w: %s=%q is not a date (YYYY-MM-DD)", failure.Usage, envAsOf, v)
		}
		return v, envAsOf, nil
	}
	if v := getenv(envScheduledTime); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return "", "", fmt.Errorf("%w: %s=%q is not an RFC 3339 time", failure.Usage, envScheduledTime, v)
		}
		return t.Format(time.DateOnly), envScheduledTime, nil
	}
	if v := getenv(envJobName); v != "" {
		if m := jobNameDate.FindStringSubmatch(v); m != nil {
			if _, err := time.Parse(time.DateOnly, m[1]); err == nil {
				return m[1], envJobName, nil
			}
		}
		if m := jobNameMinutes.FindStringSubmatch(v); m != nil {
			if mins, err := strconv.ParseInt(m[1], 10, 64); err == nil && mins >= minutesFrom && mins < minutesTo {
				return time.Unix(mins*60, 0).UTC().Format(time.DateOnly), envJobName, nil
			}
		}
		return "", "", fmt.Errorf("%w: %s=%q carries no scheduled time: the accepted forms are a CronJob's Job name, <cronjob>-<scheduled minute since 1970, UTC, from 2020 on> (e.g. batchmatch-night-29406300), "+
			"and a Job made by hand named <name>-YYYY-MM-DD (e.g. batchmatch-night-rerun-2026-11-30); or pass --as-of", failure.Usage, envJobName, v)
	}
	return "", "", fmt.Errorf("%w: night needs its as-of date from the schedule (%s, %s or %s) or --as-of; it never uses the clock",
		failure.Usage, envAsOf, envScheduledTime, envJobName)
}
