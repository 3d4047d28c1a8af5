package maps

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
)

// Class is a set of words read from a class file. Class files
// (local-host-names, trusted-users, relay-domains) hold one word per line;
// '#' starts a comment (sendmail's "F{w}/path %[^\#]"), and several words
// on one line are all members. Matching is case-insensitive for host
// names; user names are kept as written.
type Class map[string]bool

// ReadClass reads a class file. A missing file is an empty class.
func ReadClass(path string) (Class, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Class{}, nil
		}
		return nil, err
	}
	defer f.Close()
	return ParseClass(path, f)
}

// ParseClass reads a class file's text; name is used in error messages.
// Only a failure to read (or a line longer than bufio.MaxScanTokenSize) is
// an error: any word is a valid member.
func ParseClass(name string, r io.Reader) (Class, error) {
	c := Class{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		for _, w := range strings.Fields(line) {
			c[w] = true
		}
	}
	if err := sc.Err(); err != nil {
		return c, fmt.Errorf("%s: %w", name, err)
	}
	return c, nil
}

// Has reports membership as written.
func (c Class) Has(w string) bool { return c[w] }

// HasFold reports membership ignoring case (host names).
func (c Class) HasFold(w string) bool {
	if c[w] {
		return true
	}
	for k := range c {
		if strings.EqualFold(k, w) {
			return true
		}
	}
	return false
}
