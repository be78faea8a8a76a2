// Package kubernetes holds batchmatch's Kubernetes manifests and the test
// that decodes them strictly into the Kubernetes API types, so that a typo
// or a field in the wrong place fails CI instead of being dropped silently
// by the API server, and then checks the properties the deployment relies
// on. It is its own module: the main module does not depend on the
// Kubernetes API.
package kubernetes

import (
	"bytes"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
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

// manifests decodes batchmatch.yaml strictly: the ServiceAccount and the
// night's CronJob, nothing else.
func manifests(t *testing.T) (*corev1.ServiceAccount, *batchv1.CronJob) {
	t.Helper()
	var sas []corev1.ServiceAccount
	var cjs []batchv1.CronJob
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
			cjs = append(cjs, cj)
		case "v1 ServiceAccount":
			var sa corev1.ServiceAccount
			if err := yaml.UnmarshalStrict(d, &sa); err != nil {
				t.Fatalf("document %d (ServiceAccount): %v", i, err)
			}
			sas = append(sas, sa)
		default:
			t.Fatalf("document %d: unexpected %s %s", i, meta.APIVersion, meta.Kind)
		}
	}
	if len(cjs) != 1 || len(sas) != 1 {
		t.Fatalf("%d CronJobs and %d ServiceAccounts, want one of each: the night is one unit", len(cjs), len(sas))
	}
	return &sas[0], &cjs[0]
}

// TestNightIsOneUnit: one CronJob runs the night as an Indexed Job whose
// pods each run a shard and commit when they complete the set; retries are
// keyed on the exit codes; the as-of date reaches the pods from the
// scheduled time.
func TestNightIsOneUnit(t *testing.T) {
	_, cj := manifests(t)
	if cj.Spec.ConcurrencyPolicy != batchv1.ForbidConcurrent {
		t.Errorf("concurrencyPolicy %q, want Forbid (one night at a time per output)", cj.Spec.ConcurrencyPolicy)
	}
	// The pods read the scheduled minute from the Job's name, which the
	// CronJob controller makes <name>-<Unix minutes>; the night's date is
	// that minute's UTC date, the schedule's day only in UTC.
	if cj.Spec.TimeZone == nil || *cj.Spec.TimeZone != "Etc/UTC" {
		t.Errorf("timeZone %v, want Etc/UTC (the as-of date is the UTC date of the scheduled minute)", cj.Spec.TimeZone)
	}
	if len(cj.Name) > 52 {
		t.Errorf("CronJob name %q: longer than 52 characters, its Jobs' names would be cut", cj.Name)
	}
	sm := minuteOfDay(t, cj.Spec.Schedule)
	job := cj.Spec.JobTemplate.Spec
	if job.ActiveDeadlineSeconds == nil || sm+int(*job.ActiveDeadlineSeconds/60) > 24*60 {
		t.Errorf("schedule %q with deadline %v s: the night must end before the next one is due", cj.Spec.Schedule, job.ActiveDeadlineSeconds)
	}
	if job.CompletionMode == nil || *job.CompletionMode != batchv1.IndexedCompletion {
		t.Error("completionMode must be Indexed (JOB_COMPLETION_INDEX is the shard index)")
	}
	if job.BackoffLimitPerIndex == nil || *job.BackoffLimitPerIndex < 1 {
		t.Error("backoffLimitPerIndex must retry a lost index")
	}
	if job.MaxFailedIndexes == nil || *job.MaxFailedIndexes != 0 {
		t.Error("maxFailedIndexes must be 0: a night with a failed shard is a failed Job")
	}
	if job.Completions == nil || job.Parallelism == nil || *job.Completions != *job.Parallelism {
		t.Fatal("completions and parallelism must be set and equal")
	}
	pod := job.Template.Spec
	if pod.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("restartPolicy %q, want Never (podFailurePolicy requires it)", pod.RestartPolicy)
	}
	if len(pod.Containers) != 1 || pod.Containers[0].Name != "batchmatch" || len(pod.InitContainers) != 0 {
		t.Fatal("want one container named batchmatch")
	}
	c := pod.Containers[0]
	if len(c.Command) != 0 || len(c.Args) == 0 || c.Args[0] != "night" {
		t.Fatalf("command %v args %v: the image's entrypoint with `night` (shard, then commit when the set is complete)", c.Command, c.Args)
	}
	if !slices.Contains(c.Args, "--shard-count="+strconv.Itoa(int(*job.Completions))) {
		t.Errorf("args %v must pass --shard-count=%d (the completions)", c.Args, *job.Completions)
	}
	for _, a := range c.Args {
		if strings.HasPrefix(a, "--as-of") || strings.HasPrefix(a, "--shard-index") {
			t.Errorf("arg %s: the as-of date comes from the schedule and the index from JOB_COMPLETION_INDEX", a)
		}
	}
	env := envOf(c)
	jn, ok := env["BATCHMATCH_JOB_NAME"]
	if !ok || jn.ValueFrom == nil || jn.ValueFrom.FieldRef == nil ||
		jn.ValueFrom.FieldRef.FieldPath != "metadata.labels['"+batchv1.JobNameLabel+"']" {
		t.Errorf("BATCHMATCH_JOB_NAME must come from the pod label %s (downward API): %+v", batchv1.JobNameLabel, jn)
	}
	if _, ok := env["BATCHMATCH_AS_OF"]; ok {
		t.Error("a fixed BATCHMATCH_AS_OF would publish every night under one date")
	}

	p := job.PodFailurePolicy
	if p == nil || !ignoresDisruptions(p) {
		t.Error("the pod failure policy must ignore disruptions")
	}
	// permanent failures fail the index (and, with maxFailedIndexes 0, the
	// night); transient ones (74 I/O, 75 lock, signals) retry
	if !hasRule(p, batchv1.PodFailurePolicyActionFailIndex, 64, 65, 66, 70, 71, 73, 77, 78) {
		t.Error("exit codes 64, 65, 66, 70, 71, 73, 77 and 78 must fail the index: a retry cannot help")
	}
	for _, code := range []int32{74, 75, 130, 137, 143} {
		if failsOn(p, code) {
			t.Errorf("exit %d is transient: it must be retried, not fail the index or the Job", code)
		}
	}
}

// TestPodSecurityAndCredentials: no Kubernetes API token in the pods; cloud
// credentials through the ServiceAccount (IRSA, Workload Identity); a
// non-root, read-only container.
func TestPodSecurityAndCredentials(t *testing.T) {
	sa, cj := manifests(t)
	pod := cj.Spec.JobTemplate.Spec.Template.Spec
	if pod.ServiceAccountName != sa.Name {
		t.Errorf("serviceAccountName %q, want the manifest's %q", pod.ServiceAccountName, sa.Name)
	}
	if sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
		t.Error("the ServiceAccount must set automountServiceAccountToken: false")
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("the pod must set automountServiceAccountToken: false")
	}
	for _, a := range []string{"eks.amazonaws.com/role-arn", "iam.gke.io/gcp-service-account"} {
		if sa.Annotations[a] == "" {
			t.Errorf("the ServiceAccount has no %s annotation (IRSA / Workload Identity)", a)
		}
	}
	if pod.SecurityContext == nil || pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot ||
		pod.SecurityContext.RunAsUser == nil || *pod.SecurityContext.RunAsUser != 65532 {
		t.Error("pods must run as non-root uid 65532 (the image's user)")
	}
	sc := pod.Containers[0].SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Error("the container must have a read-only root file system and no privilege escalation")
	}
}

// TestObjectStorageAndSpool: the night reads and writes object storage and
// stages in $TMPDIR, an emptyDir at /tmp under the read-only root, with
// ephemeral storage requested and limited for it.
func TestObjectStorageAndSpool(t *testing.T) {
	_, cj := manifests(t)
	pod := cj.Spec.JobTemplate.Spec.Template.Spec
	c := pod.Containers[0]
	for _, flag := range []string{"--profiles=", "--out="} {
		v := argValue(c.Args, flag)
		if !strings.HasPrefix(v, "s3://") && !strings.HasPrefix(v, "gs://") {
			t.Errorf("%s%s: want an s3:// or gs:// URL", flag, v)
		}
	}
	tmpdir := envOf(c)["TMPDIR"].Value
	if tmpdir == "" || argValue(c.Args, "--spool-dir=") != "" {
		t.Fatalf("TMPDIR %q: the spool is $TMPDIR, set explicitly (no --spool-dir)", tmpdir)
	}
	var vol *corev1.Volume
	for _, m := range c.VolumeMounts {
		if m.MountPath == tmpdir {
			for i := range pod.Volumes {
				if pod.Volumes[i].Name == m.Name {
					vol = &pod.Volumes[i]
				}
			}
		}
	}
	if vol == nil || vol.EmptyDir == nil || vol.EmptyDir.Medium != corev1.StorageMediumDefault {
		t.Fatalf("TMPDIR %s must be an emptyDir on disk", tmpdir)
	}
	req, lim := c.Resources.Requests[corev1.ResourceEphemeralStorage], c.Resources.Limits[corev1.ResourceEphemeralStorage]
	if req.IsZero() || lim.IsZero() || req.Cmp(lim) > 0 {
		t.Fatalf("ephemeral-storage request %v, limit %v: both set, request ≤ limit", req.String(), lim.String())
	}
	if vol.EmptyDir.SizeLimit == nil || vol.EmptyDir.SizeLimit.Cmp(lim) > 0 || vol.EmptyDir.SizeLimit.Cmp(req) < 0 {
		t.Errorf("emptyDir sizeLimit %v: between the ephemeral-storage request %v and limit %v", vol.EmptyDir.SizeLimit, req.String(), lim.String())
	}
	// the pod that commits holds every shard's part plus the tables: under
	// 1 GiB at the 1 M members the manifests are sized for (docs/SCALE.md)
	if min := resource.MustParse("1Gi"); vol.EmptyDir.SizeLimit.Cmp(min) < 0 {
		t.Errorf("emptyDir sizeLimit %v: below the commit's 1 GiB", vol.EmptyDir.SizeLimit)
	}
	mem := c.Resources.Limits[corev1.ResourceMemory]
	goLimit, err := resource.ParseQuantity(strings.TrimSuffix(argValue(c.Args, "--memory-limit="), "B"))
	if err != nil || mem.IsZero() || goLimit.Cmp(mem) >= 0 {
		t.Errorf("--memory-limit %q must be set below the memory limit %v", argValue(c.Args, "--memory-limit="), mem.String())
	}
}

// TestImageIsTheVersion: the image tag is the binary's version, so that a
// manifest names exactly the release it was written for.
func TestImageIsTheVersion(t *testing.T) {
	b, err := os.ReadFile("../../pipeline/publish/version.go")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^const Version = "([^"]+)"$`).FindSubmatch(b)
	if m == nil {
		t.Fatal("no Version constant in pipeline/publish/version.go: update this test with the version's new home")
	}
	_, cj := manifests(t)
	for _, c := range cj.Spec.JobTemplate.Spec.Template.Spec.Containers {
		if want := "osmosis/batchmatch:" + string(m[1]); c.Image != want {
			t.Errorf("container %s: image %q, want %q", c.Name, c.Image, want)
		}
	}
}

func envOf(c corev1.Container) map[string]corev1.EnvVar {
	env := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		env[e.Name] = e
	}
	return env
}

func argValue(args []string, prefix string) string {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, prefix); ok {
			return v
		}
	}
	return ""
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

// hasRule reports whether a rule with action covers every one of codes for
// the batchmatch container.
func hasRule(p *batchv1.PodFailurePolicy, action batchv1.PodFailurePolicyAction, codes ...int32) bool {
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

// failsOn reports whether any exit-code rule would fail the index or the
// Job on code (instead of counting a retry).
func failsOn(p *batchv1.PodFailurePolicy, code int32) bool {
	if p == nil {
		return false
	}
	for _, r := range p.Rules {
		if r.OnExitCodes == nil || (r.Action != batchv1.PodFailurePolicyActionFailIndex && r.Action != batchv1.PodFailurePolicyActionFailJob) {
			continue
		}
		in := slices.Contains(r.OnExitCodes.Values, code)
		if (r.OnExitCodes.Operator == batchv1.PodFailurePolicyOnExitCodesOpIn) == in {
			return true
		}
	}
	return false
}

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

// TestREADMEAgreesWithPolicy: what README says Kubernetes does with each
// exit code ("Retries follow the exit codes: … fail the index …; … are
// retried") is what the pod failure policy does, and agrees with the
// exit-code table's "retry?" column: every code the table says not to
// retry fails the index, every code it says to retry is retried. (README
// once said 71 was retried while the policy failed the index on it and the
// table said "no".)
func TestREADMEAgreesWithPolicy(t *testing.T) {
	_, cj := manifests(t)
	p := cj.Spec.JobTemplate.Spec.PodFailurePolicy
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := strings.Join(strings.Fields(string(b)), " ")
	m := regexp.MustCompile(`Retries follow the exit codes: ([0-9, and]+) fail the index[^;]*; ([0-9, and]+) and signals are retried`).FindStringSubmatch(readme)
	if m == nil {
		t.Fatal(`README's Kubernetes paragraph no longer says "Retries follow the exit codes: … fail the index …; … and signals are retried"`)
	}
	codes := func(s string) []int32 {
		var cs []int32
		for _, f := range regexp.MustCompile(`[0-9]+`).FindAllString(s, -1) {
			c, _ := strconv.Atoi(f)
			cs = append(cs, int32(c))
		}
		return cs
	}
	fail, retried := codes(m[1]), codes(m[2])
	for _, c := range fail {
		if !failsOn(p, c) {
			t.Errorf("README says exit %d fails the index; the policy retries it", c)
		}
	}
	for _, c := range retried {
		if failsOn(p, c) {
			t.Errorf("README says exit %d is retried; the policy fails the index", c)
		}
	}
	// The exit-code table: | code | meaning | retry? |
	rows := regexp.MustCompile(`(?m)^\| ([0-9]+) \|.*\| ([^|]+) \|$`).FindAllStringSubmatch(string(b), -1)
	if len(rows) < 10 {
		t.Fatalf("README's exit-code table has %d rows", len(rows))
	}
	for _, r := range rows {
		c, _ := strconv.Atoi(r[1])
		retry := strings.TrimSpace(r[2])
		switch {
		case c == 0 || c == 2 || strings.HasPrefix(retry, "after"): // success; once then investigate; upstream's
		case strings.HasPrefix(retry, "no") && !slices.Contains(fail, int32(c)):
			t.Errorf("exit %d: the table says %q, but the Kubernetes paragraph does not say it fails the index", c, retry)
		case strings.HasPrefix(retry, "yes") && !slices.Contains(retried, int32(c)):
			t.Errorf("exit %d: the table says %q, but the Kubernetes paragraph does not say it is retried", c, retry)
		}
	}
}
