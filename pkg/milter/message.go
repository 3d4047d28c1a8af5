package milter

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// MaxHeader bounds the header held in memory (sendmail's
// MaxHeadersLength, more generous).
const MaxHeader = 1 << 20

// ErrHeaderTooLarge says the header is over MaxHeader.
var ErrHeaderTooLarge = fmt.Errorf("header longer than %d bytes", MaxHeader)

// Field is one header field.
type Field struct {
	Name string
	// raw is the field as received, its line endings included; nil for a
	// field a filter made.
	raw []byte
	// val is what follows the colon in a field a filter made: folded with
	// CRLF, without the final line ending.
	val     string
	deleted bool
}

// rawValue is what follows the colon, without the final line ending.
func (f *Field) rawValue() string {
	if f.raw == nil {
		return f.val
	}
	v := f.raw[bytes.IndexByte(f.raw, ':')+1:]
	v = bytes.TrimSuffix(v, []byte("\n"))
	v = bytes.TrimSuffix(v, []byte("\r"))
	return string(v)
}

// milterValue is the value as a filter is given it: folded with LF, and
// without the one leading space unless the filter asked for it
// (SMFIP_HDR_LEADSPC).
func (f *Field) milterValue(leadSpace bool) string {
	v := strings.ReplaceAll(f.rawValue(), "\r\n", "\n")
	if !leadSpace {
		v = strings.TrimPrefix(v, " ")
	}
	return v
}

// Value is the value unfolded and trimmed.
func (f *Field) Value() string {
	return strings.TrimSpace(unfold.Replace(f.rawValue()))
}

var unfold = strings.NewReplacer("\r\n", "", "\n", "")

func (f *Field) appendTo(b []byte) []byte {
	if f.raw != nil {
		b = append(b, f.raw...)
		if !bytes.HasSuffix(f.raw, []byte("\n")) {
			b = append(b, '\r', '\n')
		}
		return b
	}
	b = append(b, f.Name...)
	b = append(b, ':')
	b = append(b, f.val...)
	return append(b, '\r', '\n')
}

// Message is a message on its way through the filters: the header in
// memory, the body where it was received (or in a file a filter's
// replacement was written to).
type Message struct {
	fields []*Field
	sep    []byte // the empty line that ended the header; nil if none
	src    io.ReaderAt
	size   int64
	hdrLen int64 // bytes of src before the body

	body     *os.File // a filter's replacement; nil: the body of src
	bodySize int64
	changed  bool // the header differs from src's

	// TempDir is where replaced bodies are written ("" is os.TempDir).
	TempDir string

	// A filter's end of message in progress: what to go back to if it
	// fails, and its replacement body so far.
	saved        []*Field
	savedChanged bool
	pending      *bodyWriter
}

// ReadMessage reads the header of the size bytes of src; the body stays
// in src, which must stay readable until the message has been queued.
// Line endings are CRLF or LF. The header ends at an empty line, or at
// the first line that is not a header field (which starts the body).
func ReadMessage(src io.ReaderAt, size int64) (*Message, error) {
	m := &Message{src: src, size: size}
	br := getReader(io.NewSectionReader(src, 0, size))
	defer putReader(br)
	var off int64
	var cur *Field
	for {
		line, err := readLine(br, MaxHeader-off)
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		if len(line) == 0 {
			break
		}
		if isBlank(line) {
			m.sep = append([]byte(nil), line...)
			off += int64(len(line))
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			if cur == nil {
				break
			}
			cur.raw = append(cur.raw, line...)
			off += int64(len(line))
			continue
		}
		name, ok := fieldName(line)
		if !ok {
			break
		}
		cur = &Field{Name: name, raw: append([]byte(nil), line...)}
		m.fields = append(m.fields, cur)
		off += int64(len(line))
		if err != nil {
			break
		}
	}
	m.hdrLen = off
	m.bodySize = size - off
	return m, nil
}

// readLine reads up to and including '\n', at most limit bytes.
func readLine(br *bufio.Reader, limit int64) ([]byte, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if int64(len(line)+len(chunk)) > limit {
			if len(line)+len(chunk) > 0 && isBlank(append(line, chunk...)) {
				return append(line, chunk...), nil
			}
			return nil, ErrHeaderTooLarge
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			line = append(line, chunk...)
			continue
		}
		if line == nil {
			return chunk, err
		}
		return append(line, chunk...), err
	}
}

func isBlank(line []byte) bool {
	return len(line) == 1 && line[0] == '\n' || len(line) == 2 && line[0] == '\r' && line[1] == '\n'
}

// fieldName returns the name of a header line, if it is one: printable
// ASCII without ':' before the colon (white space before the colon, the
// obsolete syntax, is allowed).
func fieldName(line []byte) (string, bool) {
	i := bytes.IndexByte(line, ':')
	if i <= 0 {
		return "", false
	}
	name := string(bytes.TrimRight(line[:i], " \t"))
	if !validName(name) {
		return "", false
	}
	return name, true
}

// validName says whether s can be a field name (RFC 5322 ftext: printable
// ASCII but the colon), as in a received header and as a filter must give.
func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == ':' {
			return false
		}
	}
	return true
}

// Fields returns the header fields, in order.
func (m *Message) Fields() []*Field {
	var out []*Field
	for _, f := range m.fields {
		if !f.deleted {
			out = append(out, f)
		}
	}
	return out
}

// Header returns the unfolded value of the first field named name.
func (m *Message) Header(name string) string {
	for _, f := range m.fields {
		if !f.deleted && strings.EqualFold(f.Name, name) {
			return f.Value()
		}
	}
	return ""
}

// Changed reports whether the filters changed the header or the body.
func (m *Message) Changed() bool { return m.changed || m.body != nil }

// Prepend puts raw header fields (each ending in CRLF) in front of the
// header.
func (m *Message) Prepend(raw string) error {
	if raw == "" {
		return nil
	}
	p, err := ReadMessage(strings.NewReader(raw+"\r\n"), int64(len(raw)+2))
	if err != nil {
		return err
	}
	m.fields = append(p.fields, m.fields...)
	m.changed = true
	return nil
}

// RewriteHeader passes the header (and the empty line after it) through
// fn and takes what fn writes as the new header.
func (m *Message) RewriteHeader(fn func(w io.Writer, r io.Reader) error) error {
	head := m.headerBytes(true)
	var out bytes.Buffer
	if err := fn(&out, bytes.NewReader(head)); err != nil {
		return err
	}
	p, err := ReadMessage(bytes.NewReader(out.Bytes()), int64(out.Len()))
	if err != nil {
		return err
	}
	m.fields = p.fields
	m.changed = true
	return nil
}

// headerBytes is the header as it now is, with the empty line that ends
// it (always there if blankLine, else only if the original had one or a
// body follows).
func (m *Message) headerBytes(blankLine bool) []byte {
	var b []byte
	for _, f := range m.fields {
		if !f.deleted {
			b = f.appendTo(b)
		}
	}
	switch {
	case m.sep != nil:
		b = append(b, m.sep...)
	case blankLine || m.bodySize > 0:
		b = append(b, '\r', '\n')
	}
	return b
}

// bodyReader reads the body as it now is.
// bodyLen is the size of the body the filters see.
func (m *Message) bodyLen() int64 {
	if m.body != nil {
		return m.bodySize
	}
	return m.size - m.hdrLen
}

func (m *Message) bodyReader() io.Reader {
	if m.body != nil {
		return io.NewSectionReader(m.body, 0, m.bodySize)
	}
	return io.NewSectionReader(m.src, m.hdrLen, m.size-m.hdrLen)
}

// Reader reads the message as the filters left it. Unchanged, it is src
// itself: nothing is copied.
func (m *Message) Reader() io.Reader {
	switch {
	case !m.changed && m.body == nil:
		return io.NewSectionReader(m.src, 0, m.size)
	case !m.changed:
		return io.MultiReader(io.NewSectionReader(m.src, 0, m.hdrLen), m.bodyReader())
	}
	return io.MultiReader(bytes.NewReader(m.headerBytes(false)), m.bodyReader())
}

// Close removes the files of replaced bodies.
func (m *Message) Close() error {
	if m.pending != nil {
		m.pending.discard()
		m.pending = nil
	}
	if m.body != nil {
		m.body.Close()
		os.Remove(m.body.Name())
		m.body = nil
	}
	return nil
}

// begin starts a filter's end of message: fields deleted by earlier
// filters are gone for it (sendmail strips their H_USER flag), and what
// it changes can be undone.
func (m *Message) begin() {
	kept := m.fields[:0:0]
	for _, f := range m.fields {
		if !f.deleted {
			kept = append(kept, f)
		}
	}
	m.fields = kept
	m.saved = append([]*Field(nil), kept...)
	m.savedChanged = m.changed
}

// rollback undoes what the current filter changed.
func (m *Message) rollback() {
	m.fields, m.changed = m.saved, m.savedChanged
	if m.pending != nil {
		m.pending.discard()
		m.pending = nil
	}
}

// commit keeps what the current filter changed.
func (m *Message) commit() error {
	m.saved = nil
	if m.pending == nil {
		return nil
	}
	p := m.pending
	m.pending = nil
	size, err := p.finish()
	if err != nil {
		p.discard()
		return err
	}
	if m.body != nil {
		m.body.Close()
		os.Remove(m.body.Name())
	}
	m.body, m.bodySize = p.f, size
	return nil
}

// filterValue turns a value a filter gave into the stored form: CRLF
// line endings, every continuation line starting with white space (a
// filter cannot end the header early or add fields by accident), and the
// leading space sendmail adds unless the filter deals with it itself.
func filterValue(v string, leadSpace bool) string {
	v = strings.ReplaceAll(v, "\r\n", "\n")
	v = strings.ReplaceAll(v, "\r", "")
	lines := strings.Split(v, "\n")
	out := lines[:1]
	for _, l := range lines[1:] {
		if strings.TrimSpace(l) == "" {
			continue
		}
		if l[0] != ' ' && l[0] != '\t' {
			l = "\t" + l
		}
		out = append(out, l)
	}
	v = strings.Join(out, "\r\n")
	if !leadSpace {
		v = " " + v
	}
	return v
}

// addHeader appends a field.
func (m *Message) addHeader(name, value string, leadSpace bool) {
	m.fields = append(m.fields, &Field{Name: name, val: filterValue(value, leadSpace)})
	m.changed = true
}

// insHeader inserts a field before the idx'th (0: at the top); past the
// end it is appended. Fields the current filter deleted still count.
func (m *Message) insHeader(idx int, name, value string, leadSpace bool) {
	f := &Field{Name: name, val: filterValue(value, leadSpace)}
	if idx < 0 {
		idx = 0
	}
	if idx > len(m.fields) {
		idx = len(m.fields)
	}
	m.fields = append(m.fields[:idx], append([]*Field{f}, m.fields[idx:]...)...)
	m.changed = true
}

// chgHeader changes (or, with an empty value, deletes) the idx'th field
// named name, counting from 1 (0 too means the first) among the fields
// the filter was shown and those it added. A change of a field that is
// not there adds it; a delete of one is nothing. It returns the field's
// old value and what it did: "change", "delete", "add" or "noop".
func (m *Message) chgHeader(idx int, name, value string, leadSpace bool) (old, what string) {
	for i, f := range m.fields {
		if !strings.EqualFold(f.Name, name) {
			continue
		}
		idx--
		if idx > 0 {
			continue
		}
		old = f.rawValue()
		if f.deleted {
			old = ""
		}
		if value == "" {
			nf := *f
			nf.deleted = true
			m.fields[i] = &nf
			m.changed = true
			return old, "delete"
		}
		m.fields[i] = &Field{Name: f.Name, val: filterValue(value, leadSpace)}
		m.changed = true
		return old, "change"
	}
	if value == "" {
		return "", "noop"
	}
	m.addHeader(name, value, leadSpace)
	return "", "add"
}

// replaceBody adds a chunk of a filter's replacement body.
func (m *Message) replaceBody(chunk []byte) error {
	if m.pending == nil {
		f, err := os.CreateTemp(m.TempDir, "gosendmail-milter-*")
		if err != nil {
			return err
		}
		m.pending = &bodyWriter{f: f, w: bufio.NewWriterSize(f, 64<<10)}
	}
	return m.pending.write(chunk)
}

// bodyWriter writes a replacement body with CRLF line endings, whatever
// the filter used (sendmail's df files are LF; ours are CRLF).
type bodyWriter struct {
	f    *os.File
	w    *bufio.Writer
	cr   bool // a CR ended the last chunk
	last byte
	n    int64
	err  error
}

func (b *bodyWriter) put(p []byte) {
	if b.err != nil || len(p) == 0 {
		return
	}
	_, b.err = b.w.Write(p)
	b.n += int64(len(p))
	b.last = p[len(p)-1]
}

func (b *bodyWriter) write(p []byte) error {
	for len(p) > 0 {
		if b.cr {
			b.cr = false
			if p[0] == '\n' {
				b.put([]byte("\r\n"))
				p = p[1:]
				continue
			}
			b.put([]byte("\r"))
		}
		i := bytes.IndexAny(p, "\r\n")
		if i < 0 {
			b.put(p)
			break
		}
		b.put(p[:i])
		if p[i] == '\r' {
			if i+1 < len(p) && p[i+1] == '\n' {
				b.put([]byte("\r\n"))
				p = p[i+2:]
				continue
			}
			if i+1 == len(p) {
				b.cr = true
				break
			}
			b.put([]byte("\r"))
			p = p[i+1:]
			continue
		}
		b.put([]byte("\r\n"))
		p = p[i+1:]
	}
	return b.err
}

// finish flushes the body (ending it with a line break, as every body
// received over SMTP ends) and returns its size.
func (b *bodyWriter) finish() (int64, error) {
	if b.cr {
		b.cr = false
		b.put([]byte("\r\n"))
	}
	if b.n > 0 && b.last != '\n' {
		b.put([]byte("\r\n"))
	}
	if b.err == nil {
		b.err = b.w.Flush()
	}
	return b.n, b.err
}

func (b *bodyWriter) discard() {
	b.f.Close()
	os.Remove(b.f.Name())
}

// crlfReader gives a body to a filter with CRLF line endings: a LF not
// after a CR gets one, as sendmail does. It reads r through a pooled
// buffer; release gives the buffer back.
type crlfReader struct {
	r    io.Reader
	size int // of the buffer to take (getChunk)
	prev byte
	held bool // an LF waits for room (its CR went out)
	buf  *[]byte
	data []byte // read from r, not given out yet
	err  error  // r's error, given once data is out
}

func newCRLFReader(r io.Reader, size int) *crlfReader { return &crlfReader{r: r, size: size} }

func (c *crlfReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n := 0
	if c.held {
		p[0] = '\n'
		c.prev, c.held = '\n', false
		n = 1
	}
	for n < len(p) {
		if len(c.data) == 0 {
			if c.err != nil {
				break
			}
			if c.buf == nil {
				c.buf = getChunk(c.size)
			}
			m, err := c.r.Read(*c.buf)
			c.data, c.err = (*c.buf)[:m], err
			if m == 0 {
				break
			}
		}
		for len(c.data) > 0 && n < len(p) {
			// A run of bytes up to the next LF goes as it is.
			if i := bytes.IndexByte(c.data, '\n'); i != 0 {
				run := c.data
				if i > 0 {
					run = c.data[:i]
				}
				k := copy(p[n:], run)
				n += k
				c.prev = run[k-1]
				c.data = c.data[k:]
				continue
			}
			if c.prev != '\r' {
				p[n] = '\r'
				n++
				c.prev = '\r'
				if n == len(p) {
					c.held = true
					c.data = c.data[1:]
					return n, nil
				}
			}
			p[n] = '\n'
			n++
			c.prev = '\n'
			c.data = c.data[1:]
		}
	}
	if n > 0 {
		return n, nil
	}
	return 0, c.err
}

// release gives the buffer back; c must not be read again.
func (c *crlfReader) release() {
	if c.buf != nil {
		putChunk(c.buf)
		c.buf, c.data = nil, nil
	}
}
