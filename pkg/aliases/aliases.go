// Package aliases reads sendmail's alias file (/etc/aliases) straight from
// its text: there is no aliases.db and no compile step.
//
// # Format
//
// One alias per entry:
//
//	# comment
//	postmaster: root
//	"info desk": alice, bob@example.org
//	staff: alice,
//		bob, \
//	carol
//	pager: "|/usr/local/bin/page --urgent"
//	archive: /var/mail/archive
//	team: :include:/etc/mail/team.list
//	owner-team: alice
//
// Lines are read in this order:
//
//  1. A line ending in a backslash is joined to the next one, without the
//     backslash and the line break (sendmail does this before anything else,
//     so it works anywhere, even inside a quoted string or a comment).
//  2. A line whose first non-blank byte is '#' is a comment; a line of
//     blanks only is empty. Both are skipped and, unlike sendmail but as in
//     Postfix, do not end the entry around them, so commenting out one member
//     of a long list leaves the rest of the list intact.
//  3. A line that starts with a space or a tab continues the entry before it.
//     Any other line starts a new entry.
//
// An entry is a name, a colon and a comma-separated list of targets. The
// name is case-insensitive (stored in lower case, ASCII folding as sendmail
// does); a name with spaces or other special characters must be quoted:
// "my name". A name is a local part only: no @domain.
//
// A target is one of:
//
//	user, user@example.org   an address (Kind Address); a local user is then
//	                         looked up as an alias again
//	\user                    an address that is not aliased again (NoAlias)
//	/path/file               append the message to a file (Kind File)
//	"|command args", |cmd    pipe the message to a command (Kind Pipe);
//	                         a command with arguments must be quoted
//	:include:/path           read more targets from a file (Kind Include);
//	                         the file is read when mail is routed, not here,
//	                         with ParseInclude
//
// Commas inside double quotes do not separate targets, and inside quotes a
// backslash escapes the next byte. Display names ("Some Name <x@y>") and
// (comments) are refused: they belong in headers, not in aliases.
//
// An entry named owner-X is an ordinary alias; it also names who receives
// the bounces for the list X (see Map.Owner).
//
// # Errors
//
// Every bad line is reported as "FILE: line N: reason" (a *LineError) and
// skipped; parsing goes on so that one run reports them all. A duplicate
// name is only a warning, as in sendmail ("Warning: duplicate alias name
// x"), and the last definition wins. Physical lines are limited to MaxLine
// bytes.
package aliases

import (
	"fmt"
	"iter"
	"slices"
	"strings"

	"github.com/gosendmail/gosendmail/pkg/maps"
)

// MaxLine is the longest physical line accepted, without its line ending.
const MaxLine = 64 << 10

// Kind says what a Target delivers to.
type Kind int

const (
	Address Kind = iota // a local user or a remote address
	File                // append to a file
	Pipe                // pipe to a command
	Include             // read more targets from a file
)

func (k Kind) String() string {
	switch k {
	case Address:
		return "address"
	case File:
		return "file"
	case Pipe:
		return "pipe"
	case Include:
		return "include"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Target is one right-hand side item of an alias.
type Target struct {
	Kind Kind
	// Value is the address as written (quotes kept, e.g. "john smith"@x),
	// the file's path, the command line without the '|', or the included
	// file's path.
	Value string
	// NoAlias is set for \user: deliver to the user without looking the
	// name up as an alias again. Only addresses have it.
	NoAlias bool
}

// Map is a parsed alias file. It is never changed after parsing, so one Map
// may be shared by any number of goroutines.
type Map struct {
	entries map[string]*entry
	order   []string // names in the order they first appear, for Format
}

type entry struct {
	targets []Target
	// rhsLen is the length of the right-hand side as written, which is
	// what sendmail's statistics count (see Stats).
	rhsLen int
}

// Lookup returns the targets of the alias name (any case).
func (m *Map) Lookup(name string) ([]Target, bool) {
	if m == nil {
		return nil, false
	}
	e, ok := m.entries[foldName(name)]
	if !ok {
		return nil, false
	}
	// A copy: the Map is shared, and a caller that appends to or edits the
	// result must not change it for everybody else.
	return slices.Clone(e.targets), true
}

// All yields every alias name (lower-cased) with its targets, in no
// particular order. The targets must not be changed.
func (m *Map) All() iter.Seq2[string, []Target] {
	return func(yield func(string, []Target) bool) {
		if m == nil {
			return
		}
		for name, e := range m.entries {
			if !yield(name, e.targets) {
				return
			}
		}
	}
}

// Len is the number of aliases.
func (m *Map) Len() int {
	if m == nil {
		return 0
	}
	return len(m.entries)
}

// Stats returns the figures of sendmail's summary line
//
//	/etc/aliases: 12 aliases, longest 20 bytes, 240 bytes total
//
// computed as sendmail's readaliases() computes them: n is the number of
// aliases; longest is the longest right-hand side; total adds up, for every
// alias, the length of its name and of its right-hand side. A right-hand
// side is counted as written: from the first non-blank byte after the colon
// to the end of the entry, trailing blanks included, continuation lines
// joined without their line breaks but with their leading blanks (and a
// backslash continuation without its backslash). Quotes around a name are
// not counted. Where we differ from sendmail: for a duplicate name only the
// definition in force counts (so n == Len()), and comment lines inside an
// entry are not part of it.
func (m *Map) Stats() (n int, longest int, total int) {
	if m == nil {
		return 0, 0, 0
	}
	for name, e := range m.entries {
		n++
		longest = max(longest, e.rhsLen)
		total += len(name) + e.rhsLen
	}
	return n, longest, total
}

// Owner returns the envelope sender to use for mail sent to the list, as
// sendmail does: when an owner-LIST alias exists, bounces go to it, so the
// sender becomes that alias's only address if it has exactly one, and the
// local name "owner-LIST" otherwise. ok is false when there is no owner-LIST
// alias (the sender is left alone).
func (m *Map) Owner(list string) (string, bool) {
	name := "owner-" + foldName(list)
	ts, ok := m.Lookup(name)
	if !ok {
		return "", false
	}
	if len(ts) == 1 && ts[0].Kind == Address {
		return ts[0].Value, true
	}
	return name, true
}

// LineError is a problem on one line of an alias or include file, the
// same type as the /etc/mail maps use: "FILE: line N: reason", and a
// Warning (a duplicate name) leaves the file usable.
type LineError = maps.LineError

// IsWarning reports whether err is only a warning: the file it came from is
// still good enough to use.
func IsWarning(err error) bool { return maps.IsWarning(err) }

// foldName lower-cases ASCII letters only, as sendmail's makelower() does:
// full Unicode folding would make distinct mailbox names (e.g. the Kelvin
// sign and "k") collide. It works on bytes so that a name that is not valid
// UTF-8 is not rewritten into one that is.
func foldName(s string) string {
	i := strings.IndexFunc(s, func(r rune) bool { return 'A' <= r && r <= 'Z' })
	if i < 0 {
		return s
	}
	b := []byte(s)
	for ; i < len(b); i++ {
		if 'A' <= b[i] && b[i] <= 'Z' {
			b[i] += 'a' - 'A'
		}
	}
	return string(b)
}
