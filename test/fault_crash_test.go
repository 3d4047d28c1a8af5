package test

import (
	"bufio"
	"fmt"
	"io"
	"log"
	"math/rand"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/gosendmail/gosendmail/pkg/dns/dnstest"
)

// Settings of TestFaultCrashUnderLoad: the 10,000 messages over 20
// sessions take about 30 s under `make test` (-race, two cores). Longer
// runs, e.g.:
//
//	GOSENDMAIL_FAULT_MESSAGES=100000 GOSENDMAIL_FAULT_KILLS=20 go test -race -count=1 -run TestFaultCrashUnderLoad -v ./test/
const (
	faultMessagesDefault = 10000
	faultSessionsDefault = 20
)

// envInt is an integer setting from the environment, else def.
func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		t.Fatalf("%s=%q: want a number", name, s)
	}
	return n
}

// seqSink is a fake remote MX that counts the messages it accepted by
// their X-Seq field, each receipt labelled with the generation of the
// daemon that delivered it (the number of kills before it). A session is
// labelled when it opens; the test raises the generation only once every
// session of the killed daemon has closed, so the label is exact.
type seqSink struct {
	mu    sync.Mutex
	gen   int
	open  int           // sessions not yet closed
	got   map[int][]int // X-Seq -> generation of each receipt
	total int
	bad   []string // messages without a readable X-Seq
}

type seqSession struct {
	s   *seqSink
	gen int
	n   int // recipients of the current transaction
}

func (s *seqSink) NewSession(*smtp.Conn) (smtp.Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.open++
	return &seqSession{s: s, gen: s.gen}, nil
}

func (ss *seqSession) Mail(string, *smtp.MailOptions) error { ss.n = 0; return nil }
func (ss *seqSession) Rcpt(string, *smtp.RcptOptions) error { ss.n++; return nil }
func (ss *seqSession) Reset()                               { ss.n = 0 }

func (ss *seqSession) Logout() error {
	ss.s.mu.Lock()
	ss.s.open--
	ss.s.mu.Unlock()
	return nil
}

func (ss *seqSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err // the daemon died in the middle: not received
	}
	seq := -1
	if i := strings.Index(string(b), "\nX-Seq: "); i >= 0 {
		f := strings.Fields(string(b[i+8:]))
		if len(f) > 0 {
			seq, _ = strconv.Atoi(f[0])
		}
	}
	s := ss.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if seq < 0 || ss.n != 1 {
		s.bad = append(s.bad, string(trunc(b)))
		return nil
	}
	s.got[seq] = append(s.got[seq], ss.gen)
	s.total++
	return nil
}

func (s *seqSink) counts() (total, open int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total, s.open
}

// loadState is what the clients were told, shared by them and the test.
type loadState struct {
	addr     atomic.Pointer[string] // the daemon's MTA listener, "" while it is down
	accepted []atomic.Bool          // by X-Seq: a 250 after the final dot
	nAcc     atomic.Int64
	stop     atomic.Bool // the test is over: give up

	mu       sync.Mutex
	inflight map[int]int // X-Seq -> final dots answered by nothing (a kill)
	inKill   map[int]int // kill (0-based) -> such messages
	kills    int         // kills so far, counted just before each
	errs     []string    // refusals no kill explains
	other    int         // 4xx replies (a retry follows)
}

func (ls *loadState) fail(format string, args ...any) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if len(ls.errs) < 20 {
		ls.errs = append(ls.errs, fmt.Sprintf(format, args...))
	}
}

// loadConn is one client's SMTP session, raw as in the helpers, but
// never failing the test: a dead daemon shows as code 0.
type loadConn struct {
	c net.Conn
	r *bufio.Reader
}

func dialLoad(addr string) *loadConn {
	dl := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(localIP)}, Timeout: 5 * time.Second}
	c, err := dl.Dial("tcp", addr)
	if err != nil {
		return nil
	}
	lc := &loadConn{c: c, r: bufio.NewReader(c)}
	lc.c.SetDeadline(time.Now().Add(30 * time.Second))
	if code, _ := lc.reply(); code != 220 {
		c.Close()
		return nil
	}
	if code, _ := lc.cmd("EHLO load.example"); code != 250 {
		c.Close()
		return nil
	}
	return lc
}

func (lc *loadConn) reply() (int, string) {
	code, text, err := readReply(lc.r)
	if err != nil {
		return 0, err.Error()
	}
	return code, strings.Join(text, "\n")
}

func (lc *loadConn) cmd(line string) (int, string) {
	if _, err := lc.c.Write([]byte(line + "\r\n")); err != nil {
		return 0, err.Error()
	}
	return lc.reply()
}

// sendSeq sends message seq once. dot reports whether the whole message
// and its final dot were handed to the kernel: with code 0 that is a
// message in flight, which the daemon may have accepted or not.
func (lc *loadConn) sendSeq(seq int) (code int, text string, dot bool) {
	lc.c.SetDeadline(time.Now().Add(30 * time.Second))
	for _, l := range []string{"MAIL FROM:<load@test.example>", fmt.Sprintf("RCPT TO:<r%d@dest.example>", seq%97), "DATA"} {
		want := 250
		if l == "DATA" {
			want = 354
		}
		if code, text = lc.cmd(l); code != want {
			if code != 0 {
				lc.cmd("RSET")
			}
			return code, l + ": " + text, false
		}
	}
	msg := fmt.Sprintf("From: <load@test.example>\r\nTo: <r%d@dest.example>\r\nSubject: load %d\r\nX-Seq: %d\r\n\r\n", seq%97, seq, seq) +
		strings.Repeat("a line of body text to give the message some size\r\n", 8) + ".\r\n"
	if _, err := lc.c.Write([]byte(msg)); err != nil {
		return 0, err.Error(), false
	}
	code, text = lc.reply()
	return code, text, true
}

// client sends the messages it takes from work, each until it gets a 250.
func (ls *loadState) client(work <-chan int, deadline time.Time) {
	var lc *loadConn
	defer func() {
		if lc != nil {
			lc.cmd("QUIT")
			lc.c.Close()
		}
	}()
	for seq := range work {
		for {
			if ls.stop.Load() {
				return
			}
			if time.Now().After(deadline) {
				ls.fail("X-Seq %d: no 250 before the deadline", seq)
				return
			}
			if lc == nil {
				if a := ls.addr.Load(); a != nil && *a != "" {
					lc = dialLoad(*a)
				}
				if lc == nil {
					time.Sleep(20 * time.Millisecond)
					continue
				}
			}
			code, text, dot := lc.sendSeq(seq)
			if code == 250 {
				ls.accepted[seq].Store(true)
				ls.nAcc.Add(1)
				break
			}
			if code >= 400 && code < 500 {
				ls.mu.Lock()
				ls.other++
				ls.mu.Unlock()
				time.Sleep(20 * time.Millisecond)
				continue // the same session, the same message again
			}
			if code != 0 {
				ls.fail("X-Seq %d: %d %s", seq, code, text)
				break
			}
			// The connection broke: the daemon was killed.
			lc.c.Close()
			lc = nil
			if dot {
				ls.mu.Lock()
				ls.inflight[seq]++
				ls.inKill[ls.kills-1]++
				ls.mu.Unlock()
			}
		}
	}
}

// killRecord is what was true at one kill.
type killRecord struct {
	accepted int64 // 250s given so far
	received int   // sink receipts so far
	queued   int   // qf files right after the kill
	down     time.Duration
}

// TestFaultCrashUnderLoad: 20 SMTP sessions send messages, each with a
// unique X-Seq, through the real daemon to a remote recipient whose MX is
// a fake sink reached through the loopback DNS server; meanwhile the test
// kills the daemon's process group with SIGKILL at random moments, 3 to 5
// times, restarting it each time. Clients reconnect and send again every
// message that got no 250. At the end the daemon drains the queue and the
// test compares what clients were told was accepted with what the sink
// received.
//
// Asserted:
//   - every X-Seq that got a 250 reached the sink at least once (after
//     the clients' retries, that is every X-Seq);
//   - no other refusal than a broken connection or a 4xx;
//   - a message is received twice only because of a kill. A duplicate has
//     two honest causes: (a) the client sent the final dot and the kill
//     came before it read the reply: the daemon may have queued it, and
//     the client sent it again ("in flight" at a kill, counted by the
//     clients); (b) the sink accepted a delivery and the kill came before
//     the daemon recorded it in the qf: the restarted daemon delivers it
//     again. (b) can be seen exactly: its receipts come from daemons of
//     different generations. So: every X-Seq not in flight at a client has
//     its receipts in strictly increasing generations (two from one daemon
//     would be a duplicate without a crash); the (b)-duplicates across a
//     kill number at most the deliveries in progress then, bounded by the
//     runner's concurrency (queue.Runner's Workers, 20) and by the qf files
//     present at the kill; and all duplicates together are at most the
//     in-flight submissions plus those bounds summed over the kills.
//
// It caught queue.Runner.scan forgetting messages accepted while the
// restarted daemon read its queue: they stayed queued, never tried.
//
// GOSENDMAIL_FAULT_MESSAGES (default 10000), GOSENDMAIL_FAULT_SESSIONS
// (20), GOSENDMAIL_FAULT_KILLS (a random 3 to 5) and GOSENDMAIL_FAULT_SEED
// (random; logged) change the run.
func TestFaultCrashUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("a load test")
	}
	n := envInt(t, "GOSENDMAIL_FAULT_MESSAGES", faultMessagesDefault)
	sessions := max(1, envInt(t, "GOSENDMAIL_FAULT_SESSIONS", faultSessionsDefault))
	seed := int64(envInt(t, "GOSENDMAIL_FAULT_SEED", int(time.Now().UnixNano()%1e9)))
	rng := rand.New(rand.NewSource(seed))
	kills := envInt(t, "GOSENDMAIL_FAULT_KILLS", 3+rng.Intn(3))
	const workers = 20 // queue.Runner's default Workers: deliveries at once
	t.Logf("%d messages, %d sessions, %d kills, GOSENDMAIL_FAULT_SEED=%d", n, sessions, kills, seed)

	sink := &seqSink{got: map[int][]int{}}
	ln, err := net.Listen("tcp", "127.0.0.23:0")
	must(t, err)
	srv := smtp.NewServer(sink)
	srv.Domain = "sink.example"
	srv.ErrorLog = log.New(io.Discard, "", 0) // resets at each kill
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	dsrv := dnstest.NewServer(t)
	dsrv.MX("dest.example", 10, "mx.dest.example")
	dsrv.A("mx.dest.example", "127.0.0.23")

	e := newEnv(t)
	os.WriteFile(e.path("etc/local-host-names"), []byte("test.example\n"), 0o644)
	extra := "relay_from = [\"127.0.0.1/32\"]\n[delivery]\ndns_server = \"" + dsrv.Addr() + "\"\nremote_port = " +
		strconv.Itoa(ln.Addr().(*net.TCPAddr).Port) + "\nclient_family = \"inet\"\nretry_min = \"1s\"\nretry_max = \"2s\"\n[limits]\ngreet_pause = \"0s\"\n"
	start := time.Now()
	d := startDaemon(t, e, extra)

	ls := &loadState{accepted: make([]atomic.Bool, n), inflight: map[int]int{}, inKill: map[int]int{}}
	a := d.addrs["MTA"]
	ls.addr.Store(&a)
	work := make(chan int, n)
	for i := 0; i < n; i++ {
		work <- i
	}
	close(work)
	var wg sync.WaitGroup
	clientsDone := make(chan struct{})
	deadline := time.Now().Add(5 * time.Minute)
	for i := 0; i < sessions; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); ls.client(work, deadline) }()
	}
	go func() { wg.Wait(); close(clientsDone) }()
	defer func() { ls.stop.Store(true); <-clientsDone }() // no client outlives the test, even on Fatal

	// The kills, at random points between 5% and 90% of the messages
	// accepted, a little apart, and at a random moment within that.
	var points []int
	for i := 0; i < kills; i++ {
		points = append(points, n/20+rng.Intn(max(1, n*85/100)))
	}
	sort.Ints(points)
	var recs []killRecord
	for i, p := range points {
	wait:
		for ls.nAcc.Load() < int64(p) {
			select {
			case <-clientsDone:
				break wait
			case <-time.After(2 * time.Millisecond):
			}
		}
		time.Sleep(time.Duration(rng.Intn(30)) * time.Millisecond)
		empty := ""
		ls.addr.Store(&empty)
		ls.mu.Lock()
		ls.kills = i + 1
		ls.mu.Unlock()
		d.kill()
		down := time.Now()
		rec := killRecord{accepted: ls.nAcc.Load(), queued: e.qfCount()}
		// Every session of the dead daemon ends before the generation
		// changes, so each receipt is labelled with its deliverer.
		for wait := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			if _, open := sink.counts(); open == 0 {
				break
			}
			if time.Now().After(wait) {
				t.Fatal("the sink's sessions with the killed daemon stay open")
			}
		}
		sink.mu.Lock()
		rec.received = sink.total
		sink.gen = i + 1
		sink.mu.Unlock()
		d = startDaemon(t, e, "")
		rec.down = time.Since(down)
		a := d.addrs["MTA"]
		ls.addr.Store(&a)
		recs = append(recs, rec)
	}
	<-clientsDone
	sent := time.Since(start)

	// Let the last daemon drain the queue.
	for drain := time.Now().Add(2 * time.Minute); e.qfCount() > 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(drain) {
			m, _ := filepath.Glob(e.path("spool/mqueue/qf*"))
			for i, p := range m {
				if i < 5 {
					id := filepath.Base(p)[2:]
					var lines []string
					for _, l := range strings.Split(d.log(), "\n") {
						if strings.Contains(l, id) {
							lines = append(lines, l)
						}
					}
					t.Logf("%s:\n%s\nlog:\n%s", p, readFile(p), strings.Join(lines, "\n"))
				}
			}
			t.Fatalf("%d messages still queued 2 minutes after the last was accepted", len(m))
		}
	}
	elapsed := time.Since(start)
	if m, _ := filepath.Glob(e.path("spool/mqueue/Qf*")); len(m) > 0 {
		t.Errorf("corrupt qf files set aside: %v", m)
	}

	ls.mu.Lock()
	defer ls.mu.Unlock()
	sink.mu.Lock()
	defer sink.mu.Unlock()
	for _, s := range ls.errs {
		t.Error(s)
	}
	for _, b := range sink.bad {
		t.Errorf("the sink got a message without one X-Seq and one recipient: %q", b)
	}
	accepted, missing, dups, inflight, acrossKill := 0, 0, 0, 0, make([]int, len(points))
	for _, c := range ls.inflight {
		inflight += c
	}
	for seq := 0; seq < n; seq++ {
		got := sink.got[seq]
		if ls.accepted[seq].Load() {
			accepted++
			if len(got) == 0 {
				missing++
				if missing <= 20 {
					t.Errorf("X-Seq %d was accepted (250) but never reached the sink", seq)
				}
			}
		}
		if len(got) <= 1 {
			continue
		}
		dups += len(got) - 1
		if ls.inflight[seq] > 0 {
			continue // may have been queued twice: counted in inflight
		}
		for j := 1; j < len(got); j++ {
			if got[j] <= got[j-1] {
				t.Errorf("X-Seq %d received twice from daemon generation %d (receipts %v): a duplicate no kill explains", seq, got[j], got)
				continue
			}
			acrossKill[got[j-1]]++ // delivered, then that daemon was killed
		}
	}
	for seq := range sink.got {
		if seq < 0 || seq >= n {
			t.Errorf("the sink got X-Seq %d, which no client sent", seq)
		}
	}

	if c := ls.inKill[-1]; c > 0 {
		t.Errorf("%d connections broke after the final dot before any kill", c)
	}
	bound := inflight
	for i, r := range recs {
		lim := min(workers, r.queued)
		bound += lim
		t.Logf("kill %d: after %d accepted, %d received, %d queued; %d submissions in flight, %d deliveries repeated (at most %d); down %v",
			i+1, r.accepted, r.received, r.queued, ls.inKill[i], acrossKill[i], lim, r.down.Round(time.Millisecond))
		if acrossKill[i] > lim {
			t.Errorf("kill %d: %d messages delivered again after the restart, more than the %d deliveries that can have been in progress", i+1, acrossKill[i], lim)
		}
	}
	t.Logf("accepted %d of %d, received %d (%d distinct), %d duplicates, %d submissions in flight at the kills, %d missing, %d 4xx replies retried",
		accepted, n, sink.total, len(sink.got), dups, inflight, missing, ls.other)
	t.Logf("all accepted in %v (%.0f msg/s), queue empty after %v", sent.Round(time.Millisecond), float64(n)/sent.Seconds(), elapsed.Round(time.Millisecond))
	if accepted != n {
		t.Errorf("only %d of %d messages got a 250", accepted, n)
	}
	if dups > bound {
		t.Errorf("%d duplicates, more than the %d messages in flight at the kills", dups, bound)
	}
}
