// Command mkqueue fills a queue directory with deferred mail for the
// "bigqueue" benchmark part (scripts/bench/bigqueue.sh): N messages, each
// a df of about 2 KB (CRLF line endings) and a qf written through
// spool.Queue.Create, as the daemon writes them (fsync'd), in the state the
// queue runner leaves a message in after one failed attempt: every
// recipient pending, one attempt, a "Deferred: ..." status and the next
// attempt an hour away, so a running daemon leaves them alone until it is
// told to flush.
//
//	mkqueue -dir QUEUE_DIR [-n 100000] [-workers 32] [-size 2048] [-retry 1h]
//
// Recipients are user<i>@remote<i%50>.bench.example (a second one for every
// third message): .example names, which nothing resolves. It is a tool of
// the benchmark, built into its temporary directory, never into bin/.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gosendmail/gosendmail/pkg/spool"
)

// body is message i's df: headers and text lines, CRLF, about size bytes.
func body(i int, created time.Time, rcpts []string, size int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "Received: from client.bench.example (client.bench.example [127.0.0.1])\r\n"+
		"\tby bench-host.bench.example with ESMTP id %d; %s\r\n", i, created.Format(time.RFC1123Z))
	fmt.Fprintf(&b, "From: Sender %d <sender%d@bench.example>\r\n", i%100, i%100)
	fmt.Fprintf(&b, "To: %s\r\n", strings.Join(rcpts, ", "))
	fmt.Fprintf(&b, "Subject: bigqueue benchmark message %d\r\n", i)
	fmt.Fprintf(&b, "Date: %s\r\n", created.Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Message-ID: <bigqueue.%d@bench.example>\r\n", i)
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n")
	const line = "The quick brown fox jumps over the lazy dog, message %07d line %03d.\r\n"
	for n := 0; b.Len() < size; n++ {
		fmt.Fprintf(&b, line, i, n)
	}
	return b.Bytes()
}

func main() {
	dir := flag.String("dir", "", "queue `directory` to fill (must exist)")
	n := flag.Int("n", 100000, "messages to create")
	workers := flag.Int("workers", 32, "messages written at once")
	size := flag.Int("size", 2048, "approximate df size in bytes")
	retry := flag.Duration("retry", time.Hour, "next attempt this long after now")
	flag.Parse()
	if *dir == "" || *n < 1 || *workers < 1 || flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: mkqueue -dir QUEUE_DIR [-n N] [-workers W] [-size BYTES] [-retry DURATION]")
		os.Exit(64)
	}
	if fi, err := os.Stat(*dir); err != nil || !fi.IsDir() {
		fmt.Fprintf(os.Stderr, "mkqueue: %s is not a directory\n", *dir)
		os.Exit(66)
	}

	q := spool.Open(*dir)
	now := time.Now()
	pid := os.Getpid()
	// Arrivals spread over the last 30 minutes, oldest first: no delay
	// notice is due (queue_warn is hours) and no second holds 3,600.
	spread := 30 * time.Minute
	// As the runner leaves them: the message's status with "Deferred: ",
	// each recipient's reason without.
	reason := "Connection refused by remote.bench.example."
	status := "Deferred: " + reason
	var next, made atomic.Int64
	var firstErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	for range min(*workers, *n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= *n {
					return
				}
				created := now.Add(-spread * time.Duration(*n-i) / time.Duration(*n)).Truncate(time.Second)
				rcpts := []string{fmt.Sprintf("user%d@remote%d.bench.example", i, i%50)}
				if i%3 == 0 {
					rcpts = append(rcpts, fmt.Sprintf("user%db@remote%d.bench.example", i, (i+1)%50))
				}
				env := &spool.Envelope{
					ID:          spool.FormatID(created, i, pid), // the 3,600 a second: arrival times are spread
					Created:     created,
					LastAttempt: now,
					NextAttempt: now.Add(*retry),
					Attempts:    1,
					Priority:    30000,
					Sender:      fmt.Sprintf("sender%d@bench.example", i%100),
					UID:         -1,
					Client:      "client.bench.example [127.0.0.1]",
					Status:      status,
				}
				for _, r := range rcpts {
					env.Rcpts = append(env.Rcpts, spool.Recipient{Addr: r, State: spool.Pending, Reason: reason})
				}
				if err := q.Create(env, bytes.NewReader(body(i, created, rcpts, *size))); err != nil {
					errOnce.Do(func() { firstErr = err })
					return
				}
				made.Add(1)
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		fmt.Fprintf(os.Stderr, "mkqueue: after %d messages: %v\n", made.Load(), firstErr)
		os.Exit(74)
	}
	fmt.Printf("created %d messages in %s in %.1f s (%d writers, GOMAXPROCS %d)\n",
		made.Load(), *dir, time.Since(start).Seconds(), min(*workers, *n), runtime.GOMAXPROCS(0))
}
