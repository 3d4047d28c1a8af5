package config

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	toml "github.com/pelletier/go-toml/v2"
)

// FuzzParse reads any configuration file and checks:
//
//   - a refusal names the file on every line of its message (the log and
//     sendmail -bt show nothing else to find the mistake by);
//   - an accepted configuration holds only values finish validates:
//     absolute spool paths, a positive size, a port, retry bounds in
//     order, known listener modes and privacy words;
//   - written back as TOML it reads back to the same configuration.
func FuzzParse(f *testing.F) {
	f.Add([]byte("hostname = \"mx.example.org\"\nmax_message_size = \"20M\"\n[delivery]\nretry_min = \"5m\"\n"))
	dir := f.TempDir()
	path := filepath.Join(dir, "gosendmail.toml")
	f.Fuzz(func(t *testing.T, data []byte) {
		// The file exists, so that errors found after decoding can name
		// their line.
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := Parse(path, data)
		if err != nil {
			if c != nil {
				t.Fatalf("Parse returned a configuration and the error %v", err)
			}
			for _, l := range strings.Split(err.Error(), "\n") {
				if !strings.HasPrefix(l, path+":") {
					t.Fatalf("error line %q does not name the file", l)
				}
			}
			return
		}
		checkValid(t, c)
		out, err := toml.Marshal(c)
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		c2, err := Parse(path, out)
		if err != nil {
			t.Fatalf("written back, the configuration is refused: %v\n%s", err, out)
		}
		// Compared as written (an empty list and none are the same).
		out2, err := toml.Marshal(c2)
		if err != nil || !bytes.Equal(out, out2) || !reflect.DeepEqual(c.relayNets, c2.relayNets) {
			t.Fatalf("written back, the configuration changed (%v):\n%s\n---\n%s", err, out, out2)
		}
	})
}

func checkValid(t *testing.T, c *Config) {
	t.Helper()
	if checkHostname(c.Hostname) != nil {
		t.Fatalf("bad host name %q accepted", c.Hostname)
	}
	for _, d := range []string{c.QueueDir, c.MaildropDir, c.MailSpoolDir} {
		if !strings.HasPrefix(d, "/") {
			t.Fatalf("relative spool directory %q accepted", d)
		}
	}
	if c.MaxMessageSize <= 0 {
		t.Fatalf("max_message_size %d accepted", c.MaxMessageSize)
	}
	d := c.Delivery
	if d.RemotePort < 1 || d.RemotePort > 65535 || d.RetryMin <= 0 || d.RetryMax < d.RetryMin {
		t.Fatalf("delivery %+v accepted", d)
	}
	if len(c.Listen) == 0 {
		t.Fatal("no listener")
	}
	for _, l := range c.Listen {
		if l.Address == "" || l.Name == "" || !oneOf(l.Mode, "mta", "submission", "smtps") || !oneOf(l.Auth, "none", "optional", "required") {
			t.Fatalf("listener %+v accepted", l)
		}
	}
	for _, m := range c.Milter {
		if !oneOf(m.OnFailure, "tempfail", "reject", "accept") ||
			m.TimeoutConnect <= 0 || m.TimeoutSend <= 0 || m.TimeoutRead <= 0 || m.TimeoutEOM <= 0 {
			t.Fatalf("milter %+v accepted", m)
		}
	}
	for _, w := range c.Privacy {
		if !knownPrivacy[strings.ToLower(w)] {
			t.Fatalf("privacy word %q accepted", w)
		}
	}
	if len(c.relayNets) != len(c.RelayFrom) {
		t.Fatalf("relay_from %q parsed into %v", c.RelayFrom, c.relayNets)
	}
	for _, p := range c.relayNets {
		if !c.RelayAllowed(p.Addr()) {
			t.Fatalf("the first address of relay_from network %v may not relay", p)
		}
		if p.Addr().Is4() && !c.RelayAllowed(netip.AddrFrom16(p.Addr().As16())) {
			t.Fatalf("the IPv4-mapped first address of %v may not relay", p)
		}
	}
	c.HasPrivacy("noexpn")
	for _, v := range []Duration{c.Limits.GreetPause, d.QueueWarn, d.QueueReturn} {
		if v < 0 {
			t.Fatalf("negative duration %v accepted", v)
		}
	}
}
