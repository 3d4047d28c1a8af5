package smtpd

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/gosendmail/gosendmail/pkg/config"
	"github.com/gosendmail/gosendmail/pkg/maildrop"
	"github.com/gosendmail/gosendmail/pkg/mailerr"
	"github.com/gosendmail/gosendmail/pkg/spool"
)

// ServeStdio runs one SMTP session on in and out: sendmail -bs, as
// Symfony Mailer, SwiftMailer and Alpine use it. It is the same server
// code as the daemon's; the backend decides where messages go.
func ServeStdio(cfg *config.Config, b *Backend, in io.Reader, out io.Writer) error {
	s := smtp.NewServer(b)
	s.Domain = cfg.Hostname
	s.ReadTimeout = CommandTimeout
	s.MaxMessageBytes = int64(cfg.MaxMessageSize)
	s.MaxRecipients = cfg.Limits.MaxRecipients
	s.MaxLineLength = maxLine
	s.EnableSMTPUTF8 = true
	s.EnableDSN = !cfg.HasPrivacy("noreceipts")
	s.ErrorLog = errLog{b}
	l := &stdioListener{conn: &stdioConn{r: in, w: out}, done: make(chan struct{})}
	err := s.Serve(l)
	if errors.Is(err, net.ErrClosed) || errors.Is(err, smtp.ErrServerClosed) {
		return nil
	}
	return err
}

// stdioListener hands out one connection, then waits until it is closed.
type stdioListener struct {
	conn   *stdioConn
	once   sync.Once
	served bool
	done   chan struct{}
}

func (l *stdioListener) Accept() (net.Conn, error) {
	if !l.served {
		l.served = true
		l.conn.onClose = func() { l.once.Do(func() { close(l.done) }) }
		return l.conn, nil
	}
	<-l.done
	return nil, net.ErrClosed
}

func (l *stdioListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *stdioListener) Addr() net.Addr { return stdioAddr{} }

type stdioConn struct {
	r       io.Reader
	w       io.Writer
	onClose func()
	closed  sync.Once
}

func (c *stdioConn) Read(p []byte) (int, error)  { return c.r.Read(p) }
func (c *stdioConn) Write(p []byte) (int, error) { return c.w.Write(p) }
func (c *stdioConn) Close() error {
	c.closed.Do(func() {
		if c.onClose != nil {
			c.onClose()
		}
	})
	return nil
}
func (c *stdioConn) LocalAddr() net.Addr  { return stdioAddr{} }
func (c *stdioConn) RemoteAddr() net.Addr { return stdioAddr{} }

// Deadlines do not apply to pipes; the caller owns the other end.
func (c *stdioConn) SetDeadline(time.Time) error      { return nil }
func (c *stdioConn) SetReadDeadline(time.Time) error  { return nil }
func (c *stdioConn) SetWriteDeadline(time.Time) error { return nil }

type stdioAddr struct{}

func (stdioAddr) Network() string { return "stdio" }
func (stdioAddr) String() string  { return "localhost" }

// DropStore keeps messages of a sendmail -bs session in the maildrop, as
// the sendmail command does: the daemon's pickup then treats them like
// any local submission (the sender given in MAIL FROM counts as -f).
type DropStore struct {
	Dir string
}

// CreateSize writes a drop file for env and body.
func (d *DropStore) CreateSize(env *spool.Envelope, body io.Reader) (int64, error) {
	de := &maildrop.Envelope{ID: env.ID, Created: env.Created, Sender: env.Sender, SenderSet: true,
		BodyType: env.BodyType, EnvID: env.EnvID, Ret: env.Ret}
	for _, r := range env.Rcpts {
		de.Rcpts = append(de.Rcpts, maildrop.Rcpt{Addr: r.Addr, Notify: r.Notify})
	}
	w, err := maildrop.Create(d.Dir, de)
	if err != nil {
		return 0, err
	}
	if _, err := io.Copy(w, body); err != nil {
		w.Abort()
		return 0, err
	}
	if err := w.Commit(); err != nil {
		return 0, err
	}
	env.ID = w.ID
	return w.Size(), nil
}

// Remove deletes a drop file this store wrote (an acceptance undone).
func (d *DropStore) Remove(id string) error {
	if !spool.ValidID(id) {
		return spool.ErrNotFound
	}
	return os.Remove(filepath.Join(d.Dir, id))
}

var _ Store = (*DropStore)(nil)

// OpenTables is the Tables of a local sendmail -bs session: the caller is
// a local user who may send anywhere (as with sendmail's argv), and
// recipients are checked at delivery, not here.
type OpenTables struct{}

func (OpenTables) LocalDomain(string) bool                       { return false }
func (OpenTables) RelayDomain(string) bool                       { return true }
func (OpenTables) Connect(netip.Addr) Answer                     { return Answer{} }
func (OpenTables) From(string) Answer                            { return Answer{} }
func (OpenTables) To(string, bool) Answer                        { return Answer{} }
func (OpenTables) Virtual(string) (string, bool, *mailerr.Error) { return "", false, nil }
func (OpenTables) LocalUser(string) bool                         { return true }

var _ Tables = OpenTables{}
