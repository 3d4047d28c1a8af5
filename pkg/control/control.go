// Package control is the local socket through which mailq, sendmail -q and
// newaliases talk to a running smtpd. One request per connection, one JSON
// object each way, each on one line:
//
//	-> {"cmd":"reload"}
//	<- {"ok":true,"output":"reloaded /etc/aliases"}
//	-> {"cmd":"list","args":["-Am","-qRalice"]}
//	<- {"error":"You are not permitted to see the queue","status":77}
//
// The server learns the caller's uid from the kernel (SO_PEERCRED), never
// from the request, and hands it to the handler, which decides what that
// user may do.
package control

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Request is one command.
type Request struct {
	Cmd  string   `json:"cmd"`
	Args []string `json:"args,omitempty"`
}

// Response is the daemon's answer.
type Response struct {
	OK     bool   `json:"ok"`
	Error  string `json:"error,omitempty"`
	Output string `json:"output,omitempty"`
	// Status is the sysexits code a refused request should end the
	// client with (e.g. 77 for "You are not permitted to see the
	// queue"); 0 leaves the choice to the client.
	Status int `json:"status,omitempty"`
}

// Status is the daemon's answer to "status", as JSON in Response.Output:
// its resource use, for load tests, soak runs and monitoring. Root and the
// daemon's own user may ask.
type Status struct {
	Goroutines int    `json:"goroutines"`       // runtime.NumGoroutine
	FDs        int    `json:"fds"`              // open file descriptors (/proc/self/fd)
	RSS        int64  `json:"rss_bytes"`        // resident set size (VmRSS)
	HWM        int64  `json:"hwm_bytes"`        // peak resident set size (VmHWM)
	HeapInuse  uint64 `json:"heap_inuse_bytes"` // runtime.MemStats.HeapInuse
	NumGC      uint32 `json:"num_gc"`           // garbage collections so far
}

// Peer is the credentials of the process on the other end.
type Peer struct {
	UID, GID, PID int
}

// Handler answers one request from peer.
type Handler func(peer Peer, req Request) Response

// ErrNoDaemon means no daemon is listening on the socket.
var ErrNoDaemon = errors.New("mail system is down (no daemon on the control socket)")

// MaxRequest bounds a request line.
const MaxRequest = 64 << 10

// Call sends req to the daemon listening at path.
func Call(path string, req Request, timeout time.Duration) (*Response, error) {
	c, err := net.DialTimeout("unix", path, timeout)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT) {
			return nil, ErrNoDaemon
		}
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	b, _ := json.Marshal(req)
	if _, err := c.Write(append(b, '\n')); err != nil {
		return nil, err
	}
	line, err := bufio.NewReaderSize(c, 4096).ReadBytes('\n')
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	var resp Response
	if err := json.Unmarshal(line, &resp); err != nil {
		return nil, fmt.Errorf("control socket: bad answer: %w", err)
	}
	return &resp, nil
}

// Listen creates the socket at path (replacing a stale one) with mode perm.
func Listen(path string, perm os.FileMode) (*net.UnixListener, error) {
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("%s: another daemon is already listening", path)
	}
	os.Remove(path)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, perm); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// Serve answers requests until ln is closed.
func Serve(ln *net.UnixListener, h Handler) error {
	for {
		c, err := ln.AcceptUnix()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		go serveOne(c, h)
	}
}

func serveOne(c *net.UnixConn, h Handler) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Minute))
	peer, err := peerOf(c)
	if err != nil {
		return
	}
	r := bufio.NewReaderSize(c, 4096)
	var line []byte
	for {
		chunk, isPrefix, err := r.ReadLine()
		if err != nil {
			return
		}
		line = append(line, chunk...)
		if len(line) > MaxRequest {
			writeResp(c, Response{Error: "request too long"})
			return
		}
		if !isPrefix {
			break
		}
	}
	var req Request
	if err := json.Unmarshal(line, &req); err != nil {
		writeResp(c, Response{Error: "bad request"})
		return
	}
	writeResp(c, h(peer, req))
}

func writeResp(c net.Conn, r Response) {
	b, _ := json.Marshal(r)
	c.Write(append(b, '\n'))
}

func peerOf(c *net.UnixConn) (Peer, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return Peer{}, err
	}
	var cred *unix.Ucred
	var cerr error
	err = raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	})
	if err != nil {
		return Peer{}, err
	}
	if cerr != nil {
		return Peer{}, cerr
	}
	return Peer{UID: int(cred.Uid), GID: int(cred.Gid), PID: int(cred.Pid)}, nil
}
