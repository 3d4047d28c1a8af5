package smtp

import (
	"context"
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
	idle map[string][]pooled // by poolKey
}

// poolKey names the sessions of one host name, address and port: two
// mailertable entries may name one host with different ports.
func poolKey(host string, ip netip.Addr, port int) string {
	return fmt.Sprintf("%s [%s]:%d", host, ip, port)
}

// release keeps a session that ended well, or closes it.
func (c *Client) release(key string, cl *smtp.Client, conn net.Conn, ok bool) {
	if ok {
		c.pool.mu.Lock()
		if c.pool.idle == nil {
			c.pool.idle = map[string][]pooled{}
		}
		if len(c.pool.idle[key]) < poolPerHost {
			c.pool.idle[key] = append(c.pool.idle[key], pooled{cl, conn, time.Now()})
			c.pool.mu.Unlock()
			return
		}
		c.pool.mu.Unlock()
		cl.Quit()
	}
	cl.Close()
	conn.Close()
}

// take returns an idle session for key, if one is fresh.
func (c *Client) take(key string) (pooled, bool) {
	c.pool.mu.Lock()
	defer c.pool.mu.Unlock()
	list := c.pool.idle[key]
	for len(list) > 0 {
		p := list[len(list)-1]
		list = list[:len(list)-1]
		c.pool.idle[key] = list
		if time.Since(p.at) < poolIdle {
			return p, true
		}
		go func() { p.cl.Quit(); p.cl.Close() }()
	}
	return pooled{}, false
}

// Sweep closes sessions idle for too long. Deliver sweeps too; the daemon
// calls it on a timer so that a quiet server does not keep them open.
func (c *Client) Sweep() { c.sweep() }

// sweep closes sessions idle for too long.
func (c *Client) sweep() {
	c.pool.mu.Lock()
	defer c.pool.mu.Unlock()
	for key, list := range c.pool.idle {
		kept := list[:0]
		for _, p := range list {
			if time.Since(p.at) < poolIdle {
				kept = append(kept, p)
			} else {
				go func() { p.cl.Quit(); p.cl.Close() }()
			}
		}
		c.pool.idle[key] = kept
	}
}

// reuse runs the transaction on an idle session to one of the host's
// addresses; nil if there is none or every one turned out dead.
func (c *Client) reuse(ctx context.Context, host string, ips []netip.Addr, port int, req *Request) []Result {
	for _, ip := range ips {
		relay := fmt.Sprintf("%s [%s]", host, ip)
		key := poolKey(host, ip, port)
		for {
			p, ok := c.take(key)
			if !ok {
				break
			}
			// No NOOP first: a session the server has closed fails at
			// MAIL, before any recipient is answered (res nil), and the
			// message goes on to the next session or a new one, as
			// Postfix's connection cache does. That saves a round trip
			// per message.
			// As in session: a stop closes the connection under it.
			stop := context.AfterFunc(ctx, func() { p.conn.Close() })
			res, err := c.transact(p.cl, p.conn, relay, req)
			kept := stop()
			c.release(key, p.cl, p.conn, err == nil && kept)
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
	for key, list := range c.pool.idle {
		for _, p := range list {
			go func() { p.cl.Quit(); p.cl.Close() }()
		}
		delete(c.pool.idle, key)
	}
}
