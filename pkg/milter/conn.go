package milter

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"time"
)

// The milter protocol, version 6 (libmilter's mfdef.h): every packet is a
// 4-byte big-endian length (of what follows), a command or reply letter,
// and data.
const (
	protoVersion = 6

	cmdAbort   = 'A'
	cmdBody    = 'B'
	cmdConnect = 'C'
	cmdMacro   = 'D'
	cmdEOB     = 'E'
	cmdHelo    = 'H'
	cmdHeader  = 'L'
	cmdMail    = 'M'
	cmdEOH     = 'N'
	cmdOptNeg  = 'O'
	cmdQuit    = 'Q'
	cmdQuitNC  = 'K' // quit, a new connection follows: the filter starts over
	cmdRcpt    = 'R'
	cmdData    = 'T'

	repAddRcpt    = '+'
	repDelRcpt    = '-'
	repAddRcptPar = '2'
	repAccept     = 'a'
	repReplBody   = 'b'
	repContinue   = 'c'
	repDiscard    = 'd'
	repChgFrom    = 'e'
	repAddHeader  = 'h'
	repInsHeader  = 'i'
	repChgHeader  = 'm'
	repProgress   = 'p'
	repQuarantine = 'q'
	repReject     = 'r'
	repSkip       = 's'
	repTempfail   = 't'
	repReplyCode  = 'y'

	// Actions a filter may take (SMFIF_*).
	actAddHdrs    = 0x01
	actChgBody    = 0x02
	actAddRcpt    = 0x04
	actDelRcpt    = 0x08
	actChgHdrs    = 0x10
	actQuarantine = 0x20
	actChgFrom    = 0x40
	actAddRcptPar = 0x80
	actSetSymList = 0x100
	ourActions    = 0x1ff

	// Protocol steps a filter may do without (SMFIP_*).
	optNoConnect = 0x1
	optNoHelo    = 0x2
	optNoMail    = 0x4
	optNoRcpt    = 0x8
	optNoBody    = 0x10
	optNoHdrs    = 0x20
	optNoEOH     = 0x40
	optNrHdr     = 0x80
	optNoUnknown = 0x100
	optNoData    = 0x200
	optSkip      = 0x400
	optNrConn    = 0x1000
	optNrHelo    = 0x2000
	optNrMail    = 0x4000
	optNrRcpt    = 0x8000
	optNrData    = 0x10000
	optNrEOH     = 0x40000
	optNrBody    = 0x80000
	optLeadSpace = 0x100000
	// What we offer: every step may be left out or left unanswered, the
	// body may be skipped and header values carry their leading space if
	// the filter wants. Not offered: rejected recipients (SMFIP_RCPT_REJ)
	// and data sizes above 64 KiB.
	ourProtocol = 0x1ff7ff

	// packetHead is the length field and the letter.
	packetHead = 5
	// chunkSize is the largest body chunk sent (MILTER_CHUNK_SIZE).
	chunkSize = 65535
	// maxPacket bounds what is read from a filter: libmilter sends at most
	// 1 MiB at a time; a larger length is garbage.
	maxPacket = 2 << 20
)

// Macro stages (SMFIM_*), the indexes of the symbol lists.
const (
	stageConnect = iota
	stageHelo
	stageMail
	stageRcpt
	stageData
	stageEOM
	stageEOH
	numStages
)

// ParseSocket reads a socket in sendmail's notation: inet:PORT@HOST,
// inet6:PORT@HOST (HOST may be in brackets), unix:/path or local:/path
// (the same), or a bare /path. It returns the network and address for
// net.Dial.
func ParseSocket(s string) (network, address string, err error) {
	kind, rest, ok := strings.Cut(s, ":")
	if !ok {
		if strings.HasPrefix(s, "/") {
			return "unix", s, nil
		}
		return "", "", fmt.Errorf("bad socket %q (expected inet:PORT@HOST, inet6:PORT@HOST or unix:/path)", s)
	}
	switch strings.ToLower(kind) {
	case "unix", "local", "":
		if rest == "" {
			return "", "", fmt.Errorf("empty or missing socket information")
		}
		return "unix", rest, nil
	case "inet", "inet6":
		port, host, ok := strings.Cut(rest, "@")
		if !ok || port == "" || host == "" {
			return "", "", fmt.Errorf("bad address %s (expected port@host)", rest)
		}
		host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
		network = "tcp4"
		if strings.EqualFold(kind, "inet6") {
			network = "tcp6"
		}
		return network, net.JoinHostPort(host, port), nil
	}
	return "", "", fmt.Errorf("unknown socket type %s", kind)
}

// failure is a filter's error, with the log line that says what went
// wrong in sendmail's words.
type failure struct {
	msg string
	err error
}

func (f *failure) Error() string { return f.msg }
func (f *failure) Unwrap() error { return f.err }

func failf(err error, format string, args ...any) *failure {
	return &failure{msg: fmt.Sprintf(format, args...), err: err}
}

// errText is an error as sendmail's sm_errstring prints it: the system's
// message ("Connection refused") rather than Go's chain of operations.
func errText(err error) string {
	var errno syscall.Errno
	switch {
	case errors.As(err, &errno):
		s := errno.Error()
		return strings.ToUpper(s[:1]) + s[1:]
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "Connection timed out"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "Connection reset by peer"
	}
	return err.Error()
}

// conn is the connection to one filter for one SMTP session.
type conn struct {
	f     *Filter
	nc    net.Conn
	r     *bufio.Reader
	head  [5]byte
	state state
	// pending holds packets the filter does not answer (macros, and the
	// steps it asked not to answer), which go out with the next write.
	pending []byte
	pendBuf *[]byte // the pooled buffer pending started in

	version uint32
	actions uint32
	proto   uint32
	// symbols are the macros the filter asked for, per stage (nil: the
	// defaults).
	symbols [numStages][]string

	// reusable says the filter's last answer was continue at the end of
	// the message and nothing was sent since: it can start over on this
	// connection (see Pool). reused says the connection came from the
	// pool and the filter has not answered on it since.
	reusable, reused bool
	idleSince        time.Time
}

type state int

const (
	stReady  state = iota // connected and negotiated; not in a message
	stInMsg               // a MAIL was passed on
	stDone                // accepted (or finished) the current message
	stClosed              // done with the whole connection
	stError               // failed: its on_failure decides
)

// dial connects and negotiates.
func dial(f *Filter) (*conn, error) {
	if f.sockErr != nil {
		return nil, failf(f.sockErr, "Milter (%s): %v", f.Name, f.sockErr)
	}
	var nc net.Conn
	var err error
	if f.network == "unix" {
		// A Unix socket connects at once or not at all (a full backlog
		// fails with EAGAIN), so it needs no timeout, nor the Dialer's
		// machinery, which showed in a filter's cost per session.
		nc, err = net.DialUnix("unix", nil, &net.UnixAddr{Name: f.address, Net: "unix"})
	} else {
		// No TCP keep-alive: a filter connection lasts one SMTP session,
		// and the setsockopt calls cost more than the probes could save.
		d := net.Dialer{Timeout: f.Timeouts.Connect, KeepAlive: -1}
		nc, err = d.Dial(f.network, f.address)
	}
	if err != nil {
		return nil, failf(err, "Milter (%s): error connecting to filter: %s", f.Name, errText(err))
	}
	c := newConn(f, nc)
	if err := c.negotiate(); err != nil {
		c.shut()
		return nil, err
	}
	return c, nil
}

// newConn starts the conversation on nc, before the negotiation.
func newConn(f *Filter, nc net.Conn) *conn { return &conn{f: f, nc: nc, r: getReader(nc)} }

func (c *conn) negotiate() error {
	var data [12]byte
	binary.BigEndian.PutUint32(data[0:], protoVersion)
	binary.BigEndian.PutUint32(data[4:], ourActions)
	binary.BigEndian.PutUint32(data[8:], ourProtocol)
	if err := c.write(cmdOptNeg, data[:], "negotiate"); err != nil {
		return err
	}
	code, resp, err := c.read(time.Time{}, "negotiate")
	if err != nil {
		return err
	}
	if code != cmdOptNeg {
		return failf(nil, "Milter (%s): negotiate: returned %c instead of %c", c.f.Name, code, cmdOptNeg)
	}
	if len(resp) < 12 {
		return failf(nil, "Milter (%s): negotiate: did not return enough info", c.f.Name)
	}
	c.version = binary.BigEndian.Uint32(resp[0:])
	c.actions = binary.BigEndian.Uint32(resp[4:])
	c.proto = binary.BigEndian.Uint32(resp[8:])
	if c.version < 2 || c.version > protoVersion {
		return failf(nil, "Milter (%s): negotiate: version %d != MTA milter version %d", c.f.Name, c.version, protoVersion)
	}
	// What a filter asks for beyond our offer (rejected recipients, large
	// data sizes) is not done; the steps it may skip are all ours to skip.
	c.actions &= ourActions
	if c.version <= 2 {
		c.proto |= optNoUnknown
	}
	if c.version <= 3 {
		c.proto |= optNoData
	}
	// The symbol lists: a stage number and a NUL-terminated list of names.
	for rest := resp[12:]; len(rest) >= 5; {
		stage := binary.BigEndian.Uint32(rest)
		rest = rest[4:]
		end := strings.IndexByte(string(rest), 0)
		if end < 0 {
			end = len(rest)
		}
		list := string(rest[:end])
		if end < len(rest) {
			rest = rest[end+1:]
		} else {
			rest = nil
		}
		if stage >= numStages {
			continue
		}
		c.symbols[stage] = strings.FieldsFunc(list, func(r rune) bool { return r == ' ' || r == ',' || r == '\t' })
	}
	return nil
}

// queue adds a packet to those sent with the next write.
func (c *conn) queue(cmd byte, data []byte) {
	c.reusable = false
	if c.pendBuf == nil {
		c.pendBuf = getChunk(smallChunk)
		c.pending = (*c.pendBuf)[:0]
	}
	c.pending = binary.BigEndian.AppendUint32(c.pending, uint32(len(data)+1))
	c.pending = append(c.pending, cmd)
	c.pending = append(c.pending, data...)
}

// flushAt bounds what waits in pending: beyond it the packets go out at
// once, so a large body is never held whole in memory.
const flushAt = 64 << 10

// send passes on a packet the filter does not answer (macros, abort, and
// the steps it asked not to answer with SMFIP_NR_*). It waits for the next
// write: a filter that answers only at the end of the message (rspamd's
// way) gets the whole message in one write instead of one per step. What
// waits goes out before anything the filter answers and before the
// goodbye, so the filter sees every step in order.
func (c *conn) send(cmd byte, data []byte, where string) error {
	c.queue(cmd, data)
	if len(c.pending) < flushAt {
		return nil
	}
	return c.writeBufs(net.Buffers{c.pending}, cmd, where)
}

// write sends one packet (after the queued ones) within the send timeout.
func (c *conn) write(cmd byte, data []byte, where string) error {
	c.reusable = false
	binary.BigEndian.PutUint32(c.head[:4], uint32(len(data)+1))
	c.head[4] = cmd
	return c.writeBufs(net.Buffers{c.pending, c.head[:], data}, cmd, where)
}

// writeBufs writes bufs, which start with what was pending, within the
// send timeout.
func (c *conn) writeBufs(bufs net.Buffers, cmd byte, where string) error {
	if t := c.f.Timeouts.Send; t > 0 {
		c.nc.SetWriteDeadline(time.Now().Add(t))
	}
	want := int64(0)
	for _, b := range bufs {
		want += int64(len(b))
	}
	c.pending = c.pending[:0]
	n, err := bufs.WriteTo(c.nc)
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			started := "before"
			if n > 0 {
				started = "during"
			}
			return failf(err, "Milter (%s): timeout %s data write, where=%s", c.f.Name, started, where)
		}
		return failf(err, "Milter (%s): write(%c) returned %d, expected %d: %s", c.f.Name, cmd, n, want, errText(err))
	}
	return nil
}

// read reads one packet within the read timeout, and before limit if it
// is set (the end-of-message timeout).
func (c *conn) read(limit time.Time, where string) (byte, []byte, error) {
	deadline := time.Time{}
	if t := c.f.Timeouts.Read; t > 0 {
		deadline = time.Now().Add(t)
	}
	if !limit.IsZero() && (deadline.IsZero() || limit.Before(deadline)) {
		deadline = limit
	}
	c.nc.SetReadDeadline(deadline)
	var head [5]byte
	n, err := io.ReadFull(c.r, head[:])
	if err != nil {
		return 0, nil, c.readError(err, n, 5, where)
	}
	size := binary.BigEndian.Uint32(head[:4])
	if size == 0 || size > maxPacket {
		return 0, nil, failf(nil, "milter_read(%s): read size %d out of range, where=%s", c.f.Name, int64(size)-1, where)
	}
	data := make([]byte, size-1)
	m, err := io.ReadFull(c.r, data)
	if err != nil {
		return 0, nil, c.readError(err, n+m, int(size)-1, where)
	}
	c.reused = false
	return head[4], data, nil
}

func (c *conn) readError(err error, got, want int, where string) error {
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		started := "before"
		if got > 0 {
			started = "during"
		}
		return failf(err, "Milter (%s): timeout %s data read, where=%s", c.f.Name, started, where)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return failf(err, "milter_sys_read(%s): cmd read returned %d, expecting %d", c.f.Name, got, want)
	}
	return failf(err, "Milter (%s): read returned -1: %s", c.f.Name, errText(err))
}

// close says goodbye (best effort), after what is pending, and closes.
func (c *conn) close() {
	if c.nc == nil {
		return
	}
	if c.state != stError {
		if c.reused && len(c.pending) == packetHead {
			// A kept connection let go before it was used: the filter
			// is still at the end of the last message, where a plain
			// goodbye is what it expects.
			c.pending = c.pending[:0]
		}
		c.queue(cmdQuit, nil)
		c.nc.SetWriteDeadline(time.Now().Add(time.Second))
		c.nc.Write(c.pending)
		c.pending = c.pending[:0]
	}
	c.shut()
}

// shut closes the connection and gives its buffers back.
func (c *conn) shut() {
	c.nc.Close()
	c.nc = nil
	if c.r != nil {
		putReader(c.r)
		c.r = nil
	}
	if c.pendBuf != nil {
		// Whether or not pending outgrew it, nothing else holds it.
		putChunk(c.pendBuf)
		c.pendBuf, c.pending = nil, nil
	}
}

// cstrings joins strings as NUL-terminated C strings.
func cstrings(ss ...string) []byte {
	n := 0
	for _, s := range ss {
		n += len(s) + 1
	}
	b := make([]byte, 0, n)
	for _, s := range ss {
		b = append(b, s...)
		b = append(b, 0)
	}
	return b
}

// splitC splits data made of NUL-terminated strings.
func splitC(data []byte) []string {
	s := string(data)
	s = strings.TrimSuffix(s, "\x00")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\x00")
}
