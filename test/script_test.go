package test

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// TestScripts runs every testdata/*.txtar. Each script starts with:
//   - the built binaries first on PATH;
//   - $WORK/etc/gosendmail.toml (also $GOSENDMAIL_CONFIG) pointing every
//     path into $WORK: spool/mqueue, spool/mqueue-client, spool/mail,
//     etc/aliases, etc/local-host-names, etc/trusted-users, log file
//     $WORK/maillog, control socket $WORK/control; hostname test.example;
//   - empty spool directories and an etc/aliases with postmaster and root.
//
// A script may overwrite the config file or any etc/ file.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata",
		RequireExplicitExec: true,
		Setup:               setupScript,
		Cmds:                scriptCmds,
	})
}

func setupScript(e *testscript.Env) error {
	w := e.WorkDir
	e.Setenv("PATH", binDir+string(os.PathListSeparator)+e.Getenv("PATH"))
	for _, d := range []string{"spool/mqueue", "spool/mqueue-client", "spool/mail", "etc"} {
		if err := os.MkdirAll(filepath.Join(w, d), 0o755); err != nil {
			return err
		}
	}
	files := map[string]string{
		"etc/gosendmail.toml":  testConfig(w),
		"etc/aliases":          "postmaster: root\nMAILER-DAEMON: postmaster\n",
		"etc/local-host-names": "test.example\nlocalhost\n",
		"etc/trusted-users":    "",
	}
	for name, content := range files {
		p := filepath.Join(w, name)
		if _, err := os.Stat(p); err == nil {
			continue
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return err
		}
	}
	e.Setenv("GOSENDMAIL_CONFIG", filepath.Join(w, "etc/gosendmail.toml"))
	e.Setenv("PATH_SENDMAIL", filepath.Join(binDir, "sendmail"))
	e.Setenv("QUEUE", filepath.Join(w, "spool/mqueue"))
	e.Setenv("MAILDROP", filepath.Join(w, "spool/mqueue-client"))
	return nil
}

// testConfig is the configuration every black-box test starts from, with
// all paths under root.
func testConfig(root string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "hostname = %q\n", "test.example")
	for _, kv := range [][2]string{
		{"queue_dir", "spool/mqueue"}, {"maildrop_dir", "spool/mqueue-client"},
		{"mail_spool_dir", "spool/mail"}, {"aliases", "etc/aliases"},
		{"local_host_names", "etc/local-host-names"}, {"trusted_users", "etc/trusted-users"},
		{"virtusertable", "etc/virtusertable"}, {"access", "etc/access"},
		{"mailertable", "etc/mailertable"}, {"relay_domains", "etc/relay-domains"}, {"log", "maillog"},
	} {
		fmt.Fprintf(&b, "%s = %q\n", kv[0], filepath.Join(root, kv[1]))
	}
	// Unix socket paths are limited to 108 bytes; temporary directories
	// can be deeper than that.
	fmt.Fprintf(&b, "control_socket = %q\n", shortSocketPath(root))
	// Started as root by the tests, the daemon keeps its privileges: the
	// temporary tree is root's.
	b.WriteString("user = \"root\"\n")
	// Inline tables, so that scripts may append top-level keys. Listeners
	// bind port 0; the daemon logs the address it got (see waitlisten).
	b.WriteString(`listen = [{name = "MTA", address = "127.0.0.1:0"}, {name = "submission", address = "127.0.0.1:0", mode = "submission"}]` + "\n")
	return b.String()
}

// scriptCmds are the commands scripts may use besides testscript's own.
var scriptCmds = map[string]func(ts *testscript.TestScript, neg bool, args []string){}

// shortSocketPath returns a control socket path for a test root that fits
// in sun_path: the root's own path if short, else one under /tmp named
// after a hash of the root.
func shortSocketPath(root string) string {
	p := filepath.Join(root, "control")
	if len(p) < 100 {
		return p
	}
	sum := sha256.Sum256([]byte(root))
	return fmt.Sprintf("/tmp/gosendmail-%x.sock", sum[:8])
}
