// Package test holds the black-box tests: they build the real binaries once
// (TestMain) and drive them as a user would, through testscript transcripts
// in testdata/*.txtar and Go tests that need more control (crashes, users).
package test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// binDir holds the binaries built for this run; crashDir the same built
// with -tags crashtest.
var binDir, crashDir string

func TestMain(m *testing.M) {
	tmp, err := os.MkdirTemp("", "gosendmail-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// Other users (the unprivileged-submission tests) must reach the binaries.
	os.Chmod(tmp, 0o755)
	binDir = filepath.Join(tmp, "bin")
	crashDir = filepath.Join(tmp, "crashbin")
	code := 1
	if err := build(binDir); err != nil {
		fmt.Fprintln(os.Stderr, err)
	} else if err := build(crashDir, "-tags", "crashtest"); err != nil {
		fmt.Fprintln(os.Stderr, err)
	} else {
		code = m.Run()
	}
	os.RemoveAll(tmp)
	os.Exit(code)
}

func build(dir string, flags ...string) error {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Dir(filepath.Dir(file))
	args := append([]string{"build", "-o", dir + "/"}, flags...)
	args = append(args, "./cmd/...")
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %v\n%s", err, out)
	}
	return nil
}
