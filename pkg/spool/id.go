package spool

import (
	"math/rand/v2"
	"os"
	"sync"
	"time"
)

// idAlphabet is sendmail's 60-character queue ID alphabet.
const idAlphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwx"

// IDLen is the length of every queue ID.
const IDLen = 14

// The per-process envelope sequence. It is process state by nature (the
// ID embeds the pid), so it lives here, guarded, rather than in a Queue.
var seq struct {
	sync.Mutex
	n    int
	init bool
	pid  int // os.Getpid is a system call each time
}

// NewID returns a sendmail 8.12+ style queue ID for time t:
// YMDhmsNNPPPPPP = year since 1900 mod 60 (tm_year), month 0-11, day, hour, minute, second (UTC),
// a two-character per-process sequence in base 60 starting at a random
// value, and the pid as six decimal digits (mod 10^6). IDs are unique on
// the host as long as one process makes fewer than 3600 per second; writers
// still create files exclusively and take the next ID on a clash.
func NewID(t time.Time) string {
	seq.Lock()
	if !seq.init {
		seq.n = rand.IntN(60 * 60)
		seq.pid = os.Getpid()
		seq.init = true
	}
	n, pid := seq.n, seq.pid
	seq.n = (seq.n + 1) % (60 * 60)
	seq.Unlock()
	return FormatID(t, n, pid)
}

// FormatID is the ID of the nth message (mod 3,600) a process pid
// creates at t: NewID's layout for a caller that keeps its own sequence
// (the bigqueue benchmark's queue filler). Unique only as long as no
// process creates more than 3,600 messages in one second.
func FormatID(t time.Time, nth, pid int) string {
	t = t.UTC()
	n := nth % 3600
	b := make([]byte, 0, IDLen)
	b = append(b,
		idAlphabet[(t.Year()-1900)%60],
		idAlphabet[int(t.Month())-1],
		idAlphabet[t.Day()],
		idAlphabet[t.Hour()],
		idAlphabet[t.Minute()],
		idAlphabet[t.Second()],
		idAlphabet[n/60],
		idAlphabet[n%60])
	p := pid % 1000000
	for d := 100000; d > 0; d /= 10 {
		b = append(b, byte('0'+p/d%10))
	}
	return string(b)
}

// ValidID reports whether s has the shape of a queue ID. Anything used to
// build a file name must pass this first.
func ValidID(s string) bool {
	if len(s) != IDLen {
		return false
	}
	for i := 0; i < 8; i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'x') {
			return false
		}
	}
	for i := 8; i < IDLen; i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// IDTime decodes the creation time embedded in an ID (year within the
// 60-year window ending at now).
func IDTime(id string, now time.Time) (time.Time, bool) {
	if !ValidID(id) {
		return time.Time{}, false
	}
	v := func(i int) int {
		c := id[i]
		switch {
		case c <= '9':
			return int(c - '0')
		case c <= 'Z':
			return int(c-'A') + 10
		default:
			return int(c-'a') + 36
		}
	}
	y := now.UTC().Year()
	year := y - (((y-1900)%60)-v(0)+60)%60
	t := time.Date(year, time.Month(v(1)+1), v(2), v(3), v(4), v(5), 0, time.UTC)
	return t, true
}
