// Package smtp delivers queued mail to other hosts with go-smtp's client.
//
// For one destination (a domain, or a mailertable / smart host) it walks
// the hosts in MX order (package dns), their addresses in the configured
// family (client_family: "inet" never tries IPv6; "any" starts IPv6 and
// IPv4 attempts a moment apart, as RFC 8305 does, so a dead IPv6 path
// costs a quarter of a second, not a minute), and on the first host that
// answers it sends the message to all the recipients in one transaction:
// EHLO with our hostname, opportunistic STARTTLS (any certificate: the
// alternative is plain text; a failed handshake is retried in plain
// text), MAIL FROM, one RCPT per recipient, DATA.
//
// Results are per recipient: sent, temporary failure (4xx, no host
// reachable, timeouts: the runner retries) or permanent failure (5xx:
// the runner bounces). Connection-level failures move on to the next
// address or host; replies to RCPT and DATA are final for this attempt.
//
// The message body goes out with CRLF line ends only: any bare CR or LF
// left in the queue file becomes CRLF before go-smtp's dot-stuffing, so
// nothing we relay can smuggle a second message (see SMTP smuggling).
// Lines longer than 998 octets are folded with CRLF SP, as Postfix does.
package smtp

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/gosendmail/gosendmail/pkg/dns"
	"github.com/gosendmail/gosendmail/pkg/mailerr"
)

// Timeouts, near Postfix's defaults.
const (
	ConnectTimeout = 30 * time.Second
	CommandTimeout = 5 * time.Minute
	DataTimeout    = 10 * time.Minute
	// FallbackDelay is how long an IPv6 attempt runs alone before IPv4
	// starts beside it (RFC 8305 recommends 250 ms).
	FallbackDelay = 250 * time.Millisecond
)

// Request is one transaction's worth of mail for one destination.
type Request struct {
	Domain string // the recipients' domain
	Host   string // a mailertable or smart host; "" = MX of Domain
	Port   int    // 0 = the client's Port
	NoMX   bool   // Host is used as is
	Sender string // "" = <>
	Rcpts  []string
	Size   int64
	// Body opens the message (CRLF line ends) from its start; it may be
	// called more than once (one call per host tried).
	Body     func() (io.ReadCloser, error)
	EightBit bool
}

// Result is the outcome for one recipient.
type Result struct {
	Rcpt  string
	Err   error  // nil: accepted by Relay
	Relay string // "mx.example.net. [192.0.2.7]"
	Reply string // the server's last reply, for the log and bounces
}

// Client delivers mail.
type Client struct {
	Hostname string // for EHLO
	Port     int    // remote_port
	Family   string // any, inet, inet6
	DNS      dns.Resolver
	IP       func(ctx context.Context, host, family string) ([]netip.Addr, error)
	Self     func(name string) bool // MX names that are this host
	// Dial opens connections (tests); nil = net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Timeouts; zero values mean the package defaults above.
	ConnectTimeout, CommandTimeout, DataTimeout time.Duration

	pool pool
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// Deliver runs one delivery attempt.
func (c *Client) Deliver(ctx context.Context, req *Request) []Result {
	all := func(err error, relay string) []Result {
		out := make([]Result, len(req.Rcpts))
		for i, r := range req.Rcpts {
			out[i] = Result{Rcpt: r, Err: err, Relay: relay}
		}
		return out
	}
	hosts, err := c.hosts(ctx, req)
	if err != nil {
		return all(err, "")
	}
	port := req.Port
	if port == 0 {
		port = c.Port
	}
	var last error = mailerr.SMTP(451, "4.4.1", "No host to deliver to for %s", req.Domain)
	c.sweep()
	for _, h := range hosts {
		ips, err := c.IP(ctx, strings.TrimSuffix(h, "."), c.Family)
		if err != nil {
			last = err
			continue
		}
		if res := c.reuse(ctx, h, ips, port, req); res != nil {
			return res
		}
		conn, ip, err := c.dial(ctx, ips, port)
		if err != nil {
			last = mailerr.SMTP(451, "4.4.1", "Connection refused by %s", h)
			if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
				last = mailerr.SMTP(451, "4.4.2", "Connection timed out with %s", h)
			}
			continue
		}
		relay := fmt.Sprintf("%s [%s]", h, ip)
		key := poolKey(h, ip, port)
		res, retry, serr := c.session(ctx, conn, h, relay, key, req, true)
		if retry {
			// No STARTTLS, or its handshake failed: once more, in plain text.
			if conn, _, err = c.dial(ctx, []netip.Addr{ip}, port); err == nil {
				res, retry, serr = c.session(ctx, conn, h, relay, key, req, false)
			}
		}
		if res != nil && !retry {
			return res
		}
		last = mailerr.SMTP(451, "4.4.2", "Lost connection with %s", h)
		if isReply(serr) {
			// The host answered, but not with a welcome: say what it said.
			last = mailerr.SMTP(451, "4.4.0", "%s said: %s", h, replyText(serr))
		}
	}
	return all(last, "")
}

// hosts lists the host names to try, in order.
func (c *Client) hosts(ctx context.Context, req *Request) ([]string, error) {
	if req.NoMX {
		return []string{req.Host}, nil
	}
	name := req.Domain
	if req.Host != "" {
		name = req.Host
	}
	hs, err := dns.Route(ctx, name, c.DNS, c.Self)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = h.Name
	}
	return out, nil
}

// dial connects to the first address that answers; with both families it
// gives IPv6 a head start of FallbackDelay, then races IPv4 beside it.
func (c *Client) dial(ctx context.Context, ips []netip.Addr, port int) (net.Conn, netip.Addr, error) {
	dial := c.Dial
	if dial == nil {
		d := &net.Dialer{Timeout: orDefault(c.ConnectTimeout, ConnectTimeout)}
		dial = d.DialContext
	}
	var v6, v4 []netip.Addr
	for _, ip := range ips {
		if ip.Unmap().Is4() {
			v4 = append(v4, ip.Unmap())
		} else {
			v6 = append(v6, ip)
		}
	}
	type result struct {
		conn net.Conn
		ip   netip.Addr
		err  error
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make(chan result, 2)
	try := func(list []netip.Addr, delay time.Duration) {
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-ctx.Done():
				results <- result{err: ctx.Err()}
				return
			}
		}
		var last error = errors.New("no address")
		for _, ip := range list {
			conn, err := dial(ctx, "tcp", net.JoinHostPort(ip.String(), strconv.Itoa(port)))
			if err == nil {
				results <- result{conn, ip, nil}
				return
			}
			last = err
		}
		results <- result{err: last}
	}
	n := 0
	if len(v6) > 0 {
		go try(v6, 0)
		n++
	}
	if len(v4) > 0 {
		delay := time.Duration(0)
		if len(v6) > 0 {
			delay = FallbackDelay
		}
		go try(v4, delay)
		n++
	}
	if n == 0 {
		return nil, netip.Addr{}, errors.New("no address in the configured family")
	}
	var last error
	for i := 0; i < n; i++ {
		r := <-results
		if r.err == nil {
			cancel()
			// A second winner, if any, is closed.
			go func(left int) {
				for ; left > 0; left-- {
					if r := <-results; r.conn != nil {
						r.conn.Close()
					}
				}
			}(n - i - 1)
			return r.conn, r.ip, nil
		}
		last = r.err
	}
	return nil, netip.Addr{}, last
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// session opens an SMTP session on conn and runs one transaction. It
// returns nil results when the connection failed before any recipient
// was answered (try elsewhere), and retry when STARTTLS failed or was not
// offered (try again in plain text). err is the reply or error that ended
// a session without results. A session that ends well is kept for the
// next message to the same host (see pool.go).
func (c *Client) session(ctx context.Context, conn net.Conn, host, relay, key string, req *Request, useTLS bool) (res []Result, retry bool, err error) {
	// A stop (ctx ends) does not wait for a host that hangs: the
	// connection is closed under the session, which fails as a lost
	// connection, and the message stays queued with that reason.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	cl, retry, err := c.open(conn, host, useTLS)
	if cl == nil {
		conn.Close()
		return nil, retry, err
	}
	res, err = c.transact(cl, conn, relay, req)
	kept := stop() // false: ctx ended and closed the connection
	c.release(key, cl, conn, err == nil && kept)
	return res, false, err
}

// open greets the server, with STARTTLS when useTLS.
func (c *Client) open(conn net.Conn, host string, useTLS bool) (*smtp.Client, bool, error) {
	conn.SetDeadline(time.Now().Add(orDefault(c.DataTimeout, DataTimeout)))
	var cl *smtp.Client
	if useTLS {
		cfg := &tls.Config{ServerName: strings.TrimSuffix(host, "."), InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}
		var err error
		cl, err = smtp.NewClientStartTLS(&heloConn{Conn: conn, name: c.Hostname}, cfg)
		if err != nil {
			if isReply(err) && !strings.Contains(err.Error(), "STARTTLS") {
				return nil, false, err // the greeting or EHLO was refused
			}
			// No STARTTLS offered, or it was refused: plain text.
			return nil, true, err
		}
		// The handshake runs with the first command after STARTTLS.
		if err := cl.Hello(c.Hostname); err != nil {
			cl.Close()
			return nil, true, err
		}
	} else {
		cl = smtp.NewClient(conn)
		if err := cl.Hello(c.Hostname); err != nil {
			cl.Close()
			return nil, false, err
		}
	}
	cl.CommandTimeout = orDefault(c.CommandTimeout, CommandTimeout)
	cl.SubmissionTimeout = orDefault(c.DataTimeout, DataTimeout)
	return cl, false, nil
}

// transact runs MAIL, RCPT and DATA on an open session. err is set when
// the connection failed (then res is nil if no recipient was answered);
// replies are in res.
func (c *Client) transact(cl *smtp.Client, conn net.Conn, relay string, req *Request) (res []Result, err error) {
	conn.SetDeadline(time.Now().Add(orDefault(c.DataTimeout, DataTimeout)))
	opts := &smtp.MailOptions{}
	if ok, _ := cl.Extension("SIZE"); ok && req.Size > 0 {
		opts.Size = req.Size
	}
	if req.EightBit {
		if ok, _ := cl.Extension("8BITMIME"); ok {
			opts.Body = smtp.Body8BitMIME
		}
	}
	if err := cl.Mail(req.Sender, opts); err != nil {
		if isReply(err) {
			return all(req.Rcpts, replyErr(err, relay), relay), nil
		}
		return nil, err
	}
	res = make([]Result, len(req.Rcpts))
	var accepted []int
	for i, r := range req.Rcpts {
		res[i] = Result{Rcpt: r, Relay: relay}
		if err := cl.Rcpt(r, nil); err != nil {
			if !isReply(err) {
				return nil, err
			}
			res[i].Err = replyErr(err, relay)
			res[i].Reply = replyText(err)
			continue
		}
		accepted = append(accepted, i)
	}
	if len(accepted) == 0 {
		// RSET, so the session can carry the next message.
		return res, cl.Reset()
	}
	err = c.data(cl, conn, req)
	for _, i := range accepted {
		if err != nil {
			if !isReply(err) {
				res[i].Err = mailerr.SMTP(451, "4.4.2", "Lost connection with %s while sending message", relay)
			} else {
				res[i].Err = replyErr(err, relay)
				res[i].Reply = replyText(err)
			}
			continue
		}
		res[i].Reply = "250 ok"
	}
	if err != nil && isReply(err) {
		err = nil // the server refused the data but the session is fine
	}
	return res, err
}

// heloConn puts our name into the EHLO that go-smtp's STARTTLS helper
// sends before TLS (it says "localhost" there; after TLS, Hello sends ours).
type heloConn struct {
	net.Conn
	name string
}

func (h *heloConn) Write(p []byte) (int, error) {
	for _, verb := range []string{"EHLO", "HELO"} {
		if string(p) == verb+" localhost\r\n" {
			if _, err := h.Conn.Write([]byte(verb + " " + h.name + "\r\n")); err != nil {
				return 0, err
			}
			return len(p), nil
		}
	}
	return h.Conn.Write(p)
}

func (c *Client) data(cl *smtp.Client, conn net.Conn, req *Request) error {
	body, err := req.Body()
	if err != nil {
		return mailerr.SMTP(451, "4.3.0", "cannot read queued message: %v", err)
	}
	defer body.Close()
	w, err := cl.Data()
	if err != nil {
		return err
	}
	// go-smtp clears the connection's deadline after each command, so the
	// message itself would go out with none, and a server that stops
	// reading would hold the delivery for ever. Each write gets
	// CommandTimeout, as Postfix's smtp_data_xfer_timeout bounds each one;
	// the final dot too. (The reply to the dot has DataTimeout.)
	dw := &deadlineWriter{w: w, conn: conn, timeout: orDefault(c.CommandTimeout, CommandTimeout)}
	br := wireReaders.Get().(*bufio.Reader)
	br.Reset(body)
	defer func() {
		br.Reset(nil)
		wireReaders.Put(br)
	}()
	buf := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(buf)
	if _, err := io.CopyBuffer(dw, &wireReader{r: br}, *buf); err != nil {
		w.Close()
		return err
	}
	conn.SetWriteDeadline(time.Now().Add(dw.timeout))
	return w.Close()
}

// deadlineWriter sets the connection's write deadline before each write.
type deadlineWriter struct {
	w       io.Writer
	conn    net.Conn
	timeout time.Duration
}

func (d *deadlineWriter) Write(p []byte) (int, error) {
	d.conn.SetWriteDeadline(time.Now().Add(d.timeout))
	return d.w.Write(p)
}

func all(rcpts []string, err error, relay string) []Result {
	out := make([]Result, len(rcpts))
	for i, r := range rcpts {
		out[i] = Result{Rcpt: r, Err: err, Relay: relay, Reply: replyText(err)}
	}
	return out
}

func isReply(err error) bool {
	var se *smtp.SMTPError
	return errors.As(err, &se)
}

func replyText(err error) string {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		if se.EnhancedCode != smtp.NoEnhancedCode && se.EnhancedCode != smtp.EnhancedCodeNotSet {
			return fmt.Sprintf("%d %d.%d.%d %s", se.Code, se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2], oneLine(se.Message))
		}
		return fmt.Sprintf("%d %s", se.Code, oneLine(se.Message))
	}
	if err != nil {
		return err.Error()
	}
	return ""
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)), " ")
}

// replyErr turns a server reply into our error: 4xx temporary, 5xx
// permanent; the text keeps the server's words.
func replyErr(err error, relay string) error {
	var se *smtp.SMTPError
	if !errors.As(err, &se) {
		return mailerr.SMTP(451, "4.4.2", "Lost connection with %s", relay)
	}
	enh := fmt.Sprintf("%d.%d.%d", se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2])
	if se.EnhancedCode == smtp.NoEnhancedCode || se.EnhancedCode == smtp.EnhancedCodeNotSet || se.EnhancedCode[0] == 0 {
		enh = fmt.Sprintf("%d.0.0", se.Code/100)
	}
	code := se.Code
	if code < 400 || code > 599 {
		code = 451
		enh = "4.5.0"
	}
	return mailerr.SMTP(code, enh, "%s", replyText(err))
}

// A delivery's reader and copy buffer are recycled: a 64 KiB reader and
// io.Copy's 32 KiB buffer for every message were most of the garbage a
// delivery made.
var (
	wireReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 64<<10) }}
	copyBufs    = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}
)

// wireReader yields the message with every line ended by CRLF (a bare CR
// or LF becomes CRLF) and lines longer than 998 octets folded with CRLF SP.
type wireReader struct {
	r   *bufio.Reader
	out []byte
	col int  // octets on the current output line
	cr  bool // a CR was read and its line end is not written yet
}

const maxWireLine = 998

func (w *wireReader) Read(p []byte) (int, error) {
	for len(w.out) < len(p) {
		b, err := w.r.ReadByte()
		if err != nil {
			if w.cr { // a CR at the very end
				w.cr = false
				w.out = append(w.out, '\r', '\n')
				continue
			}
			if len(w.out) == 0 {
				return 0, err
			}
			break
		}
		if w.cr {
			w.cr = false
			w.out = append(w.out, '\r', '\n')
			w.col = 0
			if b == '\n' {
				continue // CR LF: one line end
			}
		}
		switch b {
		case '\r':
			w.cr = true
		case '\n':
			w.out = append(w.out, '\r', '\n')
			w.col = 0
		default:
			if w.col >= maxWireLine {
				w.out = append(w.out, '\r', '\n', ' ')
				w.col = 1
			}
			w.out = append(w.out, b)
			w.col++
		}
	}
	n := copy(p, w.out)
	w.out = w.out[n:]
	return n, nil
}
