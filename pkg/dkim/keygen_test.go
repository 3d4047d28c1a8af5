package dkim

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/gosendmail/gosendmail/pkg/mailerr"
)

// parseZone reads the .txt keygen wrote as a zone file with $ORIGIN
// domain, as a DNS server would, and returns the owner name and the TXT
// strings of its one record.
func parseZone(t *testing.T, path, domain string) (string, []string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	zp := dns.NewZoneParser(bytes.NewReader(data), dns.Fqdn(domain), path)
	var rrs []dns.RR
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		rrs = append(rrs, rr)
	}
	if err := zp.Err(); err != nil {
		t.Fatalf("%s does not parse as a zone file: %v\n%s", path, err, data)
	}
	if len(rrs) != 1 {
		t.Fatalf("%s: %d records, want 1", path, len(rrs))
	}
	txt, ok := rrs[0].(*dns.TXT)
	if !ok {
		t.Fatalf("%s: %T, want TXT", path, rrs[0])
	}
	return txt.Hdr.Name, txt.Txt
}

func TestKeygen(t *testing.T) {
	for _, c := range []struct {
		name string
		bits int
		ed   bool
		k    string
	}{
		{"rsa-1024", 1024, false, "rsa"},
		{"rsa-2048", 2048, false, "rsa"},
		{"ed25519", 0, true, "ed25519"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "keys", "example.com")
			keyFile, txtFile, plain, err := Keygen("Example.COM", "dkim2026", c.bits, c.ed, dir)
			if err != nil {
				t.Fatal(err)
			}
			if keyFile != filepath.Join(dir, "dkim2026.private") || txtFile != filepath.Join(dir, "dkim2026.txt") {
				t.Errorf("files %s, %s", keyFile, txtFile)
			}
			for f, mode := range map[string]os.FileMode{keyFile: 0o600, txtFile: 0o644, dir: 0o700} {
				fi, err := os.Stat(f)
				if err != nil {
					t.Fatal(err)
				}
				if fi.Mode().Perm() != mode {
					t.Errorf("%s: mode %04o, want %04o", f, fi.Mode().Perm(), mode)
				}
			}

			// The key loads as the tables load it, and is the one in the record.
			signer, err := loadKeyFile(keyFile)
			if err != nil {
				t.Fatal(err)
			}
			rec, err := parseKeyRecord(plain)
			if err != nil {
				t.Fatalf("plain record %q: %v", plain, err)
			}
			if rec.keyType != c.k || !samePublicKey(rec.pub, signer.Public()) {
				t.Errorf("plain record %q does not hold the private key's public key", plain)
			}
			if !strings.HasPrefix(plain, "v=DKIM1; ") || !strings.Contains(plain, "k="+c.k+"; p=") || strings.ContainsAny(plain, "\"\n()") {
				t.Errorf("plain record %q is not one pasteable string", plain)
			}

			// The zone form parses back into the same record.
			owner, strs := parseZone(t, txtFile, "example.com")
			if owner != "dkim2026._domainkey.example.com." {
				t.Errorf("owner %q", owner)
			}
			for _, s := range strs {
				if len(s) > 255 {
					t.Errorf("TXT string of %d bytes; at most 255 fit", len(s))
				}
			}
			if joined := strings.Join(strs, ""); joined != plain {
				t.Errorf("zone record joins to\n%q\nwant\n%q", joined, plain)
			}
			data, _ := os.ReadFile(txtFile)
			if !regexp.MustCompile(`^dkim2026\._domainkey\tIN\tTXT\t\( "v=DKIM1; `).Match(data) ||
				!bytes.HasSuffix(data, []byte(" )  ; ----- DKIM key dkim2026 for example.com\n")) {
				t.Errorf("zone file is not in opendkim-genkey's shape:\n%s", data)
			}

			// A message signed with the new key verifies against the record.
			s := newSetup(t, nil,
				[]string{"k example.com:dkim2026:" + keyFile},
				[]string{"*@example.com k"})
			msg := signed(t, s.load(t, true), message("ann@example.com"))
			verify(t, msg, fakeDNS{"dkim2026._domainkey.example.com": plain})
		})
	}
}

func TestKeygenRefusesToOverwrite(t *testing.T) {
	dir := t.TempDir()
	if _, _, _, err := Keygen("example.com", "sel", 0, true, dir); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(dir, "sel.private"))
	_, _, _, err := Keygen("example.com", "sel", 0, true, dir)
	var me *mailerr.Error
	if !errors.As(err, &me) || me.Exit != mailerr.ExCantCreat || !strings.Contains(err.Error(), "exists") {
		t.Errorf("second keygen: %v", err)
	}
	after, _ := os.ReadFile(filepath.Join(dir, "sel.private"))
	if !bytes.Equal(before, after) {
		t.Error("the existing key was replaced")
	}
	// Only the .txt left over from something else blocks it too.
	os.Remove(filepath.Join(dir, "sel.private"))
	if _, _, _, err := Keygen("example.com", "sel", 0, true, dir); err == nil {
		t.Error("keygen overwrote sel.txt")
	}
	if _, err := os.Stat(filepath.Join(dir, "sel.private")); err == nil {
		t.Error("keygen wrote a key whose record it could not write")
	}
	leftovers, _ := filepath.Glob(filepath.Join(dir, ".*.tmp"))
	if len(leftovers) > 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
}

func TestKeygenBadArguments(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		domain, selector string
		bits             int
		ed               bool
	}{
		{"example.com", "sel", 512, false},
		{"example.com", "sel", 8192, false},
		{"exa mple.com", "sel", 2048, false},
		{"", "sel", 2048, false},
		{"example.com", "sel/../x", 0, true},
		{"example.com", "", 0, true},
		{"example.com", "-sel", 0, true},
	} {
		_, _, _, err := Keygen(c.domain, c.selector, c.bits, c.ed, dir)
		var me *mailerr.Error
		if !errors.As(err, &me) || me.Exit != mailerr.ExUsage {
			t.Errorf("Keygen(%q, %q, %d, %v) = %v, want a usage error", c.domain, c.selector, c.bits, c.ed, err)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("files written for bad arguments: %v", entries)
	}
}

func TestZoneRecordSplitsLongKeys(t *testing.T) {
	k := testRSA(t, 4096)
	zone, err := zoneRecord("example.com", "big", k.Public())
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "big.txt")
	if err := os.WriteFile(path, []byte(zone), 0o644); err != nil {
		t.Fatal(err)
	}
	_, strs := parseZone(t, path, "example.com")
	if len(strs) < 4 {
		t.Errorf("a 4096-bit key in %d strings", len(strs))
	}
	plain := mustRecord(t, k)
	if strings.Join(strs, "") != plain {
		t.Error("split record does not join back")
	}
}
