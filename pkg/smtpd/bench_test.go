package smtpd

import (
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/gosendmail/gosendmail/pkg/config"
	"github.com/gosendmail/gosendmail/pkg/maillog"
	"github.com/gosendmail/gosendmail/pkg/spool"
)

// BenchmarkAccept measures the daemon's accept path on loopback: 20
// sessions, 2 KB messages, fsync'd into a real queue. For profiles
// (-cpuprofile); figures against Postfix live in make bench.
func BenchmarkAccept(b *testing.B) {
	cfg := fuzzConfig(b, true)
	q := spool.Open(b.TempDir())
	be := &Backend{Config: func() *config.Config { return cfg }, Tables: fuzzTables{}, Queue: q,
		Log: maillog.New(io.Discard, "sm-mta"), Listener: config.Listen{Name: "MTA", Mode: "mta", Auth: "none"}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv, err := New(ln, cfg, Options{Backend: be})
	if err != nil {
		b.Fatal(err)
	}
	go srv.Serve()
	defer srv.srv.Close()
	body := "From: a@example.org\r\nSubject: bench\r\n\r\n" + strings.Repeat(strings.Repeat("x", 70)+"\r\n", 28)
	const sessions = 20
	per := b.N/sessions + 1
	b.ResetTimer()
	var wg sync.WaitGroup
	for s := 0; s < sessions; s++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := smtp.Dial(ln.Addr().String())
			if err != nil {
				b.Error(err)
				return
			}
			defer c.Close()
			for i := 0; i < per; i++ {
				if err := c.SendMail("a@example.org", []string{"root@test.example"}, strings.NewReader(body)); err != nil {
					b.Error(fmt.Errorf("send: %w", err))
					return
				}
			}
		}()
	}
	wg.Wait()
}
