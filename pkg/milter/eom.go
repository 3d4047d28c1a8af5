package milter

import (
	"encoding/binary"
	"errors"
	"io"
	"os"
	"strings"
	"time"

	"github.com/gosendmail/gosendmail/pkg/envelope"
	"github.com/gosendmail/gosendmail/pkg/maillog"
	"github.com/gosendmail/gosendmail/pkg/spool"
)

// Changes are the envelope edits the filters asked for at the end of the
// message, in order, and the quarantine. Apply makes them.
type Changes struct {
	edits []edit
	// Quarantine is the reason a filter gave to hold the message ("" if
	// none did), and QuarantinedBy that filter.
	Quarantine    string
	QuarantinedBy string

	log            *maillog.Logger
	id             string
	mark           int
	markQ, markQBy string
}

type edit struct {
	code   byte // repChgFrom, repAddRcpt, repAddRcptPar, repDelRcpt
	addr   string
	filter string
}

// Empty reports whether there is nothing to apply.
func (ch *Changes) Empty() bool { return ch == nil || len(ch.edits) == 0 && ch.Quarantine == "" }

func (ch *Changes) begin() {
	ch.mark, ch.markQ, ch.markQBy = len(ch.edits), ch.Quarantine, ch.QuarantinedBy
}
func (ch *Changes) rollback() {
	ch.edits, ch.Quarantine, ch.QuarantinedBy = ch.edits[:ch.mark], ch.markQ, ch.markQBy
}

// Apply makes the edits on the envelope: a new sender, recipients added
// (once) and removed, and the quarantine as the hold reason. An address
// that is not one is logged and left out.
func (ch *Changes) Apply(env *spool.Envelope) {
	if ch == nil {
		return
	}
	for _, e := range ch.edits {
		raw := strings.TrimSpace(e.addr)
		switch e.code {
		case repChgFrom:
			ch.log.Printf(ch.id, "Milter chgfrom: %s", raw)
			if raw == "<>" || raw == "" {
				env.Sender = ""
				continue
			}
			a, err := envelope.CheckMailbox(raw)
			if err != nil {
				ch.log.Warnf(ch.id, "Milter (%s): chgfrom: %v", e.filter, err)
				continue
			}
			env.Sender = a
		case repAddRcpt, repAddRcptPar:
			ch.log.Printf(ch.id, "Milter add: rcpt: %s", raw)
			a, err := envelope.CheckMailbox(raw)
			if err != nil {
				ch.log.Warnf(ch.id, "Milter (%s): add rcpt: %v", e.filter, err)
				continue
			}
			dup := false
			for _, r := range env.Rcpts {
				if strings.EqualFold(r.Addr, a) {
					dup = true
					break
				}
			}
			if !dup {
				env.Rcpts = append(env.Rcpts, spool.Recipient{Addr: a, State: spool.Pending})
			}
		case repDelRcpt:
			a := strings.TrimSuffix(strings.TrimPrefix(raw, "<"), ">")
			kept := env.Rcpts[:0]
			n := 0
			for _, r := range env.Rcpts {
				if strings.EqualFold(r.Addr, a) {
					n++
					continue
				}
				kept = append(kept, r)
			}
			env.Rcpts = kept
			ch.log.Printf(ch.id, "Milter delete: rcpt %s, naddrs=%d", raw, n)
		}
	}
	if ch.Quarantine != "" {
		env.Hold = ch.Quarantine
	}
}

// localError is a failure of ours (a temporary file), not the filter's.
type localError struct{ err error }

func (e *localError) Error() string { return e.err.Error() }

// EndOfMessage gives the message to the filters in turn and returns the
// verdict, and the envelope edits to Apply when the verdict is Continue.
// The header and body edits are made on m as each filter answers, so the
// next filter sees them.
func (s *Session) EndOfMessage(m *Message) (Verdict, *Changes) {
	ch := &Changes{log: s.log, id: s.ID}
	switch {
	case s.refused != nil:
		return *s.refused, ch
	case s.discard:
		s.endMessage()
		return Verdict{Action: Discard}, ch
	}
	if m.TempDir == "" {
		m.TempDir = s.chain.TempDir
	}
	s.SetMacro("{msg_id}", m.Header("Message-Id"))
	var v Verdict
	for _, c := range s.conns {
		if c.state == stError {
			if fv, stop := s.onFailure(c, rejectData); stop {
				v = fv
				break
			}
			continue
		}
		if c.state != stReady && c.state != stInMsg {
			continue
		}
		c.state = stInMsg
		m.begin()
		ch.begin()
		fv, err := s.eom(c, m, ch)
		var le *localError
		if errors.As(err, &le) {
			m.rollback()
			ch.rollback()
			s.log.Warnf(s.ID, "milter_data(%s): %v", c.f.Name, le.err)
			v = tempfailReply
			v.Filter = c.f.Name
			break
		}
		if err != nil {
			m.rollback()
			ch.rollback()
			s.fail(c, err)
			if fv, stop := s.onFailure(c, rejectData); stop {
				v = fv
				break
			}
			continue
		}
		if err := m.commit(); err != nil {
			ch.rollback()
			s.log.Warnf(s.ID, "milter_data(%s): cannot write the replaced body: %v", c.f.Name, err)
			v = tempfailReply
			v.Filter = c.f.Name
			break
		}
		if fv.Action != Continue {
			v = fv
			break
		}
	}
	switch v.Action {
	case Discard:
		s.log.Printf(s.ID, "Milter: data, discard")
	case Reject, Tempfail:
		s.log.Printf(s.ID, "Milter: data, reject=%s", v.Reply())
	}
	s.endMessage()
	return v, ch
}

var (
	headerStage = stage{"header", -1, cmdHeader, optNoHdrs, optNrHdr, rejectData}
	eohStage    = stage{"eoh", stageEOH, cmdEOH, optNoEOH, optNrEOH, rejectData}
	bodyStage   = stage{"body chunk", -1, cmdBody, optNoBody, optNrBody, rejectData}
)

// eom runs one filter over the message: header fields, end of header,
// body, end of message, and its answers to that.
func (s *Session) eom(c *conn, m *Message, ch *Changes) (Verdict, error) {
	leadSpace := c.proto&optLeadSpace != 0
	// step sends one command; done says the filter has decided (accepted
	// or refused) and nothing more is sent to it.
	step := func(st stage, data []byte) (v Verdict, skip, done bool, err error) {
		code, resp, err := s.exchange(c, st, data)
		if err != nil {
			return Verdict{}, false, false, err
		}
		v, accept, err := s.answer(c, st, code, resp)
		if err != nil {
			return Verdict{}, false, false, err
		}
		if accept || v.Action != Continue {
			c.state = stDone
			return v, false, true, nil
		}
		return v, code == repSkip, false, nil
	}
	if c.proto&optNoHdrs == 0 {
		for _, f := range m.fields {
			v, _, done, err := step(headerStage, cstrings(f.Name, f.milterValue(leadSpace)))
			if err != nil || done {
				return v, err
			}
		}
	}
	if v, _, done, err := step(eohStage, nil); err != nil || done {
		return v, err
	}
	if c.proto&optNoBody == 0 {
		// Chunks the size of the body (its line ends may grow it), from
		// the pools.
		n := int(min(m.bodyLen()*2+16, chunkSize))
		r := newCRLFReader(m.bodyReader(), n)
		defer r.release()
		chunk := getChunk(n)
		defer putChunk(chunk)
		buf := (*chunk)[:n]
		for {
			n, rerr := io.ReadFull(r, buf)
			if n > 0 {
				v, skip, done, err := step(bodyStage, buf[:n])
				if err != nil || done {
					return v, err
				}
				if skip {
					break
				}
			}
			if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
				break
			}
			if rerr != nil {
				return Verdict{}, &localError{rerr}
			}
		}
	}
	s.sendMacros(c, stageEOM, cmdEOB)
	if err := c.write(cmdEOB, nil, "eom"); err != nil {
		return Verdict{}, err
	}
	limit := time.Now().Add(c.f.Timeouts.EOM)
	replFailed := false
	name := c.f.Name
	for {
		code, resp, err := c.read(limit, "eom")
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) && !time.Now().Before(limit) {
				return Verdict{}, failf(err, "milter_data(%s): EOM ACK/NAK timeout", name)
			}
			return Verdict{}, err
		}
		args := splitC(resp)
		switch code {
		case repProgress:
			continue
		case repContinue, repAccept:
			c.state = stDone
			c.reusable = code == repContinue && !replFailed
			if replFailed {
				v := tempfailReply
				v.Filter = name
				return v, nil
			}
			return Verdict{}, nil
		case repReject, repTempfail, repDiscard, repReplyCode:
			c.state = stDone
			v, _, _ := s.answer(c, stage{reject: rejectData}, code, resp)
			return v, nil
		case repQuarantine:
			reason := strings.TrimRight(string(resp), "\x00")
			if reason == "" {
				reason = "milter " + name
			}
			s.log.Printf(s.ID, "milter=%s, quarantine=%s", name, reason)
			ch.Quarantine, ch.QuarantinedBy = reason, name
		case repAddHeader:
			if len(args) != 2 || !s.goodName(name, args[0]) {
				continue
			}
			s.log.Printf(s.ID, "Milter add: header: %s: %s", args[0], logValue(args[1], leadSpace))
			m.addHeader(args[0], args[1], leadSpace)
		case repInsHeader, repChgHeader:
			if len(resp) < 5 {
				continue
			}
			idx := int(int32(binary.BigEndian.Uint32(resp)))
			args = splitC(resp[4:])
			if len(args) == 1 {
				args = append(args, "")
			}
			if len(args) != 2 || !s.goodName(name, args[0]) {
				continue
			}
			if code == repInsHeader {
				s.log.Printf(s.ID, "Milter insert (%d): header: %s: %s", idx, args[0], logValue(args[1], leadSpace))
				m.insHeader(idx, args[0], args[1], leadSpace)
				continue
			}
			switch old, what := m.chgHeader(idx, args[0], args[1], leadSpace); what {
			case "delete":
				s.log.Printf(s.ID, "Milter delete: header %s:%s", args[0], old)
			case "change":
				s.log.Printf(s.ID, "Milter change: header %s: from %s to %s", args[0], strings.TrimPrefix(old, " "), logValue(args[1], leadSpace))
			case "add":
				s.log.Printf(s.ID, "Milter change (add): header: %s: %s", args[0], logValue(args[1], leadSpace))
			default:
				s.log.Printf(s.ID, "Milter delete (noop): header: %s", args[0])
			}
		case repChgFrom, repAddRcpt, repAddRcptPar, repDelRcpt:
			if len(args) == 0 || args[0] == "" {
				continue
			}
			ch.edits = append(ch.edits, edit{code: code, addr: args[0], filter: name})
		case repReplBody:
			if c.actions&actChgBody == 0 {
				if !replFailed {
					s.log.Warnf(s.ID, "milter_data(%s): lied about replacing body, rejecting request and tempfailing message", name)
				}
				replFailed = true
				continue
			}
			if replFailed {
				continue
			}
			first := m.pending == nil
			if err := m.replaceBody(resp); err != nil {
				s.log.Warnf(s.ID, "milter_replbody(%s): %v", name, err)
				replFailed = true
			} else if first {
				s.log.Printf(s.ID, "Milter message: body replaced")
			}
		default:
			return Verdict{}, failf(nil, "milter_data(%s): returned bogus response %c", name, code)
		}
	}
}

// goodName says whether a filter's header edit names a field that can
// be; a name that is not one (a colon, a space, a line break in it) would
// make header lines of its own, and the edit is left out.
func (s *Session) goodName(filter, field string) bool {
	if validName(field) {
		return true
	}
	if field != "" {
		s.log.Warnf(s.ID, "Milter (%s): bad header name %q, request ignored", filter, field)
	}
	return false
}

// logValue is a header value as the log shows it, after "Name: ".
func logValue(v string, leadSpace bool) string {
	if leadSpace {
		return strings.TrimPrefix(v, " ")
	}
	return v
}
