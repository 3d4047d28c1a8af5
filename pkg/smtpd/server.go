// Package smtpd is the SMTP side of the daemon: listeners built on
// github.com/emersion/go-smtp, and the session policy that decides what
// to accept.
//
// A session moves through go-smtp's states (greeting, EHLO, MAIL, RCPT,
// DATA); this package adds:
//
//   - at accept: limits on connections in total and per client address
//     (relay_from exempt), and a greeting pause that refuses clients who
//     talk before the banner (sendmail's greet_pause);
//   - at EHLO: the access map's Connect: entry;
//   - at MAIL: address syntax and the access map's From: entry;
//   - at RCPT: the relay decision and the local-user check (policy.go);
//     refused commands are counted and the session closed after
//     max_bad_commands;
//   - at DATA: against SMTP smuggling, only CRLF.CRLF ends the data (go-smtp)
//     and, for clients that may not relay, a bare CR or LF or commands
//     pipelined past the end of the data refuse the message; SIZE is
//     enforced while reading; 250 is answered only once the message is
//     fsync'd in the queue with its Received: header.
//
// Nothing from a client is ever given to a shell. Log lines follow
// sendmail's shapes (maillog) so that fail2ban's sendmail filters work.
package smtpd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/gosendmail/gosendmail/pkg/config"
)

// Timeouts of a session, as Postfix's smtpd_timeout.
const (
	CommandTimeout = 5 * time.Minute
	maxLine        = 1 << 20 // data lines; commands are checked by go-smtp's parser
)

// Server is one listener.
type Server struct {
	Listen config.Listen
	srv    *smtp.Server
	guard  *guard
	lis    net.Listener
}

// Options are what a listener needs besides its configuration entry.
type Options struct {
	Backend    *Backend
	TLS        *tls.Config // nil: no STARTTLS, and smtps cannot run
	GreetPause time.Duration
}

// Bind opens the listener's socket (done first, as root, before the daemon
// drops privileges).
func Bind(l config.Listen) (net.Listener, error) {
	addr := l.Address
	if !strings.Contains(addr, ":") {
		addr = ":" + addr
	}
	// No TCP keep-alive: the SMTP timeouts end dead sessions, as in
	// sendmail and Postfix, and Go's default costs four setsockopt calls
	// on every accepted connection.
	lc := net.ListenConfig{KeepAlive: -1}
	ln, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listener %s: %w", l.Name, err)
	}
	return ln, nil
}

// New builds the server of one listener on an open socket.
func New(ln net.Listener, cfg *config.Config, o Options) (*Server, error) {
	l := o.Backend.Listener
	if l.Mode == "smtps" && o.TLS == nil {
		return nil, fmt.Errorf("listener %s: mode smtps needs [tls] cert_file and key_file", l.Name)
	}
	if l.Auth == "required" && o.Backend.Auth == nil {
		return nil, fmt.Errorf("listener %s: auth = \"required\" needs [auth] users_file", l.Name)
	}
	g := newGuard(ln)
	g.maxTotal = cfg.Limits.MaxConnections
	g.maxPerIP = cfg.Limits.MaxConnectionsPerIP
	g.pause = o.GreetPause
	g.hostname = func() string { return o.Backend.Config().Hostname }
	g.exempt = func(ip netip.Addr) bool { return o.Backend.Config().RelayAllowed(ip) }
	log := o.Backend.Log
	g.onRefuse = func(ip netip.Addr, reply string) {
		log.Rejected("", "check_relay", "["+ip.String()+"]", "["+ip.String()+"]", reply)
	}
	g.onPregreet = func(ip netip.Addr, after time.Duration) {
		log.Printf("", "rejecting commands from [%s] due to pre-greeting traffic after %d seconds", ip, int(after.Seconds()))
	}
	g.onCommand = func(ip netip.Addr, verb, arg string) {
		log.Printf("", "[%s]: %s %s [rejected]", ip, verb, sanitizeHelo(arg))
	}

	s := smtp.NewServer(o.Backend)
	s.Domain = cfg.Hostname
	s.ReadTimeout = CommandTimeout
	s.WriteTimeout = CommandTimeout
	s.MaxMessageBytes = int64(cfg.MaxMessageSize)
	s.MaxRecipients = cfg.Limits.MaxRecipients
	s.MaxLineLength = maxLine
	s.AllowInsecureAuth = false
	s.EnableSMTPUTF8 = true
	s.EnableDSN = !cfg.HasPrivacy("noreceipts")
	s.TLSConfig = o.TLS
	s.ErrorLog = errLog{o.Backend}
	var lis net.Listener = g
	if l.Mode == "smtps" {
		lis = tls.NewListener(g, o.TLS)
	}
	srv := &Server{Listen: l, srv: s, guard: g}
	srv.lis = lis
	return srv, nil
}

// Serve answers connections until Shutdown.
func (s *Server) Serve() error {
	err := s.srv.Serve(s.lis)
	if errors.Is(err, smtp.ErrServerClosed) || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting and waits for the sessions in flight (a
// transaction in DATA finishes and is answered) until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.guard.drain()
	return s.srv.Shutdown(ctx)
}

// Addr is the listening address.
func (s *Server) Addr() net.Addr { return s.guard.Addr() }

type errLog struct{ b *Backend }

func (e errLog) Printf(format string, v ...any) { e.b.Log.Warnf("", format, v...) }
func (e errLog) Println(v ...any)               { e.b.Log.Warnf("", "%s", fmt.Sprint(v...)) }
