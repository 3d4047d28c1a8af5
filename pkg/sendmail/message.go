package sendmail

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"

	"github.com/gosendmail/gosendmail/pkg/mailerr"
)

// maxHeaderBytes bounds the header block held in memory. A header block
// that grows past it ends there, and the rest of the input is body: no
// input is lost, and memory stays bounded (Postfix does the same with its
// header_size_limit).
const maxHeaderBytes = 1 << 20

// field is one header field as read: its name and its physical lines
// (the first "Name: value", then continuation lines), without line ends.
type field struct {
	name  string
	lines []string
}

func (f *field) value() string {
	v := strings.Join(f.lines, " ")
	_, v, _ = strings.Cut(v, ":")
	return strings.TrimSpace(v)
}

// input reads a message from a local program. Every line is normalized on
// its own: a line ending in LF, CRLF or several CRs before the LF gets one
// CRLF, so PHP's mix of CRLF and LF never turns into CR CR LF. Without
// ignoreDots a line consisting of a single "." ends the input, as in
// sendmail; with it (-i, -oi) dots are data. Input without a final newline
// gets one.
type input struct {
	br         *bufio.Reader
	ignoreDots bool
	limit      int64 // bytes of input accepted; more is an error
	n          int64
	eof        bool
}

var errTooBig = errors.New("message too big")

func newInput(r io.Reader, ignoreDots bool, limit int64) *input {
	return &input{br: bufio.NewReaderSize(r, 64<<10), ignoreDots: ignoreDots, limit: limit}
}

// chunk returns the next piece of the current line: up to the buffer size,
// with the line end (LF) included when it is in this piece.
func (in *input) chunk() ([]byte, error) {
	if in.eof {
		return nil, io.EOF
	}
	b, err := in.br.ReadSlice('\n')
	in.n += int64(len(b))
	if in.n > in.limit {
		return nil, errTooBig
	}
	if err == bufio.ErrBufferFull {
		return b, nil
	}
	if err == io.EOF {
		in.eof = true
		if len(b) == 0 {
			return nil, io.EOF
		}
		return b, nil
	}
	return b, err
}

// headerLine reads one whole line up to max bytes. It returns the line
// without its end, whether the line was complete (false: cut at max, the
// rest of the line is still unread) and io.EOF when nothing is left.
func (in *input) headerLine(max int) (string, bool, error) {
	var buf []byte
	for {
		b, err := in.chunk()
		if err == io.EOF {
			if buf == nil {
				return "", true, io.EOF
			}
			return trimEnd(buf), true, nil
		}
		if err != nil {
			return "", false, err
		}
		buf = append(buf, b...)
		if buf[len(buf)-1] == '\n' || in.eof {
			return trimEnd(buf), true, nil
		}
		if len(buf) > max {
			return string(buf), false, nil
		}
	}
}

// trimEnd removes the LF and every CR just before it.
func trimEnd(b []byte) string {
	b = bytes.TrimSuffix(b, []byte("\n"))
	return string(bytes.TrimRight(b, "\r"))
}

// copyBody streams the rest of the input to w with CRLF line ends. If
// partial is true, the input is in the middle of a line whose beginning
// was already written.
func (in *input) copyBody(w io.Writer, partial bool) error {
	atStart := !partial
	var crs int // CRs held back: they may be the end of the line
	for {
		b, err := in.chunk()
		if err == io.EOF {
			// CRs at the very end are the end of an unterminated line.
			if !atStart || crs > 0 {
				_, err := w.Write(crlf)
				return err
			}
			return nil
		}
		if err != nil {
			return err
		}
		complete := b[len(b)-1] == '\n'
		if complete {
			line := bytes.TrimRight(b[:len(b)-1], "\r")
			if len(line) == 0 {
				crs = 0 // CRs before LF are part of the line end
			}
			if atStart && !in.ignoreDots && len(line) == 1 && line[0] == '.' && crs == 0 {
				return nil // a lone "." ends the input
			}
			if crs > 0 && len(line) > 0 {
				if _, err := w.Write(bytes.Repeat([]byte{'\r'}, crs)); err != nil {
					return err
				}
			}
			crs = 0
			if _, err := w.Write(line); err != nil {
				return err
			}
			if _, err := w.Write(crlf); err != nil {
				return err
			}
			atStart = true
			continue
		}
		// Part of a long line: hold back trailing CRs.
		body := bytes.TrimRight(b, "\r")
		if len(body) > 0 && crs > 0 {
			if _, err := w.Write(bytes.Repeat([]byte{'\r'}, crs)); err != nil {
				return err
			}
			crs = 0
		}
		crs += len(b) - len(body)
		if _, err := w.Write(body); err != nil {
			return err
		}
		atStart = false
	}
}

var crlf = []byte("\r\n")

// parsed is the header block of a submitted message and where the body
// starts.
type parsed struct {
	fields    []*field
	bodyFirst string // a line that ended the headers without a blank line
	hasFirst  bool
	partial   bool // bodyFirst is the start of a line cut at the limit
	ended     bool // input ended (EOF or ".") in or right after the headers
}

// isFieldName checks RFC 5322 field-name: printable ASCII but ':'.
func isFieldName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 33 || s[i] > 126 || s[i] == ':' {
			return false
		}
	}
	return true
}

// readHeader reads the header block. It ends at the first empty line
// (consumed), at a line that is neither a field nor a continuation (kept
// as the first body line), or when it would pass maxHeaderBytes.
func (in *input) readHeader() (*parsed, error) {
	p := &parsed{}
	total := 0
	for first := true; ; first = false {
		line, complete, err := in.headerLine(maxHeaderBytes - total)
		if err == io.EOF {
			p.ended = true
			return p, nil
		}
		if err != nil {
			return nil, err
		}
		if !complete {
			p.bodyFirst, p.hasFirst, p.partial = line, true, true
			return p, nil
		}
		if !in.ignoreDots && line == "." {
			p.ended = true
			return p, nil
		}
		if line == "" {
			return p, nil
		}
		total += len(line) + 2
		if total > maxHeaderBytes {
			p.bodyFirst, p.hasFirst = line, true
			return p, nil
		}
		if (line[0] == ' ' || line[0] == '\t') && len(p.fields) > 0 {
			f := p.fields[len(p.fields)-1]
			f.lines = append(f.lines, line)
			continue
		}
		if name, _, ok := strings.Cut(line, ":"); ok && isFieldName(strings.TrimRight(name, " \t")) {
			p.fields = append(p.fields, &field{name: strings.TrimRight(name, " \t"), lines: []string{line}})
			continue
		}
		if first && strings.HasPrefix(line, "From ") {
			continue // an mbox "From " line: not part of the message
		}
		p.bodyFirst, p.hasFirst = line, true
		return p, nil
	}
}

// get returns the fields with that name, case-insensitively.
func (p *parsed) get(name string) []*field {
	var out []*field
	for _, f := range p.fields {
		if strings.EqualFold(f.name, name) {
			out = append(out, f)
		}
	}
	return out
}

func (p *parsed) has(name string) bool { return len(p.get(name)) > 0 }

// remove deletes every field with one of the names.
func (p *parsed) remove(names ...string) {
	kept := p.fields[:0]
	for _, f := range p.fields {
		drop := false
		for _, n := range names {
			if strings.EqualFold(f.name, n) {
				drop = true
			}
		}
		if !drop {
			kept = append(kept, f)
		}
	}
	p.fields = kept
}

// write emits the fields with CRLF line ends.
func (p *parsed) write(w *bufio.Writer) {
	for _, f := range p.fields {
		for _, l := range f.lines {
			w.WriteString(l)
			w.Write(crlf)
		}
	}
}

// dataErr is a problem with the submitted message itself.
func dataErr(format string, args ...any) error {
	return mailerr.New(mailerr.ExDataErr, format, args...)
}
