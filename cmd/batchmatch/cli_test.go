package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/osmosis/batchmatch/kernels"
	"github.com/osmosis/batchmatch/pipeline/failure"
	"github.com/osmosis/batchmatch/pipeline/publish"
)

// TestCommandFlags: each command takes exactly its own flags.
func TestCommandFlags(t *testing.T) {
	logs := []string{"log-format", "log-level"}
	input := []string{"profiles", "as-of", "blocks", "suppress", "workers", "max-reject-ratio", "trait-dim", "questions"}
	score := []string{"k", "weights"}
	output := []string{"out", "overwrite", "pseudonymize-key", "memory-limit", "blocking", "report", "partition", "spool-dir"}
	metrics := []string{"metrics-push", "metrics-textfile"}
	shard := []string{"shard-index", "shard-count"}
	runFlags := slices.Concat(input, score, output, metrics, shard, logs, []string{"incremental"})
	want := map[string][]string{
		"gen":      slices.Concat([]string{"n", "shards", "seed", "out", "trait-dim", "questions", "invalid-ratio", "as-of", "variable-width", "open", "workers", "night", "churn"}, logs),
		"run":      runFlags,
		"night":    runFlags,
		"commit":   slices.Concat([]string{"out", "as-of", "partition", "shard-count", "overwrite", "workers", "report", "pseudonymize-key", "spool-dir"}, metrics, logs),
		"validate": slices.Concat(input, logs),
		"explain":  slices.Concat(input, score, logs, []string{"partition"}),
		"report":   slices.Concat([]string{"output"}, logs),
		"version":  logs,
	}
	for _, c := range commands() {
		t.Run(c.name, func(t *testing.T) {
			fs := pflag.NewFlagSet(c.name, pflag.ContinueOnError)
			c.flags(fs)
			var got []string
			fs.VisitAll(func(f *pflag.Flag) { got = append(got, f.Name) })
			slices.Sort(got)
			w := slices.Sorted(slices.Values(want[c.name]))
			if !slices.Equal(got, w) {
				t.Errorf("flags %v, want %v", got, w)
			}
		})
	}
	if len(want) != len(commands()) {
		t.Errorf("commands %d, this test knows %v", len(commands()), slices.Collect(maps.Keys(want)))
	}
}

// TestForeignFlags: a flag of another command is a usage error, before
// anything is read; the command's own flags get past parsing.
func TestForeignFlags(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		foreign bool
	}{
		{[]string{"validate", "--profiles", "p", "--out", "x", "--report", "--overwrite"}, true},
		{[]string{"validate", "--profiles", "p", "--k", "5"}, true},
		{[]string{"validate", "--profiles", "p", "--metrics-textfile", "m.prom"}, true},
		{[]string{"explain", "--profiles", "p", "--blocking=false", "1"}, true},
		{[]string{"explain", "--profiles", "p", "--memory-limit", "1GiB", "1"}, true},
		{[]string{"report", "--profiles", "p", "part"}, true},
		{[]string{"commit", "--profiles", "p", "--out", "o"}, true},
		{[]string{"gen", "--profiles", "p"}, true},
		{[]string{"version", "--out", "o"}, true},
		{[]string{"version", "extra"}, true},
		{[]string{"report", "--log-format", "json", "--log-level", "debug"}, false}, // then: no partition given
		{[]string{"version", "--log-format", "JSON", "--log-level", "WARN"}, false},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			err := run(context.Background(), tc.args, io.Discard, io.Discard)
			foreign := err != nil && (strings.Contains(err.Error(), "unknown flag") || strings.Contains(err.Error(), "unexpected argument"))
			if foreign != tc.foreign {
				t.Fatalf("%v", err)
			}
			if tc.foreign && !errors.Is(err, failure.Usage) {
				t.Fatalf("%v is not a usage error", err)
			}
			if foreign && !strings.Contains(err.Error(), "batchmatch "+tc.args[0]+" --help") {
				t.Errorf("%v does not point at the command's help", err)
			}
		})
	}
}

// TestHelp: help goes to stdout; `help COMMAND` and `COMMAND --help` print
// the command's own help; a bare batchmatch prints the usage and exits 64.
func TestHelp(t *testing.T) {
	execute := func(args ...string) (string, string, int) {
		var stdout, stderr bytes.Buffer
		code := newInvocation(args, &stdout, &stderr).execute(context.Background(), args)
		return stdout.String(), stderr.String(), code
	}
	for _, c := range commands() {
		stdout, stderr, code := execute("help", c.name)
		if code != 0 || stderr != "" || !strings.HasPrefix(stdout, "Usage: batchmatch "+c.name+" ") || !strings.Contains(stdout, "--log-format") {
			t.Errorf("help %s: exit %d, stdout:\n%s\nstderr:\n%s", c.name, code, stdout, stderr)
		}
		if again, _, code := execute(c.name, "--help"); code != 0 || again != stdout {
			t.Errorf("%s --help differs from help %s:\n%s", c.name, c.name, again)
		}
		if again, _, code := execute(c.name, "-h"); code != 0 || again != stdout {
			t.Errorf("%s -h differs from help %s:\n%s", c.name, c.name, again)
		}
	}
	for _, args := range [][]string{{"help"}, {"--help"}, {"-h"}} {
		if stdout, stderr, code := execute(args...); code != 0 || stderr != "" || stdout != usage() {
			t.Errorf("%v: exit %d\n%s%s", args, code, stdout, stderr)
		}
	}
	stdout, stderr, code := execute()
	if code != exitUsage || stdout != usage() || !strings.Contains(stderr, "no command given") || !strings.Contains(stderr, "batchmatch help") {
		t.Errorf("bare: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	for _, tc := range []struct {
		args []string
		say  string
	}{
		{[]string{"help", "nope"}, "the commands are gen, run, commit, night"},
		{[]string{"nope"}, "the commands are gen, run, commit, night"},
		{[]string{"help", "run", "commit"}, "help takes one command"},
	} {
		if _, stderr, code := execute(tc.args...); code != exitUsage || !strings.Contains(stderr, tc.say) {
			t.Errorf("%v: exit %d, want %d saying %q\n%s", tc.args, code, exitUsage, tc.say, stderr)
		}
	}
	for _, c := range commands() {
		if !strings.Contains(usage(), "batchmatch "+c.name) {
			t.Errorf("the usage does not list %s", c.name)
		}
	}
}

// TestFlagHelp: the flags' help reads right: --shard-index is about task
// shards and its value is an int (pflag takes a back-quoted word for the
// value's name), --weights shows its default as it is typed.
func TestFlagHelp(t *testing.T) {
	c, _ := lookupCommand("run")
	help := c.help()
	_, flags, _ := strings.Cut(help, "\nFlags:\n")
	line := func(flag string) string {
		for _, l := range strings.Split(flags, "\n") {
			if strings.HasPrefix(strings.TrimSpace(l), flag+" ") {
				return l
			}
		}
		t.Fatalf("no %s in\n%s", flag, help)
		return ""
	}
	si := line("--shard-index")
	if !strings.Contains(si, "--shard-index int ") || strings.Contains(si, "quer") || !strings.Contains(si, "scoring tasks") {
		t.Errorf("--shard-index help: %s", si)
	}
	if w := line("--weights"); !strings.Contains(w, "(default 0.4,0.35,0.15,0.1)") {
		t.Errorf("--weights help: %s", w)
	}
	if strings.Contains(help, "`") {
		t.Errorf("a backtick in the help:\n%s", help)
	}
}

// TestLogOptions: --log-format and --log-level in any case; bad values are
// usage errors.
func TestLogOptions(t *testing.T) {
	for _, tc := range []struct {
		format, level string
		json, ok      bool
	}{
		{"json", "info", true, true},
		{"JSON", "WARN", true, true},
		{"Text", "Debug", false, true},
		{"auto", "error", true, true}, // not a terminal
		{"xml", "info", false, false},
		{"json", "loud", false, false},
	} {
		o := logOptions{Format: tc.format, Level: tc.level}
		var b bytes.Buffer
		log, err := o.logger(&b)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, failure.Usage)) {
			t.Errorf("%+v: %v", o, err)
			continue
		}
		if !tc.ok {
			continue
		}
		log.Error("x")
		if got := strings.HasPrefix(b.String(), "{"); got != tc.json {
			t.Errorf("%+v: %q", o, b.String())
		}
	}
}

// TestVersionLine: version says the release, the build's revision (dirty
// or not), the module version when it says more, and the kernel path.
func TestVersionLine(t *testing.T) {
	const rev = "6d70c46cc4f1c61a77a57e8d363bb4a9b72daca1"
	for _, tc := range []struct {
		b    publish.BuildInfo
		want string
	}{
		{publish.BuildInfo{Version: "0.1.0", Module: "(devel)"}, "batchmatch 0.1.0 (build unknown, spec v" + publish.SpecVersion + ", go1.26.8, dot kernel avx512)"},
		{publish.BuildInfo{Version: "0.1.0", Module: "v0.0.0-20261130104002-6d70c46cc4f1+dirty", Revision: rev, Modified: true},
			"batchmatch 0.1.0 (build 6d70c46cc4f1-dirty, module v0.0.0-20261130104002-6d70c46cc4f1+dirty, spec v" + publish.SpecVersion + ", go1.26.8, dot kernel avx512)"},
		{publish.BuildInfo{Version: "1.2.3", Module: "v1.2.3", Revision: rev}, "batchmatch 1.2.3 (build 6d70c46cc4f1, spec v" + publish.SpecVersion + ", go1.26.8, dot kernel avx512)"},
	} {
		if got := versionLine(tc.b, "go1.26.8", "avx512"); got != tc.want {
			t.Errorf("versionLine(%+v)\n = %s\nwant %s", tc.b, got, tc.want)
		}
	}
	var stdout bytes.Buffer
	if err := run(context.Background(), []string{"version"}, &stdout, io.Discard); err != nil {
		t.Fatal(err)
	}
	if got := stdout.String(); !strings.HasPrefix(got, "batchmatch "+publish.Build().Version+" (") || !strings.HasSuffix(got, "dot kernel "+kernels.Implementation()+")\n") {
		t.Errorf("version: %q", got)
	}
}

// TestConflictingFlags: flags each command takes, but not together, are
// refused as usage errors naming the flag, before anything is read.
func TestConflictingFlags(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--profiles", dir, "--out", filepath.Join(dir, "o"), "--incremental", "--shard-count", "2", "--shard-index", "0"}, "--incremental"},
		{[]string{"night", "--profiles", dir, "--out", filepath.Join(dir, "o"), "--as-of", "2026-11-24", "--incremental", "--shard-count", "2", "--shard-index", "1"}, "--incremental"},
		{[]string{"explain", "--partition", filepath.Join(dir, "dt=2026-11-24"), "--profiles", dir, "1"}, "--profiles"},
		{[]string{"explain", "--partition", filepath.Join(dir, "dt=2026-11-24"), "--k", "5", "1"}, "--k"},
		{[]string{"explain", "--partition", filepath.Join(dir, "dt=2026-11-24"), "--as-of", "2026-11-24", "1"}, "--as-of"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			err := run(context.Background(), tc.args, io.Discard, io.Discard)
			if !errors.Is(err, failure.Usage) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want a usage error naming %s", err, tc.want)
			}
		})
	}
}

// TestExplainPartitionRefusals: explain --partition on what is not a
// published night, or asked about one member twice, exits with the code
// that says what is wrong (a missing partition is a missing input, 66, not
// a transient I/O error a scheduler would retry).
func TestExplainPartitionRefusals(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"explain", "--partition", filepath.Join(dir, "dt=2026-12-04"), "1"}, 66},
		{[]string{"explain", "--partition", filepath.Join(dir, "nope", "dt=2026-11-24"), "1"}, 66},
		{[]string{"explain", "--partition=", "1"}, 64},
		{[]string{"explain", "--partition", "file://relative/dt=2026-11-24", "1"}, 78},
		{[]string{"explain", "--partition", filepath.Join(dir, "dt=2026-11-24"), "5", "5"}, 64},
		{[]string{"explain", "--profiles", dir, "5", "5"}, 64},
		{[]string{"run", "--profiles", dir, "--out", "file://relative", "--as-of", "2026-11-24"}, 78},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			err := run(context.Background(), tc.args, io.Discard, io.Discard)
			if got := exitCode(err, false, false); got != tc.code {
				t.Fatalf("exit %d (%v), want %d", got, err, tc.code)
			}
		})
	}
}
