package node

import (
	"runtime"
	"runtime/debug"
)

// Build is what this binary was built from: what `entente version` prints,
// GET /v1/status gives as its version, and the entente_build_info gauge
// carries as labels. BuildInfo reads it; nothing else does.
type Build struct {
	// Version is the main module's version: a release tag (v1.2.0), the
	// pseudo-version the go command derives from a git checkout
	// (v0.0.0-20261205120000-5dbd2e933dc9, with +dirty for a modified work
	// tree), or "(devel)" when the build knew neither.
	Version string `json:"version"`
	// Commit is the VCS revision; "" when the build had no VCS
	// information (-buildvcs=false, a module download, a tarball).
	Commit string `json:"commit,omitempty"`
	// Modified reports uncommitted changes in the work tree the binary
	// was built from.
	Modified bool `json:"modified,omitempty"`
	// CommitTime is the revision's commit time (RFC 3339), when known.
	CommitTime string `json:"commit_time,omitempty"`
	// GoVersion is the toolchain that built the binary (go1.26.8).
	GoVersion string `json:"go_version"`
}

// DevelVersion is the version of a build that knew no better.
const DevelVersion = "(devel)"

// Set by the linker for builds that carry no VCS information of their own
// (deploy/Dockerfile builds without .git):
//
//	-ldflags "-X github.com/entente-net/entente/node.linkedVersion=v1.2.0
//	          -X github.com/entente-net/entente/node.linkedCommit=5dbd2e9…"
//
// A value set here wins over what runtime/debug reports.
var linkedVersion, linkedCommit string

// BuildInfo reports what this binary was built from.
func BuildInfo() Build {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		bi = nil
	}
	return buildFrom(bi, linkedVersion, linkedCommit)
}

// buildFrom is BuildInfo over a given build info (nil when the binary has
// none) and linker-set version and commit ("" when not set).
func buildFrom(bi *debug.BuildInfo, version, commit string) Build {
	b := Build{Version: DevelVersion, GoVersion: runtime.Version()}
	if bi != nil {
		if bi.Main.Version != "" {
			b.Version = bi.Main.Version
		}
		if bi.GoVersion != "" {
			b.GoVersion = bi.GoVersion
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				b.Commit = s.Value
			case "vcs.time":
				b.CommitTime = s.Value
			case "vcs.modified":
				b.Modified = s.Value == "true"
			}
		}
	}
	if version != "" {
		b.Version = version
	}
	if commit != "" && commit != b.Commit {
		// The linker's commit describes another checkout than the VCS
		// settings (if any): theirs do not apply to it.
		b.Commit, b.CommitTime, b.Modified = commit, "", false
	}
	return b
}
