package dkim

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/gosendmail/gosendmail/pkg/dns/dnstest"
	"github.com/gosendmail/gosendmail/pkg/mailerr"
)

// runCLI runs "smtpd ARGS..." with the dkim command attached as cmd/smtpd
// attaches it, and returns the exit code and what it printed.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var cfgFlag string
	root := &cobra.Command{Use: "smtpd", SilenceUsage: true, SilenceErrors: true}
	root.PersistentFlags().StringVar(&cfgFlag, "config", "", "configuration file")
	root.AddCommand(Command(func() string { return cfgFlag }))
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	err := root.Execute()
	if err != nil {
		fmt.Fprintf(&errOut, "smtpd: %v\n", err)
	}
	return mailerr.ExitCode(err), out.String(), errOut.String()
}

func TestCommandKeygenAndCheck(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	code, out, errOut := runCLI(t, "dkim", "keygen", "-d", "example.com", "-s", "rsa2026", "-b", "1024", "-D", keys)
	if code != 0 {
		t.Fatalf("keygen rsa: exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"private key:  " + filepath.Join(keys, "rsa2026.private"),
		"Publish this TXT record at rsa2026._domainkey.example.com:\n\nv=DKIM1; h=sha256; k=rsa; p=",
		"rsa2026._domainkey.example.com  example.com:rsa2026:" + filepath.Join(keys, "rsa2026.private"),
		"*@example.com  rsa2026._domainkey.example.com",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("keygen output lacks %q:\n%s", want, out)
		}
	}
	if code, _, errOut := runCLI(t, "dkim", "keygen", "-d", "example.com", "-s", "ed2026", "--ed25519", "-D", keys); code != 0 {
		t.Fatalf("keygen ed25519: exit %d: %s", code, errOut)
	}

	// The tables as the keygen output told us to write them.
	kt := filepath.Join(dir, "KeyTable")
	st := filepath.Join(dir, "SigningTable")
	os.WriteFile(kt, []byte(fmt.Sprintf(
		"rsa2026._domainkey.example.com example.com:rsa2026:%s/rsa2026.private\n"+
			"ed2026._domainkey.example.com example.com:ed2026:%s/ed2026.private\n", keys, keys)), 0o644)
	os.WriteFile(st, []byte("*@example.com rsa2026._domainkey.example.com\n*@example.com ed2026._domainkey.example.com\n"), 0o644)
	srv := dnstest.NewServer(t)
	cfg := filepath.Join(dir, "gosendmail.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`hostname = "mx.example.com"
[delivery]
dns_server = %q
[dkim]
key_table = %q
signing_table = "refile:%s"
`, srv.Addr(), kt, st)), 0o644)

	code, out, _ = runCLI(t, "--config", cfg, "dkim", "check")
	if code != mailerr.ExConfig || strings.Count(out, ": missing: ") != 2 {
		t.Errorf("check before publishing: exit %d:\n%s", code, out)
	}

	// Publish what keygen wrote, from its zone file.
	for _, sel := range []string{"rsa2026", "ed2026"} {
		_, strs := parseZone(t, filepath.Join(keys, sel+".txt"), "example.com")
		srv.TXT(sel+"._domainkey.example.com", strings.Join(strs, ""))
	}
	code, out, errOut = runCLI(t, "--config", cfg, "dkim", "check")
	if code != 0 || out != "example.com rsa2026: ok: rsa 1024-bit key published at rsa2026._domainkey.example.com and matches the private key\n"+
		"example.com ed2026: ok: ed25519 key published at ed2026._domainkey.example.com and matches the private key\n" {
		t.Errorf("check after publishing: exit %d:\n%s%s", code, out, errOut)
	}
}

func TestCommandErrors(t *testing.T) {
	dir := t.TempDir()
	noDKIM := filepath.Join(dir, "plain.toml")
	os.WriteFile(noDKIM, []byte("hostname = \"mx.example.com\"\n"), 0o644)
	badConfig := filepath.Join(dir, "bad.toml")
	os.WriteFile(badConfig, []byte("[dkim]\nkey_tabel = \"x\"\n"), 0o644)
	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"dkim"}, mailerr.ExUsage, "say keygen or check"},
		{[]string{"dkim", "keygen", "-s", "sel", "-D", dir}, mailerr.ExUsage, "-d DOMAIN and -s SELECTOR are required"},
		{[]string{"dkim", "keygen", "-d", "example.com", "-s", "sel", "--ed25519", "-b", "2048", "-D", dir}, mailerr.ExUsage, "-b is for RSA keys"},
		{[]string{"dkim", "keygen", "-d", "example.com", "-s", "sel", "-b", "512", "-D", dir}, mailerr.ExUsage, "1024 to 4096"},
		{[]string{"--config", noDKIM, "dkim", "check"}, mailerr.ExConfig, "sets no [dkim] key_table"},
		{[]string{"--config", badConfig, "dkim", "check"}, mailerr.ExConfig, "key_tabel"},
		{[]string{"--config", filepath.Join(dir, "absent.toml"), "dkim", "check"}, mailerr.ExConfig, "no such file"},
	} {
		code, _, errOut := runCLI(t, c.args...)
		if code != c.code || !strings.Contains(errOut, c.msg) {
			t.Errorf("%q: exit %d, stderr %q; want %d and %q", c.args, code, errOut, c.code, c.msg)
		}
	}
}
