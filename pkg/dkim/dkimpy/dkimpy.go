// Package dkimpy verifies DKIM signatures with an independent
// implementation, dkimpy (Debian's python3-dkim), for the tests: its key
// queries are answered from a map, never from the network.
package dkimpy

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
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

// Python finds a Python that has Debian's python3-dkim (and python3-nacl,
// which it needs for Ed25519), or skips the test. /usr/bin/python3 comes
// first: a python3 earlier on PATH (pyenv, a virtualenv) may not see
// Debian's modules.
func Python(t testing.TB) string {
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

// Verify verifies every DKIM-Signature of msg with dkimpy, the key records
// taken from records (name without the trailing dot to TXT text), and
// returns its output and whether every signature passed. It skips the
// test when dkimpy is missing.
func Verify(t testing.TB, msg []byte, records map[string]string) (string, bool) {
	t.Helper()
	py := Python(t)
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
