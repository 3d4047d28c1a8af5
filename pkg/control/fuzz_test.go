package control

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// FuzzRequest sends any bytes to a real control socket (any local user
// may connect to it) and checks the server's side of the protocol:
//
//   - the answer is one line holding one JSON Response, and nothing more;
//   - the handler sees exactly the request that the first line decodes
//     to, from the uid the kernel reports;
//   - a line that is not a JSON request, or is longer than MaxRequest, is
//     answered with an error and never reaches the handler;
//   - input that ends before any byte gets no answer.
//
// (A request must end with a newline; one without is taken as if it had
// one, except at the edge noted below.)
//
// pad puts MaxRequest blanks before the input, to reach the length limit.
func FuzzRequest(f *testing.F) {
	f.Add([]byte(`{"cmd":"list","args":["-Am","-qRalice"]}`+"\n"), false)
	dir, err := os.MkdirTemp("", "ctl") // short: a socket path has a limit
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "s")
	ln, err := Listen(path, 0o600)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { ln.Close() })
	go Serve(ln, func(p Peer, req Request) Response {
		b, _ := json.Marshal(req)
		if p.UID != os.Getuid() || p.PID <= 0 {
			return Response{Error: "wrong peer"}
		}
		return Response{OK: true, Output: string(b)}
	})

	f.Fuzz(func(t *testing.T, input []byte, pad bool) {
		if pad {
			input = append(bytes.Repeat([]byte{' '}, MaxRequest), input...)
		}
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		wrote := make(chan struct{})
		go func() {
			defer close(wrote)
			c.Write(input) // the server may answer and hang up first
			c.(*net.UnixConn).CloseWrite()
		}()
		out, err := io.ReadAll(c)
		<-wrote
		// Hanging up on unread input resets the connection, after the
		// answer.
		if err != nil && !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("reading the answer: %v", err)
		}

		line, _, _ := bytes.Cut(input, []byte("\n"))
		if bytes.IndexByte(input, '\n') >= 0 {
			line = bytes.TrimSuffix(line, []byte("\r"))
		}
		if len(input) == 0 {
			if len(out) != 0 {
				t.Fatalf("answer %q to no request", out)
			}
			return
		}
		if len(out) == 0 && bytes.IndexByte(input, '\n') < 0 && len(input)%4096 == 0 {
			// A request must end with a newline. Without one, the server
			// answers what came before EOF, unless it filled its 4 KiB
			// buffer exactly (bufio.Reader.ReadLine then reports the
			// end of the input and nothing else).
			return
		}
		if len(out) == 0 || bytes.IndexByte(out, '\n') != len(out)-1 {
			t.Fatalf("answer %q is not one line", out)
		}
		var resp Response
		if err := json.Unmarshal(out, &resp); err != nil {
			t.Fatalf("answer %q: %v", out, err)
		}
		var want Request
		switch {
		case len(line) > MaxRequest:
			if resp.OK || resp.Error != "request too long" {
				t.Fatalf("a request of %d bytes got %+v", len(line), resp)
			}
		case json.Unmarshal(line, &want) != nil:
			if resp.OK || resp.Error != "bad request" {
				t.Fatalf("bad request %q got %+v", line, resp)
			}
		default:
			if !resp.OK {
				t.Fatalf("request %q got %+v", line, resp)
			}
			// Compared as the handler encoded it (no args and [] are the
			// same).
			if b, _ := json.Marshal(want); resp.Output != string(b) {
				t.Fatalf("request %q reached the handler as %s, want %s", line, resp.Output, b)
			}
		}
	})
}
