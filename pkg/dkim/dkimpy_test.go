package dkim

import (
	"bytes"
	"strings"
	"testing"

	"github.com/gosendmail/gosendmail/pkg/dkim/dkimpy"
)

// TestDkimpyVerifies has an independent implementation (dkimpy) verify
// signatures made with keys from our keygen, the public keys taken from
// the zone files keygen wrote, as a DNS operator would publish them.
func TestDkimpyVerifies(t *testing.T) {
	dkimpy.Python(t) // skips without dkimpy, before any key is made
	keys := t.TempDir()
	records := map[string]string{}
	var keyLines []string
	for _, k := range []struct {
		selector string
		bits     int
		ed       bool
	}{
		{"rsa1024", 1024, false},
		{"rsa2048", 2048, false},
		{"ed2026", 0, true},
	} {
		keyFile, txtFile, _, err := Keygen("example.com", k.selector, k.bits, k.ed, keys)
		if err != nil {
			t.Fatal(err)
		}
		owner, strs := parseZone(t, txtFile, "example.com")
		records[strings.TrimSuffix(owner, ".")] = strings.Join(strs, "")
		keyLines = append(keyLines, k.selector+" example.com:"+k.selector+":"+keyFile)
	}

	for _, c := range []struct {
		name      string
		selectors []string
	}{
		{"rsa-1024", []string{"rsa1024"}},
		{"rsa-2048", []string{"rsa2048"}},
		{"ed25519", []string{"ed2026"}},
		{"rsa-2048 and ed25519", []string{"rsa2048", "ed2026"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var signLines []string
			for _, sel := range c.selectors {
				signLines = append(signLines, "*@example.com "+sel)
			}
			tbl := newSetup(t, nil, keyLines, signLines).load(t, true)
			msg := message("ann@example.com",
				"Cc: carl@foreign.example",
				"Reply-To: list@example.com",
				"Content-Transfer-Encoding: 8bit")
			msg = append(msg, []byte("Grüße, a line in UTF-8,\r\n\tand one with a tab.\r\n")...)
			out := signed(t, tbl, msg)
			if n := bytes.Count(out, []byte("DKIM-Signature:")); n != len(c.selectors) {
				t.Fatalf("%d signatures, want %d", n, len(c.selectors))
			}
			res, ok := dkimpy.Verify(t, out, records)
			if !ok || strings.Count(res, ": pass") != len(c.selectors) {
				t.Errorf("dkimpy does not verify our signature:\n%s\n%s", res, out)
			}

			// The harness can tell a bad signature from a good one.
			bad := bytes.Replace(out, []byte("Hello Bob"), []byte("Hello Eve"), 1)
			if res, ok := dkimpy.Verify(t, bad, records); ok {
				t.Errorf("dkimpy verifies a tampered message:\n%s", res)
			}
		})
	}
}
