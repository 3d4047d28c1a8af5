package local

import (
	"bufio"
	"io"
	"strings"
	"time"
)

// asctime is the date layout of the mbox From_ line (C's asctime and
// ctime), e.g. "Sun Nov 29 07:45:00 2026", which mail readers parse.
const asctime = "Mon Jan _2 15:04:05 2006"

// clean replaces control characters so that envelope text can never break
// a header line or an environment variable. The envelope package refuses
// such addresses already; this is the second line of defence at the place
// where a CR or LF would do harm.
func clean(s string) string {
	if strings.IndexFunc(s, isCtl) < 0 {
		return s
	}
	return strings.Map(func(r rune) rune {
		if isCtl(r) {
			return '_'
		}
		return r
	}, s)
}

func isCtl(r rune) bool { return r < 0x20 || r == 0x7f }

// fromLine is the mbox separator for a message from sender at t.
func fromLine(sender string, t time.Time) string {
	if sender == "" {
		sender = "MAILER-DAEMON"
	}
	return "From " + clean(sender) + " " + t.Format(asctime) + "\n"
}

// returnPath is the header that records the envelope sender (RFC 5321
// 4.4), added by the final delivery.
func returnPath(sender string) string {
	return "Return-Path: <" + clean(sender) + ">\n"
}

// copyMessage copies the message from r to w turning CRLF into LF (a lone
// CR is data and stays). With quote it applies mboxrd quoting: a line that
// starts with zero or more '>' and then "From " gets one more '>'. It
// reports whether the output ended with a newline (true for an empty
// message), so the caller can end the last line.
//
// The message is streamed, never held whole. The quoting decision needs
// the start of the line only: the run of '>' is copied as it comes and
// the extra '>' is written after it, which gives the same bytes as
// writing it first, with no limit on the run's length.
func copyMessage(w *bufio.Writer, r io.Reader, quote bool) (endsNL bool, err error) {
	br := bufio.NewReaderSize(r, 64<<10)
	endsNL = true
	lineStart := true
	pendingCR := false // a CR ended the last chunk; its LF may follow
	for {
		if lineStart && quote {
			n := 0
			for {
				b, err := br.ReadByte()
				if err != nil {
					break
				}
				if b != '>' {
					br.UnreadByte()
					break
				}
				n++
			}
			for range n {
				w.WriteByte('>')
			}
			if p, _ := br.Peek(5); string(p) == "From " {
				w.WriteByte('>')
			}
			if n > 0 {
				endsNL = false
			}
		}
		chunk, rerr := br.ReadSlice('\n')
		if len(chunk) > 0 {
			if pendingCR {
				if chunk[0] != '\n' {
					w.WriteByte('\r')
				}
				pendingCR = false
			}
			lineStart = chunk[len(chunk)-1] == '\n'
			switch {
			case lineStart && len(chunk) >= 2 && chunk[len(chunk)-2] == '\r':
				w.Write(chunk[:len(chunk)-2])
				w.WriteByte('\n')
			case !lineStart && chunk[len(chunk)-1] == '\r':
				w.Write(chunk[:len(chunk)-1])
				pendingCR = true
			default:
				w.Write(chunk)
			}
			endsNL = lineStart
		}
		switch rerr {
		case nil, bufio.ErrBufferFull:
			continue
		case io.EOF:
			if pendingCR {
				w.WriteByte('\r')
				endsNL = false
			}
			// Write errors are sticky in bufio.Writer; Flush reports them.
			return endsNL, nil
		default:
			return endsNL, rerr
		}
	}
}

// writeMessage writes the whole delivered form of the message: the mbox
// From_ line (mbox only), Return-Path, the converted message, a newline
// if the last line lacked one, and for mbox the blank line that ends the
// entry.
func writeMessage(w *bufio.Writer, req *Request, mbox bool, t time.Time) error {
	if mbox {
		w.WriteString(fromLine(req.Sender, t))
	}
	w.WriteString(returnPath(req.Sender))
	endsNL, err := copyMessage(w, io.NewSectionReader(req.Body, 0, req.Size), mbox)
	if err != nil {
		return err
	}
	if !endsNL {
		w.WriteByte('\n')
	}
	if mbox {
		w.WriteByte('\n')
	}
	return w.Flush()
}
