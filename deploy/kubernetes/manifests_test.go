// Package kubernetes holds batchmatch's Kubernetes manifests and the test
// that decodes them strictly into the Kubernetes API types, so that a typo
// or a field in the wrong place fails CI instead of being dropped silently
// by the API server. It is its own module: the main module does not depend
// on the Kubernetes API.
package kubernetes

import (
	"bytes"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// documents splits the manifest file into its YAML documents.
func documents(t *testing.T, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var docs [][]byte
	for _, d := range bytes.Split(b, []byte("\n---\n")) {
		if len(bytes.TrimSpace(stripComments(d))) > 0 {
			docs = append(docs, d)
		}
	}
	return docs
}

func stripComments(b []byte) []byte {
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			out = append(out, l)
		}
	}
	return []byte(strings.Join(out, "\n"))
}

func TestManifestsDecodeStrictly(t *testing.T) {
	var cronJobs []batchv1.CronJob
	var pvcs []corev1.PersistentVolumeClaim
	for i, d := range documents(t, "batchmatch.yaml") {
		var meta struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
		}
		if err := yaml.Unmarshal(d, &meta); err != nil {
			t.Fatalf("document %d: %v", i, err)
		}
		switch meta.APIVersion + " " + meta.Kind {
		case "batch/v1 CronJob":
			var cj batchv1.CronJob
			if err := yaml.UnmarshalStrict(d, &cj); err != nil {
				t.Fatalf("document %d (CronJob): %v", i, err)
			}
			cronJobs = append(cronJobs, cj)
		case "v1 PersistentVolumeClaim":
			var pvc corev1.PersistentVolumeClaim
			if err := yaml.UnmarshalStrict(d, &pvc); err != nil {
				t.Fatalf("document %d (PersistentVolumeClaim): %v", i, err)
			}
			pvcs = append(pvcs, pvc)
		default:
			t.Fatalf("document %d: unexpected %s %s", i, meta.APIVersion, meta.Kind)
		}
	}
	if len(cronJobs) != 2 || len(pvcs) != 1 {
		t.Fatalf("%d CronJobs and %d claims, want 2 and 1", len(cronJobs), len(pvcs))
	}
	byName := map[string]*batchv1.CronJob{}
	for i := range cronJobs {
		byName[cronJobs[i].Name] = &cronJobs[i]
	}
	shards, commit := byName["batchmatch-shards"], byName["batchmatch-commit"]
	if shards == nil || commit == nil {
		t.Fatalf("CronJobs %v, want batchmatch-shards and batchmatch-commit", keys(byName))
	}
	for _, cj := range cronJobs {
		if cj.Spec.ConcurrencyPolicy != batchv1.ForbidConcurrent {
			t.Errorf("%s: concurrencyPolicy %q, want Forbid", cj.Name, cj.Spec.ConcurrencyPolicy)
		}
		pod := cj.Spec.JobTemplate.Spec.Template.Spec
		if pod.RestartPolicy != corev1.RestartPolicyNever {
			t.Errorf("%s: restartPolicy %q, want Never (podFailurePolicy requires it)", cj.Name, pod.RestartPolicy)
		}
		if len(pod.Containers) != 1 || pod.Containers[0].Name != "batchmatch" {
			t.Fatalf("%s: want one container named batchmatch", cj.Name)
		}
		c := pod.Containers[0]
		if m := c.Resources.Limits.Memory(); m.IsZero() {
			t.Errorf("%s: no memory limit", cj.Name)
		}
		if pod.SecurityContext == nil || pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot {
			t.Errorf("%s: pods must run as non-root", cj.Name)
		}
		if len(c.VolumeMounts) != 1 || len(pod.Volumes) != 1 || pod.Volumes[0].PersistentVolumeClaim == nil ||
			pod.Volumes[0].PersistentVolumeClaim.ClaimName != pvcs[0].Name {
			t.Errorf("%s: the data volume must be the claim %s", cj.Name, pvcs[0].Name)
		}
		policy := cj.Spec.JobTemplate.Spec.PodFailurePolicy
		if policy == nil || !ignoresDisruptions(policy) {
			t.Errorf("%s: the pod failure policy must ignore disruptions", cj.Name)
		}
	}

	job := shards.Spec.JobTemplate.Spec
	if job.CompletionMode == nil || *job.CompletionMode != batchv1.IndexedCompletion {
		t.Error("shards: completionMode must be Indexed")
	}
	if job.BackoffLimitPerIndex == nil || *job.BackoffLimitPerIndex < 1 {
		t.Error("shards: backoffLimitPerIndex must retry a lost index")
	}
	if job.Completions == nil || job.Parallelism == nil || *job.Completions != *job.Parallelism {
		t.Fatal("shards: completions and parallelism must be set and equal")
	}
	args := job.Template.Spec.Containers[0].Args
	if args[0] != "run" || !slices.Contains(args, "--shard-count="+itoa(*job.Completions)) {
		t.Errorf("shards: args %v must run with --shard-count=%d (the completions)", args, *job.Completions)
	}
	if !failsIndexOn(job.PodFailurePolicy, batchv1.PodFailurePolicyActionFailIndex, 64, 65, 70, 71, 77, 78) {
		t.Error("shards: exit codes 64, 65, 70, 71, 77 and 78 must fail the index (a retry cannot help)")
	}
	if !failsIndexOn(commit.Spec.JobTemplate.Spec.PodFailurePolicy, batchv1.PodFailurePolicyActionFailJob, 64, 65, 66, 70, 71, 73, 77, 78) {
		t.Error("commit: exit codes 64, 65, 66, 70, 71, 73, 77 and 78 must fail the Job (a retry cannot help)")
	}
	if c := commit.Spec.JobTemplate.Spec.Template.Spec.Containers[0].Args; c[0] != "commit" {
		t.Errorf("commit: args %v must run commit", c)
	}
	for _, code := range []int32{74, 75} {
		if failsIndexOn(commit.Spec.JobTemplate.Spec.PodFailurePolicy, batchv1.PodFailurePolicyActionFailJob, code) {
			t.Errorf("commit: exit %d (transient) must be retried, not fail the Job", code)
		}
	}
	// daily schedules "M H * * *": the commit starts after the shards'
	// deadline, and both end before midnight UTC (one as-of date)
	sm, cm := minuteOfDay(t, shards.Spec.Schedule), minuteOfDay(t, commit.Spec.Schedule)
	shardEnd := sm + int(*job.ActiveDeadlineSeconds/60)
	commitEnd := cm + int(*commit.Spec.JobTemplate.Spec.ActiveDeadlineSeconds/60)
	if cm < shardEnd || commitEnd > 24*60 {
		t.Errorf("shards %02d:%02d–%02d:%02d, commit %02d:%02d–%02d:%02d: the commit must start after the shards' deadline and end the same day",
			sm/60, sm%60, shardEnd/60, shardEnd%60, cm/60, cm%60, commitEnd/60, commitEnd%60)
	}
}

func ignoresDisruptions(p *batchv1.PodFailurePolicy) bool {
	for _, r := range p.Rules {
		for _, c := range r.OnPodConditions {
			if r.Action == batchv1.PodFailurePolicyActionIgnore && c.Type == corev1.DisruptionTarget {
				return true
			}
		}
	}
	return false
}

// failsIndexOn reports whether a rule with action covers every one of codes
// for the batchmatch container.
func failsIndexOn(p *batchv1.PodFailurePolicy, action batchv1.PodFailurePolicyAction, codes ...int32) bool {
	if p == nil {
		return false
	}
	for _, r := range p.Rules {
		if r.Action != action || r.OnExitCodes == nil || r.OnExitCodes.Operator != batchv1.PodFailurePolicyOnExitCodesOpIn ||
			r.OnExitCodes.ContainerName == nil || *r.OnExitCodes.ContainerName != "batchmatch" {
			continue
		}
		all := true
		for _, c := range codes {
			all = all && slices.Contains(r.OnExitCodes.Values, c)
		}
		if all {
			return true
		}
	}
	return false
}

func keys[V any](m map[string]V) []string {
	var k []string
	for n := range m {
		k = append(k, n)
	}
	slices.Sort(k)
	return k
}

func itoa(n int32) string { return strconv.Itoa(int(n)) }

// minuteOfDay reads a daily cron schedule "M H * * *".
func minuteOfDay(t *testing.T, sched string) int {
	t.Helper()
	f := strings.Fields(sched)
	if len(f) != 5 || f[2] != "*" || f[3] != "*" || f[4] != "*" {
		t.Fatalf("schedule %q is not daily", sched)
	}
	m, err1 := strconv.Atoi(f[0])
	h, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil {
		t.Fatalf("schedule %q: minute and hour must be numbers", sched)
	}
	return 60*h + m
}
