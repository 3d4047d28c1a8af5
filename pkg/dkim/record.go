package dkim

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// keyRecord is a parsed DKIM key record (RFC 6376 section 3.6.1).
type keyRecord struct {
	keyType  string           // k=, "rsa" when absent
	pub      crypto.PublicKey // nil when revoked
	revoked  bool             // p= is empty
	hashes   []string         // h=, nil when absent (any hash)
	services []string         // s=, nil when absent ("*")
	flags    []string         // t=
}

// parseTagList splits a tag-list (RFC 6376 section 3.2) into its tags.
// Tag names are case-sensitive; white space around names, '=' and values
// is dropped; a duplicate name makes the whole list invalid, as the RFC
// says; a trailing ';' is allowed.
func parseTagList(s string) (map[string]string, []string, error) {
	tags := make(map[string]string)
	var order []string
	specs := strings.Split(s, ";")
	for i, spec := range specs {
		if strings.TrimSpace(spec) == "" {
			if i == len(specs)-1 && i > 0 {
				break // the optional trailing ';'
			}
			return nil, nil, errors.New("empty tag between semicolons")
		}
		name, value, ok := strings.Cut(spec, "=")
		if !ok {
			return nil, nil, fmt.Errorf("%q is not tag=value", strings.TrimSpace(spec))
		}
		name = strings.TrimSpace(name)
		if !validTagName(name) {
			return nil, nil, fmt.Errorf("%q is not a tag name", name)
		}
		if _, dup := tags[name]; dup {
			return nil, nil, fmt.Errorf("tag %s= appears twice (RFC 6376 section 3.2: the record is invalid)", name)
		}
		tags[name] = strings.TrimSpace(value)
		order = append(order, name)
	}
	return tags, order, nil
}

// validTagName: ALPHA *(ALPHA / DIGIT / "_").
func validTagName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alpha := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !alpha && (i == 0 || !(c >= '0' && c <= '9' || c == '_')) {
			return false
		}
	}
	return true
}

// parseKeyRecord parses the text of a DKIM key TXT record (its strings
// joined), checking what a verifier checks before it uses the key.
func parseKeyRecord(txt string) (*keyRecord, error) {
	tags, order, err := parseTagList(txt)
	if err != nil {
		return nil, err
	}
	if v, ok := tags["v"]; ok {
		// RFC 6376 section 3.6.1: v= is optional, but if present it must
		// be first and be exactly DKIM1.
		if order[0] != "v" {
			return nil, errors.New("v= must be the first tag")
		}
		if v != "DKIM1" {
			return nil, fmt.Errorf("v=%s is not DKIM1", v)
		}
	}
	rec := &keyRecord{keyType: "rsa"}
	if k, ok := tags["k"]; ok {
		rec.keyType = strings.ToLower(k)
	}
	if h, ok := tags["h"]; ok {
		rec.hashes = splitColonList(h)
	}
	if s, ok := tags["s"]; ok {
		rec.services = splitColonList(s)
	}
	if t, ok := tags["t"]; ok {
		rec.flags = splitColonList(t)
	}
	p, ok := tags["p"]
	if !ok {
		return nil, errors.New("no p= tag (the public key)")
	}
	p = strings.Join(strings.Fields(p), "") // FWS may fold the base64
	if p == "" {
		rec.revoked = true
		return rec, nil
	}
	der, err := base64.StdEncoding.DecodeString(p)
	if err != nil {
		return nil, fmt.Errorf("p= is not valid base64: %v", err)
	}
	switch rec.keyType {
	case "rsa":
		// RFC 6376 says RSAPublicKey but every signer publishes
		// SubjectPublicKeyInfo (openssl's default); verifiers take both.
		if pub, err := x509.ParsePKIXPublicKey(der); err == nil {
			rk, isRSA := pub.(*rsa.PublicKey)
			if !isRSA {
				return nil, fmt.Errorf("k=rsa but p= holds a %s key", keyKind(pub))
			}
			rec.pub = rk
		} else if rk, err := x509.ParsePKCS1PublicKey(der); err == nil {
			rec.pub = rk
		} else {
			return nil, errors.New("p= is not an RSA public key (SubjectPublicKeyInfo or RSAPublicKey DER)")
		}
	case "ed25519":
		// RFC 8463 section 4: the raw 32-byte key, not wrapped in DER.
		if len(der) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("k=ed25519 but p= holds %d bytes, not the %d of an Ed25519 key (RFC 8463)", len(der), ed25519.PublicKeySize)
		}
		rec.pub = ed25519.PublicKey(der)
	default:
		return nil, fmt.Errorf("k=%s is not a key type DKIM defines (rsa, ed25519)", rec.keyType)
	}
	return rec, nil
}

func splitColonList(s string) []string {
	var out []string
	for part := range strings.SplitSeq(s, ":") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// compatible says why a record cannot verify our sha256 signatures for
// mail, or "" if it can (apart from the key itself).
func (r *keyRecord) compatible() string {
	if r.hashes != nil && !slices.Contains(r.hashes, "sha256") {
		return fmt.Sprintf("h=%s excludes sha256, the only hash we sign with", strings.Join(r.hashes, ":"))
	}
	if r.services != nil && !slices.Contains(r.services, "*") && !slices.Contains(r.services, "email") {
		return fmt.Sprintf("s=%s does not include email", strings.Join(r.services, ":"))
	}
	return ""
}

// recordText is the DKIM key record for pub, as one string.
func recordText(pub crypto.PublicKey) (string, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		der, err := x509.MarshalPKIXPublicKey(k)
		if err != nil {
			return "", err
		}
		// h=sha256 as opendkim-genkey writes it: we never sign with sha1.
		return "v=DKIM1; h=sha256; k=rsa; p=" + base64.StdEncoding.EncodeToString(der), nil
	case ed25519.PublicKey:
		return "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(k), nil
	}
	return "", fmt.Errorf("dkim: no DKIM record for a %s key", keyKind(pub))
}

// zoneString is the longest character-string we write: one TXT string
// holds at most 255 bytes (RFC 1035 section 3.3), and a little room keeps
// the lines readable.
const zoneString = 250

// zoneRecord is the record for pub in zone-file form, as opendkim-genkey
// writes its .txt: the owner relative to the domain, the text split into
// quoted strings inside parentheses, and a comment naming the key.
func zoneRecord(domain, selector string, pub crypto.PublicKey) (string, error) {
	text, err := recordText(pub)
	if err != nil {
		return "", err
	}
	head, key, _ := strings.Cut(text, "p=")
	parts := []string{head}
	key = "p=" + key
	for len(key) > zoneString {
		parts = append(parts, key[:zoneString])
		key = key[zoneString:]
	}
	parts = append(parts, key)
	var b strings.Builder
	fmt.Fprintf(&b, "%s._domainkey\tIN\tTXT\t( %q", selector, parts[0])
	for _, p := range parts[1:] {
		fmt.Fprintf(&b, "\n\t  %q", p)
	}
	fmt.Fprintf(&b, " )  ; ----- DKIM key %s for %s\n", selector, domain)
	return b.String(), nil
}
