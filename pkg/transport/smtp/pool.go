package smtp

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
)

// Sessions are kept open for a while after a transaction, so that the
// next message to the same host (the common case for a burst of mail to
// one domain) skips the TCP and TLS handshakes and the greeting. At most
// poolPerHost idle sessions per host address are kept, for poolIdle.
const (
	poolPerHost = 4
	poolIdle    = 10 * time.Second
)

type pooled struct {
	cl   *smtp.Client
	conn net.Conn
	at   time.Time
}

type pool struct {
	mu   sync.Mutex
	idle map[string][]pooled // by relay: "mx.example. [192.0.2.7]"
}

// release keeps a session that ended well, or closes it.
func (c *Client) release(relay string, cl *smtp.Client, conn net.Conn, ok bool) {
	if ok {
		c.pool.mu.Lock()
		if c.pool.idle == nil {
			c.pool.idle = map[string][]pooled{}
		}
		if len(c.pool.idle[relay]) < poolPerHost {
			c.pool.idle[relay] = append(c.pool.idle[relay], pooled{cl, conn, time.Now()})
			c.pool.mu.Unlock()
			return
		}
		c.pool.mu.Unlock()
		cl.Quit()
	}
	cl.Close()
	conn.Close()
}

// take returns an idle session to relay, if one is fresh.
func (c *Client) take(relay string) (pooled, bool) {
	c.pool.mu.Lock()
	defer c.pool.mu.Unlock()
	list := c.pool.idle[relay]
	for len(list) > 0 {
		p := list[len(list)-1]
		list = list[:len(list)-1]
		c.pool.idle[relay] = list
		if time.Since(p.at) < poolIdle {
			return p, true
		}
		go func() { p.cl.Quit(); p.cl.Close() }()
	}
	return pooled{}, false
}

// sweep closes sessions idle for too long.
func (c *Client) sweep() {
	c.pool.mu.Lock()
	defer c.pool.mu.Unlock()
	for relay, list := range c.pool.idle {
		kept := list[:0]
		for _, p := range list {
			if time.Since(p.at) < poolIdle {
				kept = append(kept, p)
			} else {
				go func() { p.cl.Quit(); p.cl.Close() }()
			}
		}
		c.pool.idle[relay] = kept
	}
}

// reuse runs the transaction on an idle session to one of the host's
// addresses; nil if there is none or every one turned out dead.
func (c *Client) reuse(host string, ips []netip.Addr, req *Request) []Result {
	for _, ip := range ips {
		relay := fmt.Sprintf("%s [%s]", host, ip)
		for {
			p, ok := c.take(relay)
			if !ok {
				break
			}
			// No NOOP first: a session the server has closed fails at
			// MAIL, before any recipient is answered (res nil), and the
			// message goes on to the next session or a new one, as
			// Postfix's connection cache does. That saves a round trip
			// per message.
			res, err := c.transact(p.cl, p.conn, relay, req)
			c.release(relay, p.cl, p.conn, err == nil)
			if res != nil {
				return res
			}
		}
	}
	return nil
}

// CloseIdle ends every kept session (QUIT in the background), for a
// Client that is being replaced.
func (c *Client) CloseIdle() {
	c.pool.mu.Lock()
	defer c.pool.mu.Unlock()
	for relay, list := range c.pool.idle {
		for _, p := range list {
			go func() { p.cl.Quit(); p.cl.Close() }()
		}
		delete(c.pool.idle, relay)
	}
}
