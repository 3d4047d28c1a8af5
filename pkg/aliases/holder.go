package aliases

import (
	"errors"
	"sync"
	"sync/atomic"
)

// Holder keeps the alias map in force for the daemon. Readers call Get on
// every lookup and never wait for a reload; Reload swaps in a new map only
// when the file is good, so a bad edit never takes aliases away (CONTRACT:
// "a file with a bad line keeps the last good version in force").
//
// The zero Holder is ready to use and holds an empty map.
type Holder struct {
	// Warn, if set, is given the warnings (duplicate names) of each file
	// that Reload takes into use.
	Warn func(error)

	mu  sync.Mutex // one Reload at a time, so an older file never wins
	cur atomic.Pointer[Map]
}

// Get returns the map in force; never nil.
func (h *Holder) Get() *Map {
	if m := h.cur.Load(); m != nil {
		return m
	}
	return &Map{}
}

// Reload reads the alias file at path and takes it into use unless it has
// errors; warnings alone do not stop it. On failure the map in force stays
// and the error holds one error per problem (joined with errors.Join), each
// a complete one-line message for the log.
func (h *Holder) Reload(path string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	m, errs := Load(path)
	if bad := fatal(errs); len(bad) > 0 {
		return errors.Join(bad...)
	}
	if h.Warn != nil {
		for _, err := range errs {
			h.Warn(err)
		}
	}
	h.cur.Store(m)
	return nil
}
