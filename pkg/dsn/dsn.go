// Package dsn builds delivery status notifications: the reports the queue
// runner queues as new messages when a message fails, is delayed, or is
// delivered with NOTIFY=SUCCESS (RFC 3461, RFC 3464).
//
// A report is a multipart/report; report-type=delivery-status message with
// CRLF line ends and three parts, as sendmail sends them:
//
//  1. text/plain: the explanation for a person ("The original message was
//     received at ...", the addresses grouped by outcome, the transcript
//     with the remote server's answers);
//  2. message/delivery-status: the machine-readable fields, one block for
//     the message and one per recipient;
//  3. message/rfc822 with the whole original, or text/rfc822-headers with
//     its header section only (see Report.Ret for which).
//
// The report is sent with the null envelope sender <> so that it can never
// cause another report: the runner never notifies about a message whose
// sender is null (IsBounce) and tells the postmaster instead
// (PostmasterNotify). A PostmasterNotify is itself sent with the null
// sender; when it fails too, the runner logs it and drops it, so the chain
// ends there.
//
// The original is copied as opaque bytes: it is never parsed as MIME, so a
// malformed original (no blank line after the header, NUL bytes, huge
// lines, broken boundaries, 8-bit bytes) cannot make Build fail or break the
// report. Only the line structure is repaired, because the report must
// survive SMTP: line ends become CRLF, NUL bytes are dropped, and lines
// longer than 998 octets are broken with CRLF and a space, as Postfix does.
// The multipart boundary carries a random token, so text the sender chose
// can never close the report's parts early.
package dsn

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"
)

// Kind is what a report tells.
type Kind int

// The kinds of report. The zero Kind is invalid, so a Report built without
// one is refused rather than silently sent as a bounce.
const (
	// Failure: some recipients failed for good ("Returned mail").
	Failure Kind = iota + 1
	// Delay: the message has waited in the queue longer than queue_warn.
	Delay
	// Success: delivered to recipients that asked for NOTIFY=SUCCESS.
	Success
	// PostmasterNotify: a message with the null sender failed; it is
	// reported to the postmaster, never to the (empty) sender.
	PostmasterNotify
)

func (k Kind) String() string {
	switch k {
	case Failure:
		return "failure"
	case Delay:
		return "delay"
	case Success:
		return "success"
	case PostmasterNotify:
		return "postmaster-notify"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Action is the RFC 3464 §2.3.3 action of one recipient.
type Action string

// The actions a recipient can have.
const (
	Failed    Action = "failed"
	Delayed   Action = "delayed"
	Delivered Action = "delivered"
	Relayed   Action = "relayed"  // handed to a host that does not speak DSN
	Expanded  Action = "expanded" // delivered to an alias or list
)

// Size limits for what is returned of the original.
const (
	// DefaultMaxFull is the largest original returned whole when
	// Report.MaxFull is zero; a larger one is returned as headers only, so
	// a bounce never carries megabytes back to a sender who may be forged.
	DefaultMaxFull = 256 << 10
	// MaxHeaderBytes bounds the header section returned; the rest of an
	// oversized header section is cut at a line boundary.
	MaxHeaderBytes = 128 << 10
	// maxDiagnostic bounds a remote reply kept in the report; replies are
	// short unless a server misbehaves.
	maxDiagnostic = 8 << 10
)

// RcptStatus is the outcome for one recipient.
type RcptStatus struct {
	Addr  string // the address as the envelope holds it (Final-Recipient)
	ORcpt string // DSN ORCPT as the queue holds it, "type;address"; "" if none
	// Action; "" means the one that goes with the report's Kind (failed,
	// delayed, delivered).
	Action Action
	// Status is the enhanced status code, e.g. "5.1.1"; "" or a malformed
	// code means it is taken from Diagnostic, else from Action.
	Status string
	// Diagnostic is the remote server's reply, verbatim (several lines for a
	// multi-line reply), or the local reason. An SMTP-shaped text ("550
	// 5.1.1 ...") is reported as "smtp", anything else as "X-Gosendmail".
	Diagnostic string
	// Command is the SMTP command the remote answered with Diagnostic,
	// e.g. "RCPT To:<bob@example.org>"; optional, shown in the transcript.
	Command        string
	RemoteMTA      string    // host that gave the reply, e.g. "mx.example.net"; "" if local
	LastAttempt    time.Time // zero = not reported
	WillRetryUntil time.Time // for delayed recipients; zero = not reported
}

// Report is everything Build needs to know.
type Report struct {
	Kind     Kind
	Hostname string    // this host: From: MAILER-DAEMON@Hostname, Reporting-MTA
	ID       string    // queue ID of the original
	Sender   string    // envelope sender of the original; the report goes there
	Arrival  time.Time // when the original was queued; zero = not reported
	// Client is where the original came from, shown as "from ...": the
	// SMTP client "host [ip]", or "user@localhost" for local submission.
	Client string
	EnvID  string // DSN ENVID of the original; "" if none

	// Ret is the DSN RET of the original: "FULL", "HDRS" or "". What is
	// returned in the third part:
	//
	//   - Failure: the whole message unless Ret is "HDRS" or NoBodyReturn
	//     is set; "" means whole, as sendmail does by default.
	//   - PostmasterNotify: the whole message unless Ret is "HDRS" or
	//     NoBodyReturn is set: the postmaster needs it to diagnose.
	//   - Delay and Success: headers only, whatever Ret says (RFC 3461
	//     §4.3: reports that are not about a failure return headers).
	//
	// A message larger than MaxFull is returned as headers only in every
	// case, and the explanation says so.
	Ret string
	// NoBodyReturn is sendmail's "nobodyreturn" privacy option: never
	// return more than the headers.
	NoBodyReturn bool
	// MaxFull is the largest original returned whole; 0 = DefaultMaxFull.
	MaxFull int64

	// WarnAfter is the queue_warn delay that triggered a Delay report, for
	// "could not send message for past 4 hours"; 0 = the message's age.
	WarnAfter time.Duration
	// ReturnAfter is queue_return, for "Will keep trying until message is
	// 5 days old"; 0 = derived from the recipients' WillRetryUntil.
	ReturnAfter time.Duration

	// Postmaster is where a PostmasterNotify goes; "" = postmaster@Hostname.
	Postmaster string

	Rcpts []RcptStatus

	// Original is the df file of the original (CRLF); nil = no third part.
	// Build reads at most what it returns, never the whole of a large
	// message, and does not close it.
	Original io.Reader

	// Now is the report's Date; zero = time.Now().
	Now time.Time

	// rand feeds the boundary and Message-ID token; nil = crypto/rand.
	// Tests set it to get the same bytes every run.
	rand io.Reader
}

// Recipient is the address the report is for: the original's sender, or
// the postmaster for a PostmasterNotify. The report's envelope sender is
// always the null sender <>.
func (r *Report) Recipient() string {
	if r.Kind != PostmasterNotify {
		return r.Sender
	}
	if r.Postmaster != "" {
		return r.Postmaster
	}
	return "postmaster@" + r.Hostname
}

// ShouldNotify reports whether a recipient whose DSN NOTIFY is notify
// (as the queue holds it, e.g. "FAILURE,DELAY"; "" when the client gave
// none) wants a report of this kind. RFC 3461 §4.1: without NOTIFY a
// failure or delay is reported and a success is not; NEVER silences all.
// A PostmasterNotify is not for the sender, so only NEVER silences it.
//
// The runner also applies policy that is not the sender's to choose: no
// report at all for a null sender (IsBounce), and none for Success when the
// privacy option "noreceipts" is set.
func ShouldNotify(kind Kind, notify string) bool {
	var success, failure, delay, never bool
	words := strings.Split(notify, ",")
	if strings.TrimSpace(notify) == "" {
		words = []string{"FAILURE", "DELAY"}
	}
	for _, w := range words {
		switch strings.ToUpper(strings.TrimSpace(w)) {
		case "NEVER":
			never = true
		case "SUCCESS":
			success = true
		case "FAILURE":
			failure = true
		case "DELAY":
			delay = true
		}
	}
	if never {
		return false
	}
	switch kind {
	case Failure:
		return failure
	case Delay:
		return delay
	case Success:
		return success
	case PostmasterNotify:
		return true
	}
	return false
}

// IsBounce reports whether sender is the null sender, the mark of a
// report or an auto-reply (RFC 5321 §4.5.5). Such a message must never get
// a report of its own, or two servers could bounce mail to each other for
// ever; its failures go to the postmaster (PostmasterNotify).
func IsBounce(sender string) bool {
	s := strings.TrimSpace(sender)
	return s == "" || s == "<>"
}

// Build writes the report r as a complete message with CRLF line ends, to
// be queued with the null envelope sender for r.Recipient(). It fails only
// for a Report the runner got wrong (no kind, hostname or recipients), a
// failure to read r.Original, or a failure to write w; the content of the
// original never makes it fail.
//
// The text and delivery-status parts are 7-bit unless an address is not
// ASCII; the third part is marked 8bit when the original has 8-bit bytes,
// so the report should be queued as 8BITMIME when the original was.
func Build(w io.Writer, r Report) error {
	if err := r.check(); err != nil {
		return err
	}
	now := r.Now
	if now.IsZero() {
		now = time.Now()
	}
	src := r.rand
	if src == nil {
		src = rand.Reader
	}
	var tok [8]byte
	if _, err := io.ReadFull(src, tok[:]); err != nil {
		return fmt.Errorf("dsn: random token: %w", err)
	}
	b := &builder{r: &r, now: now, token: hex.EncodeToString(tok[:])}
	b.rcpts = make([]RcptStatus, len(r.Rcpts))
	for i, rc := range r.Rcpts {
		b.rcpts[i] = b.normalize(rc)
	}
	// The original is read before anything is written, so an I/O error
	// leaves w untouched and the runner can simply try again later.
	if r.Original != nil {
		o, err := readOriginal(r.Original, r.wantFull(), r.maxFull(), MaxHeaderBytes)
		if err != nil {
			return fmt.Errorf("dsn: reading the original message: %w", err)
		}
		b.orig = o
	}
	bw := bufio.NewWriter(w)
	if err := b.write(bw); err != nil {
		return err
	}
	return bw.Flush()
}

func (r *Report) check() error {
	switch {
	case r.Kind < Failure || r.Kind > PostmasterNotify:
		return fmt.Errorf("dsn: unknown report kind %d", int(r.Kind))
	case strings.TrimSpace(r.Hostname) == "":
		return errors.New("dsn: no hostname")
	case len(r.Rcpts) == 0:
		return errors.New("dsn: no recipients to report on")
	case r.Kind != PostmasterNotify && IsBounce(r.Sender):
		// The caller should have used PostmasterNotify; refusing here keeps
		// a bug in the runner from mailing "<>".
		return errors.New("dsn: the original has the null sender; report to the postmaster instead")
	}
	for i, rc := range r.Rcpts {
		if strings.TrimSpace(rc.Addr) == "" {
			return fmt.Errorf("dsn: recipient %d has no address", i+1)
		}
		switch Action(strings.ToLower(string(rc.Action))) {
		case "", Failed, Delayed, Delivered, Relayed, Expanded:
		default:
			return fmt.Errorf("dsn: recipient %d has unknown action %q", i+1, rc.Action)
		}
	}
	return nil
}

func (r *Report) wantFull() bool {
	if r.NoBodyReturn || strings.EqualFold(r.Ret, "HDRS") {
		return false
	}
	return r.Kind == Failure || r.Kind == PostmasterNotify
}

func (r *Report) maxFull() int {
	if r.MaxFull <= 0 {
		return DefaultMaxFull
	}
	if r.MaxFull > 1<<30 {
		return 1 << 30
	}
	return int(r.MaxFull)
}

// builder holds one report being written.
type builder struct {
	r     *Report
	now   time.Time
	token string
	rcpts []RcptStatus
	orig  *original // nil = no third part
}

// normalize fills in the defaults of a recipient's status.
func (b *builder) normalize(rc RcptStatus) RcptStatus {
	if len(rc.Diagnostic) > maxDiagnostic {
		rc.Diagnostic = rc.Diagnostic[:maxDiagnostic]
	}
	if rc.Action == "" {
		switch b.r.Kind {
		case Delay:
			rc.Action = Delayed
		case Success:
			rc.Action = Delivered
		default:
			rc.Action = Failed
		}
	}
	rc.Action = Action(strings.ToLower(string(rc.Action)))
	if !validStatus(rc.Status) {
		rc.Status = statusFrom(rc.Diagnostic, rc.Action)
	}
	return rc
}

// dateLayout is RFC 5322's date-time, used in headers and report fields.
const dateLayout = "Mon, 02 Jan 2006 15:04:05 -0700"

func (b *builder) subject() string {
	switch b.r.Kind {
	case Delay:
		d := b.warnedAfter()
		if d <= 0 {
			return "Warning: could not send message yet"
		}
		return "Warning: could not send message for past " + interval(d)
	case Success:
		return "Return receipt"
	case PostmasterNotify:
		return "Postmaster notify: see transcript for details"
	}
	return "Returned mail: see transcript for details"
}

// autoSubmitted is RFC 3834's field with sendmail's comment, which tells
// filters what kind of report this is.
func (b *builder) autoSubmitted() string {
	switch b.r.Kind {
	case Delay:
		return "auto-generated (warning-timeout)"
	case Success:
		return "auto-generated (return-receipt)"
	case PostmasterNotify:
		return "auto-generated (postmaster-notification)"
	}
	return "auto-generated (failure)"
}

func (b *builder) boundary() string {
	id := cleanToken(b.r.ID)
	if id == "" {
		id = "dsn"
	}
	if len(id) > 20 {
		id = id[:20]
	}
	prefix := id + "." + strconv.FormatInt(b.now.Unix(), 10) + "/"
	suffix := "/" + b.token
	host := cleanToken(b.r.Hostname)
	if room := 70 - len(prefix) - len(suffix); len(host) > room {
		host = host[:max(room, 0)]
	}
	return prefix + host + suffix
}

func (b *builder) messageID() string {
	id := cleanToken(b.r.ID)
	if id == "" {
		id = "dsn"
	}
	host := cleanToken(b.r.Hostname)
	if host == "" {
		host = "localhost"
	}
	return "<" + id + "." + strconv.FormatInt(b.now.Unix(), 10) + "." + b.token + "@" + host + ">"
}

func (b *builder) write(w io.Writer) error {
	boundary := b.boundary()
	host := headerText(b.r.Hostname)
	to := "<" + headerText(b.r.Recipient()) + ">"
	if b.r.Kind == PostmasterNotify && b.r.Postmaster == "" {
		to = "Postmaster " + to
	}
	var h message.Header
	addFields(&h.Header, [][2]string{
		{"Date", b.now.Format(dateLayout)},
		{"From", "Mail Delivery Subsystem <MAILER-DAEMON@" + host + ">"},
		{"To", to},
		{"Subject", b.subject()},
		{"Message-ID", b.messageID()},
		{"Auto-Submitted", b.autoSubmitted()},
		{"MIME-Version", "1.0"},
		{"Content-Type", `multipart/report; report-type=delivery-status; boundary="` + boundary + `"`},
	})
	mw, err := message.CreateWriter(w, h)
	if err != nil {
		return fmt.Errorf("dsn: %w", err)
	}
	// The preamble is for readers that do not know MIME.
	if _, err := io.WriteString(mw, "This is a MIME-encapsulated message\r\n\r\n"); err != nil {
		return err
	}

	text := crlfText(b.explanation())
	textType := "text/plain; charset=us-ascii"
	if has8bit(text) {
		textType = "text/plain; charset=utf-8"
	}
	if err := writePart(mw, textType, "Notification", text, has8bit(text)); err != nil {
		return err
	}
	status := b.deliveryStatus()
	if err := writePart(mw, "message/delivery-status", "Delivery report", status, false); err != nil {
		return err
	}
	if o := b.orig; o != nil {
		ctype, desc, body := "text/rfc822-headers", "Undelivered Message Headers", o.data[:o.hdrLen]
		if o.full {
			ctype, desc, body = "message/rfc822", "Undelivered Message", o.data
		}
		if b.r.Kind == Success || b.r.Kind == Delay {
			desc = "Message Headers"
		}
		if err := writePart(mw, ctype, desc, string(body), has8bit(string(body))); err != nil {
			return err
		}
	}
	return mw.Close()
}

// writePart writes one body part. Its header is formatted here rather than
// by go-message so that field names keep their usual capitals.
func writePart(mw *message.Writer, ctype, desc, body string, eightBit bool) error {
	var h message.Header
	fields := [][2]string{{"Content-Description", desc}, {"Content-Type", ctype}}
	if eightBit {
		fields = append(fields, [2]string{"Content-Transfer-Encoding", "8bit"})
	}
	addFields(&h.Header, fields)
	pw, err := mw.CreatePart(h)
	if err != nil {
		return fmt.Errorf("dsn: %w", err)
	}
	if _, err := io.WriteString(pw, body); err != nil {
		return err
	}
	return pw.Close()
}

// addFields adds header fields so that they are written in the order given:
// go-message writes a header's fields last added first.
func addFields(h *textproto.Header, fields [][2]string) {
	for i := len(fields) - 1; i >= 0; i-- {
		h.AddRaw([]byte(foldField(fields[i][0], fields[i][1])))
	}
}
