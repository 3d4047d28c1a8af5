package milter

import (
	"bytes"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gosendmail/gosendmail/pkg/maillog"
	"github.com/gosendmail/gosendmail/pkg/milter/miltertest"
	"github.com/gosendmail/gosendmail/pkg/spool"
)

// fuzzPacket is one packet from a filter.
func fuzzPacket(code byte, data string) []byte { return miltertest.Packet(code, []byte(data)) }

// fuzzNegotiation is a filter's answer to the negotiation: every action,
// and protocol flags proto.
func fuzzNegotiation(proto uint32) []byte {
	return miltertest.Packet('O', miltertest.OptNeg(ourActions, proto))
}

// nrAll asks for no reply to any step before the end of the message.
const nrAll = optNrConn | optNrHelo | optNrMail | optNrRcpt | optNrData | optNrHdr | optNrEOH | optNrBody

// FuzzFilterSession runs a whole SMTP transaction, message included,
// through a filter that says script (its negotiation answer first, then
// whatever it answers, the end of the message included) and hangs up. A
// filter is another program; a broken or hostile one must not crash the
// daemon, hang it, or change a message it failed on: whatever it says,
// the verdict is a real one, a message left unchanged reads back as it
// came, and the envelope changes apply to a valid envelope.
func FuzzFilterSession(f *testing.F) {
	msg := "From: a@example.org\r\nTo: b@example.net\r\nSubject: hi\r\n folded\r\n\r\nbody line\r\n.dot\r\n"
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	seeds := [][]byte{
		cat(fuzzNegotiation(nrAll), fuzzPacket('c', "")),
		cat(fuzzNegotiation(nrAll), fuzzPacket('a', "")),
		cat(fuzzNegotiation(nrAll), fuzzPacket('p', ""), fuzzPacket('h', "X-Spam\x00yes\x00"),
			fuzzPacket('i', "\x00\x00\x00\x01X-First\x00v\x00"), fuzzPacket('m', "\x00\x00\x00\x01Subject\x00\x00"),
			fuzzPacket('e', "<new@example.org>\x00"), fuzzPacket('+', "<c@example.net>\x00"),
			fuzzPacket('-', "<b@example.net>\x00"), fuzzPacket('q', "held\x00"), fuzzPacket('c', "")),
		cat(fuzzNegotiation(nrAll), fuzzPacket('b', "new body\r\n"), fuzzPacket('b', "more\r\n"), fuzzPacket('c', "")),
		cat(fuzzNegotiation(nrAll), fuzzPacket('y', "550 5.7.1 no thanks\x00")),
		cat(fuzzNegotiation(nrAll), fuzzPacket('h', "X-Half\x00done\x00")),
		cat(fuzzNegotiation(nrAll), fuzzPacket('h', "X-Bad\r\nInjected\x00value\x00"), fuzzPacket('c', "")),
		cat(fuzzNegotiation(nrAll), fuzzPacket('i', "\x00\x00\x00\x00Bad: name\x00v\x00"), fuzzPacket('c', "")),
		cat(fuzzNegotiation(0), fuzzPacket('c', ""), fuzzPacket('c', ""), fuzzPacket('c', ""), fuzzPacket('c', ""),
			fuzzPacket('c', ""), fuzzPacket('s', ""), fuzzPacket('c', ""), fuzzPacket('t', "")),
		cat(fuzzNegotiation(optNoHdrs|optNoBody|optNrConn|optNrHelo), fuzzPacket('r', "")),
		[]byte("HTTP/1.0 400 Bad Request\r\n"),
	}
	for _, s := range seeds {
		f.Add(s, []byte(msg))
	}
	f.Fuzz(func(t *testing.T, script, msg []byte) {
		if len(msg) > 1<<16 || len(script) > 1<<16 {
			return
		}
		// The session's timeouts add up to seconds; far beyond them, it
		// hangs: crash with the input.
		finished := make(chan struct{})
		defer close(finished)
		go func() {
			select {
			case <-finished:
			case <-time.After(30 * time.Second):
				panic("the session outlived its timeouts")
			}
		}()
		m, err := ReadMessage(bytes.NewReader(msg), int64(len(msg)))
		if err != nil {
			return
		}
		defer m.Close()
		short := Timeouts{Connect: time.Second, Send: time.Second, Read: time.Second, EOM: 2 * time.Second}
		flt := NewFilter("fz", "inet:1@127.0.0.1", "tempfail", short)
		// The filter's end of a socket pair: it says its script and shuts
		// its writing side (so the session reads EOF after it) while it
		// still reads, and drops, whatever the session sends.
		ours, theirs := socketPair(t)
		go func() {
			theirs.Write(script)
			theirs.CloseWrite()
		}()
		go func() {
			io.Copy(io.Discard, theirs)
			theirs.Close()
		}()
		var log bytes.Buffer
		chain := &Chain{Filters: []*Filter{flt}, Log: maillog.New(&log, "sm-mta"), TempDir: t.TempDir()}
		s := chain.NewSession()
		defer s.Close()
		c := newConn(flt, ours)
		if err := c.negotiate(); err != nil {
			s.conns = append(s.conns, c)
			s.fail(c, err)
		} else {
			s.conns = append(s.conns, c)
		}
		s.SetMacros(map[string]string{"j": "mx.example", "{client_addr}": "192.0.2.1"})
		stages := []func() Verdict{
			func() Verdict { return s.command(connectStage, []byte("client.example\x004\x10\xe1192.0.2.1\x00")) },
			func() Verdict { return s.Helo("client.example") },
			func() Verdict { s.ID = "fuzz"; return s.Mail("a@example.org", []string{"SIZE=10"}) },
			func() Verdict { return s.Rcpt("b@example.net", nil) },
			func() Verdict { return s.Data() },
		}
		for _, st := range stages {
			if v := st(); v.Action != Continue {
				checkVerdict(t, v)
				return
			}
		}
		v, ch := s.EndOfMessage(m)
		checkVerdict(t, v)
		out, err := io.ReadAll(m.Reader())
		if err != nil {
			t.Fatalf("reading the message back: %v", err)
		}
		if bytes.Contains(log.Bytes(), []byte("Milter (fz): to error state")) && m.Changed() {
			t.Fatalf("a filter that failed changed the message:\n%s", log.String())
		}
		if !m.Changed() && !bytes.Equal(out, msg) {
			t.Fatalf("unchanged message reads back as %q, want %q", out, msg)
		}
		// What the filter left is a header the next reader parses into
		// the same fields: a field name from a filter cannot add lines or
		// fields of its own.
		again, err := ReadMessage(bytes.NewReader(out), int64(len(out)))
		if err != nil {
			t.Fatalf("the filtered message does not parse: %v", err)
		}
		if got, want := fieldNames(again), fieldNames(m); got != want {
			t.Fatalf("the filtered header reads back as fields %q, want %q\n%q", got, want, out)
		}
		if v.Action != Continue {
			return
		}
		env := &spool.Envelope{Sender: "a@example.org", Rcpts: []spool.Recipient{{Addr: "b@example.net", State: spool.Pending}}}
		ch.Apply(env)
		for _, r := range env.Rcpts {
			if r.Addr == "" || strings.ContainsAny(r.Addr, "\x00\r\n<> ") {
				t.Fatalf("recipient %q after the filter's changes", r.Addr)
			}
		}
		if strings.ContainsAny(env.Sender, "\x00\r\n<> ") {
			t.Fatalf("sender %q after the filter's changes", env.Sender)
		}
	})
}

// socketPair returns the two ends of a connected Unix stream socket pair.
func socketPair(t *testing.T) (*net.UnixConn, *net.UnixConn) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	var ends [2]*net.UnixConn
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "socketpair")
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		ends[i] = c.(*net.UnixConn)
	}
	return ends[0], ends[1]
}

func fieldNames(m *Message) string {
	var names []string
	for _, f := range m.Fields() {
		names = append(names, f.Name)
	}
	return strings.Join(names, "|")
}

func checkVerdict(t *testing.T, v Verdict) {
	t.Helper()
	switch v.Action {
	case Continue, Discard:
	case Reject, Tempfail:
		r := v.Reply()
		if len(r) < 3 || (r[0] != '4' && r[0] != '5') || strings.ContainsAny(r, "\x00\r\n") {
			t.Fatalf("verdict %v gives the reply %q", v, r)
		}
		if v.Action == Reject && r[0] != '5' || v.Action == Tempfail && r[0] != '4' {
			t.Fatalf("verdict %v gives the reply %q", v, r)
		}
	default:
		t.Fatalf("verdict %v", v)
	}
}
