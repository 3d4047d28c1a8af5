package milter

import (
	"sync"
	"syscall"
	"time"
)

// Filter connections are kept between sessions where the protocol allows
// it, so that a busy server does not connect, negotiate and say goodbye to
// each filter for every SMTP session, and the filter does not accept, set
// up and tear down a session for each (a thread, or a place in libmilter's
// worker pool). With the bench's no-op libmilter filter this halved the
// filter's own CPU per message.
//
// A connection is kept when the filter speaks protocol version 6 and its
// last answer was "continue" to the end of a message, with nothing sent
// since. There, and only there, libmilter takes SMFIC_QUIT_NC ("quit, a new
// connection follows"): it calls the filter's close callback and waits for
// the next CONNECT, with the options already negotiated. After "accept"
// libmilter goes back to its HELO state, from which it ignores
// SMFIC_QUIT_NC and the CONNECT after it, so such connections are closed
// as before. The SMFIC_QUIT_NC is not written at once: it goes out in
// front of the next session's first packets.
//
// A kept connection is taken again only if the filter has not closed it
// (a peek at the socket, without waiting) and it has been idle less than
// idleTimeout; a sweep closes the others. If a kept connection fails
// before the filter has answered on it, the filter's on_failure applies to
// that session as for any failure, and its connections are not kept again
// while the pool lasts (the daemon's life): neither sendmail nor Postfix
// sends SMFIC_QUIT_NC, so a filter may never have been tried with it and
// may not understand it, or may fall over on it.
const (
	maxIdle     = 32
	idleTimeout = 10 * time.Second
)

// Pool keeps idle filter connections, by socket, for the chains that
// share it (one per daemon). A nil *Pool keeps nothing.
type Pool struct {
	mu       sync.Mutex
	idle     map[string][]*conn
	distrust map[string]bool // sockets whose kept connections failed
	sweep    *time.Timer
	closed   bool
}

// NewPool returns an empty pool.
func NewPool() *Pool {
	return &Pool{idle: map[string][]*conn{}, distrust: map[string]bool{}}
}

func (f *Filter) key() string { return f.network + " " + f.address }

// get returns a kept connection to f's socket that the filter still holds
// open, with SMFIC_QUIT_NC waiting to go out first; nil if there is none.
func (p *Pool) get(f *Filter) *conn {
	if p == nil || f.sockErr != nil {
		return nil
	}
	key := f.key()
	for {
		p.mu.Lock()
		list := p.idle[key]
		if len(list) == 0 {
			p.mu.Unlock()
			return nil
		}
		c := list[len(list)-1]
		p.idle[key] = list[:len(list)-1]
		p.mu.Unlock()
		if !c.open() {
			c.shut()
			continue
		}
		if time.Since(c.idleSince) >= idleTimeout {
			c.close()
			continue
		}
		c.f = f
		c.state = stReady
		c.queue(cmdQuitNC, nil)
		c.reused = true
		return c
	}
}

// keep takes c for a later session and reports whether it did; if not,
// c is the caller's to close.
func (p *Pool) keep(c *conn) bool {
	// reusable is false once anything is queued or written, so nothing
	// is pending here.
	if p == nil || !c.reusable || c.nc == nil || c.version < 6 {
		return false
	}
	key := c.f.key()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || len(p.idle[key]) >= maxIdle || p.distrust[key] {
		return false
	}
	c.idleSince = time.Now()
	p.idle[key] = append(p.idle[key], c)
	if p.sweep == nil {
		p.sweep = time.AfterFunc(idleTimeout, p.sweepIdle)
	}
	return true
}

// failed notes that a kept connection to f failed before the filter
// answered on it, and closes the others kept for it: none is used again.
// It reports whether this is news (for the log).
func (p *Pool) failed(f *Filter) bool {
	if p == nil {
		return false
	}
	key := f.key()
	p.mu.Lock()
	news := !p.distrust[key]
	p.distrust[key] = true
	idle := p.idle[key]
	delete(p.idle, key)
	p.mu.Unlock()
	for _, c := range idle {
		c.shut()
	}
	return news
}

// sweepIdle closes the connections idle for idleTimeout or more, and
// comes back while any are left.
func (p *Pool) sweepIdle() {
	var old []*conn
	p.mu.Lock()
	left := 0
	for key, list := range p.idle {
		kept := list[:0]
		for _, c := range list {
			if time.Since(c.idleSince) >= idleTimeout {
				old = append(old, c)
			} else {
				kept = append(kept, c)
			}
		}
		clear(list[len(kept):])
		p.idle[key] = kept
		left += len(kept)
	}
	if left > 0 && !p.closed {
		p.sweep.Reset(idleTimeout)
	} else {
		p.sweep = nil
	}
	p.mu.Unlock()
	for _, c := range old {
		c.close()
	}
}

// Close closes the idle connections; the pool keeps nothing after.
func (p *Pool) Close() {
	if p == nil {
		return
	}
	var all []*conn
	p.mu.Lock()
	p.closed = true
	for key, list := range p.idle {
		all = append(all, list...)
		delete(p.idle, key)
	}
	if p.sweep != nil {
		p.sweep.Stop()
		p.sweep = nil
	}
	p.mu.Unlock()
	for _, c := range all {
		c.close()
	}
}

// open reports whether the filter still holds the connection open and has
// sent nothing unasked: a peek that does not wait.
func (c *conn) open() bool {
	if c.r.Buffered() > 0 {
		return false
	}
	sc, ok := c.nc.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	// The last read's deadline may have passed while the connection was
	// idle; the peek must not fail on it.
	c.nc.SetReadDeadline(time.Time{})
	idle := false
	err = rc.Read(func(fd uintptr) bool {
		var b [1]byte
		_, _, rerr := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		idle = rerr == syscall.EAGAIN
		return true
	})
	return err == nil && idle
}
