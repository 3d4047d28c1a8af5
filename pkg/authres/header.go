package authres

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
)

const (
	// maxHeader bounds the header Check holds in memory, as pkg/dkim does
	// when signing: no legitimate header comes near it.
	maxHeader = 1 << 20

	// maxField bounds one Authentication-Results field Rewrite holds while
	// it looks for the authserv-id, which may sit on a continuation line.
	// A longer one is dropped: it is abuse, and could hide a forged id.
	maxField = 64 << 10

	fieldName = "Authentication-Results"
)

// errHeaderTooLong is a header over maxHeader.
var errHeaderTooLong = errors.New("authres: message header over 1 MiB")

// readHeader returns the header of the message br reads, up to and
// including the blank line that ends it (or everything, if there is no
// body); br is left at the start of the body.
func readHeader(br *bufio.Reader) ([]byte, error) {
	var head []byte
	for {
		line, err := br.ReadSlice('\n')
		head = append(head, line...)
		if len(head) > maxHeader {
			return nil, errHeaderTooLong
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err == io.EOF {
			return head, nil
		}
		if err != nil {
			return nil, err
		}
		if isBlank(line) && (len(head) == len(line) || head[len(head)-len(line)-1] == '\n') {
			return head, nil
		}
	}
}

func isBlank(line []byte) bool {
	return string(line) == "\r\n" || string(line) == "\n"
}

// field is one header field: its name and its value, unfolded, without
// the line ends.
type field struct {
	name, value string
}

// fields splits a header into fields. A line that is neither a field nor
// a continuation is skipped, as go-msgauth's verifier does not sign it
// either.
func fields(head []byte) []field {
	var out []field
	for line := range bytes.Lines(head) {
		if isBlank(line) {
			break
		}
		text := strings.TrimRight(string(line), "\r\n")
		if text == "" {
			continue // a stray CR at the very end
		}
		if text[0] == ' ' || text[0] == '\t' {
			if len(out) > 0 {
				out[len(out)-1].value += text
			}
			continue
		}
		name, value, ok := strings.Cut(text, ":")
		if !ok {
			continue
		}
		out = append(out, field{name: strings.TrimRight(name, " \t"), value: value})
	}
	return out
}

// StripOurs returns header without the Authentication-Results fields whose
// authserv-id is authservID (case-insensitively); others are kept. header
// may run into the body: everything after the blank line is left alone.
func StripOurs(header []byte, authservID string) []byte {
	var buf bytes.Buffer
	buf.Grow(len(header))
	// Writing to a bytes.Buffer from a bytes.Reader cannot fail.
	_ = Rewrite(&buf, bytes.NewReader(header), authservID, "")
	return buf.Bytes()
}

// Rewrite writes newHeader (Result.Header: a whole field with its CRLF),
// then msg with the Authentication-Results fields claiming authservID
// removed. The header is read field by field and the body copied as it
// is, so a message of any size passes through a small buffer.
func Rewrite(w io.Writer, msg io.Reader, authservID string, newHeader string) error {
	bw := bufio.NewWriter(w)
	if _, err := bw.WriteString(newHeader); err != nil {
		return err
	}
	br := bufio.NewReader(msg)

	// pending holds an Authentication-Results field until it ends, since
	// its authserv-id may come on a continuation line; dropping says the
	// current field is being left out.
	var pending []byte
	holding, dropping := false, false
	flush := func() error {
		if holding && !dropping && !claims(pending, authservID) {
			if _, err := bw.Write(pending); err != nil {
				return err
			}
		}
		pending, holding, dropping = pending[:0], false, false
		return nil
	}

	lineStart := true
	for {
		chunk, err := br.ReadSlice('\n')
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) && err != io.EOF {
			return err
		}
		if len(chunk) > 0 && lineStart {
			continuation := chunk[0] == ' ' || chunk[0] == '\t'
			if !continuation {
				if ferr := flush(); ferr != nil {
					return ferr
				}
			}
			if isBlank(chunk) {
				// The end of the header: the rest is body.
				if _, err := bw.Write(chunk); err != nil {
					return err
				}
				if _, err := io.Copy(bw, br); err != nil {
					return err
				}
				return bw.Flush()
			}
			if !continuation && isResultsField(chunk) {
				holding = true
			}
		}
		switch {
		case dropping:
		case holding:
			pending = append(pending, chunk...)
			if len(pending) > maxField {
				dropping = true
			}
		default:
			if _, err := bw.Write(chunk); err != nil {
				return err
			}
		}
		lineStart = len(chunk) > 0 && chunk[len(chunk)-1] == '\n'
		if err == io.EOF {
			break
		}
	}
	// A message that is all header.
	if err := flush(); err != nil {
		return err
	}
	return bw.Flush()
}

// isResultsField says whether line starts an Authentication-Results field.
// White space before the colon is obsolete syntax (RFC 5322 section 4.5)
// but still seen, and a filter downstream may well accept it.
func isResultsField(line []byte) bool {
	name, _, ok := bytes.Cut(line, []byte(":"))
	return ok && strings.EqualFold(string(bytes.TrimRight(name, " \t")), fieldName)
}

// claims says whether the Authentication-Results field f (name, colon,
// value, folded) names authservID as its authserv-id.
func claims(f []byte, authservID string) bool {
	_, value, _ := bytes.Cut(f, []byte(":"))
	id, ok := authservIDOf(string(value))
	return ok && strings.EqualFold(strings.TrimSuffix(id, "."), strings.TrimSuffix(authservID, "."))
}

// authservIDOf returns the authserv-id that starts an Authentication-Results
// value (RFC 8601 section 2.2): after comments and folding white space, a
// token or a quoted-string.
func authservIDOf(v string) (string, bool) {
	v = skipCFWS(v)
	if v == "" {
		return "", false
	}
	if v[0] == '"' {
		var b strings.Builder
		for i := 1; i < len(v); i++ {
			switch c := v[i]; c {
			case '\\':
				if i+1 < len(v) {
					i++
					b.WriteByte(v[i])
				}
			case '"':
				return b.String(), true
			default:
				b.WriteByte(c)
			}
		}
		return "", false
	}
	end := strings.IndexAny(v, " \t\r\n;()\"")
	if end < 0 {
		end = len(v)
	}
	return v[:end], end > 0
}

// skipCFWS drops leading white space, line ends and (nested, escaped)
// comments.
func skipCFWS(v string) string {
	depth := 0
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '\\' && depth > 0:
			i++
		case c == '(':
			depth++
		case c == ')' && depth > 0:
			depth--
		case depth > 0, c == ' ', c == '\t', c == '\r', c == '\n':
		default:
			return v[i:]
		}
	}
	return ""
}

// resinfo is one method's result as it goes into the header.
type resinfo struct {
	method, result string
	comment        string // without the parentheses; "" for none
	reason         string
	props          [][2]string // ptype.property, value; in this order
}

// format builds the whole field: one result per line, folded with CRLF
// TAB so no line gets long, and the CRLF that ends the field.
func format(authservID string, infos []resinfo) string {
	var b strings.Builder
	b.WriteString(fieldName + ": " + clean(authservID))
	if len(infos) == 0 {
		b.WriteString("; none\r\n")
		return b.String()
	}
	for _, r := range infos {
		fmt.Fprintf(&b, ";\r\n\t%s=%s", r.method, r.result)
		if r.comment != "" {
			b.WriteString(" (" + commentText(r.comment) + ")")
		}
		if r.reason != "" {
			b.WriteString(" reason=" + quoted(r.reason))
		}
		for _, p := range r.props {
			if p[1] != "" {
				b.WriteString(" " + p[0] + "=" + pvalue(p[1]))
			}
		}
	}
	b.WriteString("\r\n")
	return b.String()
}

// clean drops control characters, so nothing a client sends (a MAIL FROM,
// a HELO name) can end the field early and inject one of its own.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return -1
		}
		return r
	}, s)
}

// pvalue writes an RFC 8601 pvalue: bare when it is an address or a
// domain made of safe characters, else a quoted-string.
func pvalue(s string) string {
	s = clean(s)
	if s == "" {
		return `""`
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			strings.ContainsRune(".-_@+=/!#$%&'*^`{|}~", c)) {
			return quoted(s)
		}
	}
	return s
}

func quoted(s string) string {
	s = clean(s)
	s = strings.ReplaceAll(s, `\`, `\\`)
	return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"`
}

// commentText keeps a comment balanced: parentheses and backslashes in it
// are escaped.
func commentText(s string) string {
	r := strings.NewReplacer(`\`, `\\`, "(", `\(`, ")", `\)`)
	return r.Replace(clean(s))
}
