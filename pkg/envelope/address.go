// Package envelope parses and checks mail addresses: the envelope addresses
// a local program hands to sendmail (-f, argv recipients) and the address
// lists of the To:, Cc: and Bcc: header fields read with -t. It does no I/O.
//
// Envelope addresses are RFC 5321 paths: local@domain, where local is a
// dot-string or a quoted string and domain a host name or an address
// literal ([192.0.2.1], [IPv6:...]); a bare local part (root, www-data) is
// accepted too and means a user on this host, as in sendmail.
//
// Header address lists follow RFC 5322 loosely, the way mail programs
// write them in practice: display names, angle brackets, comments in
// parentheses, quoted strings and groups ("undisclosed-recipients:;").
package envelope

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// MaxAddressLen bounds an envelope address (RFC 5321: 64 + 1 + 255).
const MaxAddressLen = 320

// Limits of RFC 5321 section 4.5.3.1.
const (
	maxLocalLen  = 64
	maxDomainLen = 255
)

// Error explains why an address was refused.
type Error struct {
	Addr   string
	Reason string
}

func (e *Error) Error() string { return fmt.Sprintf("%q: %s", e.Addr, e.Reason) }

func bad(addr, format string, args ...any) error {
	return &Error{Addr: addr, Reason: fmt.Sprintf(format, args...)}
}

// hasControl reports bytes that never belong in an address: C0 controls
// (CR, LF and NUL among them) and DEL.
func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return true
		}
	}
	return false
}

// CheckMailbox validates an envelope address as described in the package
// doc. It returns the address with any surrounding angle brackets removed.
// The empty string and "<>" are refused here; see ParseSender.
func CheckMailbox(addr string) (string, error) {
	a := addr
	if hasControl(a) {
		return "", bad(addr, "control characters in address")
	}
	if strings.HasPrefix(a, "<") || strings.HasSuffix(a, ">") {
		if !strings.HasPrefix(a, "<") || !strings.HasSuffix(a, ">") || len(a) < 2 {
			return "", bad(addr, "unbalanced angle brackets")
		}
		a = a[1 : len(a)-1]
	}
	if a == "" {
		return "", bad(addr, "empty address")
	}
	if len(a) > MaxAddressLen {
		return "", bad(addr, "address longer than %d characters", MaxAddressLen)
	}
	local, domain, err := splitAddr(a)
	if err != nil {
		return "", bad(addr, "%v", err)
	}
	if err := checkLocal(local); err != nil {
		return "", bad(addr, "%v", err)
	}
	if domain != "" || strings.HasSuffix(a, "@") {
		if err := checkDomain(domain); err != nil {
			return "", bad(addr, "%v", err)
		}
	}
	return a, nil
}

// ParseSender validates a -f / -r value. "", "<>" mean the null sender and
// are returned as "". Beyond CheckMailbox it refuses any white space, even
// inside quotes: that is the shape of argument-injection attacks
// (PHPMailer CVE-2016-10033), and no real sender needs it.
func ParseSender(v string) (string, error) {
	if v == "" || v == "<>" {
		return "", nil
	}
	if strings.ContainsAny(v, " \t") {
		return "", bad(v, "white space in sender address")
	}
	if strings.HasPrefix(strings.TrimPrefix(v, "<"), "-") {
		// An option smuggled in as a sender (nodemailer CVE-2020-7769).
		return "", bad(v, "sender starts with '-'")
	}
	return CheckMailbox(v)
}

// splitAddr splits at the last '@' outside a quoted local part.
func splitAddr(a string) (local, domain string, err error) {
	if strings.HasPrefix(a, "\"") {
		end := quotedEnd(a, 0)
		if end < 0 {
			return "", "", errors.New("unbalanced quotes")
		}
		rest := a[end+1:]
		if rest == "" {
			return a, "", nil
		}
		if rest[0] != '@' {
			return "", "", errors.New("text after quoted local part")
		}
		return a[:end+1], rest[1:], nil
	}
	if strings.Contains(a, "\"") {
		return "", "", errors.New("misplaced quote")
	}
	i := strings.LastIndexByte(a, '@')
	if i < 0 {
		return a, "", nil
	}
	return a[:i], a[i+1:], nil
}

// quotedEnd returns the index of the quote closing the quoted string that
// starts at s[start], or -1.
func quotedEnd(s string, start int) int {
	for i := start + 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			return i
		}
	}
	return -1
}

const atext = "!#$%&'*+-/=?^_`{|}~"

func isAtext(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c >= 0x80 || strings.IndexByte(atext, c) >= 0
}

func checkLocal(l string) error {
	if l == "" {
		return errors.New("empty local part")
	}
	if len(l) > maxLocalLen {
		return fmt.Errorf("local part longer than %d characters", maxLocalLen)
	}
	if l[0] == '"' {
		if quotedEnd(l, 0) != len(l)-1 {
			return errors.New("unbalanced quotes")
		}
		return nil
	}
	if l[0] == '.' || l[len(l)-1] == '.' || strings.Contains(l, "..") {
		return errors.New("misplaced dot in local part")
	}
	for i := 0; i < len(l); i++ {
		if c := l[i]; c != '.' && !isAtext(c) {
			return fmt.Errorf("character %q not allowed in local part", c)
		}
	}
	return nil
}

func checkDomain(d string) error {
	if d == "" {
		return errors.New("empty domain")
	}
	if len(d) > maxDomainLen {
		return fmt.Errorf("domain longer than %d characters", maxDomainLen)
	}
	if d[0] == '[' {
		if d[len(d)-1] != ']' {
			return errors.New("unbalanced brackets in address literal")
		}
		lit := d[1 : len(d)-1]
		if v6, ok := strings.CutPrefix(lit, "IPv6:"); ok {
			if a, err := netip.ParseAddr(v6); err == nil && a.Is6() {
				return nil
			}
		} else if a, err := netip.ParseAddr(lit); err == nil && a.Is4() {
			return nil
		}
		return fmt.Errorf("bad address literal %q", d)
	}
	for _, label := range strings.Split(strings.TrimSuffix(d, "."), ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("bad domain %q", d)
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("bad domain %q", d)
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c >= 0x80) {
				return fmt.Errorf("bad domain %q", d)
			}
		}
	}
	return nil
}

// Domain returns the part after the last '@' outside quotes ("" if none).
func Domain(addr string) string {
	_, d, err := splitAddr(addr)
	if err != nil {
		return ""
	}
	return d
}

// Local returns the local part.
func Local(addr string) string {
	l, _, err := splitAddr(addr)
	if err != nil {
		return addr
	}
	return l
}

// Qualify appends @domain to an address that has no domain.
func Qualify(addr, domain string) string {
	if addr == "" || Domain(addr) != "" || strings.HasSuffix(addr, "@") {
		return addr
	}
	return addr + "@" + domain
}
