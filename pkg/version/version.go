// Package version holds the release version, set at build time with
// -ldflags "-X github.com/gosendmail/gosendmail/pkg/version.Version=1.2.3".
package version

// Version is the gosendmail release.
var Version = "0.1.0-dev"
