package dkim

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/gosendmail/gosendmail/pkg/mailerr"
	"github.com/gosendmail/gosendmail/pkg/safeio"
)

// DefaultBits is the RSA key size Keygen is asked for by default: RFC 8301
// section 3.2 says signers SHOULD use at least 2048 bits.
const DefaultBits = 2048

// Keygen makes a key pair for selector at domain: RSA with bits bits, or
// Ed25519 (RFC 8463) when ed is true (bits is then ignored). It writes
// dir/SELECTOR.private, the private key as PKCS#8 PEM with mode 0600, and
// dir/SELECTOR.txt, the DNS record in zone-file form as opendkim-genkey
// writes it, and returns their names and the record as one plain string
// to paste into a DNS provider's form. dir is created (mode 0700) if
// missing. Existing files are never overwritten: a live key replaced by
// mistake breaks every signature still in transit.
//
// Errors are *mailerr.Error: ExUsage for a bad argument, ExCantCreat when
// a file exists or cannot be written.
func Keygen(domain, selector string, bits int, ed bool, dir string) (keyFile, txtFile, plain string, err error) {
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	selector = strings.ToLower(selector)
	if !isDomain(domain) {
		return "", "", "", mailerr.New(mailerr.ExUsage, "dkim keygen: %q is not a domain name", domain)
	}
	if !isDomain(selector) {
		return "", "", "", mailerr.New(mailerr.ExUsage, "dkim keygen: %q is not a valid selector (letters, digits, inner hyphens; dots between labels)", selector)
	}
	if !ed && (bits < minRSABits || bits > maxRSABits) {
		return "", "", "", mailerr.New(mailerr.ExUsage, "dkim keygen: %d bits: RSA keys for DKIM have %d to %d bits (RFC 8301)", bits, minRSABits, maxRSABits)
	}
	if dir == "" {
		dir = "."
	}
	keyFile = filepath.Join(dir, selector+".private")
	txtFile = filepath.Join(dir, selector+".txt")
	for _, f := range []string{keyFile, txtFile} {
		if _, err := os.Lstat(f); err == nil {
			return "", "", "", mailerr.New(mailerr.ExCantCreat, "dkim keygen: %s exists; not overwriting it (pick another selector, or move it away)", f)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", "", "", mailerr.Wrap(mailerr.ExCantCreat, err, "dkim keygen")
		}
	}

	var priv crypto.Signer
	if ed {
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	} else {
		priv, err = rsa.GenerateKey(rand.Reader, bits)
	}
	if err != nil {
		return "", "", "", mailerr.Wrap(mailerr.ExSoftware, err, "dkim keygen: generating the key")
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return "", "", "", mailerr.Wrap(mailerr.ExSoftware, err, "dkim keygen: encoding the key")
	}
	plain, err = recordText(priv.Public())
	if err != nil {
		return "", "", "", mailerr.Wrap(mailerr.ExSoftware, err, "dkim keygen")
	}
	zone, err := zoneRecord(domain, selector, priv.Public())
	if err != nil {
		return "", "", "", mailerr.Wrap(mailerr.ExSoftware, err, "dkim keygen")
	}

	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", "", mailerr.Wrap(mailerr.ExCantCreat, err, "dkim keygen")
	}
	// Through safeio, so a crash never leaves half a key under the final
	// name; the temporary names are exclusive, so two runs cannot mix.
	write := func(final string, perm os.FileMode, data []byte) error {
		tmp := filepath.Join(dir, "."+filepath.Base(final)+".tmp")
		return safeio.WriteFile(tmp, final, perm, func(w io.Writer) error {
			_, err := w.Write(data)
			return err
		})
	}
	if err := write(keyFile, 0o600, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})); err != nil {
		return "", "", "", mailerr.Wrap(mailerr.ExCantCreat, err, "dkim keygen: writing the private key")
	}
	if err := write(txtFile, 0o644, []byte(zone)); err != nil {
		// Without its record the key is of no use; leave nothing behind.
		os.Remove(keyFile)
		return "", "", "", mailerr.Wrap(mailerr.ExCantCreat, err, "dkim keygen: writing the DNS record")
	}
	return keyFile, txtFile, plain, nil
}

// Both key types sign through crypto.Signer, which go-msgauth takes.
var (
	_ crypto.Signer = (*rsa.PrivateKey)(nil)
	_ crypto.Signer = ed25519.PrivateKey(nil)
)

// samePublicKey reports whether two public keys are the same key.
func samePublicKey(a, b crypto.PublicKey) bool {
	switch ak := a.(type) {
	case *rsa.PublicKey:
		bk, ok := b.(*rsa.PublicKey)
		return ok && ak.Equal(bk)
	case ed25519.PublicKey:
		bk, ok := b.(ed25519.PublicKey)
		return ok && ak.Equal(bk)
	}
	return false
}

// keyTypeName is the k= value for a public key.
func keyTypeName(pub crypto.PublicKey) string {
	switch pub.(type) {
	case *rsa.PublicKey:
		return "rsa"
	case ed25519.PublicKey:
		return "ed25519"
	}
	return strings.ToLower(keyKind(pub))
}
