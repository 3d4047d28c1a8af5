// Package maps reads the /etc/mail text files in sendmail's own formats.
//
// Class files (local-host-names, trusted-users, relay-domains) hold one
// word per line; '#' starts a comment (sendmail's "F{w}/path %[^\#]"),
// and several words on one line are all members. Matching is
// case-insensitive for host names; user names are kept as written.
package maps

import (
	"bufio"
	"errors"
	"io/fs"
	"os"
	"strings"
)

// Class is a set of words read from a class file.
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
	c := Class{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		for _, w := range strings.Fields(line) {
			c[w] = true
		}
	}
	return c, sc.Err()
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
