package privlocal

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"sync"
	"time"

	"github.com/gosendmail/gosendmail/pkg/aliases"
	"github.com/gosendmail/gosendmail/pkg/mailerr"
	"github.com/gosendmail/gosendmail/pkg/transport/local"
	"golang.org/x/sys/unix"
)

// Setup is what the child knows on its own, from its configuration.
type Setup struct {
	// Agent is the delivery agent in force.
	Agent func() *local.Agent
	// Aliases is the alias file in force (the child reads it itself).
	Aliases func() *aliases.Map
	// Include reads an :include: file of the alias file.
	Include func(path string) ([]aliases.Target, error)
	// ProgramUser is the account |program and /file targets run as.
	ProgramUser func() string
	// Reload reads the configuration and alias file again; may be nil.
	Reload func() error
}

// maxInFlight bounds concurrent deliveries in the child.
const maxInFlight = 32

// deliveryTimeout bounds one delivery (a command has its own, shorter,
// timeout in transport/local).
const deliveryTimeout = 15 * time.Minute

// Serve answers requests on conn until it closes (the daemon stopped),
// then waits for deliveries in progress.
func Serve(conn *net.UnixConn, s *Setup) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	sem := make(chan struct{}, maxInFlight)
	buf := make([]byte, MaxPacket)
	oob := make([]byte, unix.CmsgSpace(4*4))
	for {
		n, oobn, flags, _, err := conn.ReadMsgUnix(buf, oob)
		if err != nil || n == 0 {
			return nil // the daemon is gone
		}
		fds := rights(oob[:oobn])
		var r request
		if flags&(unix.MSG_TRUNC|unix.MSG_CTRUNC) != 0 || json.Unmarshal(buf[:n], &r) != nil {
			closeAll(fds)
			reply(conn, answerOf(r.ID, refused("malformed request")))
			continue
		}
		if r.Op == "reload" {
			closeAll(fds)
			var err error
			if s.Reload != nil {
				err = s.Reload()
			}
			reply(conn, answerOf(r.ID, err))
			continue
		}
		if r.Op != "deliver" || len(fds) != 1 {
			closeAll(fds)
			reply(conn, answerOf(r.ID, refused("a delivery request needs one message descriptor")))
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			f := os.NewFile(uintptr(fds[0]), "message")
			defer f.Close()
			reply(conn, answerOf(r.ID, s.deliver(r, f)))
		}()
	}
}

func reply(conn *net.UnixConn, a answer) {
	b, _ := json.Marshal(a)
	conn.Write(b)
}

// rights returns the descriptors passed in a control message.
func rights(oob []byte) []int {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil
	}
	var fds []int
	for _, m := range msgs {
		if fs, err := unix.ParseUnixRights(&m); err == nil {
			fds = append(fds, fs...)
		}
	}
	return fds
}

func closeAll(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// refused is the answer to a request the child will not carry out. It is
// temporary: a request that does not match the alias file may come from
// an alias changed since the daemon routed the message, and the mail then
// waits (visible in mailq) rather than bounce.
func refused(why string) error {
	return mailerr.SMTP(451, "4.3.5", "refused by the local delivery agent: %s", why)
}

// deliver checks a request against what the child knows and carries it out.
func (s *Setup) deliver(r request, f *os.File) error {
	kind, ok := kindOf(r.Kind)
	if !ok {
		return refused("unknown delivery kind")
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		return refused("the message is not a regular file")
	}
	req := local.Request{QueueID: r.QueueID, Sender: r.Sender, Recipient: r.Recipient,
		OriginalRecipient: r.OrigRcpt, User: r.User, Body: f, Size: st.Size}
	switch kind {
	case local.Mbox:
		req.Target = local.Target{Kind: local.Mbox}
	case local.Maildir:
		if r.Path != "" {
			return refused("a Maildir delivery may not name its directory")
		}
		req.Target = local.Target{Kind: local.Maildir}
	case local.File, local.Pipe:
		value := r.Path
		want := aliases.File
		if kind == local.Pipe {
			value, want = r.Command, aliases.Pipe
		}
		if value == "" || !s.inAliases(want, value) {
			return refused("the " + kind.String() + " target is not in the alias file")
		}
		if u := s.ProgramUser(); r.User != u {
			return refused("alias programs and files run as " + u + ", not " + r.User)
		}
		req.Target = local.Target{Kind: kind, Path: r.Path, Command: r.Command}
	}
	ctx, cancel := context.WithTimeout(context.Background(), deliveryTimeout)
	defer cancel()
	return s.Agent().Deliver(ctx, req)
}

// inAliases reports whether the alias file, or a file it includes, has a
// target of kind with this value.
func (s *Setup) inAliases(kind aliases.Kind, value string) bool {
	seen := map[string]bool{}
	var includes []string
	// scan reports a match in ts and queues the includes not seen yet.
	scan := func(ts []aliases.Target) bool {
		for _, t := range ts {
			switch {
			case t.Kind == kind && t.Value == value:
				return true
			case t.Kind == aliases.Include && !seen[t.Value]:
				seen[t.Value] = true
				includes = append(includes, t.Value)
			}
		}
		return false
	}
	for _, ts := range s.Aliases().All() {
		if scan(ts) {
			return true
		}
	}
	// Included files may include others; bounded like routing.
	for i := 0; i < len(includes) && i < 100 && s.Include != nil; i++ {
		if ts, err := s.Include(includes[i]); (err == nil || len(ts) > 0) && scan(ts) {
			return true
		}
	}
	return false
}

// ErrNotRoot is Main's refusal to run without privileges.
var ErrNotRoot = errors.New("the local delivery agent must run as root (it is started by smtpd)")
