package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/osmosis/batchmatch/pipeline/store"
	"github.com/osmosis/batchmatch/pipeline/store/storetest"
)

// goDuration matches a duration as Go prints it ("248ms", "1m30s"): a log
// value of that form is a duration logged as a string.
var goDuration = regexp.MustCompile(`^-?([0-9.]+(ns|us|µs|ms|s|m|h))+$`)

// checkJSONLines parses every line of stderr as one JSON object with time,
// level and msg, with durations and rates as numbers (keys *_seconds and
// *_per_second), and returns the records.
func checkJSONLines(t *testing.T, stderr string) []map[string]any {
	t.Helper()
	var recs []map[string]any
	for i, line := range strings.Split(strings.TrimSuffix(stderr, "\n"), "\n") {
		if line == "" && stderr == "" {
			break
		}
		var rec map[string]any
		dec := json.NewDecoder(strings.NewReader(line))
		dec.UseNumber()
		if err := dec.Decode(&rec); err != nil || dec.More() {
			t.Errorf("stderr line %d is not one JSON object: %q", i+1, line)
			continue
		}
		for _, k := range []string{"time", "level", "msg"} {
			if _, ok := rec[k]; !ok {
				t.Errorf("stderr line %d has no %q: %s", i+1, k, line)
			}
		}
		for k, v := range rec {
			s, isString := v.(string)
			switch {
			case strings.HasSuffix(k, "_seconds") || strings.HasSuffix(k, "_per_second"):
				if _, ok := v.(json.Number); !ok {
					t.Errorf("line %d: %s is %v, not a number", i+1, k, v)
				}
			case k == "elapsed" || k == "eta" || k == "backoff" || k == "pairs_per_s" || strings.HasSuffix(k, "_ns"):
				t.Errorf("line %d: %s without its unit: %s", i+1, k, line)
			case isString && goDuration.MatchString(s):
				t.Errorf("line %d: %s is a duration as a string (%q)", i+1, k, s)
			}
		}
		recs = append(recs, rec)
	}
	return recs
}

// putPlain writes an object into the fake S3 with a plain PUT, as a tool
// that sends no checksum would.
func putPlain(t *testing.T, bucketURL, key string, data []byte) {
	t.Helper()
	u, err := url.Parse(bucketURL)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPut, u.Query().Get("endpoint")+"/"+u.Host+"/"+key, bytes.NewReader(data))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT %s: %s", key, resp.Status)
	}
}

// TestJSONLogs runs the binary with JSON logs (--log-format json, or auto
// with stderr a pipe) for a success and a failure of every command, a
// bare batchmatch, a bad flag, SIGTERM and SIGINT, and object storage that
// fails half its requests (retries of run, validate, explain and report)
// and holds objects without checksums (the AWS SDK's own warning): every
// line on stderr is one JSON object, and a failure's last line is the
// record "<command> failed" with its exit code, naming the signal that
// ended it.
func TestJSONLogs(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	fake := storetest.NewFakeS3(t, "bm")
	mustRun := func(args ...string) {
		t.Helper()
		if code, stderr := runBin(t, bin, args...); code != 0 {
			t.Fatalf("%v: exit %d\n%s", args, code, stderr)
		}
	}
	profiles := filepath.Join(dir, "profiles")
	mustRun("gen", "--out", profiles, "--n", "400", "--shards", "2", "--as-of", "2026-11-24", "--invalid-ratio", "0.02")
	big := filepath.Join(dir, "big")
	mustRun("gen", "--out", big, "--n", "40000", "--shards", "2", "--as-of", "2026-11-24")
	// the profiles on S3, written by a tool that sends no checksums
	ents, _ := os.ReadDir(profiles)
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(profiles, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		putPlain(t, fake.URL, "profiles/"+e.Name(), b)
	}
	s3Profiles := store.Join(fake.URL, "profiles")
	s3Out := store.Join(fake.URL, "out")
	out := filepath.Join(dir, "out")
	const d1, d2, d3 = "2026-11-24", "2026-11-25", "2026-11-26"
	J := "--log-format=json"
	read := func(cmd, in string, extra ...string) []string {
		return append([]string{cmd, "--profiles", in, "--as-of", d1, "--max-reject-ratio", "1", J}, extra...)
	}
	runArgs := func(in, out, asOf string, extra ...string) []string {
		return append([]string{"run", "--profiles", in, "--out", out, "--as-of", asOf, "--max-reject-ratio", "1", "--spool-dir", dir, J}, extra...)
	}
	half := func(n int64, _ *http.Request) storetest.Fault { // every other request fails
		if n%2 == 0 {
			return storetest.Err503
		}
		return storetest.Pass
	}
	const retrying = "object storage: transient error, retrying"
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string // a msg some line must have
		plan func(int64, *http.Request) storetest.Fault
		sig  os.Signal // sent once the run reads its profiles
	}{
		{name: "gen", args: []string{"gen", "--out", filepath.Join(dir, "gen"), "--n", "50", J}, want: "population generated"},
		{name: "gen: bad flag value", args: []string{"gen", "--out", filepath.Join(dir, "gen2"), "--n", "-1", J}, code: exitUsage},
		{name: "run", args: runArgs(profiles, out, d1), want: "run published"},
		{name: "run, JSON and WARN in capitals", args: runArgs(profiles, out, d1, "--log-format", "JSON", "--log-level", "WARN")},
		{name: "run: input missing", args: runArgs(filepath.Join(dir, "nope"), out, d1), code: exitNoInput},
		{name: "run: bad flag", args: runArgs(profiles, out, d1, "--frobnicate"), code: exitUsage},
		{name: "run: bad log format", args: runArgs(profiles, out, d1, "--log-format", "xml"), code: exitUsage},
		{name: "run to S3 that fails half its requests", args: runArgs(profiles, s3Out, d1), plan: half, want: retrying},
		{name: "run: shard 0 of 2", args: runArgs(profiles, out, d2, "--shard-index", "0", "--shard-count", "2"), want: "shard part written"},
		{name: "commit: parts missing", args: []string{"commit", "--out", out, "--as-of", d2, J}, code: exitTempFail},
		{name: "run: shard 1 of 2", args: runArgs(profiles, out, d2, "--shard-index", "1", "--shard-count", "2")},
		{name: "commit", args: []string{"commit", "--out", out, "--as-of", d2, J}, want: "run published"},
		{name: "night: shard 0", args: []string{"night", "--profiles", profiles, "--out", out, "--as-of", d3, "--shard-index", "0", "--shard-count", "2", "--max-reject-ratio", "1", J}},
		{name: "night: shard 1 commits", args: []string{"night", "--profiles", profiles, "--out", out, "--as-of", d3, "--shard-index", "1", "--shard-count", "2", "--max-reject-ratio", "1", J},
			want: "night: every shard has a part: committing"},
		{name: "night: no date from the schedule", args: []string{"night", "--profiles", profiles, "--out", out, "--shard-index", "0", "--shard-count", "2", J}, code: exitUsage},
		{name: "validate", args: read("validate", profiles), want: "profiles validated"},
		{name: "validate: too many rejects", args: read("validate", profiles, "--max-reject-ratio", "0"), code: exitDataErr},
		{name: "validate: a run flag", args: read("validate", profiles, "--out", out, "--report", "--overwrite"), code: exitUsage},
		{name: "validate from S3 that fails half its requests", args: read("validate", s3Profiles), plan: half, want: retrying},
		{name: "explain", args: read("explain", profiles, "5")},
		{name: "explain: not a member id", args: read("explain", profiles, "five"), code: exitUsage},
		{name: "explain from S3 that fails half its requests", args: read("explain", s3Profiles, "5"), plan: half, want: retrying},
		{name: "report", args: []string{"report", filepath.Join(out, "dt="+d1), "-o", filepath.Join(dir, "report.html"), J}},
		{name: "report: no such partition", args: []string{"report", filepath.Join(dir, "nope"), J}, code: exitNoInput},
		{name: "report from S3 that fails half its requests", args: []string{"report", store.Join(s3Out, "dt="+d1), "-o", filepath.Join(dir, "r.html"), J}, plan: half, want: retrying},
		{name: "version", args: []string{"version", J}},
		{name: "version: bad flag", args: []string{"version", "--bogus", J}, code: exitUsage},
		{name: "help run", args: []string{"help", "run"}},
		{name: "help: unknown command", args: []string{"help", "nope"}, code: exitUsage},
		{name: "bare", args: nil, code: exitUsage},
		{name: "unknown command", args: []string{"frobnicate"}, code: exitUsage},
		{name: "SIGTERM", args: runArgs(big, filepath.Join(dir, "sigterm"), d1), code: exitTerminated, sig: syscall.SIGTERM},
		{name: "SIGINT", args: runArgs(big, filepath.Join(dir, "sigint"), d1), code: exitInterrupted, sig: os.Interrupt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake.SetPlan(tc.plan)
			defer fake.SetPlan(nil)
			cmd := exec.Command(bin, tc.args...)
			var stdout bytes.Buffer
			var stderr syncBuffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			if tc.sig != nil {
				deadline := time.Now().Add(60 * time.Second)
				for !strings.Contains(stderr.String(), `"stage":"read_profiles"`) && time.Now().Before(deadline) {
					time.Sleep(10 * time.Millisecond)
				}
				cmd.Process.Signal(tc.sig)
			}
			code := exitOf(cmd.Wait())
			if code != tc.code {
				t.Fatalf("exit %d, want %d\n%s", code, tc.code, stderr.String())
			}
			recs := checkJSONLines(t, stderr.String())
			if tc.want != "" && !hasMsg(recs, tc.want) {
				t.Errorf("no %q line:\n%s", tc.want, stderr.String())
			}
			if code == 0 {
				if tc.args != nil && tc.args[0] == "help" && stderr.String() != "" {
					t.Errorf("help wrote to stderr:\n%s", stderr.String())
				}
				return
			}
			if len(recs) == 0 {
				t.Fatal("a failure with nothing on stderr")
			}
			last := recs[len(recs)-1]
			name := "batchmatch"
			if tc.args != nil {
				if _, ok := lookupCommand(tc.args[0]); ok {
					name = tc.args[0]
				}
			}
			errText, _ := last["error"].(string)
			if last["msg"] != name+" failed" || last["level"] != "ERROR" || fmt.Sprint(last["exit_code"]) != fmt.Sprint(code) || errText == "" {
				t.Errorf("last line %v, want %q with exit_code %d and the error", last, name+" failed", code)
			}
			switch tc.sig {
			case syscall.SIGTERM, os.Interrupt:
				want := map[os.Signal]string{syscall.SIGTERM: "SIGTERM", os.Interrupt: "SIGINT"}[tc.sig]
				if last["signal"] != want || !strings.Contains(errText, want) || strings.Contains(errText, "context canceled") {
					t.Errorf("last line %v does not name %s", last, want)
				}
			}
			if code == exitDataErr && (!strings.Contains(errText, "by reason: ") || strings.Contains(errText, "map[")) {
				t.Errorf("the reasons are not a sorted reason=count list: %s", errText)
			}
		})
	}
}

// hasMsg reports whether a record has the message msg.
func hasMsg(recs []map[string]any, msg string) bool {
	for _, r := range recs {
		if r["msg"] == msg {
			return true
		}
	}
	return false
}

// logText is stderr with its JSON lines decoded: each record's values as
// text, one per line (so that a message quoting a name reads as written);
// other lines as they are.
func logText(stderr string) string {
	var b strings.Builder
	for _, line := range strings.Split(stderr, "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil {
			b.WriteString(line + "\n")
			continue
		}
		for _, k := range slices.Sorted(maps.Keys(rec)) {
			fmt.Fprintf(&b, "%s=%v\n", k, rec[k])
		}
	}
	return b.String()
}
