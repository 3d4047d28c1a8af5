package milter

import (
	"bytes"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	gm "github.com/emersion/go-milter"

	"github.com/gosendmail/gosendmail/pkg/maillog"
	"github.com/gosendmail/gosendmail/pkg/milter/miltertest"
	"github.com/gosendmail/gosendmail/pkg/spool"
)

const testMsg = "From: Alice <a@example.org>\r\nTo: b@example.net\r\nSubject: hi\r\nX-Dup: one\r\nX-Dup: two\r\n" +
	"Message-ID: <m1@example.org>\r\n\r\nHello\r\nsecond line\r\n"

var fast = Timeouts{Connect: 2 * time.Second, Send: 2 * time.Second, Read: time.Second, EOM: 3 * time.Second}

type harness struct {
	t   *testing.T
	log *miltertest.Log
	s   *Session
}

func newHarness(t *testing.T, filters ...*Filter) *harness {
	t.Helper()
	h := &harness{t: t, log: &miltertest.Log{}}
	c := &Chain{Filters: filters, Log: maillog.New(h.log, "sm-mta"), TempDir: t.TempDir()}
	h.s = c.NewSession()
	t.Cleanup(h.s.Close)
	h.s.SetMacros(map[string]string{"j": "mx.test.example", "_": "client.example [192.0.2.7]",
		"{daemon_name}": "MTA", "{client_addr}": "192.0.2.7"})
	return h
}

func filter(name, socket, mode string) *Filter { return NewFilter(name, socket, mode, fast) }

// upToData runs the SMTP stages and fails the test on a refusal.
func (h *harness) upToData(rcpts ...string) {
	h.t.Helper()
	for _, v := range []Verdict{
		h.s.Connect("client.example", netip.MustParseAddrPort("192.0.2.7:4567")),
		h.s.Helo("client.example"),
	} {
		if v.Action != Continue {
			h.t.Fatalf("verdict %v\n%s", v, h.log)
		}
	}
	h.s.ID = "x3N8T4Sn012752"
	h.s.SetMacro("i", h.s.ID)
	if v := h.s.Mail("a@example.org", []string{"SIZE=100"}); v.Action != Continue {
		h.t.Fatalf("MAIL: %v\n%s", v, h.log)
	}
	if len(rcpts) == 0 {
		rcpts = []string{"b@example.net"}
	}
	for _, r := range rcpts {
		if v := h.s.Rcpt(r, nil); v.Action != Continue {
			h.t.Fatalf("RCPT: %v\n%s", v, h.log)
		}
	}
	if v := h.s.Data(); v.Action != Continue {
		h.t.Fatalf("DATA: %v\n%s", v, h.log)
	}
}

// eom runs the end of the message and returns the verdict, the changes and
// the message as it would be queued.
func (h *harness) eom(msg string) (Verdict, *Changes, string) {
	h.t.Helper()
	m, err := ReadMessage(strings.NewReader(msg), int64(len(msg)))
	if err != nil {
		h.t.Fatal(err)
	}
	defer m.Close()
	v, ch := h.s.EndOfMessage(m)
	out, err := io.ReadAll(m.Reader())
	if err != nil {
		h.t.Fatal(err)
	}
	return v, ch, string(out)
}

func TestParseSocket(t *testing.T) {
	for _, c := range []struct{ in, network, addr string }{
		{"inet:8891@localhost", "tcp4", "localhost:8891"},
		{"inet:8891@[127.0.0.1]", "tcp4", "127.0.0.1:8891"},
		{"inet6:8891@[::1]", "tcp6", "[::1]:8891"},
		{"inet6:8891@::1", "tcp6", "[::1]:8891"},
		{"unix:/run/opendkim/opendkim.sock", "unix", "/run/opendkim/opendkim.sock"},
		{"local:/run/x.sock", "unix", "/run/x.sock"},
		{"/run/x.sock", "unix", "/run/x.sock"},
	} {
		n, a, err := ParseSocket(c.in)
		if err != nil || n != c.network || a != c.addr {
			t.Errorf("%s: %s %s %v", c.in, n, a, err)
		}
	}
	for _, bad := range []string{"inet:8891", "tcp:1@x", "inet:@x", "x.sock", "unix:"} {
		if _, _, err := ParseSocket(bad); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

func TestParseReply(t *testing.T) {
	v, ok := ParseReply("550 5.7.1 Spam detected")
	if !ok || v.Action != Reject || v.Code != 550 || v.Enhanced != "5.7.1" || v.Text != "Spam detected" {
		t.Errorf("%+v %v", v, ok)
	}
	v, ok = ParseReply("451-4.7.1 Greylisted\r\n451 4.7.1 come back later")
	if !ok || v.Action != Tempfail || v.Enhanced != "4.7.1" || v.Text != "Greylisted\ncome back later" {
		t.Errorf("%+v %v", v, ok)
	}
	v, ok = ParseReply("554 no enhanced code")
	if !ok || v.Enhanced != "" || v.Text != "no enhanced code" || v.Reply() != "554 no enhanced code" {
		t.Errorf("%+v %v", v, ok)
	}
	// A filter's control and 8-bit bytes do not reach the SMTP client;
	// the reply keeps its class.
	v, ok = ParseReply("451 4.7.1 wait\x00\rhere\x01 caf\xc3\xa9")
	if !ok || v.Action != Tempfail || v.Reply() != "451 4.7.1 wait??here? caf?" {
		t.Errorf("%+v %v %q", v, ok, v.Reply())
	}
	for _, bad := range []string{"250 ok", "55", "abc", "550x"} {
		if _, ok := ParseReply(bad); ok {
			t.Errorf("%q accepted", bad)
		}
	}
}

// A filter that continues everywhere sees the whole transaction, with
// sendmail's macros, and the message comes out byte for byte.
func TestContinueSeesEverything(t *testing.T) {
	m := &miltertest.Milter{}
	h := newHarness(t, filter("test", miltertest.Start(t, m), "tempfail"))
	h.upToData("b@example.net", "c@example.net")
	v, ch, out := h.eom(testMsg)
	if v.Action != Continue || !ch.Empty() {
		t.Fatalf("%v %+v", v, ch)
	}
	if out != testMsg {
		t.Fatalf("message changed:\n%q", out)
	}
	ss := m.Sessions()
	if len(ss) != 1 {
		t.Fatalf("%d sessions", len(ss))
	}
	s := ss[0]
	if s.Host != "client.example" || s.Addr != "192.0.2.7" || s.Port != 4567 || s.Family != "tcp4" || s.HeloArg != "client.example" {
		t.Errorf("connect: %+v", s)
	}
	msg := s.Msgs[0]
	if msg.From != "a@example.org" || strings.Join(msg.Rcpts, ",") != "b@example.net,c@example.net" || !msg.Done {
		t.Errorf("envelope: %+v", msg)
	}
	wantHdr := [][2]string{{"From", "Alice <a@example.org>"}, {"To", "b@example.net"}, {"Subject", "hi"}, {"X-Dup", "one"}, {"X-Dup", "two"}, {"Message-ID", "<m1@example.org>"}}
	if len(msg.Headers) != len(wantHdr) {
		t.Fatalf("headers %q", msg.Headers)
	}
	for i := range wantHdr {
		if msg.Headers[i] != wantHdr[i] {
			t.Errorf("header %d: %q, want %q", i, msg.Headers[i], wantHdr[i])
		}
	}
	if string(msg.Body) != "Hello\r\nsecond line\r\n" {
		t.Errorf("body %q", msg.Body)
	}
	for stage, want := range map[string]map[string]string{
		"connect": {"j": "mx.test.example", "_": "client.example [192.0.2.7]", "{daemon_name}": "MTA", "{client_addr}": "192.0.2.7"},
		"mail":    {"i": "x3N8T4Sn012752", "{mail_addr}": "a@example.org", "{mail_host}": "example.org", "{mail_mailer}": "esmtp"},
		"rcpt":    {"{rcpt_addr}": "c@example.net", "{rcpt_host}": "example.net", "{rcpt_mailer}": "esmtp"},
		"eom":     {"{msg_id}": "<m1@example.org>", "i": "x3N8T4Sn012752"},
	} {
		for k, v := range want {
			if got := s.Macros[stage][k]; got != v {
				t.Errorf("macro %s at %s: %q, want %q (all: %v)", k, stage, got, v, s.Macros[stage])
			}
		}
	}
}

// Bare LF in the body reaches the filter as CRLF, as sendmail sends it;
// header folding reaches it with LF.
func TestLineEndingsToFilter(t *testing.T) {
	m := &miltertest.Milter{}
	h := newHarness(t, filter("test", miltertest.Start(t, m), "tempfail"))
	h.upToData()
	msg := "Subject: folded\r\n\tsecond\r\n\r\nline1\nline2\r\nline3\n"
	if v, _, out := h.eom(msg); v.Action != Continue || out != msg {
		t.Fatalf("%v %q", v, out)
	}
	got := m.LastMsg()
	if string(got.Body) != "line1\r\nline2\r\nline3\r\n" {
		t.Errorf("body %q", got.Body)
	}
	if got.Headers[0][1] != "folded\n\tsecond" {
		t.Errorf("header %q", got.Headers[0][1])
	}
}

func TestStageVerdicts(t *testing.T) {
	type stageFn func(h *harness) Verdict
	connect := func(h *harness) Verdict {
		return h.s.Connect("client.example", netip.MustParseAddrPort("192.0.2.7:4567"))
	}
	for _, c := range []struct {
		name    string
		m       *miltertest.Milter
		run     stageFn
		want    string
		logLine string
	}{
		{"connect reject", miltertest.New(miltertest.Behaviour{Connect: gm.RespReject}), connect,
			"reject 550 5.0.0 Command rejected", "Milter: connect: host=client.example, addr=192.0.2.7, rejecting commands"},
		{"connect tempfail", miltertest.New(miltertest.Behaviour{Connect: gm.RespTempFail}), connect,
			"tempfail 451 4.3.2 Please try again later", "Milter: connect: host=client.example, addr=192.0.2.7, temp failing commands"},
		{"helo reply", miltertest.New(miltertest.Behaviour{Helo: miltertest.Reply("554 5.7.1 Not you")}), func(h *harness) Verdict {
			connect(h)
			return h.s.Helo("bad.example")
		}, "reject 554 5.7.1 Not you", "Milter: helo=bad.example, reject=554 5.7.1 Not you"},
		{"mail reject", miltertest.New(miltertest.Behaviour{Mail: gm.RespReject}), func(h *harness) Verdict {
			connect(h)
			h.s.Helo("x")
			return h.s.Mail("a@example.org", nil)
		}, "reject 550 5.7.1 Command rejected", "Milter: from=<a@example.org>, reject=550 5.7.1 Command rejected"},
		{"mail tempfail", miltertest.New(miltertest.Behaviour{Mail: gm.RespTempFail}), func(h *harness) Verdict {
			connect(h)
			h.s.Helo("x")
			return h.s.Mail("a@example.org", nil)
		}, "tempfail 451 4.3.2 Please try again later", "Milter: from=<a@example.org>, reject=451 4.3.2 Please try again later"},
		{"mail reply", miltertest.New(miltertest.Behaviour{Mail: miltertest.Reply("553 5.1.8 Sender domain unknown")}), func(h *harness) Verdict {
			connect(h)
			h.s.Helo("x")
			return h.s.Mail("a@example.org", nil)
		}, "reject 553 5.1.8 Sender domain unknown", "reject=553 5.1.8 Sender domain unknown"},
		{"mail discard", miltertest.New(miltertest.Behaviour{Mail: gm.RespDiscard}), func(h *harness) Verdict {
			connect(h)
			h.s.Helo("x")
			return h.s.Mail("a@example.org", nil)
		}, "discard", "Milter: from=<a@example.org>, discard"},
		{"eom reject", miltertest.New(miltertest.Behaviour{EOM: func(*gm.Modifier) (gm.Response, error) { return gm.RespReject, nil }}), func(h *harness) Verdict {
			h.upToData()
			v, _, _ := h.eom(testMsg)
			return v
		}, "reject 554 5.7.1 Command rejected", "x3N8T4Sn012752: Milter: data, reject=554 5.7.1 Command rejected"},
		{"eom tempfail reply", miltertest.New(miltertest.Behaviour{EOM: func(*gm.Modifier) (gm.Response, error) {
			return miltertest.Reply("451 4.7.1 Greylisted, try again in 5 minutes"), nil
		}}), func(h *harness) Verdict {
			h.upToData()
			v, _, _ := h.eom(testMsg)
			return v
		}, "tempfail 451 4.7.1 Greylisted, try again in 5 minutes", "Milter: data, reject=451 4.7.1 Greylisted"},
		{"eom discard", miltertest.New(miltertest.Behaviour{EOM: func(*gm.Modifier) (gm.Response, error) { return gm.RespDiscard, nil }}), func(h *harness) Verdict {
			h.upToData()
			v, _, _ := h.eom(testMsg)
			return v
		}, "discard", "Milter: data, discard"},
		{"header reject", miltertest.New(miltertest.Behaviour{Header: func(n, v string) gm.Response {
			if n == "Subject" {
				return gm.RespReject
			}
			return nil
		}}), func(h *harness) Verdict {
			h.upToData()
			v, _, _ := h.eom(testMsg)
			return v
		}, "reject 554 5.7.1 Command rejected", "Milter: data, reject=554 5.7.1 Command rejected"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, filter("test", miltertest.Start(t, c.m), "tempfail"))
			v := c.run(h)
			if v.String() != c.want {
				t.Errorf("verdict %q, want %q\n%s", v, c.want, h.log)
			}
			if !strings.Contains(h.log.String(), c.logLine) {
				t.Errorf("log lacks %q:\n%s", c.logLine, h.log)
			}
		})
	}
}

// After a refusal at connect, every command is refused with it.
func TestConnectRefusalSticks(t *testing.T) {
	m := miltertest.New(miltertest.Behaviour{Connect: gm.RespTempFail})
	h := newHarness(t, filter("test", miltertest.Start(t, m), "tempfail"))
	h.s.Connect("client.example", netip.MustParseAddrPort("192.0.2.7:1"))
	if r := h.s.Refused(); r == nil || r.Code != 451 {
		t.Fatalf("%v", r)
	}
	if v := h.s.Mail("a@example.org", nil); v.String() != "tempfail 451 4.3.2 Please try again later" {
		t.Errorf("%v", v)
	}
}

// A recipient refused by the filter is that recipient only; a discard at
// RCPT drops the whole message.
func TestRcptVerdicts(t *testing.T) {
	m := miltertest.New(miltertest.Behaviour{Rcpt: func(r string) gm.Response {
		switch r {
		case "spamtrap@example.net":
			return miltertest.Reply("550 5.1.1 No such user here")
		case "later@example.net":
			return gm.RespTempFail
		case "drop@example.net":
			return gm.RespDiscard
		}
		return nil
	}})
	h := newHarness(t, filter("test", miltertest.Start(t, m), "tempfail"))
	h.s.Connect("client.example", netip.MustParseAddrPort("192.0.2.7:1"))
	h.s.Helo("client.example")
	h.s.ID = "x3N8T4Sn012752"
	h.s.Mail("a@example.org", nil)
	if v := h.s.Rcpt("spamtrap@example.net", nil); v.String() != "reject 550 5.1.1 No such user here" {
		t.Errorf("%v", v)
	}
	if v := h.s.Rcpt("later@example.net", nil); v.String() != "tempfail 451 4.3.2 Please try again later" {
		t.Errorf("%v", v)
	}
	if v := h.s.Rcpt("b@example.net", nil); v.Action != Continue {
		t.Errorf("%v", v)
	}
	if v, _, _ := h.eom(testMsg); v.Action != Continue {
		t.Errorf("eom %v", v)
	}
	if !strings.Contains(h.log.String(), "x3N8T4Sn012752: Milter: to=<spamtrap@example.net>, reject=550 5.1.1 No such user here") {
		t.Errorf("log:\n%s", h.log)
	}
	// Next message: a discard at RCPT.
	h.s.Mail("a@example.org", nil)
	if v := h.s.Rcpt("drop@example.net", nil); v.Action != Discard {
		t.Errorf("%v", v)
	}
	if v := h.s.Rcpt("b@example.net", nil); v.Action != Continue || !h.s.Discarding() {
		t.Errorf("%v %v", v, h.s.Discarding())
	}
	if v, _, _ := h.eom(testMsg); v.Action != Discard {
		t.Errorf("eom %v", v)
	}
}

// Every modification, applied with sendmail's rules.
func TestModifications(t *testing.T) {
	m := miltertest.New(miltertest.Behaviour{EOM: func(mod *gm.Modifier) (gm.Response, error) {
		steps := []func() error{
			func() error { return mod.AddHeader("X-Added", "yes") },
			func() error { return mod.InsertHeader(0, "X-Top", "first") },
			func() error { return mod.ChangeHeader(2, "X-Dup", "TWO") },
			func() error { return mod.ChangeHeader(1, "Subject", "") },
			func() error { return mod.ChangeHeader(1, "X-Missing", "") },
			func() error { return mod.ChangeHeader(1, "X-New", "made\n\tfolded") },
			func() error { return mod.ReplaceBody([]byte("New body\r\nbare lf\nend")) },
			func() error { return mod.AddRecipient("new@example.com") },
			func() error { return mod.DeleteRecipient("b@example.net") },
			func() error { return mod.ChangeFrom("<bounce@example.org>") },
			func() error { return mod.Quarantine("looks odd") },
		}
		for _, s := range steps {
			if err := s(); err != nil {
				return nil, err
			}
		}
		return gm.RespAccept, nil
	}})
	h := newHarness(t, filter("mod", miltertest.Start(t, m), "tempfail"))
	h.upToData("b@example.net", "c@example.net")
	v, ch, out := h.eom(testMsg)
	if v.Action != Continue {
		t.Fatalf("%v\n%s", v, h.log)
	}
	want := "X-Top: first\r\nFrom: Alice <a@example.org>\r\nTo: b@example.net\r\nX-Dup: one\r\nX-Dup: TWO\r\n" +
		"Message-ID: <m1@example.org>\r\nX-Added: yes\r\nX-New: made\r\n\tfolded\r\n\r\nNew body\r\nbare lf\r\nend\r\n"
	if out != want {
		t.Errorf("message:\n%q\nwant\n%q", out, want)
	}
	env := &spool.Envelope{Sender: "a@example.org", Rcpts: []spool.Recipient{{Addr: "b@example.net"}, {Addr: "c@example.net"}}}
	ch.Apply(env)
	var rcpts []string
	for _, r := range env.Rcpts {
		rcpts = append(rcpts, r.Addr)
	}
	if env.Sender != "bounce@example.org" || strings.Join(rcpts, ",") != "c@example.net,new@example.com" || env.Hold != "looks odd" {
		t.Errorf("envelope %+v", env)
	}
	for _, l := range []string{
		"x3N8T4Sn012752: Milter add: header: X-Added: yes",
		"Milter insert (0): header: X-Top: first",
		"Milter change: header X-Dup: from two to TWO",
		"Milter delete: header Subject: hi",
		"Milter delete (noop): header: X-Missing",
		"Milter change (add): header: X-New: made",
		"Milter message: body replaced",
		"Milter add: rcpt: <new@example.com>",
		"Milter delete: rcpt <b@example.net>, naddrs=1",
		"Milter chgfrom: <bounce@example.org>",
		"milter=mod, quarantine=looks odd",
	} {
		if !strings.Contains(h.log.String(), l) {
			t.Errorf("log lacks %q", l)
		}
	}
}

// Filters run in order and each sees what the one before changed; a
// filter that accepted is left out for the rest of the message.
func TestChainOrder(t *testing.T) {
	first := miltertest.New(miltertest.Behaviour{EOM: func(mod *gm.Modifier) (gm.Response, error) {
		mod.AddHeader("X-First", "1")
		mod.ChangeHeader(1, "Subject", "[first] hi")
		mod.ReplaceBody([]byte("replaced by first\r\n"))
		return gm.RespAccept, nil
	}})
	second := miltertest.New(miltertest.Behaviour{EOM: func(mod *gm.Modifier) (gm.Response, error) {
		mod.ChangeHeader(1, "X-First", "seen by second")
		return gm.RespContinue, nil
	}})
	quiet := miltertest.New(miltertest.Behaviour{Mail: gm.RespAccept})
	h := newHarness(t, filter("first", miltertest.Start(t, first), "tempfail"),
		filter("quiet", miltertest.Start(t, quiet), "tempfail"),
		filter("second", miltertest.Start(t, second), "tempfail"))
	h.upToData()
	v, _, out := h.eom(testMsg)
	if v.Action != Continue {
		t.Fatalf("%v", v)
	}
	got := second.LastMsg()
	var hdr []string
	for _, f := range got.Headers {
		hdr = append(hdr, f[0]+": "+f[1])
	}
	if !strings.Contains(strings.Join(hdr, "\n"), "Subject: [first] hi") || hdr[len(hdr)-1] != "X-First: 1" {
		t.Errorf("second saw %q", hdr)
	}
	if string(got.Body) != "replaced by first\r\n" {
		t.Errorf("second saw body %q", got.Body)
	}
	if !strings.Contains(out, "X-First: seen by second\r\n") || !strings.HasSuffix(out, "\r\n\r\nreplaced by first\r\n") {
		t.Errorf("out %q", out)
	}
	q := quiet.LastMsg()
	if q == nil || len(q.Rcpts) != 0 || len(q.Headers) != 0 || q.Done {
		t.Errorf("the filter that accepted at MAIL was asked more: %+v", q)
	}
}

// With SMFIP_HDR_LEADSPC the filter sees and writes the space after the
// colon itself.
func TestLeadingSpace(t *testing.T) {
	m := &miltertest.Milter{Protocol: gm.OptHeaderLeadingSpace, Behaviour: miltertest.Behaviour{EOM: func(mod *gm.Modifier) (gm.Response, error) {
		mod.AddHeader("X-Tight", "nospace")
		mod.AddHeader("X-Spaced", "  two")
		return nil, nil
	}}}
	h := newHarness(t, filter("test", miltertest.Start(t, m), "tempfail"))
	h.upToData()
	_, _, out := h.eom("Subject:  two spaces\r\nTo:none\r\n\r\nx\r\n")
	if h := m.LastMsg().Headers; h[0][1] != "  two spaces" || h[1][1] != "none" {
		t.Errorf("filter saw %q", h)
	}
	if !strings.Contains(out, "X-Tight:nospace\r\nX-Spaced:  two\r\n") {
		t.Errorf("out %q", out)
	}
}

// Header edits with sendmail's index rules, on the Message alone.
func TestHeaderIndexes(t *testing.T) {
	msg := "A: 1\r\nB: 1\r\nA: 2\r\nA: 3\r\n\r\nbody\r\n"
	m, err := ReadMessage(strings.NewReader(msg), int64(len(msg)))
	if err != nil {
		t.Fatal(err)
	}
	m.begin()
	m.chgHeader(2, "a", "", false) // delete the second A
	m.chgHeader(2, "A", "two-again", false)
	m.insHeader(2, "C", "inserted", false)
	m.chgHeader(3, "A", "three", false)
	if err := m.commit(); err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(m.Reader())
	want := "A: 1\r\nB: 1\r\nC: inserted\r\nA: two-again\r\nA: three\r\n\r\nbody\r\n"
	if string(out) != want {
		t.Errorf("got %q\nwant %q", out, want)
	}
	// For the next filter the deleted field is gone: A index 2 is "three".
	m.begin()
	m.chgHeader(2, "A", "", false)
	m.rollback()
	out, _ = io.ReadAll(m.Reader())
	if string(out) != want {
		t.Errorf("rollback: %q", out)
	}
	m.begin()
	m.chgHeader(2, "A", "", false)
	m.commit()
	out, _ = io.ReadAll(m.Reader())
	if want2 := "A: 1\r\nB: 1\r\nC: inserted\r\nA: three\r\n\r\nbody\r\n"; string(out) != want2 {
		t.Errorf("got %q", out)
	}
	// A value cannot smuggle a field or end the header.
	m.begin()
	m.addHeader("X-Evil", "a\nBcc: victim@example.org\n\nbody", false)
	m.commit()
	out, _ = io.ReadAll(m.Reader())
	if !strings.Contains(string(out), "X-Evil: a\r\n\tBcc: victim@example.org\r\n\tbody\r\n\r\nbody\r\n") {
		t.Errorf("got %q", out)
	}
}

func TestReadMessageShapes(t *testing.T) {
	for _, c := range []struct {
		msg    string
		fields int
		body   string
	}{
		{"Subject: x\r\n\r\nbody\r\n", 1, "body\r\n"},
		{"Subject: x\n\nbody\n", 1, "body\n"},
		{"no header here\r\nSubject: y\r\n", 0, "no header here\r\nSubject: y\r\n"},
		{"Subject: x\r\nnot a field\r\n", 1, "not a field\r\n"},
		{"Subject: only\r\n", 1, ""},
		{"\r\nbody only\r\n", 0, "body only\r\n"},
		{" leading space\r\n", 0, " leading space\r\n"},
	} {
		m, err := ReadMessage(strings.NewReader(c.msg), int64(len(c.msg)))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(m.bodyReader())
		if len(m.Fields()) != c.fields || string(b) != c.body {
			t.Errorf("%q: %d fields, body %q", c.msg, len(m.Fields()), b)
		}
		out, _ := io.ReadAll(m.Reader())
		if string(out) != c.msg {
			t.Errorf("%q: read back %q", c.msg, out)
		}
	}
	big := "Subject: " + strings.Repeat("x", MaxHeader) + "\r\n\r\n"
	if _, err := ReadMessage(strings.NewReader(big), int64(len(big))); err != ErrHeaderTooLarge {
		t.Errorf("big header: %v", err)
	}
}

func TestBodyWriter(t *testing.T) {
	for _, chunks := range [][]string{
		{"a\nb\r\nc\r", "\nd\r", "e"},
		{"a\r\nb\r\nc\r\nd\re\r\n"},
		{"a\n", "b\n", "c\r\n", "d\r", "e"},
	} {
		dir := t.TempDir()
		m := &Message{TempDir: dir}
		for _, c := range chunks {
			if err := m.replaceBody([]byte(c)); err != nil {
				t.Fatal(err)
			}
		}
		if err := m.commit(); err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(m.bodyReader())
		if string(b) != "a\r\nb\r\nc\r\nd\re\r\n" {
			t.Errorf("%q: %q", chunks, b)
		}
		m.Close()
	}
}

func TestCRLFReader(t *testing.T) {
	in := strings.Repeat("line\n", 30000) + "cr\r\nend"
	var out bytes.Buffer
	r := newCRLFReader(strings.NewReader(in), 16)
	defer r.release()
	buf := make([]byte, 7)
	for {
		n, err := r.Read(buf)
		out.Write(buf[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if want := strings.Repeat("line\r\n", 30000) + "cr\r\nend"; out.String() != want {
		t.Errorf("%d bytes, want %d", out.Len(), len(want))
	}
}

// The converter gives what a byte-by-byte conversion gives, whatever the
// sizes of the reads on either side.
func TestCRLFReaderSizes(t *testing.T) {
	ref := func(in []byte) []byte {
		var out []byte
		prev := byte(0)
		for _, b := range in {
			if b == '\n' && prev != '\r' {
				out = append(out, '\r')
			}
			out = append(out, b)
			prev = b
		}
		return out
	}
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte("ab\r\n\n")
	for i := 0; i < 300; i++ {
		in := make([]byte, rng.IntN(3*smallChunk))
		for j := range in {
			in[j] = alphabet[rng.IntN(len(alphabet))]
		}
		r := newCRLFReader(iotest.HalfReader(bytes.NewReader(in)), 16)
		buf := make([]byte, 1+rng.IntN(40))
		var out []byte
		for {
			n, err := r.Read(buf)
			out = append(out, buf[:n]...)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		r.release()
		if want := ref(in); !bytes.Equal(out, want) {
			t.Fatalf("case %d (%d bytes, reads of %d): got %d bytes, want %d", i, len(in), len(buf), len(out), len(want))
		}
	}
}

// Failure modes: what on_failure says, sendmail's log lines, and no wait
// beyond the timeouts.
func TestFailures(t *testing.T) {
	for _, c := range []struct {
		name   string
		socket func(t *testing.T) string
		mode   string
		want   string // verdict of the first refused stage, "" for none
		stage  string // where it shows: "session", "eom"
		log    []string
	}{
		{"down tempfail", miltertestClosed, "tempfail", "tempfail 451 4.3.2 Please try again later", "session",
			[]string{"Milter (f): error connecting to filter: Connection refused", "Milter (f): to error state", "Milter: initialization failed, temp failing commands"}},
		{"down reject", miltertestClosed, "reject", "reject 550 5.0.0 Command rejected", "session",
			[]string{"Milter: initialization failed, rejecting commands"}},
		{"down accept", miltertestClosed, "accept", "", "", []string{"Milter (f): to error state"}},
		{"hang tempfail", hangT, "tempfail", "tempfail 451 4.3.2 Please try again later", "session",
			[]string{"Milter (f): timeout before data read, where=negotiate", "Milter (f): to error state"}},
		{"garbage reject", garbageT, "reject", "reject 550 5.0.0 Command rejected", "session",
			[]string{"milter_read(f): read size 1213486159 out of range, where=negotiate"}},
		{"garbage accept", garbageT, "accept", "", "", []string{"Milter (f): to error state"}},
		{"closes in body", func(t *testing.T) string {
			return miltertest.Start(t, miltertest.New(miltertest.Behaviour{CloseAt: "body"}))
		}, "tempfail",
			"tempfail 451 4.3.2 Please try again later", "eom",
			[]string{"x3N8T4Sn012752: Milter (f): to error state", "Milter: data, reject=451 4.3.2 Please try again later"}},
		{"closes in body reject", func(t *testing.T) string {
			return miltertest.Start(t, miltertest.New(miltertest.Behaviour{CloseAt: "body"}))
		}, "reject",
			"reject 554 5.7.1 Command rejected", "eom", []string{"Milter: data, reject=554 5.7.1 Command rejected"}},
		{"slow at eom", func(t *testing.T) string {
			return miltertest.Start(t, miltertest.New(miltertest.Behaviour{Delay: map[string]time.Duration{"eom": 2 * time.Second}}))
		}, "tempfail", "tempfail 451 4.3.2 Please try again later", "eom",
			[]string{"Milter (f): timeout before data read, where=eom"}},
		{"slow at mail, accept", func(t *testing.T) string {
			return miltertest.Start(t, miltertest.New(miltertest.Behaviour{Delay: map[string]time.Duration{"mail": 2 * time.Second}}))
		}, "accept", "", "", []string{"Milter (f): timeout before data read, where=mail"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			h := newHarness(t, filter("f", c.socket(t), c.mode))
			var got Verdict
			var where string
			stages := []struct {
				name string
				fn   func() Verdict
			}{
				{"session", func() Verdict { return h.s.Connect("client.example", netip.MustParseAddrPort("192.0.2.7:1")) }},
				{"session", func() Verdict { return h.s.Helo("client.example") }},
				{"mail", func() Verdict { h.s.ID = "x3N8T4Sn012752"; return h.s.Mail("a@example.org", nil) }},
				{"rcpt", func() Verdict { return h.s.Rcpt("b@example.net", nil) }},
				{"data", func() Verdict { return h.s.Data() }},
				{"eom", func() Verdict { v, _, _ := h.eom(testMsg); return v }},
			}
			for _, st := range stages {
				if got = st.fn(); got.Action != Continue {
					where = st.name
					break
				}
			}
			if got.Action == Continue {
				got = Verdict{}
			}
			if c.want == "" && got.Action != Continue || c.want != "" && got.String() != c.want {
				t.Errorf("verdict %q at %s, want %q at %s\n%s", got, where, c.want, c.stage, h.log)
			}
			if c.want != "" && where != c.stage {
				t.Errorf("refused at %s, want %s", where, c.stage)
			}
			for _, l := range c.log {
				if !strings.Contains(h.log.String(), l) {
					t.Errorf("log lacks %q:\n%s", l, h.log)
				}
			}
			if d := time.Since(start); d > 8*time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
}

func miltertestClosed(t *testing.T) string { return miltertest.ClosedPort(t) }
func hangT(t *testing.T) string            { return miltertest.Hang(t) }
func garbageT(t *testing.T) string         { return miltertest.Garbage(t) }

// Progress reports keep a slow filter alive past the read timeout, but
// not past the end-of-message timeout.
func TestProgress(t *testing.T) {
	progress := func(n int, every time.Duration, final byte) func(c net.Conn) {
		return func(c net.Conn) {
			for i := 0; i < n; i++ {
				time.Sleep(every)
				if miltertest.WritePacket(c, 'p', nil) != nil {
					return
				}
			}
			miltertest.WritePacket(c, 'h', []byte("X-Slow\x00yes\x00"))
			miltertest.WritePacket(c, final, nil)
		}
	}
	to := Timeouts{Connect: 2 * time.Second, Send: 2 * time.Second, Read: time.Second, EOM: 4 * time.Second}
	// 8 reports 250 ms apart: 2 s in all, past the read timeout.
	h := newHarness(t, NewFilter("slow", miltertest.Scripted(t, actAddHdrs, 0, progress(8, 250*time.Millisecond, 'a')), "tempfail", to))
	h.upToData()
	v, _, out := h.eom(testMsg)
	if v.Action != Continue || !strings.Contains(out, "X-Slow: yes\r\n") {
		t.Fatalf("%v %q\n%s", v, out, h.log)
	}
	// 60 reports: the EOM timeout ends it, and the header it would have
	// added is not there.
	start := time.Now()
	h = newHarness(t, NewFilter("slow", miltertest.Scripted(t, actAddHdrs, 0, progress(60, 250*time.Millisecond, 'a')), "accept", to))
	h.upToData()
	v, _, out = h.eom(testMsg)
	if v.Action != Continue || out != testMsg {
		t.Fatalf("%v %q", v, out)
	}
	if d := time.Since(start); d > 8*time.Second {
		t.Errorf("took %v", d)
	}
	if !strings.Contains(h.log.String(), "milter_data(slow): EOM ACK/NAK timeout") {
		t.Errorf("log:\n%s", h.log)
	}
}

// A filter that changes things and then fails (accept mode) leaves the
// message as it was; one that replaces the body without having asked to
// gets the message tempfailed, as in sendmail.
func TestPartialChangesUndone(t *testing.T) {
	h := newHarness(t, NewFilter("broken", miltertest.Scripted(t, 0x1ff, 0, func(c net.Conn) {
		miltertest.WritePacket(c, 'h', []byte("X-Half\x00done\x00"))
		miltertest.WritePacket(c, '+', []byte("<extra@example.com>\x00"))
		c.Close()
	}), "accept", fast))
	h.upToData()
	v, ch, out := h.eom(testMsg)
	if v.Action != Continue || out != testMsg || !ch.Empty() {
		t.Errorf("%v %q %+v", v, out, ch)
	}
	h = newHarness(t, NewFilter("liar", miltertest.Scripted(t, actAddHdrs, 0, func(c net.Conn) {
		miltertest.WritePacket(c, 'b', []byte("new body"))
		miltertest.WritePacket(c, 'a', nil)
	}), "accept", fast))
	h.upToData()
	if v, _, _ := h.eom(testMsg); v.String() != "tempfail 451 4.3.2 Please try again later" {
		t.Errorf("%v", v)
	}
	if !strings.Contains(h.log.String(), "milter_data(liar): lied about replacing body, rejecting request and tempfailing message") {
		t.Errorf("log:\n%s", h.log)
	}
}

// A header edit whose field name is not one (a line break, a colon, a
// space in it) is left out and logged; the filter's other edits stand.
func TestBadHeaderName(t *testing.T) {
	h := newHarness(t, NewFilter("names", miltertest.Scripted(t, actAddHdrs|actChgHdrs, 0, func(c net.Conn) {
		miltertest.WritePacket(c, 'h', []byte("X-Bad\r\nBcc\x00victim@example.org\x00"))
		miltertest.WritePacket(c, 'i', []byte("\x00\x00\x00\x00Subject: x\x00y\x00"))
		miltertest.WritePacket(c, 'm', []byte("\x00\x00\x00\x01To \x00\x00"))
		miltertest.WritePacket(c, 'h', []byte("X-Good\x00yes\x00"))
		miltertest.WritePacket(c, 'c', nil)
	}), "tempfail", fast))
	h.upToData()
	v, _, out := h.eom(testMsg)
	if v.Action != Continue {
		t.Fatalf("%v\n%s", v, h.log)
	}
	if want := strings.Replace(testMsg, "\r\n\r\n", "\r\nX-Good: yes\r\n\r\n", 1); out != want {
		t.Errorf("got %q\nwant %q", out, want)
	}
	for _, l := range []string{`Milter (names): bad header name "X-Bad\r\nBcc", request ignored`,
		`Milter (names): bad header name "Subject: x", request ignored`, `Milter (names): bad header name "To ", request ignored`} {
		if !strings.Contains(h.log.String(), l) {
			t.Errorf("log lacks %s:\n%s", l, h.log)
		}
	}
}

// A bogus answer puts the filter in error state.
func TestBogusAnswer(t *testing.T) {
	h := newHarness(t, NewFilter("bogus", miltertest.Scripted(t, 0, 0, func(c net.Conn) {
		miltertest.WritePacket(c, 'Z', nil)
	}), "tempfail", fast))
	h.upToData()
	if v, _, _ := h.eom(testMsg); v.Action != Tempfail {
		t.Errorf("%v", v)
	}
	if !strings.Contains(h.log.String(), "milter_data(bogus): returned bogus response Z") {
		t.Errorf("log:\n%s", h.log)
	}
	// The session stays failed: the next message is tempfailed at MAIL.
	if v := h.s.Mail("a@example.org", nil); v.Action != Tempfail {
		t.Errorf("next MAIL: %v", v)
	}
}

// The symbol lists a filter asks for (SMFIF_SETSYMLIST) replace the
// defaults for those stages.
func TestSymbolList(t *testing.T) {
	got := make(chan string, 1)
	sock := miltertest.Raw(t, func(c net.Conn) {
		for {
			code, data, err := miltertest.ReadPacket(c)
			if err != nil {
				return
			}
			switch code {
			case 'O':
				d := miltertest.OptNeg(actSetSymList, optNoHelo|optNoRcpt|optNoHdrs|optNoBody|optNoEOH)
				d = binary.BigEndian.AppendUint32(d, stageConnect)
				d = append(d, "{client_addr} j\x00"...)
				miltertest.WritePacket(c, 'O', d)
			case 'D':
				if data[0] == 'C' {
					got <- string(data[1:])
				}
			case 'Q':
				return
			case 'E':
				miltertest.WritePacket(c, 'a', nil)
			default:
				miltertest.WritePacket(c, 'c', nil)
			}
		}
	})
	h := newHarness(t, filter("sym", sock, "tempfail"))
	h.upToData()
	if v, _, _ := h.eom(testMsg); v.Action != Continue {
		t.Fatal(v)
	}
	if s := <-got; s != "{client_addr}\x00192.0.2.7\x00j\x00mx.test.example\x00" {
		t.Errorf("connect macros %q", s)
	}
}

// A filter on a Unix socket (sendmail's local:) sees the message; a socket
// that is not there fails as sendmail says, with the filter's mode.
func TestUnixSocket(t *testing.T) {
	dir := t.TempDir()
	m := miltertest.New(miltertest.Behaviour{})
	h := newHarness(t, filter("unix", miltertest.StartUnix(t, m, filepath.Join(dir, "f.sock")), "tempfail"))
	h.upToData()
	if v, _, _ := h.eom(testMsg); v.Action != Continue {
		t.Fatalf("%v\n%s", v, h.log)
	}
	if got := m.LastMsg(); got == nil || !got.Done || string(got.Body) != "Hello\r\nsecond line\r\n" {
		t.Errorf("the filter saw %+v", got)
	}

	h = newHarness(t, filter("gone", "unix:"+filepath.Join(dir, "none.sock"), "tempfail"))
	v := h.s.Connect("client.example", netip.MustParseAddrPort("192.0.2.7:1"))
	if v.Action != Tempfail || !strings.Contains(h.log.String(), "Milter (gone): error connecting to filter: No such file or directory") {
		t.Errorf("%v\n%s", v, h.log)
	}
}

// A bad socket fails like a filter that is down.
func TestBadSocket(t *testing.T) {
	h := newHarness(t, filter("bad", "tcp:1@x", "tempfail"))
	v := h.s.Connect("client.example", netip.MustParseAddrPort("192.0.2.7:1"))
	if v.Action != Tempfail || !strings.Contains(h.log.String(), "Milter (bad): unknown socket type tcp") {
		t.Errorf("%v\n%s", v, h.log)
	}
}

// A filter that answers nothing but the end of the message (rspamd asks
// for SMFIP_NR_* on every step) gets every step in order, and the steps
// after the negotiation go out together: one write at the end of the
// message instead of one per step, and the goodbye after them.
func TestNoReplySteps(t *testing.T) {
	type read struct {
		cmds string
	}
	reads := make(chan read, 64)
	sock := miltertest.Raw(t, func(c net.Conn) {
		buf := make([]byte, 1<<20)
		var stream []byte
		for {
			n, err := c.Read(buf)
			if n > 0 {
				stream = append(stream, buf[:n]...)
				var cmds []byte
				for len(stream) >= 5 {
					size := int(binary.BigEndian.Uint32(stream))
					if len(stream) < 4+size {
						break
					}
					cmds = append(cmds, stream[4])
					switch stream[4] {
					case 'O':
						miltertest.WritePacket(c, 'O', miltertest.OptNeg(0, nrAll))
					case 'E':
						miltertest.WritePacket(c, 'a', nil)
					}
					stream = stream[4+size:]
				}
				reads <- read{string(cmds)}
			}
			if err != nil {
				close(reads)
				return
			}
		}
	})
	h := newHarness(t, filter("nr", sock, "tempfail"))
	h.upToData("b@example.net", "c@example.net")
	all := []string{(<-reads).cmds}
	select {
	case r := <-reads:
		t.Errorf("steps sent before the end of the message: %q", r.cmds)
		all = append(all, r.cmds)
	case <-time.After(200 * time.Millisecond):
	}
	v, _, _ := h.eom(testMsg)
	if v.Action != Continue {
		t.Fatalf("%v\n%s", v, h.log)
	}
	h.s.Close()
	for r := range reads {
		all = append(all, r.cmds)
	}
	// The macros (D) go before the step they are for; six header fields.
	want := "O" + "DCH" + "DMDRDRDT" + "LLLLLL" + "DNB" + "DE" + "Q"
	if got := strings.Join(all, ""); got != want {
		t.Errorf("the filter got %q, want %q", got, want)
	}
}
