// Package milter is the MTA side of the milter protocol: the [[milter]]
// filters of the configuration, run in order on every SMTP transaction
// and on mail submitted through the sendmail command, with sendmail's
// meaning (INPUT_MAIL_FILTER).
//
// A Chain is the configured filters. A Session is one SMTP connection's
// (or one submission's) conversation with them: the stage methods follow
// SMTP (Connect, Helo, Mail, Rcpt, Data, EndOfMessage) and each returns a
// Verdict after asking the filters in order. A filter that accepted is
// left out for the rest of the message (the rest of the connection if it
// accepted at connect or HELO); a reject, a tempfail or a discard ends the
// round; a reject of one RCPT refuses that recipient only.
//
// EndOfMessage streams the header and body to each filter in turn, filter
// N seeing what filter N-1 changed, as sendmail does: header edits are
// made on the header held in memory with sendmail's index rules, a
// replaced body is written to a temporary file, never held in memory. The
// envelope edits (sender, recipients, quarantine) come back as Changes for
// the caller to apply before it queues the message; Message.Reader then
// gives the message as the filters left it.
//
// A filter that cannot be reached, that times out or that speaks garbage
// is put in error state for the rest of the session and its on_failure
// decides: tempfail (451 4.3.2, sendmail's F=T), reject (sendmail's F=R)
// or accept (the filter is skipped). Every read and write has its timeout
// (timeout_send, timeout_read), the connection timeout_connect, and the
// end of message timeout_eom in all, progress reports included. A
// filter's changes are applied only once it has answered the end of
// message: one that fails half way leaves the message as it was.
//
// A Chain's Pool keeps a filter's connection for the next session when the
// filter answered "continue" at the end of the last message, where
// libmilter takes SMFIC_QUIT_NC and starts over (reuse.go); otherwise
// each session connects and negotiates, as in sendmail.
//
// Log lines have sendmail's shape: "Milter (name): error connecting to
// filter: Connection refused", "Milter (name): to error state",
// "Milter: from=<a@b>, reject=550 5.7.1 Command rejected",
// "Milter: data, reject=554 5.7.1 Command rejected", "milter=name,
// quarantine=reason", "Milter add: header: X-Spam: yes".
package milter

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/gosendmail/gosendmail/pkg/config"
	"github.com/gosendmail/gosendmail/pkg/maillog"
)

// Timeouts of one filter, sendmail's T= equate.
type Timeouts struct {
	Connect time.Duration // C: connecting [5m]
	Send    time.Duration // S: each write [10s]
	Read    time.Duration // R: each read [10s]
	EOM     time.Duration // E: from the end of the message to the final answer [5m]
}

// DefaultTimeouts are sendmail's.
var DefaultTimeouts = Timeouts{Connect: 5 * time.Minute, Send: 10 * time.Second, Read: 10 * time.Second, EOM: 5 * time.Minute}

// Filter is one [[milter]] entry.
type Filter struct {
	Name      string
	Socket    string
	OnFailure string // "tempfail", "reject" or "accept"
	Timeouts  Timeouts

	network, address string
	sockErr          error
}

// Chain is the filters in the order they run.
type Chain struct {
	Filters []*Filter
	Log     *maillog.Logger
	// TempDir holds replaced bodies ("" is os.TempDir).
	TempDir string
	// Pool, if set, keeps filter connections between sessions (reuse.go).
	Pool *Pool
}

// NewChain makes the chain of the configured filters; nil if there are
// none. A socket that does not parse is not an error here: the filter
// fails each time it is used, as in sendmail, and its on_failure applies.
func NewChain(ms []config.Milter, log *maillog.Logger) *Chain {
	if len(ms) == 0 {
		return nil
	}
	if log == nil {
		log = maillog.Discard()
	}
	c := &Chain{Log: log}
	for _, m := range ms {
		t := Timeouts{Connect: m.TimeoutConnect.D(), Send: m.TimeoutSend.D(), Read: m.TimeoutRead.D(), EOM: m.TimeoutEOM.D()}
		c.Filters = append(c.Filters, NewFilter(m.Name, m.Socket, m.OnFailure, t))
	}
	return c
}

// NewFilter makes one filter; a zero timeout is sendmail's default.
func NewFilter(name, socket, onFailure string, t Timeouts) *Filter {
	for _, p := range []struct{ v, d *time.Duration }{{&t.Connect, &DefaultTimeouts.Connect}, {&t.Send, &DefaultTimeouts.Send},
		{&t.Read, &DefaultTimeouts.Read}, {&t.EOM, &DefaultTimeouts.EOM}} {
		if *p.v <= 0 {
			*p.v = *p.d
		}
	}
	if name == "" {
		name = socket
	}
	if onFailure == "" {
		onFailure = "tempfail"
	}
	f := &Filter{Name: name, Socket: socket, OnFailure: onFailure, Timeouts: t}
	f.network, f.address, f.sockErr = ParseSocket(socket)
	return f
}

// Action is what a Verdict says to do.
type Action int

const (
	Continue Action = iota // go on (for a message at its end: keep it)
	Reject                 // refuse with the 5xx reply
	Tempfail               // refuse with the 4xx reply (421: and close the connection)
	Discard                // accept, then drop the message silently
)

func (a Action) String() string {
	return [...]string{"continue", "reject", "tempfail", "discard"}[a]
}

// Verdict is the outcome of a stage.
type Verdict struct {
	Action Action
	// The reply for Reject and Tempfail: the filter's own (SMFIR_REPLYCODE)
	// or sendmail's default for the stage. Text may hold several lines,
	// separated by "\n".
	Code     int
	Enhanced string // "5.7.1"; "" if the filter's reply had none
	Text     string
	Filter   string // the filter that decided
}

// Refused reports whether the command is refused.
func (v Verdict) Refused() bool { return v.Action == Reject || v.Action == Tempfail }

// Reply is the reply as one line, as the log shows it.
func (v Verdict) Reply() string {
	s := strconv.Itoa(v.Code)
	if v.Enhanced != "" {
		s += " " + v.Enhanced
	}
	return s + " " + strings.ReplaceAll(v.Text, "\n", " ")
}

// Shutdown reports whether the reply closes the connection (421).
func (v Verdict) Shutdown() bool { return v.Action == Tempfail && v.Code == 421 }

var (
	tempfailReply = Verdict{Action: Tempfail, Code: 451, Enhanced: "4.3.2", Text: "Please try again later"}
	rejectCmd     = Verdict{Action: Reject, Code: 550, Enhanced: "5.7.1", Text: "Command rejected"}
	rejectData    = Verdict{Action: Reject, Code: 554, Enhanced: "5.7.1", Text: "Command rejected"}
	rejectSession = Verdict{Action: Reject, Code: 550, Enhanced: "5.0.0", Text: "Command rejected"}
	shutdownReply = Verdict{Action: Tempfail, Code: 421, Enhanced: "4.7.0", Text: "closing connection"}
)

// ParseReply reads an SMTP reply as a filter gives it with
// smfi_setreply or smfi_setmlreply ("550 5.7.1 text", or lines
// "550-5.7.1 one\r\n550 5.7.1 two"). ok is false if it is not a 4xx or
// 5xx reply.
func ParseReply(s string) (v Verdict, ok bool) {
	lines := strings.Split(strings.ReplaceAll(strings.TrimRight(s, "\r\n"), "\r\n", "\n"), "\n")
	var text []string
	for i, l := range lines {
		if len(l) < 3 || (l[0] != '4' && l[0] != '5') || l[1] < '0' || l[1] > '9' || l[2] < '0' || l[2] > '9' {
			return Verdict{}, false
		}
		code, _ := strconv.Atoi(l[:3])
		if i == 0 {
			v.Code = code
		} else if code != v.Code {
			return Verdict{}, false
		}
		rest := ""
		if len(l) > 3 {
			if l[3] != ' ' && l[3] != '-' {
				return Verdict{}, false
			}
			rest = l[4:]
		}
		if enh, after, ok := strings.Cut(rest, " "); ok || isEnhanced(rest) {
			if isEnhanced(enh) {
				if i == 0 {
					v.Enhanced = enh
				}
				rest = after
			}
		}
		text = append(text, printable(rest))
	}
	v.Text = strings.Join(text, "\n")
	v.Action = Reject
	if v.Code/100 == 4 {
		v.Action = Tempfail
	}
	return v, true
}

// printable is reply text as it may go to an SMTP client: a filter's bytes
// outside printable ASCII (a NUL, a bare CR, a control or 8-bit byte)
// become '?', rather than the filter's reply being lost for a default
// one of another class.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return '?'
		}
		return r
	}, s)
}

// isEnhanced matches an enhanced status code, class.subject.detail.
func isEnhanced(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 3 || (parts[0] != "2" && parts[0] != "4" && parts[0] != "5") {
		return false
	}
	for _, p := range parts[1:] {
		if p == "" || len(p) > 3 {
			return false
		}
		for _, c := range p {
			if c < '0' || c > '9' {
				return false
			}
		}
	}
	return true
}

// Session is one connection's (or one local submission's) conversation
// with the filters. Its methods are not safe for concurrent use.
type Session struct {
	chain  *Chain
	log    *maillog.Logger
	conns  []*conn
	macros map[string]string
	// ID is the queue ID that prefixes the log lines of the current
	// message ("" before MAIL).
	ID string
	// Local, if set, tells whether a domain is local, for the
	// {mail_mailer} and {rcpt_mailer} macros.
	Local func(domain string) bool
	// refused is a connect or HELO verdict: the commands of the session
	// are refused with it.
	refused *Verdict
	inMsg   bool
	discard bool // a filter said discard before the end of the message
}

// NewSession starts a session; nothing is sent before Connect.
func (c *Chain) NewSession() *Session {
	return &Session{chain: c, log: c.Log, macros: map[string]string{}}
}

// SetMacro defines a macro for the filters, by its sendmail name: one
// letter ("j", "_", "i") or braced ("{daemon_name}"). An empty value
// removes it.
func (s *Session) SetMacro(name, value string) {
	if value == "" {
		delete(s.macros, name)
		return
	}
	s.macros[name] = value
}

// SetMacros defines several macros.
func (s *Session) SetMacros(m map[string]string) {
	for k, v := range m {
		s.SetMacro(k, v)
	}
}

// The macros sent at each stage unless a filter asked for others: those
// of sendmail's default configuration, and those Postfix also sends.
var defaultSymbols = [numStages][]string{
	stageConnect: {"j", "_", "v", "{daemon_name}", "{daemon_addr}", "{daemon_port}", "{if_name}", "{if_addr}",
		"{client_addr}", "{client_port}", "{client_name}", "{client_ptr}", "{client_resolve}"},
	stageHelo: {"{tls_version}", "{cipher}", "{cipher_bits}", "{cert_subject}", "{cert_issuer}", "s"},
	stageMail: {"i", "{auth_type}", "{auth_authen}", "{auth_ssf}", "{auth_author}", "{mail_mailer}", "{mail_host}", "{mail_addr}"},
	stageRcpt: {"{rcpt_mailer}", "{rcpt_host}", "{rcpt_addr}"},
	stageData: {"i"},
	stageEOM:  {"{msg_id}", "i"},
	stageEOH:  {"i"},
}

// sendMacros sends the stage's macros to c with the command cmd.
func (s *Session) sendMacros(c *conn, stage int, cmd byte) {
	names := defaultSymbols[stage]
	if c.symbols[stage] != nil {
		names = c.symbols[stage]
	}
	data := []byte{cmd}
	n := 0
	for _, name := range names {
		v, ok := s.macros[name]
		if !ok && len(name) == 1 {
			v, ok = s.macros["{"+name+"}"]
		}
		if !ok {
			continue
		}
		data = append(data, cstrings(name, v)...)
		n++
	}
	if n > 0 {
		c.queue(cmdMacro, data)
	}
}

// stage describes an SMTP step for command.
type stage struct {
	where   string // for the log: "connect", "mail"...
	macros  int
	cmd     byte
	skip    uint32 // the filter does not want the command
	noreply uint32 // the filter does not answer it
	reject  Verdict
}

var (
	connectStage = stage{"connect", stageConnect, cmdConnect, optNoConnect, optNrConn, rejectSession}
	heloStage    = stage{"helo", stageHelo, cmdHelo, optNoHelo, optNrHelo, rejectSession}
	mailStage    = stage{"mail", stageMail, cmdMail, optNoMail, optNrMail, rejectCmd}
	rcptStage    = stage{"rcpt", stageRcpt, cmdRcpt, optNoRcpt, optNrRcpt, rejectCmd}
	dataStage    = stage{"data", stageData, cmdData, optNoData, optNrData, rejectCmd}
)

// fail puts a filter in error state and logs why.
func (s *Session) fail(c *conn, err error) {
	s.log.Warnf(s.ID, "%v", err)
	if c.reused && s.chain.Pool.failed(c.f) {
		s.log.Printf(s.ID, "Milter (%s): a kept connection failed, its connections are no longer kept", c.f.Name)
	}
	if c.nc != nil {
		c.shut()
	}
	c.state = stError
	s.log.Printf(s.ID, "Milter (%s): to error state", c.f.Name)
}

// onFailure is what a filter in error state means at a stage: stop with
// a tempfail or a reject, or (accept) go on without it.
func (s *Session) onFailure(c *conn, reject Verdict) (Verdict, bool) {
	switch c.f.OnFailure {
	case "reject":
		v := reject
		v.Filter = c.f.Name
		return v, true
	case "accept":
		return Verdict{}, false
	}
	v := tempfailReply
	v.Filter = c.f.Name
	return v, true
}

// exchange sends one command to c (with the stage's macros first) and
// reads the answer; a command the filter does not want or does not answer
// counts as continue.
func (s *Session) exchange(c *conn, st stage, data []byte) (byte, []byte, error) {
	if st.macros >= 0 {
		s.sendMacros(c, st.macros, st.cmd)
	}
	if c.proto&st.skip != 0 {
		return repContinue, nil, nil
	}
	if c.proto&st.noreply != 0 {
		return repContinue, nil, c.send(st.cmd, data, st.where)
	}
	if err := c.write(st.cmd, data, st.where); err != nil {
		return 0, nil, err
	}
	// Progress reports are for the end of the message only (as in
	// sendmail): elsewhere one is a bogus answer.
	return c.read(time.Time{}, st.where)
}

// answer turns a filter's answer to a command into a verdict. accept says
// the filter is done (with the message, or the connection).
func (s *Session) answer(c *conn, st stage, code byte, resp []byte) (v Verdict, accept bool, err error) {
	switch code {
	case repContinue, repSkip:
		return Verdict{}, false, nil
	case repAccept:
		return Verdict{}, true, nil
	case repReject:
		v = st.reject
	case repTempfail:
		v = tempfailReply
	case repDiscard:
		v = Verdict{Action: Discard}
	case repReplyCode:
		var ok bool
		if v, ok = ParseReply(strings.TrimRight(string(resp), "\x00")); !ok {
			v = st.reject
		}
	default:
		return Verdict{}, false, failf(nil, "milter_send_command(%s): action=%s returned bogus response %c", c.f.Name, st.where, code)
	}
	v.Filter = c.f.Name
	return v, false, nil
}

// command runs one SMTP step through the filters in order.
func (s *Session) command(st stage, data []byte) Verdict {
	for _, c := range s.conns {
		if c.state == stError {
			if v, stop := s.onFailure(c, st.reject); stop {
				return v
			}
			continue
		}
		if c.state != stReady && c.state != stInMsg {
			continue
		}
		code, resp, err := s.exchange(c, st, data)
		var v Verdict
		var accept bool
		if err == nil {
			v, accept, err = s.answer(c, st, code, resp)
		}
		if err != nil {
			s.fail(c, err)
			if v, stop := s.onFailure(c, st.reject); stop {
				return v
			}
			continue
		}
		switch {
		case accept && (st.cmd == cmdConnect || st.cmd == cmdHelo):
			c.state = stClosed
			c.close()
		case accept:
			c.state = stDone
		case st.cmd == cmdMail && v.Action == Continue:
			c.state = stInMsg
		}
		if v.Action != Continue {
			return v
		}
	}
	return Verdict{}
}

// Connect opens the filters and passes on the client: hostname is its
// name ("[ip]" when it has none; "localhost" for local submission), addr
// its address and port. A refusal here refuses the session's commands (the
// caller gets it again from Refused); the log says so as sendmail does.
func (s *Session) Connect(hostname string, addr netip.AddrPort) Verdict {
	var initFail *Verdict
	for _, f := range s.chain.Filters {
		if c := s.chain.Pool.get(f); c != nil {
			s.conns = append(s.conns, c)
			continue
		}
		c, err := dial(f)
		if err != nil {
			c = &conn{f: f}
			s.fail(c, err)
			if v, stop := s.onFailure(c, rejectSession); stop {
				// sendmail opens no more filters: the session is refused.
				initFail = &v
				s.conns = append(s.conns, c)
				break
			}
		}
		s.conns = append(s.conns, c)
	}
	if initFail != nil {
		if initFail.Action == Reject {
			s.log.Printf("", "Milter: initialization failed, rejecting commands")
		} else {
			s.log.Printf("", "Milter: initialization failed, temp failing commands")
		}
		s.refuse(*initFail)
		return *initFail
	}
	data := []byte(hostname + "\x00")
	ip := addr.Addr().Unmap()
	switch {
	case ip.Is4():
		data = append(data, '4')
	case ip.Is6():
		data = append(data, '6')
	default:
		data = append(data, 'U')
	}
	if ip.IsValid() {
		data = binary.BigEndian.AppendUint16(data, addr.Port())
		data = append(data, ip.String()+"\x00"...)
	}
	v := s.command(connectStage, data)
	// A reply at connect cannot be given as the filter words it (SMTP
	// has no command to answer yet): as in sendmail, its class counts.
	who := v.Filter
	switch v.Action {
	case Reject:
		v = rejectSession
		s.log.Printf("", "Milter: connect: host=%s, addr=%s, rejecting commands", hostname, ip)
	case Tempfail:
		if v.Code == 421 {
			v = shutdownReply
			s.log.Printf("", "Milter: connect: host=%s, addr=%s, shutdown", hostname, ip)
		} else {
			v = tempfailReply
			s.log.Printf("", "Milter: connect: host=%s, addr=%s, temp failing commands", hostname, ip)
		}
	case Discard:
		v = Verdict{}
	}
	v.Filter = who
	if v.Refused() {
		s.refuse(v)
	}
	return v
}

// refuse makes every later command of the session fail with v, and lets
// the filters go.
func (s *Session) refuse(v Verdict) {
	s.refused = &v
	s.Close()
}

// Refused is the verdict that refuses the session's commands after a
// connect or HELO refusal; nil if there is none.
func (s *Session) Refused() *Verdict { return s.refused }

// Helo passes on the HELO/EHLO name.
func (s *Session) Helo(name string) Verdict {
	if s.refused != nil {
		return *s.refused
	}
	s.endMessage()
	v := s.command(heloStage, []byte(name+"\x00"))
	switch v.Action {
	case Reject:
		s.log.Printf("", "Milter: helo=%s, reject=%s", name, strings.TrimPrefix(v.Reply(), "550 5.0.0 "))
	case Tempfail:
		s.log.Printf("", "Milter: helo=%s, reject=%s", name, v.Reply())
	case Discard:
		v = Verdict{}
	}
	if v.Refused() {
		s.refuse(v)
	}
	return v
}

// Mail starts a message: from is the envelope sender ("" for <>), args
// the ESMTP parameters ("SIZE=1234", "BODY=8BITMIME"). A discard is
// remembered: the rest of the message is accepted and dropped (see
// Discarding).
func (s *Session) Mail(from string, args []string) Verdict {
	if s.refused != nil {
		return *s.refused
	}
	s.endMessage()
	s.discard = false
	s.inMsg = true
	s.SetMacro("{mail_addr}", from)
	s.SetMacro("{mail_host}", domainOf(from))
	s.SetMacro("{mail_mailer}", s.mailer(from))
	v := s.command(mailStage, cstrings(append([]string{"<" + from + ">"}, args...)...))
	s.logVerdict("from=<"+from+">", v)
	s.afterVerdict(v)
	return v
}

// Rcpt passes on a recipient. A refusal refuses this recipient only.
func (s *Session) Rcpt(to string, args []string) Verdict {
	if s.refused != nil {
		return *s.refused
	}
	if s.discard {
		return Verdict{}
	}
	addr := to
	if s.mailer(to) == "local" {
		addr = localPart(to)
	}
	s.SetMacro("{rcpt_addr}", addr)
	s.SetMacro("{rcpt_host}", domainOf(to))
	s.SetMacro("{rcpt_mailer}", s.mailer(to))
	v := s.command(rcptStage, cstrings(append([]string{"<" + to + ">"}, args...)...))
	s.logVerdict("to=<"+to+">", v)
	if v.Action == Discard {
		s.discard = true
		s.abort()
	}
	return v
}

// Data passes on the DATA command (before the message is read).
func (s *Session) Data() Verdict {
	if s.refused != nil {
		return *s.refused
	}
	if s.discard {
		return Verdict{}
	}
	v := s.command(dataStage, nil)
	switch v.Action {
	case Discard:
		s.log.Printf(s.ID, "Milter: cmd=data, discard")
	case Reject, Tempfail:
		s.log.Printf(s.ID, "Milter: cmd=data, reject=%s", v.Reply())
	}
	s.afterVerdict(v)
	return v
}

// Discarding reports whether a filter said to discard the current
// message before its end.
func (s *Session) Discarding() bool { return s.discard }

func (s *Session) logVerdict(what string, v Verdict) {
	switch v.Action {
	case Discard:
		s.log.Printf(s.ID, "Milter: %s, discard", what)
	case Reject, Tempfail:
		s.log.Printf(s.ID, "Milter: %s, reject=%s", what, v.Reply())
	}
}

// afterVerdict ends the message in every filter after a refusal or a
// discard of the whole message (sendmail's MILTER_CHECK_DONE_MSG).
func (s *Session) afterVerdict(v Verdict) {
	if v.Action == Discard {
		s.discard = true
	}
	if v.Action != Continue {
		s.abort()
	}
}

// abort tells the filters in a message that it is over.
func (s *Session) abort() {
	for _, c := range s.conns {
		if c.state == stInMsg {
			if err := c.send(cmdAbort, nil, "abort_filter"); err != nil {
				s.fail(c, err)
				continue
			}
			c.state = stDone
		}
	}
}

// endMessage readies the filters for a new message.
func (s *Session) endMessage() {
	s.abort()
	for _, c := range s.conns {
		if c.state == stDone {
			c.state = stReady
		}
	}
	s.inMsg = false
}

// Abort ends the current message (RSET, or the client went away).
func (s *Session) Abort() {
	if s.inMsg {
		s.endMessage()
	}
	s.discard = false
}

// Close says goodbye to the filters, or leaves their connections in the
// chain's Pool for the next session.
func (s *Session) Close() {
	for i, c := range s.conns {
		if c.state == stInMsg && c.nc != nil {
			c.queue(cmdAbort, nil)
		}
		if s.chain.Pool.keep(c) {
			// The connection is the pool's now: this session must not
			// touch it again.
			s.conns[i] = &conn{f: c.f, state: stClosed}
			continue
		}
		c.close()
		if c.state != stError {
			c.state = stClosed
		}
	}
}

// Active reports whether any filter is still listening (or failing with a
// mode that matters): when none is, the caller may skip the work of
// preparing the message for them.
func (s *Session) Active() bool {
	for _, c := range s.conns {
		switch c.state {
		case stReady, stInMsg:
			return true
		case stError:
			if c.f.OnFailure != "accept" {
				return true
			}
		}
	}
	return false
}

func (s *Session) mailer(addr string) string {
	if addr == "" {
		return "local"
	}
	d := domainOf(addr)
	if d == "" || (s.Local != nil && s.Local(d)) {
		return "local"
	}
	return "esmtp"
}

func domainOf(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return addr[i+1:]
	}
	return ""
}

func localPart(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return addr[:i]
	}
	return addr
}

// String describes the verdict for tests and logs.
func (v Verdict) String() string {
	if !v.Refused() {
		return v.Action.String()
	}
	return fmt.Sprintf("%s %s", v.Action, v.Reply())
}
