package dsn

import (
	"bufio"
	"bytes"
	"io"
	"unicode/utf8"
)

// original is what is returned of the original message: normalized bytes
// (CRLF line ends, no NUL, no line over maxLine), never parsed as MIME.
type original struct {
	data   []byte // the header section, or the whole message when full
	hdrLen int    // data[:hdrLen] is the header section, without the empty line
	full   bool   // data is the whole message
	tooBig bool   // the whole was wanted but is larger than the limit
	hdrCut bool   // the header section was larger than its limit and is cut
}

// readOriginal reads src up to what it needs: the header section (at most
// maxHdr bytes), and when wantFull the rest up to maxFull bytes in all. It
// fails only when src does.
//
// The header section ends at the empty line, or at the first line that is
// neither a field nor the continuation of one, so an original without the
// empty line still gives its headers and not its body.
func readOriginal(src io.Reader, wantFull bool, maxFull, maxHdr int) (*original, error) {
	o := &original{}
	var buf bytes.Buffer
	lr := newLineReader(src)
	inHeader := true
	for {
		l, err := lr.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		size := len(l) + 2
		if inHeader {
			if isField(l) || buf.Len() > 0 && len(l) > 0 && (l[0] == ' ' || l[0] == '\t') {
				if buf.Len()+size > maxHdr {
					o.hdrCut, wantFull = true, false
					break
				}
				buf.Write(l)
				buf.WriteString("\r\n")
				if wantFull && buf.Len() > maxFull {
					o.tooBig, wantFull = true, false
				}
				continue
			}
			inHeader = false
			o.hdrLen = buf.Len()
			if !wantFull {
				break
			}
		}
		if buf.Len()+size > maxFull {
			o.tooBig, wantFull = true, false
			break
		}
		buf.Write(l)
		buf.WriteString("\r\n")
	}
	if inHeader {
		o.hdrLen = buf.Len()
	}
	// An empty original is no message: return it as an empty header
	// section rather than as an empty message/rfc822.
	o.full = wantFull && buf.Len() > 0
	o.data = buf.Bytes()
	if !o.full {
		o.data = o.data[:o.hdrLen]
	}
	return o, nil
}

// isField reports whether l starts a header field: a name of printable
// ASCII but ':', maybe blanks (obsolete but seen), then ':'.
func isField(l []byte) bool {
	i := 0
	for i < len(l) && l[i] > ' ' && l[i] < 0x7f && l[i] != ':' {
		i++
	}
	if i == 0 {
		return false
	}
	for i < len(l) && (l[i] == ' ' || l[i] == '\t') {
		i++
	}
	return i < len(l) && l[i] == ':'
}

// lineReader splits bytes into lines the way a tolerant reader of mail
// does: CRLF, a bare LF and a bare CR each end a line; NUL bytes are
// dropped (RFC 5322 does not allow them and SMTP servers refuse them); a
// line longer than maxLine is broken, the rest continuing on a line that
// starts with a space, so a long header field stays one folded field.
type lineReader struct {
	br    *bufio.Reader
	line  []byte
	carry []byte // the rest of a broken line, for the next call
}

func newLineReader(r io.Reader) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(r, 32<<10)}
}

// next returns the next line without its end; the slice is valid until the
// next call. It returns io.EOF after the last line; a last line without an
// end is returned as a line.
func (lr *lineReader) next() ([]byte, error) {
	lr.line = lr.line[:0]
	if lr.carry != nil {
		lr.line = append(lr.line, ' ')
		lr.line = append(lr.line, lr.carry...)
		lr.carry = nil
	}
	started := len(lr.line) > 0
	for {
		c, err := lr.br.ReadByte()
		if err == io.EOF {
			if !started {
				return nil, io.EOF
			}
			return lr.line, nil
		}
		if err != nil {
			return nil, err
		}
		started = true
		switch c {
		case '\n':
			return lr.line, nil
		case '\r':
			if p, err := lr.br.Peek(1); err == nil && p[0] == '\n' {
				_, _ = lr.br.ReadByte()
			}
			return lr.line, nil
		case 0:
			continue
		}
		if len(lr.line) == maxLine {
			cut := maxLine
			for i := maxLine; i > maxLine-utf8.UTFMax && i > 1; i-- {
				if utf8.RuneStart(lr.line[i-1]) && lr.line[i-1] >= 0x80 {
					// A sequence starting here may be incomplete: keep it whole.
					cut = i - 1
					break
				}
				if lr.line[i-1] < 0x80 {
					break
				}
			}
			lr.carry = append(append([]byte(nil), lr.line[cut:]...), c)
			return lr.line[:cut], nil
		}
		lr.line = append(lr.line, c)
	}
}
