package dkim

import (
	"bufio"
	"bytes"
	"crypto"
	"errors"
	"fmt"
	"io"
	"strings"

	gomessage "github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
	msgauth "github.com/emersion/go-msgauth/dkim"

	"github.com/gosendmail/gosendmail/pkg/mailerr"
)

// signedFields are the header fields a signature covers when the message
// has them; see the package documentation for why these.
var signedFields = []string{
	"From", "Sender", "Reply-To", "To", "Cc", "Subject", "Date", "Message-ID",
	"In-Reply-To", "References", "MIME-Version", "Content-Type",
	"Content-Transfer-Encoding", "List-Unsubscribe", "List-Unsubscribe-Post",
}

// maxHeader bounds the header held in memory while signing. RFC 5322
// lines are at most 998 characters and our listeners cap the header far
// below this; a header this large cannot be a message worth retrying.
const maxHeader = 1 << 20

// ErrNoAuthor says a header has no From: address to choose a key by.
var ErrNoAuthor = errors.New("dkim: the message has no From: address")

// signingKey is one signature to make.
type signingKey struct {
	domain, selector, identity string
	signer                     crypto.Signer
}

// SignMessage signs msg (header and body, as it will be sent) for its
// author, the first address of its From: field (AuthorOf). It returns the
// DKIM-Signature header fields to put before the message, CRLF-terminated,
// one per key that applies; nil and no error when no key applies, which
// includes a message with no usable From: address (no key can be chosen
// for it, and no verifier could align a signature with it either).
//
// When a key applies but cannot be used (a broken table line or key) or
// signing fails, the error is a temporary *mailerr.Error (451 4.3.5 for
// configuration, 451 4.3.0 for anything else): the message must wait, not
// leave unsigned. The one permanent error is a header over 1 MiB (554 5.6.0).
func (t *Tables) SignMessage(msg io.Reader) ([]byte, error) {
	if t.unreadable() {
		return nil, configError("any author", t.signBad)
	}
	if t.empty() {
		return nil, nil
	}
	br := bufio.NewReader(msg)
	head, err := readHeader(br)
	if err != nil {
		return nil, err
	}
	author, err := AuthorOf(head)
	if err != nil {
		return nil, nil
	}
	return t.sign(head, br, author)
}

// Sign is SignMessage with the author given by the caller, who has parsed
// the header already.
func (t *Tables) Sign(msg io.Reader, author string) ([]byte, error) {
	if t.unreadable() {
		return nil, configError(author, t.signBad)
	}
	if t.empty() {
		return nil, nil
	}
	if len(t.lookup(author)) == 0 {
		return nil, nil // do not read the message for nothing
	}
	br := bufio.NewReader(msg)
	head, err := readHeader(br)
	if err != nil {
		return nil, err
	}
	return t.sign(head, br, author)
}

func (t *Tables) empty() bool { return t == nil || len(t.entries) == 0 }

// unreadable: the SigningTable could not be read, so any message may be
// one that must be signed.
func (t *Tables) unreadable() bool { return t != nil && t.signBad != nil }

func (t *Tables) sign(head []byte, body io.Reader, author string) ([]byte, error) {
	entries := t.lookup(author)
	if len(entries) == 0 {
		return nil, nil
	}
	keys, err := t.keysFor(author, entries)
	if err != nil {
		return nil, err
	}
	return signWith(keys, head, body)
}

// Applies reports whether some SigningTable line applies to author, that
// is whether Sign would sign (or fail) rather than return nothing. With an
// unreadable SigningTable every author may need signing.
func (t *Tables) Applies(author string) bool {
	return t.unreadable() || !t.empty() && len(t.lookup(author)) > 0
}

// configError is the temporary error for a key that applies but cannot be
// used. The client-facing text stays generic; the cause is for the log.
func configError(domain string, cause error) error {
	e := mailerr.SMTP(451, "4.3.5", "Local configuration error: cannot DKIM-sign mail from %s", domain)
	e.Err = cause
	return e
}

// keysFor turns the SigningTable lines that apply to author into keys.
// Any line that cannot be used fails the whole message: signing with only
// some of the keys would hide the broken one.
func (t *Tables) keysFor(author string, entries []*signEntry) ([]signingKey, error) {
	authorDomain := ""
	if at := strings.LastIndexByte(author, '@'); at >= 0 {
		authorDomain = strings.ToLower(strings.TrimSuffix(author[at+1:], "."))
	}
	shown := authorDomain
	if shown == "" {
		shown = author
	}
	fail := func(e *signEntry, format string, args ...any) error {
		cause := &TableError{File: t.signFile, Line: e.line, Msg: fmt.Sprintf(format, args...)}
		return configError(shown, cause)
	}
	// "%" must become a domain name: it goes into d= and into file names.
	needDomain := func(e *signEntry) error {
		if !isDomain(authorDomain) {
			return fail(e, "%% cannot stand for the author's domain: %q is not a domain name", authorDomain)
		}
		return nil
	}

	var out []signingKey
	seen := make(map[string]bool)
	for _, e := range entries {
		if e.err != nil {
			return nil, configError(shown, e.err)
		}
		name := e.keyName
		if name == "%" {
			if err := needDomain(e); err != nil {
				return nil, err
			}
			name = authorDomain
		}
		k := t.keyFor(name)
		if k == nil {
			return nil, fail(e, "key %s is not in the KeyTable %s", name, t.keyFile)
		}
		if k.err != nil {
			return nil, configError(shown, k.err)
		}
		sk := signingKey{domain: k.domain, selector: k.selector, signer: k.signer}
		if sk.domain == "%" {
			if err := needDomain(e); err != nil {
				return nil, err
			}
			sk.domain = authorDomain
		}
		if sk.signer == nil {
			if err := needDomain(e); err != nil {
				return nil, err
			}
			signer, err := t.lazyKey(k, authorDomain)
			if err != nil {
				return nil, configError(shown, &TableError{File: t.keyFile, Line: k.line, Msg: fmt.Sprintf("key %s: %v", k.name, err)})
			}
			sk.signer = signer
		}
		if e.identity != "" {
			id := strings.ReplaceAll(e.identity, "%", authorDomain)
			if identityWithin(id, sk.domain) {
				sk.identity = id
			}
		}
		// Two lines naming the same key would make the same signature twice.
		id := sk.domain + "\x00" + sk.selector
		if seen[id] {
			continue
		}
		seen[id] = true
		out = append(out, sk)
	}
	return out, nil
}

// lazyKey loads the key file of a "%" path for domain, which the caller
// has checked is a domain name (so the path cannot leave its directory).
// Loaded keys are kept; failures are not, so a file put in place later is
// found without a reload.
func (t *Tables) lazyKey(k *keyEntry, domain string) (crypto.Signer, error) {
	path := strings.ReplaceAll(k.path, "%", domain)
	t.mu.Lock()
	s, ok := t.lazy[path]
	t.mu.Unlock()
	if ok {
		return s, nil
	}
	s, err := loadKeyFile(path)
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	t.lazy[path] = s
	t.mu.Unlock()
	return s, nil
}

// signWith streams head and body through one go-msgauth signer per key and
// returns their DKIM-Signature fields in key order.
func signWith(keys []signingKey, head []byte, body io.Reader) ([]byte, error) {
	fields := headerKeys(head)
	signers := make([]*msgauth.Signer, 0, len(keys))
	writers := make([]io.Writer, 0, len(keys))
	// Every signer runs a goroutine until it is closed, on every path.
	closed := false
	defer func() {
		if !closed {
			for _, s := range signers {
				s.Close()
			}
		}
	}()
	for _, k := range keys {
		s, err := msgauth.NewSigner(&msgauth.SignOptions{
			Domain:                 k.domain,
			Selector:               k.selector,
			Identifier:             k.identity,
			Signer:                 k.signer,
			Hash:                   crypto.SHA256,
			HeaderCanonicalization: msgauth.CanonicalizationRelaxed,
			BodyCanonicalization:   msgauth.CanonicalizationRelaxed,
			HeaderKeys:             fields,
		})
		if err != nil {
			return nil, signError(k, err)
		}
		signers = append(signers, s)
		writers = append(writers, s)
	}
	w := io.MultiWriter(writers...)
	_, err := w.Write(head)
	if err == nil {
		_, err = io.Copy(w, body)
	}
	closed = true
	for i, s := range signers {
		if cerr := s.Close(); cerr != nil && err == nil {
			err = signError(keys[i], cerr)
		}
	}
	if err != nil {
		var me *mailerr.Error
		if errors.As(err, &me) {
			return nil, err
		}
		e := mailerr.SMTP(451, "4.3.0", "Local error: cannot DKIM-sign the message")
		e.Err = fmt.Errorf("dkim: reading or signing the message: %w", err)
		return nil, e
	}
	var out []byte
	for _, s := range signers {
		out = append(out, s.Signature()...)
	}
	return out, nil
}

func signError(k signingKey, err error) error {
	e := mailerr.SMTP(451, "4.3.0", "Local error: cannot DKIM-sign mail from %s", k.domain)
	e.Err = fmt.Errorf("dkim: signing as d=%s s=%s: %w", k.domain, k.selector, err)
	return e
}

// headerKeys lists the fields to sign (h=): each of signedFields as often
// as the header has it, and From once more.
func headerKeys(head []byte) []string {
	counts := make(map[string]int)
	for line := range bytes.Lines(head) {
		if len(line) == 0 || line[0] == ' ' || line[0] == '\t' {
			continue
		}
		name, _, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		counts[strings.ToLower(string(bytes.TrimSpace(name)))]++
	}
	var keys []string
	for _, f := range signedFields {
		n := counts[strings.ToLower(f)]
		if f == "From" {
			n++
		}
		for range n {
			keys = append(keys, f)
		}
	}
	return keys
}

// readHeader reads the header up to and including the empty line that
// ends it. A message that ends inside its header gets the line end and the
// empty line it lacks, as the copy on the wire will have them.
func readHeader(br *bufio.Reader) ([]byte, error) {
	var head []byte
	start := 0 // where the current line begins in head
	for {
		chunk, err := br.ReadSlice('\n')
		head = append(head, chunk...)
		if len(head) > maxHeader {
			e := mailerr.SMTP(554, "5.6.0", "Message header too large to DKIM-sign")
			e.Err = fmt.Errorf("dkim: header larger than %d bytes", maxHeader)
			return nil, e
		}
		switch {
		case err == bufio.ErrBufferFull:
			continue // a long line: keep reading it
		case err == io.EOF:
			if len(head) > start {
				head = append(head, '\r', '\n')
			}
			return append(head, '\r', '\n'), nil
		case err != nil:
			e := mailerr.SMTP(451, "4.3.0", "Local error: cannot read the message to DKIM-sign it")
			e.Err = fmt.Errorf("dkim: reading the message: %w", err)
			return nil, e
		}
		line := head[start:]
		if string(line) == "\r\n" || string(line) == "\n" {
			return head, nil
		}
		start = len(head)
	}
}

// AuthorOf returns the author address of a message, the first address of
// its first From: field, parsed with go-message (which decodes the display
// name's encoded words). A From: that does not parse, as some scripts
// write it, is searched for an address all the same, since the author
// decides whether mail must be signed. The domain comes back in lower case
// without a trailing dot. The error wraps ErrNoAuthor when there is no
// address to be found.
func AuthorOf(header []byte) (string, error) {
	h, rerr := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(header)))
	raw := h.Get("From")
	if strings.TrimSpace(raw) == "" {
		if rerr != nil && !errors.Is(rerr, io.EOF) {
			return "", fmt.Errorf("%w (reading the header: %v)", ErrNoAuthor, rerr)
		}
		return "", ErrNoAuthor
	}
	mh := mail.Header{Header: gomessage.Header{Header: h}}
	addr := ""
	if list, err := mh.AddressList("From"); err == nil && len(list) > 0 {
		addr = list[0].Address
	} else {
		addr = lenientAddress(raw)
	}
	at := strings.LastIndexByte(addr, '@')
	domain := ""
	if at > 0 {
		domain = strings.ToLower(strings.TrimSuffix(addr[at+1:], "."))
	}
	if domain == "" {
		return "", fmt.Errorf("%w: From: %q", ErrNoAuthor, raw)
	}
	return addr[:at+1] + domain, nil
}

// lenientAddress digs an address out of a From: value that does not parse:
// the last <...> holding an '@', else the first word holding one.
func lenientAddress(v string) string {
	if end := strings.LastIndexByte(v, '>'); end >= 0 {
		if start := strings.LastIndexByte(v[:end], '<'); start >= 0 {
			if a := strings.TrimSpace(v[start+1 : end]); strings.Contains(a, "@") && !strings.ContainsAny(a, " \t") {
				return a
			}
		}
	}
	for w := range strings.FieldsFuncSeq(v, func(r rune) bool {
		return r == ' ' || r == '\t' || r == ',' || r == ';' || r == '\r' || r == '\n'
	}) {
		if strings.Contains(w, "@") {
			return strings.Trim(w, `"'()<>[]`)
		}
	}
	return ""
}
