package dkim

import (
	"bytes"
	"crypto"
	"strings"
	"testing"
)

// benchMessage is a message of about 2 KiB from ann@example.com.
func benchMessage() []byte {
	body := strings.Repeat("A line of the body of a benchmark message, 64 octets long..\r\n", 32)
	return append(message("ann@example.com"), body...)
}

// benchKeys are the keys the benchmarks sign with, by name.
func benchKeys(b *testing.B) []struct {
	name string
	key  crypto.Signer
} {
	return []struct {
		name string
		key  crypto.Signer
	}{
		{"rsa-2048", testRSA(b, 2048)},
		{"ed25519", testEd(b)},
	}
}

// BenchmarkSign is what signing one message costs: the canonicalization
// and hashes of a 2 KiB message and the signature. The bench's dkim part
// runs it to report the CPU per signature beside the delivered rates
// (scripts/bench/dkim.sh).
func BenchmarkSign(b *testing.B) {
	msg := benchMessage()
	i := bytes.Index(msg, []byte("\r\n\r\n"))
	head, rest := msg[:i+4], msg[i+4:]
	for _, c := range benchKeys(b) {
		keys := []signingKey{{domain: "example.com", selector: "sel", signer: c.key}}
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := signWith(keys, head, bytes.NewReader(rest)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSignMessage is the whole of what the queue runner pays per
// message: reading the header, finding the author and the key, signing.
func BenchmarkSignMessage(b *testing.B) {
	msg := benchMessage()
	for _, c := range benchKeys(b) {
		s := newSetup(b, map[string][]byte{"k.private": pemPKCS8(b, c.key)},
			[]string{"sel example.com:sel:$DIR/k.private"}, []string{"*@example.com sel"})
		tbl := s.load(b, true)
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if sig, err := tbl.SignMessage(bytes.NewReader(msg)); err != nil || sig == nil {
					b.Fatal(sig, err)
				}
			}
		})
	}
}
