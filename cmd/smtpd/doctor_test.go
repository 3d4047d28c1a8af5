package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/gosendmail/gosendmail/pkg/dkim"
	"github.com/gosendmail/gosendmail/pkg/dns/dnstest"
	"github.com/gosendmail/gosendmail/pkg/mailerr"
)

// runDoctor runs "smtpd ARGS..." with the doctor command attached as
// main attaches its commands, and returns the exit code main would use
// and what was printed.
func runDoctor(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var cfgFlag string
	code := 0
	root := &cobra.Command{Use: "smtpd", SilenceUsage: true, SilenceErrors: true}
	root.PersistentFlags().StringVar(&cfgFlag, "config", "", "configuration file")
	root.AddCommand(doctorCommand(&cfgFlag, &code))
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		// As main does.
		fmt.Fprintf(&errOut, "smtpd: %v\n", err)
		var me *mailerr.Error
		if code == 0 && errors.As(err, &me) && me.Exit != 0 {
			code = me.Exit
		}
		if code == 0 {
			code = mailerr.ExUsage
		}
	}
	return code, out.String(), errOut.String()
}

// doctorSetup writes a configuration for mail.example.org, local domain
// example.org, with a DKIM key, and serves a zone that is right for it
// except, when broken, for the IPv6 address's PTR.
func doctorSetup(t *testing.T, broken bool) string {
	t.Helper()
	dir := t.TempDir()
	keyFile, _, record, err := dkim.Keygen("example.org", "sel", 0, true, filepath.Join(dir, "keys"))
	if err != nil {
		t.Fatal(err)
	}
	srv := dnstest.NewServer(t)
	srv.A("mail.example.org", "192.0.2.10")
	srv.AAAA("mail.example.org", "2001:db8::10")
	srv.PTR("192.0.2.10", "mail.example.org")
	if !broken {
		srv.PTR("2001:db8::10", "mail.example.org")
	}
	srv.MX("example.org", 10, "mail.example.org")
	srv.TXT("example.org", "v=spf1 mx -all")
	srv.TXT("mail.example.org", "v=spf1 a -all")
	srv.TXT("_dmarc.example.org", "v=DMARC1; p=reject")
	srv.TXT("sel._domainkey.example.org", record)

	files := map[string]string{
		"local-host-names": "example.org\n",
		"KeyTable":         "sel._domainkey.example.org example.org:sel:" + keyFile + "\n",
		"SigningTable":     "example.org sel._domainkey.example.org\n",
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg := fmt.Sprintf(`hostname = "mail.example.org"
local_host_names = %q
virtusertable = %q

[delivery]
dns_server = %q

[dkim]
key_table = %q
signing_table = %q
`, filepath.Join(dir, "local-host-names"), filepath.Join(dir, "virtusertable"), srv.Addr(),
		filepath.Join(dir, "KeyTable"), filepath.Join(dir, "SigningTable"))
	path := filepath.Join(dir, "gosendmail.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

type jsonResult struct {
	Check, Subject, Status, Detail, Advice string
}

func TestDoctorCommandJSON(t *testing.T) {
	for _, tc := range []struct {
		name     string
		broken   bool
		wantCode int
	}{
		{"good", false, 0},
		{"IPv6 without PTR", true, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := doctorSetup(t, tc.broken)
			code, out, errOut := runDoctor(t, "--config", cfg, "doctor", "--json", "--addr", "192.0.2.10", "--addr", "[2001:db8::10]")
			if code != tc.wantCode {
				t.Errorf("exit %d, want %d; stderr: %s\n%s", code, tc.wantCode, errOut, out)
			}
			var raw []map[string]any
			if err := json.Unmarshal([]byte(out), &raw); err != nil {
				t.Fatalf("stdout is not a JSON array: %v\n%s", err, out)
			}
			var res []jsonResult
			json.Unmarshal([]byte(out), &res)
			by := map[string]jsonResult{}
			for i, r := range res {
				if len(raw[i]) != 5 {
					t.Errorf("object %d has %d keys, want check, subject, status, detail, advice", i, len(raw[i]))
				}
				by[r.Check+" "+r.Subject] = r
			}
			for _, k := range []string{"addr this host", "host mail.example.org", "ptr 192.0.2.10", "ptr 2001:db8::10",
				"mx example.org", "spf example.org", "spf mail.example.org", "dkim sel._domainkey.example.org", "dmarc example.org"} {
				if _, ok := by[k]; !ok {
					t.Errorf("no %q result in\n%s", k, out)
				}
			}
			if tc.broken {
				if r := by["ptr 2001:db8::10"]; r.Status != "fail" || r.Advice == "" {
					t.Errorf("ptr of the IPv6 address: %+v", r)
				}
				if r := by["ipv6 client_family = any"]; r.Status != "warn" || !strings.Contains(r.Advice, `client_family = "inet"`) {
					t.Errorf("ipv6: %+v", r)
				}
			} else {
				for k, r := range by {
					if r.Status != "ok" {
						t.Errorf("%s: %+v", k, r)
					}
				}
			}
		})
	}
}

func TestDoctorCommandText(t *testing.T) {
	cfg := doctorSetup(t, true)
	code, out, _ := runDoctor(t, "--config", cfg, "doctor", "--addr", "192.0.2.10", "--addr", "2001:db8::10")
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	for _, want := range []string{
		"OK    ptr    192.0.2.10: mail.example.org, which resolves back to it\n",
		"FAIL  ptr    2001:db8::10: no PTR record — ",
		"doctor: ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestDoctorCommandErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte("hostname = \"mail.example.org\"\nno_such_key = 1\n"), 0o644)
	if code, _, errOut := runDoctor(t, "--config", bad, "doctor"); code != mailerr.ExConfig || !strings.Contains(errOut, "no_such_key") {
		t.Errorf("bad config: exit %d, want %d; stderr %q", code, mailerr.ExConfig, errOut)
	}
	if code, _, errOut := runDoctor(t, "--config", filepath.Join(dir, "missing.toml"), "doctor"); code != mailerr.ExConfig {
		t.Errorf("missing config: exit %d, want %d; stderr %q", code, mailerr.ExConfig, errOut)
	}
	if code, _, errOut := runDoctor(t, "--config", bad, "doctor", "--addr", "mail.example.org"); code != mailerr.ExUsage || !strings.Contains(errOut, "not an IP address") {
		t.Errorf("bad --addr: exit %d, want %d; stderr %q", code, mailerr.ExUsage, errOut)
	}
	if code, _, _ := runDoctor(t, "doctor", "extra"); code != mailerr.ExUsage {
		t.Errorf("extra argument: exit %d, want %d", code, mailerr.ExUsage)
	}

	// A DNS server that is not there: 69, and the JSON says why.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	cfg := filepath.Join(dir, "nodns.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("hostname = \"mail.example.org\"\nlocal_host_names = %q\n[delivery]\ndns_server = %q\n",
		filepath.Join(dir, "none"), addr)), 0o644)
	code, out, _ := runDoctor(t, "--config", cfg, "doctor", "--json", "--addr", "192.0.2.10")
	if code != mailerr.ExUnavailable {
		t.Errorf("DNS unreachable: exit %d, want %d\n%s", code, mailerr.ExUnavailable, out)
	}
	var res []jsonResult
	if err := json.Unmarshal([]byte(out), &res); err != nil || len(res) != 1 || res[0].Check != "dns" || res[0].Status != "fail" {
		t.Errorf("DNS unreachable: %v %+v\n%s", err, res, out)
	}
}
