package dkim

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

const (
	// minRSABits: RFC 8301 section 3.2, signers MUST use at least 1024 bits.
	minRSABits = 1024
	// maxRSABits: RFC 8301 section 3.2 asks verifiers to handle keys up to
	// 4096 bits and no more, so a larger key risks failing at receivers.
	maxRSABits = 4096

	// maxKeyFile bounds what we read as a key file. An RSA-4096 PEM key
	// is about 3.3 KB; a larger file is something else.
	maxKeyFile = 64 << 10
)

// loadKeyFile reads and checks the private key in path. Errors name the
// file and say what to do where that is clear.
func loadKeyFile(path string) (crypto.Signer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %s", path, reason(err))
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%s: %s", path, reason(err))
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o006 != 0 {
		// opendkim's RequireSafeKeys (on by default) refuses these too, so
		// a working opendkim setup never has one.
		return nil, fmt.Errorf("%s: every user may read or write it (mode %04o): chmod o-rwx it", path, perm)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %s", path, reason(err))
	}
	if len(data) > maxKeyFile {
		return nil, fmt.Errorf("%s: larger than %d bytes, not a private key", path, maxKeyFile)
	}
	signer, err := parseKey(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return signer, nil
}

// parseKey reads a private key in any of the forms the package
// documentation lists, and checks that DKIM can use it.
func parseKey(data []byte) (crypto.Signer, error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return nil, errors.New("empty, no private key")
	}
	var key any
	var err error
	if bytes.Contains(data, []byte("-----BEGIN")) {
		key, err = parsePEM(data)
	} else {
		key, err = parseBase64(data)
	}
	if err != nil {
		return nil, err
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		bits := k.N.BitLen()
		if bits < minRSABits {
			return nil, fmt.Errorf("RSA key of %d bits is too weak: DKIM signers must use at least %d (RFC 8301)", bits, minRSABits)
		}
		if bits > maxRSABits {
			return nil, fmt.Errorf("RSA key of %d bits is too large: verifiers need not accept more than %d (RFC 8301)", bits, maxRSABits)
		}
		if err := k.Validate(); err != nil {
			return nil, fmt.Errorf("malformed RSA key: %v", err)
		}
		k.Precompute()
		return k, nil
	case ed25519.PrivateKey:
		return k, nil
	}
	return nil, fmt.Errorf("a %s key cannot sign DKIM: only RSA (RFC 6376) and Ed25519 (RFC 8463) can", keyKind(key))
}

func parsePEM(data []byte) (any, error) {
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, errors.New("no PEM private key block (want BEGIN PRIVATE KEY or BEGIN RSA PRIVATE KEY)")
		}
		if !strings.HasSuffix(block.Type, "PRIVATE KEY") {
			continue // a certificate or public key next to it, say
		}
		if block.Type == "ENCRYPTED PRIVATE KEY" || block.Headers["Proc-Type"] != "" {
			return nil, errors.New("the private key is encrypted; the daemon has no passphrase: decrypt it (openssl pkey -in KEY -out KEY.new)")
		}
		switch block.Type {
		case "RSA PRIVATE KEY":
			k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("malformed RSA PRIVATE KEY: %v", err)
			}
			return k, nil
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("malformed PRIVATE KEY: %v", err)
			}
			return k, nil
		case "EC PRIVATE KEY":
			return nil, errors.New("an ECDSA key cannot sign DKIM: only RSA (RFC 6376) and Ed25519 (RFC 8463) can")
		}
		return nil, fmt.Errorf("unsupported PEM block %q (want PRIVATE KEY or RSA PRIVATE KEY)", block.Type)
	}
}

// parseBase64 reads base64 DER (PKCS#1 or PKCS#8), as opendkim accepts in
// a KeyTable, or a bare 32-byte Ed25519 seed (dkimpy, rspamd).
func parseBase64(data []byte) (any, error) {
	clean := strings.Join(strings.Fields(string(data)), "")
	der, err := base64.StdEncoding.DecodeString(clean)
	if err != nil {
		return nil, errors.New("neither PEM nor base64: not a private key")
	}
	if len(der) == ed25519.SeedSize {
		return ed25519.NewKeyFromSeed(der), nil
	}
	if k, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, errors.New("base64 data that is not a PKCS#1 or PKCS#8 private key nor a 32-byte Ed25519 seed")
	}
	return k, nil
}

func keyKind(key any) string {
	switch key.(type) {
	case *rsa.PrivateKey, *rsa.PublicKey:
		return "RSA"
	case ed25519.PrivateKey, ed25519.PublicKey:
		return "Ed25519"
	}
	// "*ecdsa.PrivateKey" says "ECDSA" best by its package name.
	s := strings.TrimPrefix(fmt.Sprintf("%T", key), "*")
	if i := strings.IndexByte(s, '.'); i >= 0 {
		s = s[:i]
	}
	return strings.ToUpper(s)
}

// describe is a key's type and size for messages: "rsa 2048-bit", "ed25519".
func describe(pub crypto.PublicKey) string {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return fmt.Sprintf("rsa %d-bit", k.N.BitLen())
	case ed25519.PublicKey:
		return "ed25519"
	}
	return keyKind(pub)
}
