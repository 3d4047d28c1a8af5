package test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// env is one temporary configuration root for Go-level black-box tests.
type env struct {
	t    *testing.T
	root string
	cfg  string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	root := t.TempDir()
	// Other users (the unprivileged-submission tests) must reach it.
	os.Chmod(filepath.Dir(root), 0o755)
	os.Chmod(root, 0o755)
	for _, d := range []string{"spool/mqueue", "spool/mqueue-client", "spool/mail", "etc"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cfg := filepath.Join(root, "etc/gosendmail.toml")
	if err := os.WriteFile(cfg, []byte(testConfig(root)), 0o644); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, "etc/aliases"), []byte("postmaster: root\n"), 0o644)
	return &env{t: t, root: root, cfg: cfg}
}

func (e *env) path(p string) string { return filepath.Join(e.root, p) }

// run runs a built binary with the env's configuration.
func (e *env) run(stdin []byte, bin string, args ...string) (stdout, stderr string, code int) {
	return runCmd(e.t, exec.Command(filepath.Join(binDir, bin), args...), stdin, "GOSENDMAIL_CONFIG="+e.cfg)
}

func runCmd(t *testing.T, cmd *exec.Cmd, stdin []byte, env ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd.Stdin = bytes.NewReader(stdin)
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.Env = append([]string{"PATH=/usr/bin:/bin"}, env...)
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%v: %v", cmd.Args, err)
	}
	return out.String(), errb.String(), code
}

// drops returns the names of the complete drop files.
func (e *env) drops() []string {
	ents, _ := os.ReadDir(e.path("spool/mqueue-client"))
	var out []string
	for _, d := range ents {
		if fi, err := d.Info(); err == nil && fi.Mode()&0o100 != 0 && !strings.HasPrefix(d.Name(), ".") {
			out = append(out, d.Name())
		}
	}
	return out
}
