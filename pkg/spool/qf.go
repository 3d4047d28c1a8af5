package spool

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Version is the qf format version this code writes and reads.
const Version = "V1"

// MaxQfSize bounds what the reader accepts; larger files are corrupt.
const MaxQfSize = 32 << 20

// State is a recipient's delivery state.
type State byte

// Recipient states. A recipient moves Pending -> (deferred: Pending with a
// Reason and a higher attempt count) -> Sent or Failed. Only Pending
// recipients are shown by mailq and tried by the runner.
const (
	Pending State = 'P'
	Sent    State = 'S'
	Failed  State = 'F'
)

// Recipient is one envelope recipient and its state.
type Recipient struct {
	Addr   string // as the envelope holds it
	State  State
	Notify string // DSN NOTIFY (e.g. "FAILURE,DELAY"); "" = default
	ORcpt  string // DSN ORCPT; "" if none
	Reason string // last failure text; "" if none
	// Done lists the delivery targets (route.Target.Key) this recipient
	// expanded to that are finished, delivered or failed, so that a crash
	// or a retry never delivers to one of them twice.
	Done []string
}

// IsDone reports whether a target of the recipient is finished.
func (r *Recipient) IsDone(key string) bool {
	for _, d := range r.Done {
		if d == key {
			return true
		}
	}
	return false
}

// Envelope is everything in a qf file.
type Envelope struct {
	ID          string
	Created     time.Time
	LastAttempt time.Time // zero before the first attempt
	NextAttempt time.Time // zero = as soon as possible
	Attempts    int
	Priority    int64
	Sender      string // "" is the null sender <>
	UID         int    // submitting local uid; -1 for mail that came over SMTP
	User        string // submitting local user name; "" for SMTP
	Client      string // "host [ip]" of the SMTP client, "" for local
	BodyType    string // "", "7BIT" or "8BITMIME"
	EnvID       string // DSN ENVID
	Ret         string // DSN RET: "", "FULL" or "HDRS"
	Hold        string // non-empty = held (quarantined) with this reason
	Status      string // last status message shown by mailq, e.g. "Deferred: ..."
	Flags       string // letters: 'w' delay warning sent, 'b' a report generated here
	Rcpts       []Recipient
}

// HasFlag reports whether the flag letter is set.
func (e *Envelope) HasFlag(f byte) bool { return strings.IndexByte(e.Flags, f) >= 0 }

// SetFlag sets a flag letter.
func (e *Envelope) SetFlag(f byte) {
	if !e.HasFlag(f) {
		e.Flags += string(f)
	}
}

// Pending returns the recipients still to be delivered.
func (e *Envelope) Pending() []Recipient {
	var out []Recipient
	for _, r := range e.Rcpts {
		if r.State == Pending {
			out = append(out, r)
		}
	}
	return out
}

// escape percent-encodes the bytes that would break the line format:
// controls, space, DEL and '%'. Everything else, UTF-8 included, is kept.
func escape(s string) string {
	need := false
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c == 0x7f || c == '%' {
			need = true
			break
		}
	}
	if !need {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c == 0x7f || c == '%' {
			fmt.Fprintf(&b, "%%%02X", c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

func unescape(s string) (string, error) {
	if strings.IndexByte(s, '%') < 0 {
		for i := 0; i < len(s); i++ {
			if c := s[i]; c <= ' ' || c == 0x7f {
				return "", fmt.Errorf("raw control byte 0x%02x", c)
			}
		}
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c == 0x7f {
			return "", fmt.Errorf("raw control byte 0x%02x", c)
		}
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		if i+2 >= len(s) {
			return "", errors.New("truncated escape")
		}
		v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
		if err != nil || s[i+1] >= 'a' || s[i+2] >= 'a' {
			return "", fmt.Errorf("bad escape %q", s[i:i+3])
		}
		b.WriteByte(byte(v))
		i += 2
	}
	return b.String(), nil
}

// Marshal writes the qf text. Layout, one record per line, each a code
// letter followed by its value; values are escaped (see escape):
//
//	V1                       version, always first
//	T<unix>                  created
//	K<unix>                  last attempt (0 = never)
//	W<unix>                  next attempt not before (0 = now)
//	N<n>                     attempts
//	P<n>                     priority
//	S<addr>                  envelope sender ("" = <>)
//	U<uid> <name>            submitting local user (uid -1 = SMTP)
//	C<client>                SMTP client "host [ip]"
//	B<type>                  body type
//	Z<envid>                 DSN ENVID
//	E<ret>                   DSN RET
//	F<letters>               flags: w delay warning sent, b a report we generated
//	q<reason>                held, with reason
//	M<text>                  last status message
//	R<state> <notify> <orcpt> <addr> <reason>   one per recipient
//	X<i> <key>               target key finished for recipient i (0-based)
//	.<n>                     trailer: n = bytes before this line
//
// Optional records are omitted when empty.
func (e *Envelope) Marshal() []byte {
	var b bytes.Buffer
	line := func(code byte, v string) {
		b.WriteByte(code)
		b.WriteString(v)
		b.WriteByte('\n')
	}
	b.WriteString(Version + "\n")
	line('T', strconv.FormatInt(e.Created.Unix(), 10))
	line('K', strconv.FormatInt(unixOrZero(e.LastAttempt), 10))
	line('W', strconv.FormatInt(unixOrZero(e.NextAttempt), 10))
	line('N', strconv.Itoa(e.Attempts))
	line('P', strconv.FormatInt(e.Priority, 10))
	line('S', escape(e.Sender))
	line('U', strconv.Itoa(e.UID)+" "+escape(e.User))
	opt := func(code byte, v string) {
		if v != "" {
			line(code, escape(v))
		}
	}
	opt('C', e.Client)
	opt('B', e.BodyType)
	opt('Z', e.EnvID)
	opt('E', e.Ret)
	opt('F', e.Flags)
	opt('q', e.Hold)
	opt('M', e.Status)
	for _, r := range e.Rcpts {
		line('R', string(r.State)+" "+escape(r.Notify)+" "+escape(r.ORcpt)+" "+escape(r.Addr)+" "+escape(r.Reason))
	}
	for i, r := range e.Rcpts {
		for _, d := range r.Done {
			line('X', strconv.Itoa(i)+" "+escape(d))
		}
	}
	n := b.Len()
	b.WriteString("." + strconv.Itoa(n) + "\n")
	return b.Bytes()
}

func unixOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

func timeOrZero(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(n, 0)
}

// ErrCorrupt wraps every parse failure of a qf file.
var ErrCorrupt = errors.New("corrupt queue file")

// ErrSendmail says a qf file is sendmail 8's (its first line V4 to V8,
// the versions sendmail 8.10 to 8.18 write; gosendmail's own versions
// skip them),
// left in queue_dir when gosendmail replaced sendmail: not corrupt, not
// ours to set aside; `mailq import` takes it in.
var ErrSendmail = errors.New("a sendmail queue file (take it in with mailq import)")

// isSendmailQf reports whether data starts as sendmail 8's qf files do.
func isSendmailQf(data []byte) bool {
	return len(data) >= 3 && data[0] == 'V' && data[1] >= '4' && data[1] <= '8' && data[2] == '\n'
}

// Unmarshal parses qf text strictly: version first, known codes only, each
// at most once (R repeats), a trailer whose count matches, nothing after it.
func Unmarshal(id string, data []byte) (*Envelope, error) {
	fail := func(line int, format string, args ...any) error {
		return fmt.Errorf("%w: line %d: %s", ErrCorrupt, line, fmt.Sprintf(format, args...))
	}
	if len(data) > MaxQfSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrCorrupt, len(data))
	}
	if isSendmailQf(data) {
		return nil, ErrSendmail
	}
	e := &Envelope{ID: id, UID: -1}
	seen := map[byte]bool{}
	r := bufio.NewReader(bytes.NewReader(data))
	offset := 0
	for n := 1; ; n++ {
		raw, err := r.ReadString('\n')
		if err == io.EOF {
			return nil, fail(n, "no trailer")
		}
		start := offset
		offset += len(raw)
		s := raw[:len(raw)-1]
		if n == 1 {
			if s != Version {
				return nil, fail(n, "version %q, want %s", s, Version)
			}
			continue
		}
		if s == "" {
			return nil, fail(n, "empty line")
		}
		code, val := s[0], s[1:]
		if code == '.' {
			want, err := strconv.Atoi(val)
			if err != nil || want != start {
				return nil, fail(n, "trailer %q does not match length %d", s, start)
			}
			if offset != len(data) {
				return nil, fail(n, "data after trailer")
			}
			break
		}
		if code != 'R' && code != 'X' {
			if seen[code] {
				return nil, fail(n, "record %c repeated", code)
			}
			seen[code] = true
		}
		if err := e.set(code, val); err != nil {
			return nil, fail(n, "record %c: %v", code, err)
		}
	}
	for _, c := range []byte("TSU") {
		if !seen[c] {
			return nil, fail(0, "missing record %c", c)
		}
	}
	if len(e.Rcpts) == 0 {
		return nil, fail(0, "no recipients")
	}
	return e, nil
}

func (e *Envelope) set(code byte, val string) error {
	num := func() (int64, error) {
		n, err := strconv.ParseInt(val, 10, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("bad number %q", val)
		}
		return n, nil
	}
	var err error
	str := func(dst *string) {
		*dst, err = unescape(val)
	}
	switch code {
	case 'T':
		var n int64
		if n, err = num(); err == nil {
			e.Created = time.Unix(n, 0)
		}
	case 'K':
		var n int64
		if n, err = num(); err == nil {
			e.LastAttempt = timeOrZero(n)
		}
	case 'W':
		var n int64
		if n, err = num(); err == nil {
			e.NextAttempt = timeOrZero(n)
		}
	case 'N':
		var n int64
		if n, err = num(); err == nil {
			e.Attempts = int(n)
		}
	case 'P':
		e.Priority, err = num()
	case 'S':
		str(&e.Sender)
	case 'U':
		uid, name, ok := strings.Cut(val, " ")
		if !ok {
			return errors.New("want uid and name")
		}
		if e.UID, err = strconv.Atoi(uid); err != nil || e.UID < -1 {
			return fmt.Errorf("bad uid %q", uid)
		}
		e.User, err = unescape(name)
	case 'C':
		str(&e.Client)
	case 'B':
		str(&e.BodyType)
	case 'Z':
		str(&e.EnvID)
	case 'E':
		str(&e.Ret)
	case 'F':
		str(&e.Flags)
	case 'q':
		str(&e.Hold)
	case 'M':
		str(&e.Status)
	case 'R':
		f := strings.Split(val, " ")
		if len(f) != 5 || len(f[0]) != 1 {
			return errors.New("want state, notify, orcpt, address, reason")
		}
		rc := Recipient{State: State(f[0][0])}
		if rc.State != Pending && rc.State != Sent && rc.State != Failed {
			return fmt.Errorf("bad state %q", f[0])
		}
		for i, dst := range []*string{&rc.Notify, &rc.ORcpt, &rc.Addr, &rc.Reason} {
			if *dst, err = unescape(f[i+1]); err != nil {
				return err
			}
		}
		if rc.Addr == "" {
			return errors.New("empty recipient")
		}
		e.Rcpts = append(e.Rcpts, rc)
	case 'X':
		idx, key, ok := strings.Cut(val, " ")
		i, err2 := strconv.Atoi(idx)
		if !ok || err2 != nil || i < 0 || i >= len(e.Rcpts) {
			return fmt.Errorf("bad target record %q", val)
		}
		var k string
		if k, err = unescape(key); err == nil {
			if k == "" {
				return errors.New("empty target key")
			}
			e.Rcpts[i].Done = append(e.Rcpts[i].Done, k)
		}
	default:
		return errors.New("unknown record")
	}
	return err
}

// Escape is the value escaping of queue and drop files, for other spool
// formats that share it.
func Escape(s string) string { return escape(s) }

// Unescape reverses Escape and refuses raw control bytes.
func Unescape(s string) (string, error) { return unescape(s) }
