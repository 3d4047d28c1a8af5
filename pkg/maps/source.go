package maps

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
)

// Limits of the text map sources. Lines are long only by mistake (a
// binary file, a missing newline in a generated file); keys are e-mail
// addresses and host names, which RFC 5321 keeps well below 512 bytes.
const (
	MaxLine = 64 << 10 // bytes in one line, without its line end
	MaxKey  = 512      // bytes in one key
)

// Entry is one line of a text map source.
type Entry struct {
	Line  int    // 1-based line number
	Key   string // lowercased (ASCII), as makemap stores it without -f
	Value string // the rest of the line, trimmed, as written
}

// LineError is a problem on one line of a map file. Its text is the one
// line the log gets: "FILE: line N: reason".
type LineError struct {
	File string
	Line int
	Msg  string
	// Warning marks a problem that does not make the file unusable (a
	// duplicate key): the file is still taken into use.
	Warning bool
}

func (e *LineError) Error() string {
	if e.Warning {
		return fmt.Sprintf("%s: line %d: Warning: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: line %d: %s", e.File, e.Line, e.Msg)
}

// IsWarning reports whether err is only a warning: the file it came from
// is still good enough to use.
func IsWarning(err error) bool {
	var le *LineError
	return errors.As(err, &le) && le.Warning
}

// Problems splits an error returned by the Parse and Load functions into
// its single problems (each a *LineError, or the error reading the file).
func Problems(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, Problems(e)...)
		}
		return out
	}
	return []error{err}
}

// fatal reports whether err holds any problem that is not a warning.
func fatal(err error) bool {
	for _, e := range Problems(err) {
		if !IsWarning(e) {
			return true
		}
	}
	return false
}

// ReadSource reads a text map source the way `makemap hash X < X` does:
// one entry per line, the key up to the first space or tab, the value the
// rest of the line. Lines whose first non-blank character is '#' and blank
// lines are skipped; a CR before the newline is part of the line end.
//
// Every bad line (no value, a NUL or other control byte, a key longer
// than MaxKey, a line longer than MaxLine) is left out and reported as a
// *LineError; reading goes on so that one pass reports them all. The
// returned error joins them (see Problems). A failure to read ends the
// source and is returned as well.
func ReadSource(name string, r io.Reader) ([]Entry, error) {
	// The buffer holds a whole line of MaxLine bytes plus "\r\n"; a
	// longer line fills it and is skipped to its end.
	br := bufio.NewReaderSize(r, MaxLine+2)
	var (
		out  []Entry
		errs []error
		n    int
	)
	bad := func(format string, args ...any) {
		errs = append(errs, &LineError{File: name, Line: n, Msg: fmt.Sprintf(format, args...)})
	}
	for {
		line, err := br.ReadSlice('\n')
		if len(line) == 0 && err == io.EOF {
			break
		}
		n++
		if errors.Is(err, bufio.ErrBufferFull) {
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = br.ReadSlice('\n')
			}
			bad("line longer than %d bytes", MaxLine)
		} else {
			line = bytes.TrimSuffix(line, []byte("\n"))
			line = bytes.TrimSuffix(line, []byte("\r"))
			if len(line) > MaxLine {
				bad("line longer than %d bytes", MaxLine)
			} else if e, ok, msg := parseLine(n, line); msg != "" {
				bad("%s", msg)
			} else if ok {
				out = append(out, e)
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: read after line %d: %w", name, n, err))
			break
		}
	}
	return out, errors.Join(errs...)
}

// parseLine splits one line. ok is false for comments and blank lines;
// msg is the reason a line is bad.
func parseLine(n int, line []byte) (e Entry, ok bool, msg string) {
	if i := bytes.IndexFunc(line, isControl); i >= 0 {
		if line[i] == 0 {
			return e, false, "NUL byte in line"
		}
		return e, false, fmt.Sprintf("control character 0x%02x in line", line[i])
	}
	s := strings.Trim(string(line), " \t")
	if s == "" || s[0] == '#' {
		return e, false, ""
	}
	key, value := s, ""
	if i := strings.IndexAny(s, " \t"); i >= 0 {
		key, value = s[:i], strings.Trim(s[i+1:], " \t")
	}
	if len(key) > MaxKey {
		return e, false, fmt.Sprintf("key longer than %d bytes", MaxKey)
	}
	if value == "" {
		return e, false, fmt.Sprintf("no value for key %q", key)
	}
	return Entry{Line: n, Key: lowerASCII(key), Value: value}, true, ""
}

// isControl is true for the bytes a map line may not hold: C0 controls
// other than TAB, and DEL. Bytes from 0x80 up are left alone: sendmail's
// maps are 8-bit clean and UTF-8 addresses (RFC 6531) are legitimate.
func isControl(r rune) bool {
	return r < 0x20 && r != '\t' || r == 0x7f
}

// lowerASCII folds A-Z only, as makemap and sendmail's map lookups do in
// the C locale; other bytes are kept, invalid UTF-8 included.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// openSource opens a map file for a Load function. A missing file is not
// an error: it reads as an empty source, because sendmail runs without
// the optional files too.
func openSource(path string) (io.ReadCloser, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return io.NopCloser(strings.NewReader("")), nil
	}
	return f, err
}

// dups remembers the line of each key so that a later duplicate can be
// reported. The first definition wins, as with makemap, which stores with
// R_NOOVERWRITE unless told -r.
type dups struct {
	file  string
	lines map[string]int
}

func newDups(file string) *dups { return &dups{file: file, lines: map[string]int{}} }

// first reports whether key is new; a duplicate becomes a warning.
func (d *dups) first(key string, line int, errs *[]error) bool {
	if prev, ok := d.lines[key]; ok {
		*errs = append(*errs, &LineError{File: d.file, Line: line, Warning: true,
			Msg: fmt.Sprintf("duplicate key %q (line %d wins)", key, prev)})
		return false
	}
	d.lines[key] = line
	return true
}

// lineErr builds a *LineError for an entry.
func lineErr(file string, e Entry, format string, args ...any) error {
	return &LineError{File: file, Line: e.Line, Msg: fmt.Sprintf(format, args...)}
}
