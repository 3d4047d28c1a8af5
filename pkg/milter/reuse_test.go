package milter

import (
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gosendmail/gosendmail/pkg/maillog"
	"github.com/gosendmail/gosendmail/pkg/milter/miltertest"
)

// keeper is a raw version-6 filter that answers only the end of the
// message, as libmilter would for a filter that asked not to answer the
// other steps, and records the commands each connection brought.
type keeper struct {
	eom byte // its answer at the end of the message
	// onQuitNC, if set, is what it does on SMFIC_QUIT_NC: false closes the
	// connection (a filter that does not know the command).
	onQuitNC func() bool
	// closeAfterEOM closes the connection after the answer (and says so on
	// closed).
	closeAfterEOM bool
	closed        chan struct{}

	mu    sync.Mutex
	conns []string
}

// start serves k until the test ends, and returns its socket, a pool
// closed at the end of the test and a log for the sessions.
func (k *keeper) start(t *testing.T) (string, *Pool, *miltertest.Log) {
	k.closed = make(chan struct{}, 16)
	pool := NewPool()
	t.Cleanup(pool.Close)
	return miltertest.Raw(t, k.serve), pool, &miltertest.Log{}
}

func (k *keeper) serve(c net.Conn) {
	k.mu.Lock()
	n := len(k.conns)
	k.conns = append(k.conns, "")
	k.mu.Unlock()
	for {
		code, _, err := miltertest.ReadPacket(c)
		if err != nil {
			return
		}
		k.mu.Lock()
		k.conns[n] += string(code)
		k.mu.Unlock()
		switch code {
		case 'O':
			miltertest.WritePacket(c, 'O', miltertest.OptNeg(0, nrAll))
		case 'E':
			miltertest.WritePacket(c, k.eom, nil)
			if k.closeAfterEOM {
				c.Close()
				k.closed <- struct{}{}
				return
			}
		case 'K':
			if k.onQuitNC != nil && !k.onQuitNC() {
				return
			}
		case 'Q':
			return
		}
	}
}

// seen is the commands of each connection so far, without the macros.
func (k *keeper) seen() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []string
	for _, s := range k.conns {
		out = append(out, strings.ReplaceAll(s, "D", ""))
	}
	return out
}

// poolSession runs one SMTP session with one message through a chain of the
// filter at sock that shares pool, and returns the verdict at the end of
// the message.
func poolSession(t *testing.T, pool *Pool, sock string, log *miltertest.Log) Verdict {
	t.Helper()
	return poolSessionWith(t, pool, filter("k", sock, "tempfail"), log)
}

func poolSessionWith(t *testing.T, pool *Pool, f *Filter, log *miltertest.Log) Verdict {
	t.Helper()
	c := &Chain{Filters: []*Filter{f}, Log: maillog.New(log, "sm-mta"), TempDir: t.TempDir(), Pool: pool}
	h := &harness{t: t, log: log, s: c.NewSession()}
	defer h.s.Close()
	h.upToData()
	v, _, _ := h.eom(testMsg)
	return v
}

// passSessions runs n sessions that the filter lets through, calling after
// (if set) after each.
func passSessions(t *testing.T, pool *Pool, sock string, log *miltertest.Log, n int, after func()) {
	t.Helper()
	for i := 0; i < n; i++ {
		if v := poolSession(t, pool, sock, log); v.Action != Continue {
			t.Fatalf("session %d: %v\n%s", i, v, log)
		}
		if after != nil {
			after()
		}
	}
}

// One message per session: the SMFIC_QUIT_NC of the last session goes out
// in front of the next one's CONNECT, on the same connection, and the
// filter is negotiated with once.
func TestKeptConnections(t *testing.T) {
	k := &keeper{eom: 'c'}
	sock, pool, log := k.start(t)
	passSessions(t, pool, sock, log, 3, nil)
	pool.Close()
	msg := "CHMRTLLLLLLNBE"
	want := []string{"O" + msg + "K" + msg + "K" + msg + "Q"}
	waitSeen(t, k, want)
}

// A connection kept for longer than the read timeout is still used: the
// last read's deadline, long past, does not count.
func TestKeptPastReadDeadline(t *testing.T) {
	k := &keeper{eom: 'c'}
	sock, pool, log := k.start(t)
	short := fast
	short.Read = 50 * time.Millisecond
	for i := 0; i < 2; i++ {
		if v := poolSessionWith(t, pool, NewFilter("k", sock, "tempfail", short), log); v.Action != Continue {
			t.Fatalf("session %d: %v\n%s", i, v, log)
		}
		time.Sleep(100 * time.Millisecond)
	}
	msg := "CHMRTLLLLLLNBE"
	waitSeen(t, k, []string{"O" + msg + "K" + msg})
}

// A filter that accepts at the end of the message is back in its HELO
// state, where libmilter ignores SMFIC_QUIT_NC: its connections are not
// kept.
func TestAcceptedNotKept(t *testing.T) {
	k := &keeper{eom: 'a'}
	sock, pool, log := k.start(t)
	passSessions(t, pool, sock, log, 2, nil)
	msg := "OCHMRTLLLLLLNBEQ"
	waitSeen(t, k, []string{msg, msg})
}

// A kept connection the filter has closed meanwhile is not used: the next
// session connects anew, and nothing fails.
func TestKeptConnectionClosedByFilter(t *testing.T) {
	k := &keeper{eom: 'c', closeAfterEOM: true}
	sock, pool, log := k.start(t)
	passSessions(t, pool, sock, log, 2, func() { <-k.closed })
	msg := "OCHMRTLLLLLLNBE"
	waitSeen(t, k, []string{msg, msg})
	if strings.Contains(log.String(), "to error state") {
		t.Errorf("a filter failed:\n%s", log)
	}
}

// A filter that does not know SMFIC_QUIT_NC (it hangs up on it) fails the
// session that found out, with its on_failure, and its connections are
// not kept after that.
func TestQuitNCNotUnderstood(t *testing.T) {
	k := &keeper{eom: 'c', onQuitNC: func() bool { return false }}
	sock, pool, log := k.start(t)
	var got []string
	for i := 0; i < 4; i++ {
		got = append(got, poolSession(t, pool, sock, log).String())
	}
	want := []string{"continue", "tempfail 451 4.3.2 Please try again later", "continue", "continue"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("verdicts %q, want %q\n%s", got, want, log)
	}
	if !strings.Contains(log.String(), "Milter (k): a kept connection failed, its connections are no longer kept") {
		t.Errorf("log:\n%s", log)
	}
	msg := "OCHMRTLLLLLLNBE"
	waitSeen(t, k, []string{msg + "K", msg + "Q", msg + "Q"})
}

// When one kept connection to a filter fails so, the others kept for it
// are let go too: the next session connects anew instead of failing the
// same way.
func TestQuitNCNotUnderstoodOthersDropped(t *testing.T) {
	k := &keeper{eom: 'c', onQuitNC: func() bool { return false }}
	sock, pool, log := k.start(t)
	// Two sessions at once leave two kept connections.
	chain := &Chain{Filters: []*Filter{filter("k", sock, "tempfail")}, Log: maillog.New(log, "sm-mta"), TempDir: t.TempDir(), Pool: pool}
	var open []*harness
	for i := 0; i < 2; i++ {
		h := &harness{t: t, log: log, s: chain.NewSession()}
		h.upToData()
		if v, _, _ := h.eom(testMsg); v.Action != Continue {
			t.Fatalf("%v\n%s", v, log)
		}
		open = append(open, h)
	}
	for _, h := range open {
		h.s.Close()
	}
	var got []string
	for i := 0; i < 2; i++ {
		got = append(got, poolSession(t, pool, sock, log).String())
	}
	if want := []string{"tempfail 451 4.3.2 Please try again later", "continue"}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("verdicts %q, want %q\n%s", got, want, log)
	}
}

// A kept connection idle for idleTimeout is closed with a goodbye, by the
// sweep or by the next session that finds it.
func TestIdleConnectionsClosed(t *testing.T) {
	k := &keeper{eom: 'c'}
	sock, pool, log := k.start(t)
	// Age them rather than wait: the sweep and the sessions read the same
	// clock.
	age := func() {
		pool.mu.Lock()
		for _, list := range pool.idle {
			for _, c := range list {
				c.idleSince = c.idleSince.Add(-idleTimeout)
			}
		}
		pool.mu.Unlock()
	}
	passSessions(t, pool, sock, log, 2, age)
	pool.sweepIdle()
	msg := "OCHMRTLLLLLLNBE"
	waitSeen(t, k, []string{msg + "Q", msg + "Q"})
}

func waitSeen(t *testing.T, k *keeper, want []string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		got := k.seen()
		if strings.Join(got, "|") == strings.Join(want, "|") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the filter's connections saw\n%q, want\n%q", got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
