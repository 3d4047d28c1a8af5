package smtpd

// The [[milter]] filters in an SMTP session (package milter does the
// protocol). The session calls them at each step, as sendmail does:
//
//   - at EHLO/HELO (when go-smtp starts the session): connect, then HELO;
//     a refusal there refuses the session's MAIL commands (sendmail's
//     "rejecting commands" / "temp failing commands");
//   - at MAIL and at each RCPT, after our own checks; a refused RCPT is
//     that recipient only;
//   - at DATA: the message is read into a temporary file first (so the
//     filters' changes are made before it is queued, and what is on disk
//     is what they decided), then given to the filters; their envelope
//     changes (sender, recipients, quarantine as the hold reason) are
//     applied to the queue envelope and the message is queued as they
//     left it. When no filter changed anything, the temporary file itself
//     is queued: the message is copied once, as for the inbound checks.
//
// A discard answers 250 and queues nothing. The queue ID is given at MAIL
// (macro i), as in sendmail, and kept for the queued message. Sessions of
// sendmail -bs (LocalUser) and sessions the access map discards do not
// see the filters: -bs mail goes through them at pickup.

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
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/gosendmail/gosendmail/pkg/config"
	"github.com/gosendmail/gosendmail/pkg/milter"
	"github.com/gosendmail/gosendmail/pkg/spool"
	"github.com/gosendmail/gosendmail/pkg/version"
)

// milterState is the filters of one session.
type milterState struct {
	s  *milter.Session
	id string // the queue ID given at MAIL
}

// milterStart opens the filters, if any are configured, and gives them
// the connection and the HELO name. The error is a filter's 421: the
// connection is closed.
func (s *Session) milterStart() error {
	if s.discard || s.b.LocalUser != "" {
		return nil
	}
	cfg := s.b.Config()
	chain := milter.NewChain(cfg.Milter, s.b.Log)
	if chain == nil {
		return nil
	}
	chain.Pool = s.b.Milters
	ms := chain.NewSession()
	ms.Local = s.b.Tables.LocalDomain
	nc := s.c.Conn()
	remote := addrPort(nc.RemoteAddr())
	local := addrPort(nc.LocalAddr())
	ms.SetMacros(map[string]string{
		"j":             cfg.Hostname,
		"_":             s.relay,
		"v":             version.Version,
		"{daemon_name}": s.b.Listener.Name,
		"{client_addr}": s.ip.String(),
		"{client_port}": strconv.Itoa(int(remote.Port())),
		"{client_name}": s.relay,
		"s":             s.c.Hostname(),
	})
	if local.IsValid() {
		ms.SetMacro("{daemon_addr}", local.Addr().Unmap().String())
		ms.SetMacro("{daemon_port}", strconv.Itoa(int(local.Port())))
		ms.SetMacro("{if_addr}", local.Addr().Unmap().String())
	}
	if st, ok := s.c.TLSConnectionState(); ok {
		// As OpenSSL names the version: TLSv1.3.
		ms.SetMacro("{tls_version}", strings.Replace(tls.VersionName(st.Version), "TLS ", "TLSv", 1))
		ms.SetMacro("{cipher}", tls.CipherSuiteName(st.CipherSuite))
	}
	s.mf = &milterState{s: ms}
	v := ms.Connect(s.relay, netip.AddrPortFrom(s.ip, remote.Port()))
	if !v.Refused() {
		v = ms.Helo(s.c.Hostname())
	}
	if v.Shutdown() {
		s.milterClose()
		return s.milterError(v)
	}
	return nil
}

func addrPort(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.AddrPort()
	}
	if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		return ap
	}
	return netip.AddrPort{}
}

// milterShutdown closes the connection after a filter's 421.
func (s *Session) milterShutdown(v milter.Verdict) {
	if v.Shutdown() && s.conn != nil {
		s.conn.hangup()
	}
}

// milterError is the SMTP reply of a refusal; nil for anything else.
func (s *Session) milterError(v milter.Verdict) error {
	if !v.Refused() {
		return nil
	}
	s.milterShutdown(v)
	ec := smtp.EnhancedCodeNotSet
	if _, err := fmt.Sscanf(v.Enhanced, "%d.%d.%d", &ec[0], &ec[1], &ec[2]); err != nil {
		ec = smtp.EnhancedCodeNotSet
	}
	return &smtp.SMTPError{Code: v.Code, EnhancedCode: ec, Message: v.Text}
}

// milterMail gives the filters the sender; the queue ID is made now.
func (s *Session) milterMail(from string, opts *smtp.MailOptions) error {
	if s.mf == nil || s.discard {
		return nil
	}
	ms := s.mf.s
	if r := ms.Refused(); r != nil {
		return s.milterError(*r)
	}
	s.mf.id = spool.NewID(time.Now())
	ms.ID = s.mf.id
	ms.SetMacro("i", s.mf.id)
	ms.SetMacro("{auth_authen}", s.user)
	var args []string
	if opts != nil {
		if opts.Size > 0 {
			args = append(args, "SIZE="+strconv.FormatInt(opts.Size, 10))
		}
		if opts.Body != "" {
			args = append(args, "BODY="+string(opts.Body))
		}
		if opts.UTF8 {
			args = append(args, "SMTPUTF8")
		}
		if opts.Return != "" {
			args = append(args, "RET="+string(opts.Return))
		}
		if opts.EnvelopeID != "" {
			args = append(args, "ENVID="+opts.EnvelopeID)
		}
		if opts.Auth != nil {
			a := *opts.Auth
			if a == "" {
				a = "<>"
			}
			args = append(args, "AUTH="+a)
		}
	}
	return s.milterError(ms.Mail(from, args))
}

// milterRcpt gives the filters a recipient.
func (s *Session) milterRcpt(to string, opts *smtp.RcptOptions) error {
	if s.mf == nil || s.discard || s.mf.id == "" {
		return nil
	}
	var args []string
	if opts != nil {
		if len(opts.Notify) > 0 {
			var n []string
			for _, x := range opts.Notify {
				n = append(n, string(x))
			}
			args = append(args, "NOTIFY="+strings.Join(n, ","))
		}
		if opts.OriginalRecipient != "" {
			args = append(args, "ORCPT="+string(opts.OriginalRecipientType)+";"+opts.OriginalRecipient)
		}
	}
	return s.milterError(s.mf.s.Rcpt(to, args))
}

// milterReset ends the filters' message (RSET, a new EHLO, after DATA).
func (s *Session) milterReset() {
	if s.mf != nil {
		s.mf.s.Abort()
		s.mf.id = ""
	}
}

// milterClose lets the filters go at the end of the session.
func (s *Session) milterClose() {
	if s.mf != nil {
		s.mf.s.Close()
		s.mf = nil
	}
}

// milterData reads the message, runs the inbound checks and the filters,
// and returns the message to queue (after the Received field), with env
// changed as the filters said. done removes the temporary files; it is
// to be called once the message is queued, whatever err is.
func (s *Session) milterData(cfg *config.Config, cr *checkedReader, env *spool.Envelope, strict bool) (msg io.Reader, done func(), err error) {
	done = func() {}
	ms := s.mf.s
	if s.mf.id != "" {
		env.ID = s.mf.id
	}
	ms.ID = env.ID
	if v := ms.Data(); v.Refused() {
		return nil, done, s.milterError(v)
	}
	accepted := &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0}, Message: env.ID + " Message accepted for delivery"}
	if ms.Discarding() {
		if _, err := io.Copy(io.Discard, cr); err != nil {
			return nil, done, s.dataError(err)
		}
		ms.Abort()
		return nil, done, accepted
	}
	inbound := strict && s.b.Inbound != nil && s.b.Rewrite != nil
	if !ms.Active() && !inbound {
		// Every filter is done with this message (or skipped): it goes
		// to the queue as it comes.
		return cr, done, nil
	}
	sp := &spill{}
	cleanup := []func(){sp.close}
	done = func() {
		for i := len(cleanup) - 1; i >= 0; i-- {
			cleanup[i]()
		}
	}
	size, err := io.Copy(sp, cr)
	if err != nil {
		return nil, done, s.dataError(err)
	}
	tmp := sp.readerAt()
	var arHeader string
	if inbound {
		header, reject, err := s.b.Inbound(context.Background(), s.ip, s.c.Hostname(), s.from, io.NewSectionReader(tmp, 0, size))
		if err != nil {
			return nil, done, s.dataError(err)
		}
		if reject && cfg.DMARCReject {
			s.b.Log.Rejected(env.ID, "check_data", "<"+s.from+">", s.relay, "550 5.7.1 Rejected by DMARC policy")
			return nil, done, &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "Rejected by the sender domain's DMARC policy"}
		}
		arHeader = header
	}
	m, err := milter.ReadMessage(tmp, size)
	if errors.Is(err, milter.ErrHeaderTooLarge) {
		s.b.Log.Printf(env.ID, "%s: headers too large (%d max)", s.relay, milter.MaxHeader)
		return nil, done, &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: fmt.Sprintf("Headers too large (%d max)", milter.MaxHeader)}
	}
	if err != nil {
		return nil, done, s.dataError(err)
	}
	cleanup = append(cleanup, func() { m.Close() })
	if inbound {
		if err := m.RewriteHeader(func(w io.Writer, r io.Reader) error { return s.b.Rewrite(w, r, arHeader) }); err != nil {
			return nil, done, s.dataError(err)
		}
	}
	v, ch := ms.EndOfMessage(m)
	switch v.Action {
	case milter.Discard:
		return nil, done, accepted
	case milter.Reject, milter.Tempfail:
		return nil, done, s.milterError(v)
	}
	ch.Apply(env)
	if len(env.Rcpts) == 0 {
		s.b.Log.Printf(env.ID, "Milter: all recipients removed: discarded")
		return nil, done, accepted
	}
	if m.Changed() {
		cr.msgid = m.Header("Message-Id")
		cr.from = m.Header("From")
	}
	return m.Reader(), done, nil
}

// spillMax is the size up to which a message for the filters is held in
// memory; a larger one goes to a temporary file (and never stays in
// memory).
const spillMax = 128 << 10

// spill holds a message being read for the filters: in memory, in a
// pooled buffer that grows by doubling from spillStart, up to spillMax;
// beyond that in a temporary file.
type spill struct {
	buf    []byte
	pooled *[]byte // buf's buffer when it came from spillBufs
	f      *os.File
}

// spillStart is the first buffer's size: a usual message fits.
const spillStart = 16 << 10

// spillBufs recycles first buffers: taking one per message, and io.Copy's
// 32 KiB one besides, was most of what the filters' copy of a message cost
// the garbage collector.
var spillBufs = sync.Pool{New: func() any { b := make([]byte, 0, spillStart); return &b }}

// ReadFrom reads r to its end, straight into the buffer.
func (s *spill) ReadFrom(r io.Reader) (int64, error) {
	var total int64
	for s.f == nil {
		if s.buf == nil {
			s.pooled = spillBufs.Get().(*[]byte)
			s.buf = (*s.pooled)[:0]
		}
		if len(s.buf) == cap(s.buf) {
			// A full buffer of more than spillMax means a message over
			// it; the last step has one byte of room to see the end.
			if cap(s.buf) > spillMax {
				if err := s.toFile(); err != nil {
					return total, err
				}
				break
			}
			s.buf = append(make([]byte, 0, min(2*cap(s.buf), spillMax+1)), s.buf...)
		}
		n, err := r.Read(s.buf[len(s.buf):cap(s.buf)])
		s.buf = s.buf[:len(s.buf)+n]
		total += int64(n)
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
	n, err := io.Copy(s.f, r)
	return total + n, err
}

func (s *spill) Write(p []byte) (int, error) {
	if s.f == nil && len(s.buf)+len(p) <= spillMax {
		s.buf = append(s.buf, p...)
		return len(p), nil
	}
	if s.f == nil {
		if err := s.toFile(); err != nil {
			return 0, err
		}
	}
	return s.f.Write(p)
}

// toFile moves what is held to a temporary file, where the rest goes.
func (s *spill) toFile() error {
	f, err := os.CreateTemp("", "gosendmail-in-*")
	if err != nil {
		return err
	}
	s.f = f
	if _, err := f.Write(s.buf); err != nil {
		return err
	}
	s.buf = nil
	return nil
}

func (s *spill) readerAt() io.ReaderAt {
	if s.f != nil {
		return s.f
	}
	return bytes.NewReader(s.buf)
}

func (s *spill) close() {
	if s.pooled != nil {
		// The first buffer goes back, emptied, even when buf outgrew it;
		// a grown one is left to the garbage collector.
		*s.pooled = (*s.pooled)[:0]
		spillBufs.Put(s.pooled)
		s.pooled, s.buf = nil, nil
	}
	if s.f != nil {
		s.f.Close()
		os.Remove(s.f.Name())
	}
}
