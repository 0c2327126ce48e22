package node

import (
	"runtime"
	"runtime/debug"
	"testing"
)

// TestBuildFrom: what runtime/debug and the linker report becomes the
// Build that `entente version`, /v1/status and entente_build_info show.
func TestBuildFrom(t *testing.T) {
	vcs := func(version string, settings ...string) *debug.BuildInfo {
		bi := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/entente-net/entente", Version: version}}
		for i := 0; i+1 < len(settings); i += 2 {
			bi.Settings = append(bi.Settings, debug.BuildSetting{Key: settings[i], Value: settings[i+1]})
		}
		return bi
	}
	const rev = "5dbd2e933dc95c1c0c5c9f5ba58a6515af244e3d"
	for _, c := range []struct {
		name            string
		bi              *debug.BuildInfo
		version, commit string // linker-set
		want            Build
	}{
		{name: "no build info at all", want: Build{Version: "(devel)", GoVersion: runtime.Version()}},
		{name: "built without VCS information (-buildvcs=false)", bi: vcs("(devel)"),
			want: Build{Version: "(devel)", GoVersion: "go1.26.8"}},
		{name: "no main module version", bi: vcs(""),
			want: Build{Version: "(devel)", GoVersion: "go1.26.8"}},
		{name: "a release", bi: vcs("v1.2.0"),
			want: Build{Version: "v1.2.0", GoVersion: "go1.26.8"}},
		{name: "a clean checkout", bi: vcs("v0.0.0-20261205120000-5dbd2e933dc9",
			"vcs", "git", "vcs.revision", rev, "vcs.time", "2026-12-05T12:00:00Z", "vcs.modified", "false"),
			want: Build{Version: "v0.0.0-20261205120000-5dbd2e933dc9", Commit: rev, CommitTime: "2026-12-05T12:00:00Z", GoVersion: "go1.26.8"}},
		{name: "a modified checkout", bi: vcs("v0.0.0-20261205120000-5dbd2e933dc9+dirty",
			"vcs.revision", rev, "vcs.modified", "true"),
			want: Build{Version: "v0.0.0-20261205120000-5dbd2e933dc9+dirty", Commit: rev, Modified: true, GoVersion: "go1.26.8"}},
		{name: "linker-set, no VCS information (the Dockerfile)", bi: vcs("(devel)"), version: "v1.2.0-3-g5dbd2e9", commit: rev,
			want: Build{Version: "v1.2.0-3-g5dbd2e9", Commit: rev, GoVersion: "go1.26.8"}},
		{name: "linker-set version over a checkout's", bi: vcs("v0.0.0-20261205120000-5dbd2e933dc9+dirty",
			"vcs.revision", rev, "vcs.modified", "true"), version: "v1.2.0-dirty",
			want: Build{Version: "v1.2.0-dirty", Commit: rev, Modified: true, GoVersion: "go1.26.8"}},
		{name: "linker-set commit of another checkout", bi: vcs("(devel)",
			"vcs.revision", rev, "vcs.time", "2026-12-05T12:00:00Z", "vcs.modified", "true"), commit: "0123456789abcdef0123456789abcdef01234567",
			want: Build{Version: "(devel)", Commit: "0123456789abcdef0123456789abcdef01234567", GoVersion: "go1.26.8"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := buildFrom(c.bi, c.version, c.commit); got != c.want {
				t.Errorf("buildFrom = %+v\nwant          %+v", got, c.want)
			}
		})
	}
}
