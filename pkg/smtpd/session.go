package smtpd

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/gosendmail/gosendmail/pkg/config"
	"github.com/gosendmail/gosendmail/pkg/envelope"
	"github.com/gosendmail/gosendmail/pkg/mailerr"
	"github.com/gosendmail/gosendmail/pkg/maillog"
	"github.com/gosendmail/gosendmail/pkg/milter"
	"github.com/gosendmail/gosendmail/pkg/route"
	"github.com/gosendmail/gosendmail/pkg/spool"
	"github.com/gosendmail/gosendmail/pkg/version"
)

// Backend is the go-smtp backend of one listener.
type Backend struct {
	Config func() *config.Config // the configuration in force
	Tables Tables
	Queue  Store
	// Queued, if set, is told the ID of each message queued.
	Queued func(id string)
	// Inbound, if set, checks SPF, DKIM and DMARC of mail from foreign
	// clients: it reads the message and returns the Authentication-Results
	// field to put in front of it, and whether DMARC says to reject it.
	Inbound func(ctx context.Context, ip netip.Addr, helo, mailFrom string, msg io.Reader) (header string, reject bool, err error)
	// Rewrite copies msg to w with newHeader in front and stale
	// Authentication-Results fields of ours removed.
	Rewrite func(w io.Writer, msg io.Reader, newHeader string) error
	// SignCheck, if set, is asked about mail that will leave for other
	// hosts, with its From: header value: an error means the author's
	// domain has a DKIM key that cannot sign, and the client is told to
	// try later (451 4.3.2) rather than the mail being queued to wait.
	SignCheck func(from string) error
	// LocalUser, if set, is the local user of a sendmail -bs session: the
	// client is named user@localhost, as sendmail logs it.
	LocalUser string
	Log       *maillog.Logger
	Listener  config.Listen
	Auth      Authenticator // nil: no AUTH on this listener
	// Milters, if set, keeps filter connections between sessions.
	Milters *milter.Pool
}

var _ smtp.Backend = (*Backend)(nil)

// Store keeps an accepted message durably: the queue (*spool.Queue), or
// the maildrop for sendmail -bs. Create sets env.ID (keeping it if free).
type Store interface {
	// CreateSize queues the message and returns its size.
	CreateSize(env *spool.Envelope, body io.Reader) (int64, error)
	Remove(id string) error
}

var _ Store = (*spool.Queue)(nil)

// Session is one SMTP session (from EHLO/HELO to the end).
type Session struct {
	b       *Backend
	c       *smtp.Conn
	conn    *conn // nil if the connection did not come through a guard
	ip      netip.Addr
	relay   string // "[ip]" as the log shows the client
	relayOK bool   // may relay: relay_from, access Connect: RELAY, AUTH
	discard bool   // access DISCARD: accept and drop
	user    string // authenticated user
	bad     int    // refused commands
	mailed  bool   // a MAIL command was given in this session
	inTx    bool   // a transaction is open (MAIL accepted, no RSET/end yet)

	from  string
	rcpts []spool.Recipient
	opts  *smtp.MailOptions

	mf *milterState // milter.go: the [[milter]] filters; nil when none
}

// ourConn finds the guarded connection under TLS, if any.
func ourConn(c net.Conn) *conn {
	if t, ok := c.(*tls.Conn); ok {
		c = t.NetConn()
	}
	x, _ := c.(*conn)
	return x
}

// NewSession starts a session at HELO/EHLO. The access map's Connect:
// entry applies here.
func (b *Backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	s := &Session{b: b, c: c, conn: ourConn(c.Conn())}
	if s.conn != nil {
		s.ip = s.conn.ip
	} else {
		s.ip = addrOf(c.Conn().RemoteAddr())
	}
	s.relay = "[" + s.ip.String() + "]"
	cfg := b.Config()
	s.relayOK = cfg.RelayAllowed(s.ip)
	if b.LocalUser != "" {
		s.relay, s.relayOK = b.LocalUser+"@localhost", true
		return s, nil
	}
	switch a := b.Tables.Connect(s.ip); a.Verdict {
	case Reject:
		e := a.Err
		if e == nil {
			e = mailerr.SMTP(550, "5.7.1", "Access denied")
		}
		b.Log.Rejected("", "check_relay", s.relay, s.relay, fmt.Sprintf("%d %s %s", e.Code, e.Enhanced, e.Msg))
		if s.conn != nil {
			s.conn.hangup()
		}
		return nil, smtpError(e)
	case Relay:
		s.relayOK = true
	case Discard:
		s.discard = true
	}
	if err := s.milterStart(); err != nil { // milter.go: connect and HELO to the filters
		return nil, err
	}
	return s, nil
}

// smtpError turns our error into go-smtp's reply.
func smtpError(e *mailerr.Error) *smtp.SMTPError {
	var ec smtp.EnhancedCode
	if _, err := fmt.Sscanf(e.Enhanced, "%d.%d.%d", &ec[0], &ec[1], &ec[2]); err != nil {
		ec = smtp.EnhancedCodeNotSet
	}
	return &smtp.SMTPError{Code: e.Code, EnhancedCode: ec, Message: e.Msg}
}

// refuse logs a refused command, counts it, and hangs up after
// max_bad_commands (the reply becomes 421).
func (s *Session) refuse(ruleset, arg string, e *mailerr.Error) error {
	s.bad++
	reply := fmt.Sprintf("%d %s %s", e.Code, e.Enhanced, e.Msg)
	s.b.Log.Rejected("", ruleset, arg, s.relay, reply)
	if ruleset == "check_rcpt" && strings.HasPrefix(e.Msg, arg+"... ") && !strings.Contains(e.Msg, "Relaying denied") {
		// sendmail also logs "<addr>... User unknown" (or the
		// virtusertable's text) on a line of its own.
		s.b.Log.Printf("", "%s", e.Msg)
	}
	if max := s.b.Config().Limits.MaxBadCommands; max > 0 && s.bad >= max {
		s.b.Log.Printf("", "%s: possible SMTP attack: command=%s, count=%d", s.relay, strings.TrimPrefix(ruleset, "check_"), s.bad)
		if s.conn != nil {
			s.conn.hangup()
		}
		return &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "Too many errors, closing connection"}
	}
	return smtpError(e)
}

func hasNUL(s string) bool { return strings.IndexByte(s, 0) >= 0 }

var errNUL = &smtp.SMTPError{Code: 500, EnhancedCode: smtp.EnhancedCode{5, 5, 2}, Message: "NUL in command"}

// Mail starts a transaction.
func (s *Session) Mail(from string, opts *smtp.MailOptions) error {
	s.mailed = true
	if s.inTx {
		// go-smtp keeps its recipients on a second MAIL; so would we be
		// told to queue a message whose recipients we forgot.
		return &smtp.SMTPError{Code: 503, EnhancedCode: smtp.EnhancedCode{5, 5, 0}, Message: "Sender already specified"}
	}
	if hasNUL(from) {
		return errNUL
	}
	if s.b.Listener.Auth == "required" && s.user == "" {
		return s.refuse("check_mail", "<"+from+">", mailerr.SMTP(530, "5.7.0", "Authentication required"))
	}
	if from != "" {
		if _, err := envelope.CheckMailbox(from); err != nil {
			return s.refuse("check_mail", "<"+from+">", mailerr.SMTP(553, "5.1.7", "<%s>... Bad sender address syntax", from))
		}
	}
	switch a := s.b.Tables.From(from); a.Verdict {
	case Reject:
		e := a.Err
		if e == nil {
			e = mailerr.SMTP(550, "5.7.1", "<%s>... Access denied", from)
		}
		return s.refuse("check_mail", "<"+from+">", e)
	case Discard:
		s.discard = true
	}
	if err := s.milterMail(from, opts); err != nil { // milter.go
		return err
	}
	s.from, s.opts = from, opts
	s.rcpts = nil
	s.inTx = true
	return nil
}

// Rcpt adds a recipient after the relay and local-user checks.
func (s *Session) Rcpt(to string, opts *smtp.RcptOptions) error {
	if hasNUL(to) {
		return errNUL
	}
	if _, err := envelope.CheckMailbox(to); err != nil {
		return s.refuse("check_rcpt", "<"+to+">", mailerr.SMTP(553, "5.1.3", "<%s>... Bad recipient address syntax", to))
	}
	if e := checkRcpt(s.b.Tables, to, s.relayOK || s.user != ""); e != nil {
		return s.refuse("check_rcpt", "<"+to+">", e)
	}
	if err := s.milterRcpt(to, opts); err != nil { // milter.go
		return err
	}
	r := spool.Recipient{Addr: to, State: spool.Pending}
	if opts != nil {
		var n []string
		for _, x := range opts.Notify {
			n = append(n, string(x))
		}
		r.Notify = strings.Join(n, ",")
		if opts.OriginalRecipient != "" {
			r.ORcpt = string(opts.OriginalRecipientType) + ";" + opts.OriginalRecipient
		}
	}
	s.rcpts = append(s.rcpts, r)
	return nil
}

// Data reads the message and queues it. The reply 250 is given only once
// the message is durable in queue_dir.
func (s *Session) Data(r io.Reader) error {
	if _, bdat := r.(*io.PipeReader); bdat {
		// BDAT runs Data on a goroutine of go-smtp's that can outlive an
		// RSET and report into the next transfer (a message queued but
		// answered 451). CHUNKING is not advertised (conn.Write), and a
		// client that sends BDAT anyway is refused before anything of the
		// session is touched.
		return &smtp.SMTPError{Code: 502, EnhancedCode: smtp.EnhancedCode{5, 5, 1}, Message: "BDAT is not supported, use DATA"}
	}
	defer func() { s.inTx = false }()
	if len(s.rcpts) == 0 {
		return &smtp.SMTPError{Code: 503, EnhancedCode: smtp.EnhancedCode{5, 5, 1}, Message: "No valid recipients"}
	}
	if s.conn != nil {
		s.conn.startData()
		defer s.conn.endData()
	}
	cfg := s.b.Config()
	strict := !s.relayOK && s.user == ""
	cr := &checkedReader{r: r, strict: strict, conn: s.conn, checkPipelining: strict}
	now := time.Now()
	env := &spool.Envelope{
		ID:      spool.NewID(now),
		Created: now,
		Sender:  s.from,
		UID:     -1,
		Client:  s.relay,
		Rcpts:   append([]spool.Recipient(nil), s.rcpts...),
	}
	if s.opts != nil {
		env.BodyType = string(s.opts.Body)
		env.EnvID = s.opts.EnvelopeID
		env.Ret = string(s.opts.Return)
	}
	var data io.Reader = cr
	if s.mf != nil && !s.discard {
		// milter.go: the filters see (and may change) the message and
		// its envelope before it is queued.
		msg, done, err := s.milterData(cfg, cr, env, strict)
		defer done()
		if err != nil {
			return err
		}
		data = msg
	} else if strict && s.b.Inbound != nil && s.b.Rewrite != nil && !s.discard {
		// The checks read the whole message before it is queued, so it is
		// held in a temporary file (never in memory) and then queued with
		// its Authentication-Results field.
		tmp, err := os.CreateTemp("", "gosendmail-in-*")
		if err != nil {
			return s.dataError(err)
		}
		defer os.Remove(tmp.Name())
		defer tmp.Close()
		if _, err := io.Copy(tmp, cr); err != nil {
			return s.dataError(err)
		}
		if _, err := tmp.Seek(0, io.SeekStart); err != nil {
			return s.dataError(err)
		}
		header, reject, err := s.b.Inbound(context.Background(), s.ip, s.c.Hostname(), s.from, tmp)
		if err != nil {
			return s.dataError(err)
		}
		if reject && cfg.DMARCReject {
			s.b.Log.Rejected(env.ID, "check_data", "<"+s.from+">", s.relay, "550 5.7.1 Rejected by DMARC policy")
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "Rejected by the sender domain's DMARC policy"}
		}
		if _, err := tmp.Seek(0, io.SeekStart); err != nil {
			return s.dataError(err)
		}
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(s.b.Rewrite(pw, tmp, header)) }()
		defer pr.Close()
		data = pr
	}
	body := io.MultiReader(strings.NewReader(s.received(cfg, env.ID, now)), data)
	if s.discard {
		if _, err := io.Copy(io.Discard, body); err != nil {
			return s.dataError(err)
		}
		s.b.Log.Printf(env.ID, "discarded")
		return nil
	}
	env.Priority = 30000
	size, err := s.b.Queue.CreateSize(env, body)
	if err != nil {
		return s.dataError(err)
	}
	if s.b.SignCheck != nil && s.leaves(env) {
		if err := s.b.SignCheck(cr.from); err != nil {
			// Undo: the message was not accepted.
			s.b.Queue.Remove(env.ID)
			s.b.Log.Warnf("", "%s: %v", s.relay, err)
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 2}, Message: "Please try again later"}
		}
	}
	s.b.Log.Received(env.ID, displayAddr(env.Sender), size, len(env.Rcpts), cr.msgid, s.proto(), s.b.Listener.Name, s.relay)
	if s.b.Queued != nil {
		s.b.Queued(env.ID)
	}
	return &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0}, Message: env.ID + " Message accepted for delivery"}
}

// leaves reports whether a recipient is outside the local domains.
func (s *Session) leaves(env *spool.Envelope) bool {
	for _, r := range env.Rcpts {
		if _, dom := route.Split(r.Addr); dom != "" && !s.b.Tables.LocalDomain(dom) {
			return true
		}
	}
	return false
}

// dataError maps a failure while reading or queueing the message.
func (s *Session) dataError(err error) error {
	var se *smtp.SMTPError
	switch {
	case errors.Is(err, smtp.ErrDataTooLarge):
		return &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 3, 4}, Message: "Message size exceeds fixed limit"}
	case errors.Is(err, smtp.ErrTooLongLine):
		// Permanent: the same message would fail again. go-smtp then
		// closes the connection (500 5.4.0), its reader being past a line.
		s.b.Log.Printf("", "%s: message line longer than %d octets", s.relay, maxLine)
		return &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: fmt.Sprintf("Message line longer than %d octets", maxLine)}
	case errors.As(err, &se):
		s.b.Log.Printf("", "%s: %s", s.relay, se.Message)
		if se.Code == 421 || se.Code == 554 {
			if s.conn != nil {
				s.conn.hangup()
			}
		}
		return se
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		s.b.Log.Warnf("", "cannot queue message from %s: %v", s.relay, err)
		return &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 3, 1}, Message: "Insufficient system storage"}
	default:
		s.b.Log.Warnf("", "cannot queue message from %s: %v", s.relay, err)
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Temporary local problem, please try again later"}
	}
}

func displayAddr(a string) string {
	if a == "" {
		return "<>"
	}
	return "<" + a + ">"
}

// proto is the "with" word of Received and the log (RFC 3848).
func (s *Session) proto() string {
	p := "ESMTP"
	if _, tls := s.c.TLSConnectionState(); tls {
		p += "S"
	}
	if s.user != "" {
		p += "A"
	}
	return p
}

// received is the Received: header, in sendmail's layout.
func (s *Session) received(cfg *config.Config, id string, now time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Received: from %s (%s)\r\n\tby %s (gosendmail %s) with %s id %s",
		sanitizeHelo(s.c.Hostname()), s.relay, cfg.Hostname, version.Version, s.proto(), id)
	if st, ok := s.c.TLSConnectionState(); ok {
		fmt.Fprintf(&b, "\r\n\t(version=%s cipher=%s)", tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite))
	}
	if len(s.rcpts) == 1 {
		fmt.Fprintf(&b, "\r\n\tfor <%s>", s.rcpts[0].Addr)
	}
	fmt.Fprintf(&b, ";\r\n\t%s\r\n", now.Format(time.RFC1123Z))
	return b.String()
}

// sanitizeHelo keeps a client's HELO name printable and short for the
// header.
func sanitizeHelo(h string) string {
	if len(h) > 255 {
		h = h[:255]
	}
	return strings.Map(func(r rune) rune {
		if r <= ' ' || r == 0x7f || r == '(' || r == ')' {
			return '?'
		}
		return r
	}, h)
}

// Reset ends a transaction.
func (s *Session) Reset() {
	s.from, s.rcpts, s.opts = "", nil, nil
	s.inTx = false
	s.milterReset() // milter.go
}

// Logout ends the session.
func (s *Session) Logout() error {
	s.milterClose() // milter.go
	if !s.mailed {
		s.b.Log.Printf("", "%s did not issue MAIL/EXPN/VRFY/ETRN during connection to %s", s.relay, s.b.Listener.Name)
	}
	return nil
}

// checkedReader passes DATA through while enforcing the rules against
// SMTP smuggling: from clients that may not relay (strict), a bare CR or
// a bare LF anywhere ends the transaction (Postfix's
// smtpd_forbid_bare_newline), and so do commands pipelined past the end
// of DATA before our reply. It also notes the Message-ID for the log.
type checkedReader struct {
	r               io.Reader
	strict          bool
	conn            *conn
	checkPipelining bool

	prev    byte // last byte seen
	header  bool // still in the header
	line    []byte
	started bool
	msgid   string
	from    string // the From: header's value, for the DKIM check
}

var errBareNewline = &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 5, 2}, Message: "Bare CR, bare LF or NUL in message data is not allowed"}
var errPipelining = &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 5, 0}, Message: "Improper command pipelining after DATA"}

func (c *checkedReader) Read(p []byte) (int, error) {
	if !c.started {
		c.started, c.header = true, true
	}
	n, err := c.r.Read(p)
	for i := 0; i < n; i++ {
		b := p[i]
		if c.strict {
			if b == 0 {
				return 0, errBareNewline
			}
			if b == '\n' && c.prev != '\r' {
				return 0, errBareNewline
			}
			if c.prev == '\r' && b != '\n' {
				return 0, errBareNewline
			}
		}
		c.prev = b
		if c.header {
			c.scanHeader(b)
		}
	}
	if err == io.EOF {
		if c.strict && c.prev == '\r' {
			return 0, errBareNewline
		}
		// go-smtp's reader drops a CR after a leading dot and keeps NUL;
		// the raw bytes the connection saw tell the truth.
		if c.strict && c.conn != nil && c.conn.rawBad() {
			return 0, errBareNewline
		}
		if c.checkPipelining && c.conn != nil && c.conn.pipelinedPastData() {
			return 0, errPipelining
		}
	}
	return n, err
}

// scanHeader collects header lines to find Message-ID; it stops at the
// blank line or after 64 KiB.
func (c *checkedReader) scanHeader(b byte) {
	if b != '\n' {
		if len(c.line) < 1000 {
			c.line = append(c.line, b)
		}
		return
	}
	line := bytes.TrimRight(c.line, "\r")
	c.line = c.line[:0]
	if len(line) == 0 {
		c.header = false
		return
	}
	if len(line) > 11 && strings.EqualFold(string(line[:11]), "message-id:") {
		c.msgid = strings.TrimSpace(string(line[11:]))
	}
	if len(line) > 5 && strings.EqualFold(string(line[:5]), "from:") && c.from == "" {
		c.from = strings.TrimSpace(string(line[5:]))
	}
}
