// Package miltertest is a filter for tests: go-milter's server side,
// told per test what to answer at each stage and what to change at the
// end of the message, recording what it was shown; and raw servers that
// misbehave (hang, speak garbage, report progress).
package miltertest

import (
	"encoding/binary"
	"io"
	"net"
	nettextproto "net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	gm "github.com/emersion/go-milter"
)

// Behaviour is what the filter answers and does.
type Behaviour struct {
	// Answers per stage; nil means continue.
	Connect, Helo, Mail, EOH gm.Response
	Rcpt                     func(rcpt string) gm.Response
	Header                   func(name, value string) gm.Response
	// EOM makes the changes at the end of the message and returns the
	// final answer (nil: accept).
	EOM func(m *gm.Modifier) (gm.Response, error)
	// Delay, per stage ("connect", "helo", "mail", "rcpt", "header",
	// "eoh", "body", "eom"), before answering.
	Delay map[string]time.Duration
	// CloseAt closes the connection instead of answering at that stage.
	CloseAt string
}

// Milter is the configurable filter. Its record (Sessions) may be read
// and its Behaviour changed (Set) while it runs.
type Milter struct {
	Behaviour
	// Actions and Protocol are what it negotiates; zero Actions means
	// every action.
	Actions  gm.OptAction
	Protocol gm.OptProtocol

	mu       sync.Mutex
	sessions []*Session
	ln       net.Listener
}

// New makes a filter that behaves as b.
func New(b Behaviour) *Milter { return &Milter{Behaviour: b} }

// Set changes the behaviour for the connections' next steps.
func (m *Milter) Set(b Behaviour) {
	m.mu.Lock()
	m.Behaviour = b
	m.mu.Unlock()
}

func (m *Milter) now() Behaviour {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.Behaviour
}

// Session is what one connection showed the filter.
type Session struct {
	Host    string
	Family  string
	Port    uint16
	Addr    string
	HeloArg string
	Msgs    []*Msg
	Aborts  int
	// Macros seen per stage.
	Macros map[string]map[string]string
}

// Msg is one message as the filter saw it.
type Msg struct {
	From    string
	Rcpts   []string
	Headers [][2]string
	Body    []byte
	Done    bool // the end of the message was reached
}

// Start serves the filter on a loopback port until the test ends and
// returns its socket in sendmail's notation (inet:PORT@127.0.0.1).
func Start(t testing.TB, m *Milter) string {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serve(t, m, ln)
	return Socket(ln.Addr())
}

// StartUnix serves the filter on a Unix socket at path until the test
// ends and returns its socket in sendmail's notation (local:PATH).
func StartUnix(t testing.TB, m *Milter, path string) string {
	t.Helper()
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	serve(t, m, ln)
	return "local:" + path
}

func serve(t testing.TB, m *Milter, ln net.Listener) {
	m.ln = ln
	acts := m.Actions
	if acts == 0 {
		acts = gm.OptAddHeader | gm.OptChangeBody | gm.OptAddRcpt | gm.OptRemoveRcpt | gm.OptChangeHeader | gm.OptQuarantine | gm.OptChangeFrom
	}
	srv := &gm.Server{Actions: acts, Protocol: m.Protocol, NewMilter: func() gm.Milter { return &backend{m: m} }}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
}

// Socket is the sendmail notation of a TCP address.
func Socket(a net.Addr) string {
	ta := a.(*net.TCPAddr)
	return "inet:" + itoa(ta.Port) + "@" + ta.IP.String()
}

func itoa(n int) string {
	b := make([]byte, 0, 6)
	for {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
		if n == 0 {
			return string(b)
		}
	}
}

// Sessions returns copies of what the filter has seen so far.
func (m *Milter) Sessions() []Session {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Session, len(m.sessions))
	for i, s := range m.sessions {
		out[i] = *s
		out[i].Msgs = nil
		for _, msg := range s.Msgs {
			c := *msg
			out[i].Msgs = append(out[i].Msgs, &c)
		}
	}
	return out
}

// LastMsg returns the last message seen, or nil.
func (m *Milter) LastMsg() *Msg {
	ss := m.Sessions()
	for i := len(ss) - 1; i >= 0; i-- {
		if n := len(ss[i].Msgs); n > 0 {
			return ss[i].Msgs[n-1]
		}
	}
	return nil
}

// backend is one go-milter session; go-milter makes a new one after each
// message that ended, so the Session is found by the connection.
type backend struct {
	m    *Milter
	sess *Session
	msg  *Msg
}

var errClose = io.ErrClosedPipe

func (b *backend) step(stage string, mod *gm.Modifier) error {
	b.m.mu.Lock()
	d := b.m.Behaviour.Delay[stage]
	closeAt := b.m.Behaviour.CloseAt
	if b.sess == nil {
		b.sess = &Session{Macros: map[string]map[string]string{}}
		b.m.sessions = append(b.m.sessions, b.sess)
	}
	if mod != nil && len(mod.Macros) > 0 {
		mm := map[string]string{}
		for k, v := range mod.Macros {
			mm[k] = v
		}
		b.sess.Macros[stage] = mm
	}
	b.m.mu.Unlock()
	if d > 0 {
		time.Sleep(d)
	}
	if closeAt == stage {
		return errClose
	}
	return nil
}

func orContinue(r gm.Response) gm.Response {
	if r == nil {
		return gm.RespContinue
	}
	return r
}

func (b *backend) Connect(host, family string, port uint16, addr net.IP, mod *gm.Modifier) (gm.Response, error) {
	if err := b.step("connect", mod); err != nil {
		return nil, err
	}
	b.m.mu.Lock()
	b.sess.Host, b.sess.Family, b.sess.Port = host, family, port
	if addr != nil {
		b.sess.Addr = addr.String()
	}
	b.m.mu.Unlock()
	return orContinue(b.m.now().Connect), nil
}

func (b *backend) Helo(name string, mod *gm.Modifier) (gm.Response, error) {
	if err := b.step("helo", mod); err != nil {
		return nil, err
	}
	b.m.mu.Lock()
	b.sess.HeloArg = name
	b.m.mu.Unlock()
	return orContinue(b.m.now().Helo), nil
}

func (b *backend) MailFrom(from string, mod *gm.Modifier) (gm.Response, error) {
	if err := b.step("mail", mod); err != nil {
		return nil, err
	}
	b.m.mu.Lock()
	b.msg = &Msg{From: from}
	b.sess.Msgs = append(b.sess.Msgs, b.msg)
	b.m.mu.Unlock()
	return orContinue(b.m.now().Mail), nil
}

func (b *backend) RcptTo(rcpt string, mod *gm.Modifier) (gm.Response, error) {
	if err := b.step("rcpt", mod); err != nil {
		return nil, err
	}
	b.m.mu.Lock()
	if b.msg != nil {
		b.msg.Rcpts = append(b.msg.Rcpts, rcpt)
	}
	b.m.mu.Unlock()
	if f := b.m.now().Rcpt; f != nil {
		return orContinue(f(rcpt)), nil
	}
	return gm.RespContinue, nil
}

func (b *backend) Header(name, value string, mod *gm.Modifier) (gm.Response, error) {
	if err := b.step("header", nil); err != nil {
		return nil, err
	}
	b.m.mu.Lock()
	if b.msg == nil { // a new backend after an earlier message's end
		b.msg = &Msg{}
		b.sess.Msgs = append(b.sess.Msgs, b.msg)
	}
	b.msg.Headers = append(b.msg.Headers, [2]string{name, value})
	b.m.mu.Unlock()
	if f := b.m.now().Header; f != nil {
		return orContinue(f(name, value)), nil
	}
	return gm.RespContinue, nil
}

func (b *backend) Headers(h nettextproto.MIMEHeader, mod *gm.Modifier) (gm.Response, error) {
	if err := b.step("eoh", mod); err != nil {
		return nil, err
	}
	return orContinue(b.m.now().EOH), nil
}

func (b *backend) BodyChunk(chunk []byte, mod *gm.Modifier) (gm.Response, error) {
	if err := b.step("body", nil); err != nil {
		return nil, err
	}
	b.m.mu.Lock()
	if b.msg != nil {
		b.msg.Body = append(b.msg.Body, chunk...)
	}
	b.m.mu.Unlock()
	return gm.RespContinue, nil
}

func (b *backend) Body(mod *gm.Modifier) (gm.Response, error) {
	if err := b.step("eom", mod); err != nil {
		return nil, err
	}
	b.m.mu.Lock()
	if b.msg != nil {
		b.msg.Done = true
	}
	b.m.mu.Unlock()
	eom := b.m.now().EOM
	if eom == nil {
		return gm.RespAccept, nil
	}
	r, err := eom(mod)
	if r == nil && err == nil {
		r = gm.RespAccept
	}
	return r, err
}

func (b *backend) Abort(mod *gm.Modifier) error {
	b.m.mu.Lock()
	if b.sess != nil {
		b.sess.Aborts++
	}
	b.m.mu.Unlock()
	return nil
}

// Reply makes an SMFIR_REPLYCODE answer, e.g. Reply("550 5.7.1 No thanks").
func Reply(text string) gm.Response { return gm.NewResponseStr('y', text) }

// ClosedPort returns a loopback socket nothing listens on.
func ClosedPort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := Socket(ln.Addr())
	ln.Close()
	return s
}

// Raw serves a hand-written filter until the test ends: handle gets each
// accepted connection, which is closed when handle returns or the test ends.
func Raw(t testing.TB, handle func(c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	done := make(chan struct{})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				go func() { <-done; c.Close() }()
				handle(c)
			}()
		}
	}()
	t.Cleanup(func() { close(done); ln.Close(); wg.Wait() })
	return Socket(ln.Addr())
}

// Hang accepts connections and never answers.
func Hang(t testing.TB) string {
	return Raw(t, func(c net.Conn) { io.Copy(io.Discard, c) })
}

// Garbage answers the first packet with bytes that are not the protocol
// (an HTTP server's greeting, say).
func Garbage(t testing.TB) string {
	return Raw(t, func(c net.Conn) {
		if _, _, err := ReadPacket(c); err != nil {
			return
		}
		c.Write([]byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"))
		io.Copy(io.Discard, c)
	})
}

// ReadPacket reads one milter packet.
func ReadPacket(r io.Reader) (byte, []byte, error) {
	var head [5]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(head[:4])
	if n == 0 || n > 4<<20 {
		return 0, nil, io.ErrUnexpectedEOF
	}
	data := make([]byte, n-1)
	_, err := io.ReadFull(r, data)
	return head[4], data, err
}

// WritePacket writes one milter packet.
func WritePacket(w io.Writer, code byte, data []byte) error {
	_, err := w.Write(Packet(code, data))
	return err
}

// Packet is one milter packet: its length, code and data.
func Packet(code byte, data []byte) []byte {
	b := make([]byte, 5, 5+len(data))
	binary.BigEndian.PutUint32(b, uint32(len(data)+1))
	b[4] = code
	return append(b, data...)
}

// OptNeg is a filter's answer to the negotiation (an 'O' packet's data):
// protocol version 6, the actions it may take and its protocol flags.
// Symbol lists may be appended.
func OptNeg(actions, protocol uint32) []byte {
	d := binary.BigEndian.AppendUint32(nil, 6)
	d = binary.BigEndian.AppendUint32(d, actions)
	return binary.BigEndian.AppendUint32(d, protocol)
}

// Scripted is a raw version-6 filter that continues through everything
// and answers the end of the message with eom(c), which writes whatever
// it wants (progress reports, changes, a final answer). It negotiates
// actions and protocol as given.
func Scripted(t testing.TB, actions, protocol uint32, eom func(c net.Conn)) string {
	return Raw(t, func(c net.Conn) {
		for {
			code, _, err := ReadPacket(c)
			if err != nil {
				return
			}
			switch code {
			case 'O':
				WritePacket(c, 'O', OptNeg(actions, protocol))
			case 'D', 'A':
			case 'Q':
				return
			case 'E':
				eom(c)
			default:
				WritePacket(c, 'c', nil)
			}
		}
	})
}

// Log collects log lines for tests (an io.Writer for maillog.New).
type Log struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *Log) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *Log) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
