package control

import (
	"path/filepath"
	"testing"
	"time"
)

// A refusal's exit status reaches the client; a response without one
// leaves the field out on the wire.
func TestStatusRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ctl")
	ln, err := Listen(path, 0o666)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go Serve(ln, func(_ Peer, r Request) Response {
		if r.Cmd == "list" {
			return Response{Error: "You are not permitted to see the queue", Status: 77}
		}
		return Response{OK: true}
	})
	resp, err := Call(path, Request{Cmd: "list"}, time.Second)
	if err != nil || resp.OK || resp.Status != 77 || resp.Error != "You are not permitted to see the queue" {
		t.Fatalf("%v %+v", err, resp)
	}
	resp, err = Call(path, Request{Cmd: "ping"}, time.Second)
	if err != nil || !resp.OK || resp.Status != 0 {
		t.Fatalf("%v %+v", err, resp)
	}
}
