package publish

import (
	"runtime/debug"
	"testing"
)

// TestBuildOf: the version, revision and dirty flag come from the build
// information; without a release in it the Version constant stands, and
// created_by never reads "(build )".
func TestBuildOf(t *testing.T) {
	vcs := func(rev, modified string) []debug.BuildSetting {
		return []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: modified}}
	}
	const rev = "6d70c46cc4f1c61a77a57e8d363bb4a9b72daca1"
	for _, tc := range []struct {
		name      string
		bi        *debug.BuildInfo
		version   string
		revision  string
		modified  bool
		createdBy string
	}{
		{"no build information", nil, Version, "", false, "batchmatch version " + Version},
		{"the image's build (no VCS, -buildvcs=false)", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}},
			Version, "", false, "batchmatch version " + Version},
		{"a work tree", &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261130104002-6d70c46cc4f1"}, Settings: vcs(rev, "false")},
			Version, rev, false, "batchmatch version " + Version + " (build 6d70c46cc4f1)"},
		{"a modified work tree", &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261130104002-6d70c46cc4f1+dirty"}, Settings: vcs(rev, "true")},
			Version, rev, true, "batchmatch version " + Version + " (build 6d70c46cc4f1-dirty)"},
		{"a work tree at a release tag", &debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}, Settings: vcs(rev, "false")},
			"1.2.3", rev, false, "batchmatch version 1.2.3 (build 6d70c46cc4f1)"},
		{"a release tag, modified", &debug.BuildInfo{Main: debug.Module{Version: "v1.2.3+dirty"}, Settings: vcs(rev, "true")},
			Version, rev, true, "batchmatch version " + Version + " (build 6d70c46cc4f1-dirty)"},
		{"go install …@v1.2.3 (no VCS)", &debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}},
			"1.2.3", "", false, "batchmatch version 1.2.3"},
		{"a pre-release", &debug.BuildInfo{Main: debug.Module{Version: "v1.3.0-rc.1"}}, "1.3.0-rc.1", "", false, "batchmatch version 1.3.0-rc.1"},
		{"go install …@<commit> (pseudo-version after a tag)", &debug.BuildInfo{Main: debug.Module{Version: "v1.2.4-0.20261130104002-6d70c46cc4f1"}},
			Version, "6d70c46cc4f1", false, "batchmatch version " + Version + " (build 6d70c46cc4f1)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := BuildOf(tc.bi)
			if b.Version != tc.version || b.Revision != tc.revision || b.Modified != tc.modified {
				t.Errorf("BuildOf = %+v, want version %q, revision %q, modified %v", b, tc.version, tc.revision, tc.modified)
			}
			if got := b.CreatedBy(); got != tc.createdBy {
				t.Errorf("CreatedBy() = %q, want %q", got, tc.createdBy)
			}
		})
	}
}
