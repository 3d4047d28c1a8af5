package smtpd

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// guard wraps a listener with what go-smtp leaves to us: limits on
// connections in total and per client address, the greeting pause that
// catches clients talking before the banner, and the bookkeeping that
// lets a session see whether a client pipelined past the end of DATA.
type guard struct {
	net.Listener
	maxTotal   int
	maxPerIP   int
	pause      time.Duration
	exempt     func(netip.Addr) bool // relay_from clients: no per-IP limit, no pause
	onRefuse   func(ip netip.Addr, reply string)
	onPregreet func(ip netip.Addr, after time.Duration)
	onCommand  func(ip netip.Addr, verb, arg string) // VRFY and EXPN, for the log
	hostname   func() string                         // for RCPT TO:<postmaster>

	mu       sync.Mutex
	total    int
	perIP    map[netip.Addr]int
	conns    map[*conn]struct{}
	draining atomic.Bool
}

func newGuard(l net.Listener) *guard {
	return &guard{Listener: l, perIP: map[netip.Addr]int{}, conns: map[*conn]struct{}{}}
}

// Accept returns the next connection within the limits. Connections over
// a limit are answered 421 and closed here, without reaching go-smtp.
func (g *guard) Accept() (net.Conn, error) {
	for {
		c, err := g.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := addrOf(c.RemoteAddr())
		exempt := g.exempt != nil && g.exempt(ip)
		g.mu.Lock()
		reply := ""
		switch {
		case g.maxTotal > 0 && g.total >= g.maxTotal:
			reply = "421 4.3.2 Too many open connections."
		case !exempt && g.maxPerIP > 0 && g.perIP[ip] >= g.maxPerIP:
			reply = "421 4.3.2 Too many open connections."
		default:
			g.total++
			g.perIP[ip]++
		}
		g.mu.Unlock()
		if reply != "" {
			c.SetWriteDeadline(time.Now().Add(5 * time.Second))
			io.WriteString(c, reply+"\r\n")
			c.Close()
			if g.onRefuse != nil {
				g.onRefuse(ip, reply)
			}
			continue
		}
		gc := &conn{Conn: c, g: g, ip: ip, exempt: exempt, start: time.Now()}
		if !exempt {
			gc.pause = g.pause
		}
		g.mu.Lock()
		g.conns[gc] = struct{}{}
		g.mu.Unlock()
		return gc, nil
	}
}

func (g *guard) release(c *conn) {
	ip := c.ip
	g.mu.Lock()
	delete(g.conns, c)
	g.total--
	if g.perIP[ip]--; g.perIP[ip] <= 0 {
		delete(g.perIP, ip)
	}
	g.mu.Unlock()
}

// drain ends every session that is not receiving a message: its next
// read fails at once and go-smtp closes it. Sessions in DATA finish their
// message and are closed after the reply (see conn.endData).
func (g *guard) drain() {
	g.draining.Store(true)
	g.mu.Lock()
	defer g.mu.Unlock()
	for c := range g.conns {
		if !c.receiving.Load() {
			c.hangup()
			c.Conn.SetReadDeadline(time.Now())
		}
	}
}

// Open reports the connections being served.
func (g *guard) Open() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.total
}

func addrOf(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		if ip, ok := netip.AddrFromSlice(ta.IP); ok {
			return ip.Unmap()
		}
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// errPregreet ends a connection whose client spoke before the banner.
var errPregreet = errors.New("pre-greeting traffic")

// conn is one client connection.
type conn struct {
	net.Conn
	g      *guard
	ip     netip.Addr
	exempt bool
	start  time.Time
	pause  time.Duration

	greeted   bool        // the banner was written
	last      []byte      // tail of the bytes read so far, for the DATA check
	noRead    atomic.Bool // set by hangup: reads return EOF
	receiving atomic.Bool // a message is being read (DATA)
	once      sync.Once

	// The command sniffer: go-smtp answers VRFY and EXPN itself, so the
	// lines are watched here to log them as sendmail does.
	cmdLine []byte
	cmdLen  int
	inData  bool
	// In DATA: the previous raw byte, and whether a bare CR, a bare LF or
	// a NUL was seen in this message.
	prev byte
	bad  bool

	// RCPT TO:<postmaster> (see rewriteCommands): bytes read and already
	// watched but not yet returned, and a command line held back until it
	// is whole.
	extra   []byte
	partial []byte
}

// rawBad reports a bare CR, bare LF or NUL in the data of the message
// just read, as the client sent it.
func (c *conn) rawBad() bool { return c.bad }

// sniff follows the client's lines: commands, and DATA until its end.
func (c *conn) sniff(p []byte) {
	for _, b := range p {
		if c.inData {
			switch {
			case b == 0:
				c.bad = true
			case b == '\n' && c.prev != '\r':
				c.bad = true
			case c.prev == '\r' && b != '\n':
				c.bad = true
			}
			c.prev = b
		}
		if b != '\n' {
			if len(c.cmdLine) < 512 {
				c.cmdLine = append(c.cmdLine, b)
			}
			if !c.inData {
				c.cmdLen++
				if c.cmdLen > maxCommandLine && !c.noRead.Load() {
					// RFC 5321 4.5.3.1.4 allows 512 octets; go-smtp's line
					// limit must also fit message lines, so commands are
					// bounded here.
					c.Conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
					io.WriteString(c.Conn, "500 5.5.2 Command line too long\r\n")
					c.hangup()
				}
			}
			continue
		}
		c.cmdLen = 0
		line := string(bytes.TrimRight(c.cmdLine, "\r"))
		c.cmdLine = c.cmdLine[:0]
		if c.inData {
			c.inData = line != "."
			continue
		}
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "DATA":
			c.inData = strings.TrimSpace(arg) == ""
			c.prev, c.bad = '\n', false
		case "VRFY", "EXPN":
			if c.g.onCommand != nil {
				c.g.onCommand(c.ip, strings.ToLower(verb), arg)
			}
		}
	}
}

// Write delays the banner by the greeting pause, watching for input
// meanwhile: a client that talks first is refused, as sendmail's
// greet_pause does.
func (c *conn) Write(p []byte) (int, error) {
	if !c.greeted {
		c.greeted = true
		if c.pause > 0 {
			c.Conn.SetReadDeadline(time.Now().Add(c.pause))
			buf := make([]byte, 512)
			n, err := c.Conn.Read(buf)
			c.Conn.SetReadDeadline(time.Time{})
			if n > 0 || err == nil {
				after := time.Since(c.start)
				c.Conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
				io.WriteString(c.Conn, "554 5.5.0 Protocol error: client talked before the greeting\r\n")
				if c.g.onPregreet != nil {
					c.g.onPregreet(c.ip, after)
				}
				c.Close()
				return 0, errPregreet
			}
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				c.Close()
				return 0, err
			}
		}
	}
	if string(p) == "250-CHUNKING\r\n" {
		// go-smtp always offers CHUNKING; BDAT is refused (see
		// Session.Data), so the offer is taken out of the EHLO reply.
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// Read keeps the tail of what was read, so the session can tell whether
// anything followed the end of DATA in the same read.
func (c *conn) Read(p []byte) (int, error) {
	if c.noRead.Load() {
		return 0, io.EOF
	}
	if len(c.extra) > 0 {
		n := copy(p, c.extra)
		c.extra = c.extra[n:]
		return n, nil
	}
	n, err := c.Conn.Read(p)
	if n > 0 && (!c.inData || len(c.partial) > 0) && c.g.hostname != nil {
		if buf, ok := c.rewriteCommands(p[:n]); ok {
			if len(buf) == 0 && err == nil {
				return c.Read(p) // a held line: wait for its end
			}
			n = copy(p, buf)
			c.sniff(buf)
			c.keepTail(buf)
			c.extra = append(c.extra[:0], buf[n:]...)
			return n, err
		}
	}
	if n > 0 {
		c.sniff(p[:n])
		c.keepTail(p[:n])
	}
	return n, err
}

// keepTail keeps the last bytes read, for pipelinedPastData.
func (c *conn) keepTail(b []byte) {
	if len(b) >= tailLen {
		c.last = append(c.last[:0], b[len(b)-tailLen:]...)
		return
	}
	c.last = append(c.last, b...)
	if len(c.last) > tailLen {
		c.last = c.last[len(c.last)-tailLen:]
	}
}

// rewriteCommands fixes two command lines before go-smtp reads them: it
// gives "RCPT TO:<postmaster>" the host's name as its domain (RFC 5321
// 4.5.1 makes every server accept that address without a domain, and
// go-smtp's parser wants one), and drops the argument of a HELO or EHLO
// with a control byte in it (badGreeting). Only command lines before a
// DATA in the chunk are looked at; a trailing piece of a line that may
// still become such a RCPT is held back (in partial) until its end. ok is
// false when the chunk is to be used as it was read.
func (c *conn) rewriteCommands(chunk []byte) (buf []byte, ok bool) {
	if len(c.partial) > 0 {
		chunk = append(c.partial, chunk...)
		c.partial = nil
		ok = true
	}
	var out []byte
	rest := chunk
	for len(rest) > 0 {
		nl := bytes.IndexByte(rest, '\n')
		if nl < 0 {
			if mayBePostmaster(rest) {
				c.partial = append([]byte(nil), rest...)
				if out == nil {
					out = append([]byte(nil), chunk[:len(chunk)-len(rest)]...)
				}
				return out, true
			}
			break
		}
		line := rest[:nl+1]
		if badGreeting(line) {
			// HELO or EHLO with a control byte in the name: go-smtp
			// would take it; without an argument it answers 501.
			if out == nil {
				out = append([]byte(nil), chunk[:len(chunk)-len(rest)]...)
			}
			out = append(out, line[:4]...)
			out = append(out, '\r', '\n')
			rest = rest[nl+1:]
			continue
		}
		if at := postmasterAt(line); at >= 0 {
			if out == nil {
				out = append([]byte(nil), chunk[:len(chunk)-len(rest)]...)
			}
			out = append(out, line[:at]...)
			out = append(out, '@')
			out = append(out, c.g.hostname()...)
			out = append(out, line[at:]...)
			rest = rest[nl+1:]
			continue
		}
		if out != nil {
			out = append(out, line...)
		}
		rest = rest[nl+1:]
		if verb := bytes.TrimRight(line, "\r\n"); bytes.EqualFold(verb, []byte("DATA")) {
			break // what follows may be message text
		}
	}
	if out == nil {
		return chunk, ok
	}
	return append(out, rest...), true
}

// badGreeting reports a HELO or EHLO line whose argument holds a control
// byte (NUL, bare CR, ESC...): such a name would be echoed back and
// written into Received: fields.
func badGreeting(line []byte) bool {
	if len(line) < 5 || !(bytes.EqualFold(line[:4], []byte("HELO")) || bytes.EqualFold(line[:4], []byte("EHLO"))) || line[4] != ' ' {
		return false
	}
	arg := bytes.TrimRight(line[5:], "\r\n")
	for _, b := range arg {
		if b < 0x20 && b != '\t' || b == 0x7f {
			return true
		}
	}
	return false
}

// rcptPostmaster is the command postmaster looks for, in upper case.
const rcptPostmaster = "RCPT TO:<POSTMASTER>"

// postmasterAt returns where "@domain" goes in a "RCPT TO:<postmaster>"
// line (any case, blanks allowed after the colon, parameters after), or -1.
func postmasterAt(line []byte) int {
	const verb = "RCPT TO:"
	if len(line) < len(verb) || !bytes.EqualFold(line[:len(verb)], []byte(verb)) {
		return -1
	}
	i := len(verb)
	for i < len(line) && line[i] == ' ' {
		i++
	}
	const addr = "<postmaster>"
	if len(line)-i < len(addr) || !bytes.EqualFold(line[i:i+len(addr)], []byte(addr)) {
		return -1
	}
	end := i + len(addr)
	if end < len(line) && line[end] != ' ' && line[end] != '\r' && line[end] != '\n' {
		return -1
	}
	return end - 1 // before '>'
}

// mayBePostmaster reports whether an unfinished line could still become a
// "RCPT TO:<postmaster>" command (it is held back until whole).
func mayBePostmaster(part []byte) bool {
	if len(part) > len(rcptPostmaster)+16 {
		return false
	}
	p := bytes.ToUpper(part)
	// Blanks after the colon: compare without them.
	if i := bytes.IndexByte(p, ':'); i >= 0 {
		p = append(p[:i+1:i+1], bytes.TrimLeft(p[i+1:], " ")...)
	}
	n := min(len(p), len(rcptPostmaster))
	return bytes.Equal(p[:n], []byte(rcptPostmaster[:n]))
}

const tailLen = 64

// maxCommandLine bounds a command line: RFC 5321's 512 octets with room
// for extension parameters.
const maxCommandLine = 4096

// pipelinedPastData reports whether the last bytes read from the client
// go on after the end-of-data marker: commands sent before our reply.
func (c *conn) pipelinedPastData() bool {
	return !bytes.HasSuffix(c.last, []byte("\r\n.\r\n")) && !bytes.Equal(c.last, []byte(".\r\n"))
}

// startData and endData bracket the reading of a message, so that a
// shutdown lets it finish and then closes the session.
func (c *conn) startData() { c.receiving.Store(true) }

func (c *conn) endData() {
	c.receiving.Store(false)
	if c.g.draining.Load() {
		c.hangup()
	}
}

// hangup makes the next read see end of input, so go-smtp closes the
// connection after writing the reply in progress.
func (c *conn) hangup() { c.noRead.Store(true) }

func (c *conn) Close() error {
	var err error
	c.once.Do(func() {
		// The slot is free before the client can see the close: a client
		// that reconnects at once is not refused over its own old
		// connection.
		c.g.release(c)
		err = c.Conn.Close()
	})
	return err
}
