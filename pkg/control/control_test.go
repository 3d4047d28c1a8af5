package control

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ctl")
	if _, err := Call(path, Request{Cmd: "ping"}, time.Second); !errors.Is(err, ErrNoDaemon) {
		t.Fatalf("no daemon: %v", err)
	}
	ln, err := Listen(path, 0o666)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go Serve(ln, func(p Peer, r Request) Response {
		if p.UID != os.Getuid() {
			return Response{Error: "wrong uid"}
		}
		return Response{OK: true, Output: r.Cmd + ":" + r.Args[0]}
	})
	resp, err := Call(path, Request{Cmd: "reload", Args: []string{"aliases"}}, time.Second)
	if err != nil || !resp.OK || resp.Output != "reload:aliases" {
		t.Fatalf("%v %+v", err, resp)
	}
	if _, err := Listen(path, 0o666); err == nil {
		t.Fatal("second daemon on the same socket must be refused")
	}
}
