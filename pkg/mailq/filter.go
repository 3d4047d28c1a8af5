package mailq

import (
	"fmt"
	"strings"
)

// Filter is a set of sendmail -q queue filters; the zero Filter matches
// every message. See the package documentation for the semantics.
type Filter struct {
	// terms by letter; a message must match one term of every letter.
	terms map[byte][]term
}

type term struct {
	neg bool
	sub string // lower-cased for the letters that ignore case
}

// filterLetters are the -q letters mailq understands; the value says
// whether the match ignores case.
var filterLetters = map[byte]bool{'I': false, 'R': true, 'S': true, 'Q': true}

// ParseFilter parses -q values as given after the q: "Iabc", "!Rfoo",
// "Q". An unknown letter is an error.
func ParseFilter(specs []string) (Filter, error) {
	var f Filter
	for _, spec := range specs {
		s := spec
		neg := strings.HasPrefix(s, "!")
		if neg {
			s = s[1:]
		}
		if s == "" {
			return Filter{}, fmt.Errorf("-q%s: want I, R, S or Q and a substring, e.g. -qRuser@example.com", spec)
		}
		letter := s[0]
		fold, ok := filterLetters[letter]
		if !ok {
			return Filter{}, fmt.Errorf("-q%s: unknown queue filter %q (want I, R, S or Q)", spec, letter)
		}
		sub := s[1:]
		if fold {
			sub = strings.ToLower(sub)
		}
		if f.terms == nil {
			f.terms = map[byte][]term{}
		}
		f.terms[letter] = append(f.terms[letter], term{neg: neg, sub: sub})
	}
	return f, nil
}

// Match reports whether it passes the filter.
func (f Filter) Match(it *Item) bool {
	for letter, terms := range f.terms {
		ok := false
		for _, t := range terms {
			if t.matches(letter, it) != t.neg {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func (t term) matches(letter byte, it *Item) bool {
	switch letter {
	case 'I':
		return strings.Contains(it.ID, t.sub)
	case 'S':
		return containsFold(it.ShownSender(), t.sub)
	case 'R':
		for _, r := range it.Rcpts {
			if containsFold(r.Addr, t.sub) {
				return true
			}
		}
		return false
	case 'Q':
		return it.Hold != "" && containsFold(it.Hold, t.sub)
	}
	return false
}

// containsFold reports whether s contains the lower-case lowSub, ignoring
// the case of s.
func containsFold(s, lowSub string) bool {
	return strings.Contains(strings.ToLower(s), lowSub)
}

// Apply returns the items that match; items itself when all do.
func (f Filter) Apply(items []Item) []Item {
	if len(f.terms) == 0 {
		return items
	}
	var out []Item
	for i := range items {
		if f.Match(&items[i]) {
			out = append(out, items[i])
		}
	}
	return out
}
