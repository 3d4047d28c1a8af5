package dkim

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// verifyScript verifies every DKIM-Signature of the message in argv[1]
// with dkimpy, answering its key queries from the JSON map in argv[2]
// (name without the trailing dot to record text), never from the network.
// It prints one line per signature and exits 1 unless all verify.
const verifyScript = `
import json, sys
import dkim

msg = open(sys.argv[1], "rb").read()
records = json.load(open(sys.argv[2]))

def dnsfunc(name, timeout=5):
    if isinstance(name, bytes):
        name = name.decode()
    txt = records.get(name.lower().rstrip("."))
    return txt.encode() if txt is not None else None

d = dkim.DKIM(msg)
n = len([h for h in d.headers if h[0].lower() == b"dkim-signature"])
ok = n > 0
for i in range(n):
    try:
        good = d.verify(idx=i, dnsfunc=dnsfunc)
    except Exception as e:
        good = False
        print("signature %d: error %r" % (i, e))
    print("signature %d: %s" % (i, "pass" if good else "fail"))
    ok = ok and good
sys.exit(0 if ok else 1)
`

// dkimpy finds a Python that has Debian's python3-dkim (and python3-nacl,
// which it needs for Ed25519). /usr/bin/python3 comes first: a python3
// earlier on PATH (pyenv, a virtualenv) may not see Debian's modules.
func dkimpy(t *testing.T) string {
	t.Helper()
	candidates := []string{"/usr/bin/python3"}
	if p, err := exec.LookPath("python3"); err == nil {
		candidates = append(candidates, p)
	}
	for _, py := range candidates {
		if exec.Command(py, "-c", "import dkim, nacl").Run() == nil {
			return py
		}
	}
	t.Skip("dkimpy is not installed: apt-get install python3-dkim (.ci/run installs it)")
	return ""
}

// runDkimpy verifies msg with dkimpy and returns its output and whether
// every signature passed.
func runDkimpy(t *testing.T, py string, msg []byte, records map[string]string) (string, bool) {
	t.Helper()
	dir := t.TempDir()
	msgFile := filepath.Join(dir, "msg.eml")
	recFile := filepath.Join(dir, "records.json")
	scriptFile := filepath.Join(dir, "verify.py")
	rec, err := json.Marshal(records)
	if err != nil {
		t.Fatal(err)
	}
	for f, data := range map[string][]byte{msgFile: msg, recFile: rec, scriptFile: []byte(verifyScript)} {
		if err := os.WriteFile(f, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.Command(py, scriptFile, msgFile, recFile).CombinedOutput()
	if err != nil {
		if _, exit := err.(*exec.ExitError); !exit {
			t.Fatalf("running dkimpy: %v", err)
		}
	}
	return string(out), err == nil
}

// TestDkimpyVerifies has an independent implementation (dkimpy) verify
// signatures made with keys from our keygen, the public keys taken from
// the zone files keygen wrote, as a DNS operator would publish them.
func TestDkimpyVerifies(t *testing.T) {
	py := dkimpy(t)
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
			res, ok := runDkimpy(t, py, out, records)
			if !ok || strings.Count(res, ": pass") != len(c.selectors) {
				t.Errorf("dkimpy does not verify our signature:\n%s\n%s", res, out)
			}

			// The harness can tell a bad signature from a good one.
			bad := bytes.Replace(out, []byte("Hello Bob"), []byte("Hello Eve"), 1)
			if res, ok := runDkimpy(t, py, bad, records); ok {
				t.Errorf("dkimpy verifies a tampered message:\n%s", res)
			}
		})
	}
}
