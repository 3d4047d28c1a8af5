// Package privlocal is the privileged part of local delivery. The daemon
// starts as root, binds its ports and then runs as the unprivileged `user`;
// writing into /var/mail and running alias programs as their owner need
// root, so before it drops its privileges the daemon starts one child
// process that keeps them (smtpd local-agent) and asks it for each local
// delivery, as Postfix's master starts local(8) as root. Everything that
// talks to the network, parses mail or signs stays in the unprivileged
// daemon.
//
// # The interface
//
// Parent and child share a SOCK_SEQPACKET socket pair (the child's end is
// its fd 3). Each request is one packet of JSON
//
//	{"id":7,"op":"deliver","queue_id":"…","sender":"…","recipient":"…",
//	 "user":"alice","kind":"mbox","path":"","command":""}
//
// carrying the message's open df file as an SCM_RIGHTS descriptor, and
// each answer one packet {"id":7,"ok":true} or {"id":7,"code":452,
// "enhanced":"4.2.2","temporary":true,"msg":"…"}. Requests may overlap;
// answers come back in any order, matched by id. {"op":"reload"} makes the
// child read its configuration and alias file again.
//
// # What the child trusts
//
// Nothing: it is written for a parent that has been taken over. It reads
// its own configuration as root and takes from a request only what a mail
// server must decide anyway: who the mail is for, and the message.
//
//   - kind mbox writes mail_spool_dir/USER; maildir writes USER's
//     HOME/Maildir (a request may not name another directory); the user
//     must be an account (transport/local's checks apply: no root-owned
//     or linked mailbox, and so on). Delivering into a mailbox is what
//     the daemon is for, so that needs no more proof.
//   - kind file and pipe run as the account the child computes itself
//     (the alias file's owner, or default_user when root owns it), and
//     only for a path or command that appears as a target in the alias
//     file or in a file it :include:s, as read by the child. A request for
//     anything else is refused, and a parent that was taken over cannot
//     run a command of its choosing as anybody. Commands and files never
//     run as root unless the configuration says so.
//   - the descriptor must be a regular file; its size is read from it.
//
// The child exits when the socket closes (the daemon stopped) and is sent
// SIGKILL if the daemon dies (PR_SET_PDEATHSIG); it ignores SIGTERM, SIGINT
// and SIGHUP, which a service manager sends to every process of a service
// it stops, so that the deliveries in flight finish. When the child is gone,
// local deliveries fail temporarily (the mail waits in the queue with the
// reason) and the daemon stops, so that the service manager starts both
// again: unprivileged, the daemon cannot start a new child itself.
package privlocal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/gosendmail/gosendmail/pkg/mailerr"
	"github.com/gosendmail/gosendmail/pkg/transport/local"
	"golang.org/x/sys/unix"
)

// MaxPacket bounds a request or answer.
const MaxPacket = 64 << 10

// request is one packet from the daemon.
type request struct {
	ID        uint64 `json:"id"`
	Op        string `json:"op"` // deliver, reload
	QueueID   string `json:"queue_id,omitempty"`
	Sender    string `json:"sender,omitempty"`
	Recipient string `json:"recipient,omitempty"`
	OrigRcpt  string `json:"orig_rcpt,omitempty"`
	User      string `json:"user,omitempty"`
	Kind      string `json:"kind,omitempty"` // mbox, maildir, file, pipe
	Path      string `json:"path,omitempty"`
	Command   string `json:"command,omitempty"`
}

// answer is one packet from the child.
type answer struct {
	ID        uint64 `json:"id"`
	OK        bool   `json:"ok,omitempty"`
	Code      int    `json:"code,omitempty"`
	Enhanced  string `json:"enhanced,omitempty"`
	Temporary bool   `json:"temporary,omitempty"`
	Msg       string `json:"msg,omitempty"`
}

func (a answer) err() error {
	if a.OK {
		return nil
	}
	e := mailerr.SMTP(a.Code, a.Enhanced, "%s", a.Msg)
	if a.Code == 0 {
		e = mailerr.SMTP(451, "4.3.0", "%s", a.Msg)
	}
	e.Temporary = a.Temporary
	if e.Temporary {
		e.Exit = mailerr.ExTempFail
	}
	return e
}

func answerOf(id uint64, err error) answer {
	if err == nil {
		return answer{ID: id, OK: true}
	}
	var me *mailerr.Error
	if errors.As(err, &me) && me.Code != 0 {
		return answer{ID: id, Code: me.Code, Enhanced: me.Enhanced, Temporary: me.Temporary, Msg: me.Msg}
	}
	return answer{ID: id, Code: 451, Enhanced: "4.3.0", Temporary: true, Msg: err.Error()}
}

// kindName and kindOf map transport/local's kinds to the wire's.
func kindName(k local.Kind) string {
	switch k {
	case local.Mbox:
		return "mbox"
	case local.Maildir:
		return "maildir"
	case local.File:
		return "file"
	case local.Pipe:
		return "pipe"
	}
	return ""
}

func kindOf(s string) (local.Kind, bool) {
	switch s {
	case "mbox":
		return local.Mbox, true
	case "maildir":
		return local.Maildir, true
	case "file":
		return local.File, true
	case "pipe":
		return local.Pipe, true
	}
	return 0, false
}

// Client is the daemon's end: it starts the child and sends it deliveries.
type Client struct {
	conn *net.UnixConn
	cmd  *exec.Cmd

	mu      sync.Mutex
	next    uint64
	waiting map[uint64]chan answer
	gone    error // set once the child cannot be reached
	done    chan struct{}
	exited  chan error // the child's exit, when Start ran it
}

// newClient serves the daemon's end of the socket.
func newClient(conn *net.UnixConn) *Client {
	c := &Client{conn: conn, waiting: map[uint64]chan answer{}, done: make(chan struct{})}
	go c.read()
	return c
}

// Done is closed when the child can no longer be reached (it exited, or
// closed its socket).
func (c *Client) Done() <-chan struct{} { return c.done }

// Err says why the child cannot be reached, once Done is closed.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gone
}

// Start runs exe with args as the child, its fd 3 the child's end of a new
// socket pair, with only env as its environment. Call it while still root.
func Start(exe string, args, env []string) (*Client, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("local delivery agent: socketpair: %w", err)
	}
	mine, theirs := os.NewFile(uintptr(fds[0]), "privlocal"), os.NewFile(uintptr(fds[1]), "privlocal-child")
	defer theirs.Close()
	cmd := exec.Command(exe, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.ExtraFiles = []*os.File{theirs}
	// The child ignores the signals of a stop (a service manager sends
	// them to every process of the service) and ends when the daemon
	// closes the socket, after the deliveries in flight; it is killed
	// if the daemon dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		mine.Close()
		return nil, fmt.Errorf("local delivery agent: %w", err)
	}
	fc, err := net.FileConn(mine)
	mine.Close()
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, fmt.Errorf("local delivery agent: %w", err)
	}
	c := &Client{conn: fc.(*net.UnixConn), cmd: cmd, waiting: map[uint64]chan answer{},
		done: make(chan struct{}), exited: make(chan error, 1)}
	go func() {
		err := cmd.Wait()
		c.exited <- err
		c.fail(fmt.Errorf("the local delivery agent exited (%v)", err))
	}()
	go c.read()
	return c, nil
}

// Pid is the child's process id.
func (c *Client) Pid() int { return c.cmd.Process.Pid }

func (c *Client) read() {
	buf := make([]byte, MaxPacket)
	for {
		n, err := c.conn.Read(buf)
		if err != nil || n == 0 {
			if c.exited != nil {
				// Say how it ended, if it is ending.
				select {
				case err := <-c.exited:
					c.fail(fmt.Errorf("the local delivery agent exited (%v)", err))
				case <-time.After(2 * time.Second):
				}
			}
			c.fail(errors.New("the local delivery agent closed its socket"))
			return
		}
		var a answer
		if json.Unmarshal(buf[:n], &a) != nil {
			continue
		}
		c.mu.Lock()
		ch := c.waiting[a.ID]
		delete(c.waiting, a.ID)
		c.mu.Unlock()
		if ch != nil {
			ch <- a
		}
	}
}

// fail marks the child unreachable and fails every waiting request.
func (c *Client) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gone == nil {
		c.gone = err
		close(c.done)
	}
	for id, ch := range c.waiting {
		ch <- answer{ID: id, Code: 451, Enhanced: "4.3.0", Temporary: true, Msg: c.gone.Error()}
		delete(c.waiting, id)
	}
}

// Deliver asks the child to deliver req, whose message is body (the
// queued df, open for reading).
func (c *Client) Deliver(ctx context.Context, req local.Request, body *os.File) error {
	r := request{Op: "deliver", QueueID: req.QueueID, Sender: req.Sender, Recipient: req.Recipient,
		OrigRcpt: req.OriginalRecipient, User: req.User, Kind: kindName(req.Target.Kind),
		Path: req.Target.Path, Command: req.Target.Command}
	return c.call(ctx, r, body)
}

// Reload makes the child read its configuration and aliases again.
func (c *Client) Reload(ctx context.Context) error {
	return c.call(ctx, request{Op: "reload"}, nil)
}

func (c *Client) call(ctx context.Context, r request, f *os.File) error {
	ch := make(chan answer, 1)
	c.mu.Lock()
	if c.gone != nil {
		err := c.gone
		c.mu.Unlock()
		return mailerr.SMTP(451, "4.3.0", "local delivery unavailable: %v", err)
	}
	c.next++
	r.ID = c.next
	c.waiting[r.ID] = ch
	c.mu.Unlock()
	b, err := json.Marshal(r)
	if err == nil && len(b) > MaxPacket {
		err = errors.New("request too large")
	}
	if err == nil {
		var oob []byte
		if f != nil {
			oob = unix.UnixRights(int(f.Fd()))
		}
		_, _, err = c.conn.WriteMsgUnix(b, oob, nil)
	}
	if err != nil {
		c.mu.Lock()
		delete(c.waiting, r.ID)
		c.mu.Unlock()
		return mailerr.SMTP(451, "4.3.0", "local delivery agent: %v", err)
	}
	select {
	case a := <-ch:
		return a.err()
	case <-ctx.Done():
		c.mu.Lock()
		delete(c.waiting, r.ID)
		c.mu.Unlock()
		return mailerr.SMTP(451, "4.3.0", "local delivery interrupted: %v", ctx.Err())
	}
}

// Close ends the child (it exits when its socket closes) and waits a
// moment for it.
func (c *Client) Close() error {
	return c.conn.Close()
}
