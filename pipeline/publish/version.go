package publish

import (
	"regexp"
	"runtime/debug"
	"strings"
	"sync"
)

// Version is the release version: what the image is tagged with (`make
// version`, deploy/kubernetes's TestImageIsTheVersion) and what a build
// whose build information names no release reports (a build from a work
// tree, the Docker build, which has no .git). It also enters ConfigHash, so
// that the run id never depends on how the binary was built. Release by
// setting it and tagging the commit v<Version>.
const Version = "0.1.0"

// SpecVersion is the data contract version the outputs follow (SPEC.md).
const SpecVersion = "1.1"

// BuildInfo is what the binary knows of its own build
// (runtime/debug.ReadBuildInfo).
type BuildInfo struct {
	// Version is the main module's version when it is a release (a build
	// by `go install …@v1.2.3`, or from a work tree at a release tag),
	// without the "v"; else the Version constant.
	Version string
	// Module is the main module's version as Go recorded it: a release,
	// a pseudo-version (v0.0.0-<time>-<revision>, with +dirty for a
	// modified work tree) or "(devel)"; "" without build information.
	Module string
	// Revision is the VCS revision the binary was built from (vcs.revision,
	// else the one a pseudo-version names); "" when unknown (a build with
	// -buildvcs=false, such as the image's).
	Revision string
	// Modified reports uncommitted changes in the work tree it was built
	// from (vcs.modified, or a +dirty module version).
	Modified bool
}

var (
	releaseRE = regexp.MustCompile(`^v([0-9]+\.[0-9]+\.[0-9]+(?:-[0-9A-Za-z.-]+)?)$`)
	// a pseudo-version ends in -<14-digit time>-<12-hex revision>
	pseudoRE = regexp.MustCompile(`[-.]?[0-9]{14}-([0-9a-f]{12})$`)
)

// BuildOf reads the build information the Go toolchain recorded (nil: none,
// e.g. a binary whose information was stripped).
func BuildOf(bi *debug.BuildInfo) BuildInfo {
	b := BuildInfo{Version: Version}
	if bi == nil {
		return b
	}
	b.Module = bi.Main.Version
	mod, dirty := strings.CutSuffix(b.Module, "+dirty")
	b.Modified = dirty
	if m := pseudoRE.FindStringSubmatch(mod); m != nil {
		b.Revision = m[1]
	} else if m := releaseRE.FindStringSubmatch(mod); m != nil && !dirty {
		b.Version = m[1]
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Revision = s.Value
		case "vcs.modified":
			b.Modified = s.Value == "true"
		}
	}
	return b
}

// Build is this binary's build information, read once.
var Build = sync.OnceValue(func() BuildInfo {
	bi, _ := debug.ReadBuildInfo()
	return BuildOf(bi)
})

// ShortRevision is the first 12 digits of the revision (as in Go's
// pseudo-versions), with "-dirty" for a modified work tree; "" when the
// revision is unknown.
func (b BuildInfo) ShortRevision() string {
	if b.Revision == "" {
		return ""
	}
	r := b.Revision
	if len(r) > 12 {
		r = r[:12]
	}
	if b.Modified {
		r += "-dirty"
	}
	return r
}

// CreatedBy is the Parquet footer's created_by, in the form readers parse
// ("<application> version <version> (build <hash>)"): "batchmatch version
// 0.1.0 (build 0123456789ab)", or "batchmatch version 0.1.0" when the
// revision is unknown.
func (b BuildInfo) CreatedBy() string {
	s := "batchmatch version " + b.Version
	if r := b.ShortRevision(); r != "" {
		s += " (build " + r + ")"
	}
	return s
}
