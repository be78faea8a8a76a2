// Package batchmatch_test checks the architecture: which package of the
// module may import which (docs/ARCHITECTURE.md draws the graph). The
// imports go one way, from cmd down to the stages and from each stage to
// the ones before it, and the compiler cannot check that by itself for
// packages that merely could import each other.
package batchmatch_test

import (
	"bufio"
	"bytes"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/osmosis/batchmatch/"

// allowed is, for every package of the module, the packages of the module
// it may import (not counting tests). Everything else is forbidden, a
// package that is not listed included.
var allowed = map[string][]string{
	".":                           nil, // this test
	"deploy/slurm":                nil, // a test of the Slurm deployment
	"kernels":                     nil,
	"pipeline/store":              nil,
	"pipeline/store/storetest":    nil,
	"pipeline/failure":            {"pipeline/store"},
	"pipeline/profile":            nil,
	"pipeline/read":               {"kernels", "pipeline/failure", "pipeline/profile", "pipeline/store"},
	"pipeline/match":              {"kernels", "pipeline/failure", "pipeline/read"},
	"pipeline/publish":            {"pipeline/failure", "pipeline/match", "pipeline/read", "pipeline/store"},
	"pipeline/report":             {"pipeline/failure", "pipeline/publish", "pipeline/read", "pipeline/store"},
	"pipeline/synth":              {"pipeline/failure", "pipeline/profile"},
	"pipeline":                    {"pipeline/failure", "pipeline/match", "pipeline/publish", "pipeline/read", "pipeline/report", "pipeline/store"},
	"pipeline/internal/reference": {"pipeline/profile", "pipeline/synth"},
	"pipeline/internal/runtest":   {"pipeline", "pipeline/match", "pipeline/publish", "pipeline/synth"},
	"cmd/batchmatch": {"kernels", "pipeline", "pipeline/failure", "pipeline/match", "pipeline/profile", "pipeline/publish",
		"pipeline/report", "pipeline/synth"},
	"bench": {"kernels", "pipeline/match", "pipeline/publish", "pipeline/read", "pipeline/synth"},
}

// only lists third-party packages (by prefix) that only some packages may
// import.
var only = map[string][]string{
	"github.com/spf13/pflag":        {"cmd/batchmatch", "bench"}, // flags are the commands' business
	"github.com/prometheus/":        {"cmd/batchmatch"},          // metrics too
	"gonum.org/v1/plot":             {"pipeline/report"},         // charts are the report's
	"gocloud.dev/":                  {"pipeline/store"},          // object storage is behind store
	"github.com/fsouza/":            {"pipeline/store/storetest"},
	"github.com/johannesboyne/":     {"pipeline/store/storetest"},
	"github.com/apache/arrow-go/":   {"pipeline", "pipeline/profile", "pipeline/read", "pipeline/synth", "pipeline/internal/runtest"},
	"github.com/parquet-go/":        {"pipeline/publish", "pipeline/report", "pipeline/synth", "bench"},
	"golang.org/x/crypto/x509roots": {"cmd/batchmatch"},
}

// TestImports fails when a package of the module imports a package of the
// module that allowed does not list for it, or a third-party package that
// only keeps for others; and when kernels depends, even indirectly, on
// anything but the standard library and x/sys, or store on anything of the
// module or on a table format.
func TestImports(t *testing.T) {
	imports := goList(t, "{{.ImportPath}} {{join .Imports \" \"}}", "./...")
	seen := map[string]bool{}
	for pkg, imps := range imports {
		seen[pkg] = true
		ok, listed := allowed[pkg]
		if !listed {
			t.Errorf("package %s is not in the table of allowed imports (imports_test.go): add it, with what it may import", pkg)
			continue
		}
		for _, imp := range imps {
			if own, found := strings.CutPrefix(imp, module); found {
				if !slices.Contains(ok, own) {
					t.Errorf("%s imports %s, which it must not (allowed: %v)", pkg, own, ok)
				}
				continue
			}
			for prefix, who := range only {
				if strings.HasPrefix(imp, prefix) && !slices.Contains(who, pkg) {
					t.Errorf("%s imports %s: only %v may", pkg, imp, who)
				}
			}
		}
	}
	for pkg := range allowed {
		if !seen[pkg] {
			t.Errorf("the table lists %s, which is not a package any more", pkg)
		}
	}
	// kernels: the standard library and x/sys (CPU features), nothing else.
	for _, dep := range goListDeps(t, "./kernels") {
		if dep != module+"kernels" && !std(dep) && !strings.HasPrefix(dep, "golang.org/x/sys/") {
			t.Errorf("kernels depends on %s: it must know neither Arrow, Parquet nor the pipeline", dep)
		}
	}
	// store: nothing of the module, and no table format.
	for _, dep := range goListDeps(t, "./pipeline/store") {
		own, found := strings.CutPrefix(dep, module)
		switch {
		case found && own != "pipeline/store":
			t.Errorf("pipeline/store depends on %s: it must know nothing of the pipeline", own)
		case strings.HasPrefix(dep, "github.com/apache/arrow-go/"), strings.HasPrefix(dep, "github.com/parquet-go/"):
			t.Errorf("pipeline/store depends on %s: it must not know tables", dep)
		}
	}
}

// goList runs go list with the template format and returns, per package,
// the rest of its line split on spaces (the package itself for -deps).
func goList(t *testing.T, format string, args ...string) map[string][]string {
	t.Helper()
	out := run(t, append([]string{"list", "-f", format}, args...)...)
	res := map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		pkg := strings.TrimPrefix(f[0], module)
		if pkg == strings.TrimSuffix(module, "/") {
			pkg = "."
		}
		res[pkg] = f[1:]
	}
	return res
}

// goListDeps is every package pkg depends on, itself included.
func goListDeps(t *testing.T, pkg string) []string {
	t.Helper()
	return strings.Fields(string(run(t, "list", "-deps", "-f", "{{.ImportPath}}", pkg)))
}

func run(t *testing.T, args ...string) []byte {
	t.Helper()
	cmd := exec.Command("go", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// std reports whether an import path is of the standard library (no dot
// in its first element).
func std(path string) bool {
	first, _, _ := strings.Cut(path, "/")
	return !strings.Contains(first, ".")
}
