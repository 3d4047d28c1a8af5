// Command noopmilter is the benchmark's milter that changes nothing: it
// answers "continue" at every stage and "accept" at the end of each
// message, as a spam filter that finds nothing would. It listens on the
// address given (e.g. 127.0.0.1:8899) until killed.
package main

import (
	"fmt"
	"net"
	"net/textproto"
	"os"

	milter "github.com/emersion/go-milter"
)

type noop struct{}

func (noop) Connect(string, string, uint16, net.IP, *milter.Modifier) (milter.Response, error) {
	return milter.RespContinue, nil
}
func (noop) Helo(string, *milter.Modifier) (milter.Response, error) { return milter.RespContinue, nil }
func (noop) MailFrom(string, *milter.Modifier) (milter.Response, error) {
	return milter.RespContinue, nil
}
func (noop) RcptTo(string, *milter.Modifier) (milter.Response, error) {
	return milter.RespContinue, nil
}
func (noop) Header(string, string, *milter.Modifier) (milter.Response, error) {
	return milter.RespContinue, nil
}
func (noop) Headers(textproto.MIMEHeader, *milter.Modifier) (milter.Response, error) {
	return milter.RespContinue, nil
}
func (noop) BodyChunk([]byte, *milter.Modifier) (milter.Response, error) {
	return milter.RespContinue, nil
}
func (noop) Body(*milter.Modifier) (milter.Response, error) { return milter.RespAccept, nil }
func (noop) Abort(*milter.Modifier) error                   { return nil }

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: noopmilter HOST:PORT")
		os.Exit(64)
	}
	ln, err := net.Listen("tcp", os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "noopmilter:", err)
		os.Exit(71)
	}
	s := &milter.Server{NewMilter: func() milter.Milter { return noop{} }}
	if err := s.Serve(ln); err != nil {
		fmt.Fprintln(os.Stderr, "noopmilter:", err)
		os.Exit(71)
	}
}
