package sendmailq

import (
	"bytes"
	"io"
	"strings"
)

// SMTPMailerFlags are the flags of sendmail.cf's esmtp mailer
// (F=mDFMuXa): the header conditions are judged as sendmail would for
// a message relayed by SMTP. So ?D?Date:, ?F?From: and ?M?Message-Id:
// stay, and ?P?Return-Path: (added by the final delivery, not sent on)
// and ?x?Full-Name: go.
const SMTPMailerFlags = "mDFMuXa"

// Wanted reports whether sendmail would send header h to a mailer with
// the given flags for this message: a "?flags?" condition needs one of
// the flags, a "?$x?" condition a macro with a value among those of the
// qf ('$' records; macros the qf does not hold are taken as unset), and
// Bcc: and Resent-Bcc: are dropped when the message asks for it (F flag
// b, set for sendmail -t).
func (f *File) Wanted(h *Header, mailerFlags string) bool {
	if h.Cond != "" && !strings.ContainsAny(h.Cond, mailerFlags) {
		return false
	}
	if h.Macro != "" && f.macro(h.Macro) == "" {
		return false
	}
	if f.HasFlag('b') && (strings.EqualFold(h.Name, "Bcc") || strings.EqualFold(h.Name, "Resent-Bcc")) {
		return false
	}
	return true
}

// macro is the value of a macro as the qf knows it: its '$' records,
// and $g, $f (the envelope sender) and $i (the queue ID), which sendmail
// sets from the envelope itself.
func (f *File) macro(name string) string {
	switch name {
	case "g", "f":
		return bareAddr(f.Sender)
	case "i":
		return f.ID
	}
	return f.Macros[name]
}

// bareAddr is addr without one layer of angle brackets and spaces.
func bareAddr(addr string) string {
	a := strings.TrimSpace(addr)
	if len(a) >= 2 && a[0] == '<' && a[len(a)-1] == '>' {
		a = a[1 : len(a)-1]
	}
	return a
}

// isMeta reports a byte sendmail uses internally (0x80 to 0x9f).
func isMeta(c byte) bool { return c&0340 == 0200 }

// Expand resolves sendmail's internal bytes in a header value as sendmail
// does when it writes the header out: $x and $&x (0x81, 0x82 and the
// macro's letter) become the macro's value (see Wanted for the values
// known), $?x ... $| ... $. (0x9a, 0x9b, 0x9c) keep the branch the macro
// chooses, and a quoted byte (0x81 before a byte from 0x80 to 0x9f) is
// itself.
//
// Those bytes are also the continuation bytes of UTF-8, which sendmail 8
// may keep raw in a header: a byte from 0x80 to 0x9f counts as internal
// only after an ASCII byte (or first), where UTF-8 cannot have it.
//
// With a nil macro only quoted bytes are resolved: sendmail expands
// macros in its own default fields (sendmail.cf's H lines) only, never in
// those of the message.
func Expand(value string, macro func(string) string) string {
	if !hasMeta(value) {
		return value
	}
	var out []byte
	// skip[i] is true while inside the branch of a conditional that the
	// macro did not choose; skipped counts the true ones.
	var skip []bool
	skipped := 0
	skipping := func() bool { return skipped > 0 }
	push := func(s bool) {
		skip = append(skip, s)
		if s {
			skipped++
		}
	}
	pop := func() {
		if skip[len(skip)-1] {
			skipped--
		}
		skip = skip[:len(skip)-1]
	}
	// afterText8 is set after a byte of text from 0x80 up: a byte from
	// 0x80 to 0x9f there is UTF-8, not sendmail's.
	afterText8 := false
	for i := 0; i < len(value); i++ {
		c := value[i]
		wasText8 := afterText8
		afterText8 = false
		switch {
		case c == metaQuote && i+1 < len(value) && isMeta(value[i+1]):
			if !skipping() {
				out = append(out, value[i+1])
			}
			i++
			afterText8 = true
		case wasText8 || !isMeta(c) || macro == nil:
			if !skipping() {
				out = append(out, c)
			}
			afterText8 = c >= 0x80
		case (c == macroExpand || c == macroDefer || c == condIf) && i+1 < len(value):
			// The macro's name: one byte. Long names ({name}) are one
			// byte too inside sendmail, numbered per process: unknown.
			name := ""
			if n := value[i+1]; n < 0x80 {
				name = string(n)
			}
			i++
			v := ""
			if name != "" {
				v = macro(name)
			}
			if c == condIf {
				push(v == "")
			} else if !skipping() {
				out = append(out, v...)
			}
		case c == condElse:
			if len(skip) > 0 {
				s := !skip[len(skip)-1]
				pop()
				push(s)
			}
		case c == condFi:
			if len(skip) > 0 {
				pop()
			}
		default:
			// A lone internal byte: keep it.
			if !skipping() {
				out = append(out, c)
			}
		}
	}
	return string(out)
}

func hasMeta(s string) bool {
	for i := 0; i < len(s); i++ {
		if isMeta(s[i]) {
			return true
		}
	}
	return false
}

// HeaderBlock is the message's header as sendmail would send it to a
// mailer with the given flags (SMTPMailerFlags for gosendmail's queue):
// the wanted H records in their order, macros of default fields
// expanded (Expand), with CRLF line
// ends and without the blank line that ends it. A header whose value
// expands to nothing is left out, as sendmail does.
func (f *File) HeaderBlock(mailerFlags string) []byte {
	var b bytes.Buffer
	for i := range f.Headers {
		h := &f.Headers[i]
		if !f.Wanted(h, mailerFlags) {
			continue
		}
		// A field with a condition is one of sendmail.cf's defaults,
		// the only ones whose macros sendmail expands.
		var m func(string) string
		if h.Cond != "" || h.Macro != "" {
			m = f.macro
		}
		v := Expand(h.Value, m)
		if strings.TrimSpace(v) == "" && v != h.Value {
			continue
		}
		b.WriteString(h.Name)
		b.WriteByte(':')
		if v != "" && v[0] != '\n' {
			b.WriteByte(' ')
		}
		b.WriteString(strings.ReplaceAll(v, "\n", "\r\n"))
		b.WriteString("\r\n")
	}
	return b.Bytes()
}

// Message is the whole message as gosendmail's df holds it: HeaderBlock,
// a blank line, then body (sendmail's df: the body alone, LF line ends)
// with CRLF line ends, ending in CRLF.
func (f *File) Message(body io.Reader, mailerFlags string) io.Reader {
	hdr := f.HeaderBlock(mailerFlags)
	return io.MultiReader(bytes.NewReader(hdr), strings.NewReader("\r\n"), NewCRLF(body))
}

// CRLF reads another reader with every LF that has no CR before it made
// CRLF, and CRLF added after a last line that lacks a line end.
type CRLF struct {
	r      io.Reader
	in     []byte
	outBuf []byte
	out    []byte // converted, not yet read
	prevCR bool   // the last byte read was CR
	last   byte   // the last byte read, if any
	any    bool
	err    error
}

// NewCRLF returns a CRLF reading r.
func NewCRLF(r io.Reader) *CRLF {
	return &CRLF{r: r, in: make([]byte, 32<<10), outBuf: make([]byte, 0, 64<<10+2)}
}

func (c *CRLF) Read(p []byte) (int, error) {
	for len(c.out) == 0 {
		if c.err != nil {
			return 0, c.err
		}
		n, err := c.r.Read(c.in)
		out := c.outBuf[:0]
		for _, b := range c.in[:n] {
			if b == '\n' && !c.prevCR {
				out = append(out, '\r')
			}
			out = append(out, b)
			c.prevCR = b == '\r'
		}
		if n > 0 {
			c.last, c.any = c.in[n-1], true
		}
		if err != nil {
			c.err = err
			if err == io.EOF && c.any && c.last != '\n' {
				out = append(out, '\r', '\n')
			}
		}
		c.out = out
	}
	k := copy(p, c.out)
	c.out = c.out[k:]
	return k, nil
}
