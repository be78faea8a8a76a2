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
//  3. if every shard now has a complete part, so that this shard's part
//     completed the set, publishes the night as `batchmatch commit` does;
//     otherwise exits 0: the shard that completes the set publishes.
//
// The last shard to finish always sees every part (each part is complete
// before its shard looks), so exactly the shards that find the set complete
// commit, usually one. Two that finish together both commit: on a local
// --out the second waits for the output lock (failure.Locked); either way it
// finds the partition published by the other, which it was not when it
// looked before committing, and succeeds (on object storage both may upload
// the same run id, which the conditional create of _SUCCESS accepts). A
// retry of one shard after the night was published (a pod lost after its
// commit) finds the other parts gone and exits 0. A whole night run again
// after it was published relies on `commit` accepting an already published
// partition of the same run id (issue 12).
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
	if err := cmdRun(ctx, runArgs, stdout, stderr); err != nil {
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
	return nightCommit(ctx, cc, o.Metrics, log, stdout)
}

// nightLockWait bounds how long a shard that found every part waits for
// the output lock held by another shard's commit (about 6 minutes at 10 M
// members, docs/SCALE.md); then it exits 75 and the scheduler retries it.
var nightLockWait = 30 * time.Minute

// nightCommit publishes the night if every shard has a part: see cmdNight.
func nightCommit(ctx context.Context, cc pipeline.CommitConfig, mo MetricsOptions, log *slog.Logger, stdout io.Writer) error {
	if err := publish.PartsReady(ctx, cc.Out, cc.Partition, cc.AsOf, cc.ShardCount); err != nil {
		if errors.Is(err, failure.NotReady) {
			log.Info("night: part written; the shard that completes the set publishes", "parts", err.Error())
			return nil
		}
		log.Error("night: listing the parts failed", "exit_code", exitCodeFor(ctx, err), "err", err)
		return err
	}
	// A partition published before this commit is another run's (or this
	// night's, when this shard is a retry): commit decides. One published
	// after this point was published by another shard of this night that
	// also found every part.
	before, err := publish.IsPublished(ctx, cc.Out, cc.Partition, cc.AsOf)
	if err != nil {
		log.Error("night: checking the partition failed", "exit_code", exitCodeFor(ctx, err), "err", err)
		return err
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
			// the parts PartsReady saw are not a set commit can publish
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
		case errors.Is(err, failure.Exists) && !before:
			// Another shard had every part too and has published the night
			// in the meantime (it held the lock, or won the conditional
			// create of _SUCCESS on object storage).
			log.Info("night: published meanwhile by another shard of this night", "detail", err.Error())
			return nil
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
	// a Job name's minute suffix is read as a scheduled time only in this
	// range, so that a name like "nightly-2" is not taken for 1970
	minutesFrom = time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC).Unix() / 60
	minutesTo   = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC).Unix() / 60
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
		return "", "", fmt.Errorf("%w: %s=%q carries no scheduled time: a CronJob's Job is named <cronjob>-<minutes since 1970>; "+
			"name a Job made by hand <name>-YYYY-MM-DD, or pass --as-of", failure.Usage, envJobName, v)
	}
	return "", "", fmt.Errorf("%w: night needs its as-of date from the schedule (%s, %s or %s) or --as-of; it never uses the clock",
		failure.Usage, envAsOf, envScheduledTime, envJobName)
}
