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

	mu    sync.Mutex
	total int
	perIP map[netip.Addr]int
}

func newGuard(l net.Listener) *guard {
	return &guard{Listener: l, perIP: map[netip.Addr]int{}}
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
			reply = "421 4.3.2 Too many connections, try again later"
		case !exempt && g.maxPerIP > 0 && g.perIP[ip] >= g.maxPerIP:
			reply = "421 4.3.2 Too many connections from your address, try again later"
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
		return gc, nil
	}
}

func (g *guard) release(ip netip.Addr) {
	g.mu.Lock()
	g.total--
	if g.perIP[ip]--; g.perIP[ip] <= 0 {
		delete(g.perIP, ip)
	}
	g.mu.Unlock()
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

	greeted bool        // the banner was written
	early   []byte      // bytes read during the greeting pause (never served)
	last    []byte      // tail of the bytes read so far, for the DATA check
	noRead  atomic.Bool // set by hangup: reads return EOF
	once    sync.Once

	// The command sniffer: go-smtp answers VRFY and EXPN itself, so the
	// lines are watched here to log them as sendmail does.
	cmdLine []byte
	inData  bool
}

// sniff follows the client's lines: commands, and DATA until its end.
func (c *conn) sniff(p []byte) {
	for _, b := range p {
		if b != '\n' {
			if len(c.cmdLine) < 512 {
				c.cmdLine = append(c.cmdLine, b)
			}
			continue
		}
		line := string(bytes.TrimRight(c.cmdLine, "\r"))
		c.cmdLine = c.cmdLine[:0]
		if c.inData {
			c.inData = line != "."
			continue
		}
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "DATA":
			c.inData = arg == ""
		case "VRFY", "EXPN":
			c.g.onCommand(c.ip, strings.ToLower(verb), arg)
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
	return c.Conn.Write(p)
}

// Read keeps the tail of what was read, so the session can tell whether
// anything followed the end of DATA in the same read.
func (c *conn) Read(p []byte) (int, error) {
	if c.noRead.Load() {
		return 0, io.EOF
	}
	n, err := c.Conn.Read(p)
	if n > 0 && c.g.onCommand != nil {
		c.sniff(p[:n])
	}
	if n > 0 {
		if n >= tailLen {
			c.last = append(c.last[:0], p[n-tailLen:n]...)
		} else {
			c.last = append(c.last, p[:n]...)
			if len(c.last) > tailLen {
				c.last = c.last[len(c.last)-tailLen:]
			}
		}
	}
	return n, err
}

const tailLen = 64

// pipelinedPastData reports whether the last bytes read from the client
// go on after the end-of-data marker: commands sent before our reply.
func (c *conn) pipelinedPastData() bool {
	return !bytes.HasSuffix(c.last, []byte("\r\n.\r\n")) && !bytes.Equal(c.last, []byte(".\r\n"))
}

// hangup makes the next read see end of input, so go-smtp closes the
// connection after writing the reply in progress.
func (c *conn) hangup() { c.noRead.Store(true) }

func (c *conn) Close() error {
	var err error
	c.once.Do(func() {
		err = c.Conn.Close()
		c.g.release(c.ip)
	})
	return err
}
