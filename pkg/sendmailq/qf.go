// Package sendmailq reads the queue that sendmail 8 leaves behind: its qf
// control files (format versions V4 to V8, as written by sendmail 8.10 to
// 8.18) and df data files, in the layouts sendmail uses (layout.go). It
// writes nothing; mailq import (pkg/mailq) turns what it reads into
// gosendmail's queue.
//
// A qf file is one record per line, the first byte naming the record:
//
//	V8                          format version, first
//	T1795664940                 creation time (unix seconds)
//	K1795665840                 last delivery attempt (0: none yet)
//	N2                          delivery attempts
//	P210066                     priority
//	I254/0/754672               the df's device and inode
//	d<dir>                      queue directory of the df, when not the qf's
//	B8BITMIME                   body type
//	q<reason>                   quarantine reason
//	M<text>                     status message (mailq's reason line)
//	Fwb8dnrs                    flags: w warning sent, b delete Bcc, 8 8-bit
//	                            body, d RET given, n RET=HDRS, r a response
//	                            (DSN: sent with MAIL FROM:<>), s split
//	$r<value>, ${name}<value>   persistent macros
//	S<sender>                   envelope sender
//	Z<envid>                    DSN ENVID (xtext)
//	A<auth>                     AUTH= parameter (xtext)
//	!<time> <mode>              DELIVERBY
//	C<ctladdr>                  controlling user of the R records that follow
//	Q<orcpt>                    DSN ORCPT of the next R (xtext)
//	r<final-rcpt>               DSN final recipient of the next R
//	RPNSFD:<addr>               recipient: flags, ':', address
//	H?flags?Name: value         header; continuation lines start with white space
//	.                           end; nothing may follow
//
// Records sendmail reads but no longer writes (D data file name, E error
// recipient, L Solaris content length) are accepted and ignored; so are G
// and Y of versions 5 and 7 (8.10-8.12 built with _FFR_QUEUEDELAY). Any
// other record is an error: a file is imported whole or not at all, never
// guessed at.
package sendmailq

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// MaxQfSize bounds the qf files Parse accepts.
const MaxQfSize = 32 << 20

// Versions Parse accepts: V4 (8.10, 8.11) to V8 (8.13 and later).
const (
	MinVersion = 4
	MaxVersion = 8
)

// ErrFormat wraps every failure of Parse.
var ErrFormat = errors.New("not a readable sendmail queue file")

// Recipient is one R record with the records that qualify it.
type Recipient struct {
	Addr    string // as sendmail holds it: "<a@b.example>", "a", "Name <a@b>", "|prog"
	Flags   string // the letters before ':': P primary, N NOTIFY given, S, F, D notify on success, failure, delay, B bcc, A alias, M
	ORcpt   string // Q record: DSN ORCPT "type;xtext", "" if none
	Final   string // r record: final recipient "type; addr", "" if none
	CtlAddr string // C record in force: controlling user, "" if none
}

// HasFlag reports whether the R record carries flag letter c.
func (r *Recipient) HasFlag(c byte) bool { return strings.IndexByte(r.Flags, c) >= 0 }

// Notify is the DSN NOTIFY of the recipient in RFC 3461 words
// ("SUCCESS,FAILURE", "NEVER"), or "" for the default (failure and delay).
func (r *Recipient) Notify() string {
	var n []string
	for _, x := range []struct {
		c    byte
		word string
	}{{'S', "SUCCESS"}, {'F', "FAILURE"}, {'D', "DELAY"}} {
		if r.HasFlag(x.c) {
			n = append(n, x.word)
		}
	}
	if !r.HasFlag('N') {
		// No NOTIFY given: sendmail set its default, failure and delay.
		if len(n) == 2 && n[0] == "FAILURE" && n[1] == "DELAY" {
			return ""
		}
	}
	if len(n) == 0 {
		return "NEVER"
	}
	return strings.Join(n, ",")
}

// Header is one H record.
type Header struct {
	// Cond holds the mailer flag letters of a "?flags?" condition: the
	// header goes only to mailers with one of them. "" = unconditional.
	Cond string
	// Macro is the macro name of a "?$x?" or "?${name}?" condition: the
	// header goes out only when the macro has a value. "" = none.
	Macro string
	Name  string
	// Value is the text after "Name:" and the white space that follows;
	// continuation lines are kept as "\n" and their leading white space.
	// It may hold sendmail's internal bytes (macro references, quotes):
	// see Expand.
	Value string
}

// File is everything in one qf file.
type File struct {
	ID          string
	Version     int
	Created     time.Time // T
	LastAttempt time.Time // K; zero if none
	Attempts    int       // N
	Priority    int64     // P
	Inode       string    // I
	DataDir     string    // d
	BodyType    string    // B
	Quarantine  string    // q
	Status      string    // M
	Flags       string    // F
	Macros      map[string]string
	Sender      string // S, as sendmail holds it
	EnvID       string // Z, xtext
	Auth        string // A, xtext
	DeliverBy   string // !
	Rcpts       []Recipient
	Headers     []Header
}

// HasFlag reports whether the F record carries flag letter c.
func (f *File) HasFlag(c byte) bool { return strings.IndexByte(f.Flags, c) >= 0 }

// Ret is the DSN RET of the message: "HDRS", "FULL", or "" if not given.
func (f *File) Ret() string {
	switch {
	case f.HasFlag('n'):
		return "HDRS"
	case f.HasFlag('d'):
		return "FULL"
	}
	return ""
}

// IsResponse reports a message sendmail generated itself (a DSN or a
// return receipt): it goes out with the null sender whatever S says.
func (f *File) IsResponse() bool { return f.HasFlag('r') }

// WarningSent reports that the sender was already told of the delay.
func (f *File) WarningSent() bool { return f.HasFlag('w') }

// ValidID reports whether s can be a sendmail queue ID, and so part of a
// file name: 8 to 20 letters and digits (8.12 and later write 14).
func ValidID(s string) bool {
	if len(s) < 8 || len(s) > 20 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z') {
			return false
		}
	}
	return true
}

// record is one logical line: the line number of its first physical
// line and its text with continuation lines joined by "\n".
type record struct {
	line int
	text string
}

// Parse reads qf data strictly: the version first and supported, known
// records only, the single-valued ones once, a sender, at least one
// recipient, the '.' line last and nothing after it.
func Parse(id string, data []byte) (*File, error) {
	fail := func(line int, format string, args ...any) error {
		where := ""
		if line > 0 {
			where = fmt.Sprintf("line %d: ", line)
		}
		return fmt.Errorf("%w: %s%s", ErrFormat, where, fmt.Sprintf(format, args...))
	}
	if len(data) > MaxQfSize {
		return nil, fail(0, "larger than %d bytes", MaxQfSize)
	}
	if len(data) == 0 {
		return nil, fail(0, "empty file")
	}
	recs, ended, err := split(data)
	if err != nil {
		return nil, fail(err.line, "%s", err.msg)
	}
	if !ended {
		return nil, fail(0, "no '.' line at the end: truncated (sendmail may still be writing it)")
	}
	f := &File{ID: id, Macros: map[string]string{}}
	if len(recs) == 0 || recs[0].text == "" || recs[0].text[0] != 'V' {
		return nil, fail(1, "no version record first (sendmail before 8.10?)")
	}
	v, err2 := strconv.Atoi(recs[0].text[1:])
	if err2 != nil || v < MinVersion || v > MaxVersion {
		return nil, fail(1, "version %q not supported (V%d to V%d are)", recs[0].text[1:], MinVersion, MaxVersion)
	}
	f.Version = v
	seen := map[byte]bool{'V': true}
	var ctl, orcpt, final string
	for _, r := range recs[1:] {
		if r.text == "" {
			return nil, fail(r.line, "empty line")
		}
		code, val := r.text[0], r.text[1:]
		if code != 'H' && strings.IndexByte(val, '\n') >= 0 {
			return nil, fail(r.line, "record %q continued on the next line", code)
		}
		if strings.ContainsAny(val, "\x00\r") {
			return nil, fail(r.line, "NUL or CR in record %q", code)
		}
		switch code {
		case 'T', 'K', 'N', 'P', 'I', 'd', 'B', 'q', 'M', 'F', 'S', 'Z', 'A', '!':
			if seen[code] {
				return nil, fail(r.line, "record %q repeated", code)
			}
			seen[code] = true
		}
		num := func() (int64, error) {
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil || (n < 0 && code != 'P') {
				return 0, fail(r.line, "record %q: bad number %q", code, val)
			}
			return n, nil
		}
		switch code {
		case 'T':
			n, err := num()
			if err != nil {
				return nil, err
			}
			f.Created = time.Unix(n, 0)
		case 'K':
			n, err := num()
			if err != nil {
				return nil, err
			}
			if n != 0 {
				f.LastAttempt = time.Unix(n, 0)
			}
		case 'N':
			n, err := num()
			if err != nil {
				return nil, err
			}
			if n > 1<<30 {
				return nil, fail(r.line, "record 'N': %d attempts", n)
			}
			f.Attempts = int(n)
		case 'P':
			n, err := num()
			if err != nil {
				return nil, err
			}
			f.Priority = n
		case 'I':
			f.Inode = val
		case 'd':
			if val == "" {
				return nil, fail(r.line, "record 'd': empty directory")
			}
			f.DataDir = val
		case 'B':
			f.BodyType = strings.ToUpper(val)
			if f.BodyType != "7BIT" && f.BodyType != "8BITMIME" && f.BodyType != "BINARYMIME" {
				return nil, fail(r.line, "record 'B': unknown body type %q", val)
			}
		case 'q':
			f.Quarantine = val
		case 'M':
			f.Status = val
		case 'F':
			if strings.HasPrefix(val, "rom ") {
				// sendmail's "SECURITY ALERT: bogus qf line": an mbox
				// From_ line is no flag record.
				return nil, fail(r.line, "a \"From \" line")
			}
			f.Flags = val
		case '$':
			name, value, ok := macro(val)
			if !ok {
				return nil, fail(r.line, "record '$': bad macro name in %q", val)
			}
			f.Macros[name] = value
		case 'S':
			f.Sender = val
		case 'Z':
			f.EnvID = val
		case 'A':
			f.Auth = val
		case '!':
			f.DeliverBy = val
		case 'C':
			ctl = val
		case 'Q':
			orcpt = val
		case 'r':
			final = val
		case 'R':
			flags, addr, ok := strings.Cut(val, ":")
			if !ok {
				return nil, fail(r.line, "record 'R' without ':' after its flags")
			}
			if strings.TrimSpace(addr) == "" {
				return nil, fail(r.line, "record 'R': empty address")
			}
			for i := 0; i < len(flags); i++ {
				if c := flags[i]; c < 'A' || c > 'Z' {
					return nil, fail(r.line, "record 'R': bad flag %q", c)
				}
			}
			f.Rcpts = append(f.Rcpts, Recipient{Addr: addr, Flags: flags, ORcpt: orcpt, Final: final, CtlAddr: ctl})
			orcpt, final = "", ""
		case 'H':
			h, err := header(val)
			if err != nil {
				return nil, fail(r.line, "record 'H': %v", err)
			}
			f.Headers = append(f.Headers, h)
		case 'D', 'E', 'L':
			// Obsolete: read and ignored by sendmail too.
		case 'G', 'Y':
			if v != 5 && v != 7 {
				return nil, fail(r.line, "record %q is not of version %d", code, v)
			}
		case 'V':
			return nil, fail(r.line, "second version record")
		default:
			return nil, fail(r.line, "unknown record %q", code)
		}
	}
	switch {
	case !seen['T']:
		return nil, fail(0, "no creation time (T)")
	case !seen['S']:
		return nil, fail(0, "no sender (S)")
	case len(f.Rcpts) == 0:
		return nil, fail(0, "no recipients left (R)")
	case orcpt != "" || final != "":
		return nil, fail(0, "Q or r record without its R")
	}
	return f, nil
}

type splitErr struct {
	line int
	msg  string
}

// split cuts data into records, joining continuation lines (which start
// with a space or a TAB) to the record before, as sendmail's fgetfolded.
// ended reports the '.' line; anything after it is an error.
func split(data []byte) (recs []record, ended bool, err *splitErr) {
	// A record with its continuations is one stretch of data: the
	// newlines that join them are the file's own.
	line, start := 0, -1
	startLine := 0
	flush := func(end int) {
		if start >= 0 {
			recs = append(recs, record{line: startLine, text: string(data[start:end])})
			start = -1
		}
	}
	for pos := 0; pos < len(data); {
		line++
		end := len(data)
		next := len(data)
		if i := bytes.IndexByte(data[pos:], '\n'); i >= 0 {
			end, next = pos+i, pos+i+1
		}
		s := data[pos:end]
		if ended {
			return nil, false, &splitErr{line, "data after the '.' line"}
		}
		if len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
			if start < 0 {
				return nil, false, &splitErr{line, "continuation line first"}
			}
			pos = next
			continue
		}
		flush(pos - 1)
		if string(s) == "." {
			ended = true
		} else {
			start, startLine = pos, line
		}
		pos = next
	}
	if start >= 0 {
		end := len(data)
		if data[end-1] == '\n' {
			end--
		}
		flush(end)
	}
	return recs, ended, nil
}

// macro splits a '$' record: "r" + value, or "{name}" + value.
func macro(val string) (name, value string, ok bool) {
	if val == "" {
		return "", "", false
	}
	if val[0] == '{' {
		end := strings.IndexByte(val, '}')
		if end < 2 {
			return "", "", false
		}
		name = val[1:end]
		for i := 0; i < len(name); i++ {
			if c := name[i]; c <= ' ' || c >= 0x7f || c == '{' {
				return "", "", false
			}
		}
		return name, val[end+1:], true
	}
	if c := val[0]; c <= ' ' || c >= 0x7f {
		return "", "", false
	}
	return val[:1], val[1:], true
}

// Sendmail's internal bytes (sendmail.h).
const (
	metaQuote   = 0201 // METAQUOTE: the next byte is literal
	macroExpand = 0201 // MACROEXPAND: $x
	macroDefer  = 0202 // MACRODEXPAND: $&x
	condIf      = 0232 // CONDIF: $?x
	condElse    = 0233 // CONDELSE: $|
	condFi      = 0234 // CONDFI: $.
)

// header parses the text of an H record after the 'H'.
func header(val string) (Header, error) {
	var h Header
	if strings.HasPrefix(val, "?") {
		end := strings.IndexByte(val[1:], '?')
		if end < 0 {
			return h, errors.New("condition without its closing '?'")
		}
		cond := val[1 : 1+end]
		val = val[2+end:]
		switch {
		case cond == "":
		case cond[0] == '$':
			name := cond[1:]
			if strings.HasPrefix(name, "{") && strings.HasSuffix(name, "}") && len(name) > 2 {
				name = name[1 : len(name)-1]
			} else if len(name) != 1 {
				return h, fmt.Errorf("bad macro condition %q", cond)
			}
			h.Macro = name
		case cond[0] == macroExpand:
			if len(cond) != 2 {
				return h, fmt.Errorf("bad macro condition %q", cond)
			}
			h.Macro = cond[1:]
		default:
			for i := 0; i < len(cond); i++ {
				if c := cond[i]; c <= ' ' || c >= 0x7f {
					return h, fmt.Errorf("bad condition %q", cond)
				}
			}
			h.Cond = cond
		}
	}
	name, value, ok := strings.Cut(val, ":")
	if !ok {
		return h, errors.New("no ':' after the field name")
	}
	name = strings.TrimRight(name, " \t")
	if name == "" {
		return h, errors.New("empty field name")
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c <= ' ' || c >= 0x7f {
			return h, fmt.Errorf("bad field name %q", name)
		}
	}
	h.Name = name
	h.Value = strings.TrimLeft(value, " \t")
	return h, nil
}
