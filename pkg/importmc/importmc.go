package importmc

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gosendmail/gosendmail/pkg/config"
)

// ErrNotMC is wrapped by Convert's error when the input cannot be read as
// a sendmail.mc at all (a binary file, or text without a single macro
// call, such as a sendmail.cf).
var ErrNotMC = errors.New("not a sendmail.mc")

// Options are Convert's inputs besides the file's content.
type Options struct {
	// Source is the .mc file's name as messages and the header show it.
	Source string
	// OpenDKIMConf is the opendkim.conf read when sendmail.mc runs an
	// opendkim milter; "" reads none (the milter is then kept).
	OpenDKIMConf string
	// ReadFile reads OpenDKIMConf; nil means os.ReadFile.
	ReadFile func(name string) ([]byte, error)
	// Now is the date written in the header; zero means time.Now().
	Now time.Time
}

// Kind says what an Item reports.
type Kind int

const (
	// NotTranslated: something sendmail.mc (or opendkim.conf) says that
	// the output does not carry over.
	NotTranslated Kind = iota
	// Note: translated, or nothing to translate, but the behaviour differs
	// in a way worth knowing.
	Note
	// Action: the output relies on something the user must do (a file to
	// create).
	Action
	// Error: the input could not be read there (a syntax error).
	Error
)

func (k Kind) String() string {
	switch k {
	case Note:
		return "note"
	case Action:
		return "action needed"
	case Error:
		return "error"
	}
	return "not translated"
}

// Item is one line of the report: what could not be translated, and why.
type Item struct {
	File string // the .mc, or the opendkim.conf
	Line int    // 0 for the file as a whole
	Kind Kind
	What string // the macro call or line, on one line; may be ""
	Why  string

	lastLine int // last line of a raw-text section
}

// String is the report line: FILE:LINE: KIND: WHAT: WHY.
func (it Item) String() string {
	var b strings.Builder
	b.WriteString(oneLine(it.File))
	if it.Line > 0 {
		b.WriteString(":" + strconv.Itoa(it.Line))
	}
	b.WriteString(": " + it.Kind.String() + ": ")
	if it.What != "" {
		b.WriteString(oneLine(it.What) + ": ")
	}
	b.WriteString(oneLine(it.Why))
	return b.String()
}

// Result is Convert's output.
type Result struct {
	// TOML is the configuration; it always loads with config.Load.
	TOML []byte
	// Items lists, by line, everything not translated or worth a note.
	Items []Item
}

// Count returns the number of items of kind k.
func (r *Result) Count(k Kind) int {
	n := 0
	for _, it := range r.Items {
		if it.Kind == k {
			n++
		}
	}
	return n
}

// Convert translates the sendmail.mc in src into gosendmail.toml. Syntax
// errors are Items of kind Error and the rest of the file is still
// translated; the error return is for input that is not a sendmail.mc at
// all (wrapping ErrNotMC).
func Convert(src []byte, opt Options) (*Result, error) {
	if opt.Source == "" {
		opt.Source = "sendmail.mc"
	}
	if opt.ReadFile == nil {
		opt.ReadFile = os.ReadFile
	}
	if opt.Now.IsZero() {
		opt.Now = time.Now()
	}
	if bytes.IndexByte(src, 0) >= 0 {
		return nil, fmt.Errorf("%s: %w: it holds NUL bytes, so it is not a text file", opt.Source, ErrNotMC)
	}
	p := parse(opt.Source, src)
	if len(p.calls) == 0 {
		why := "it holds no m4 macro call"
		if bytes.Contains(src, []byte("\nO ")) || bytes.HasPrefix(src, []byte("O ")) {
			why += " (it looks like a sendmail.cf: import the sendmail.mc it was made from)"
		}
		return nil, fmt.Errorf("%s: %w: %s", opt.Source, ErrNotMC, why)
	}
	t := newTranslator(opt, p)
	for _, c := range p.calls {
		t.call(c)
	}
	t.finish()
	out := t.render()
	if _, err := config.Parse(opt.Source+" (translated)", out); err != nil {
		return nil, fmt.Errorf("import-mc: internal error: the translation does not load: %v", err)
	}
	items := append(p.items, t.items...)
	sort.SliceStable(items, func(i, j int) bool {
		a, b := items[i], items[j]
		if a.File != b.File {
			return a.File == opt.Source
		}
		if (a.Line == 0) != (b.Line == 0) {
			return b.Line == 0
		}
		return a.Line < b.Line
	})
	return &Result{TOML: out, Items: items}, nil
}

// validate reports whether gosendmail accepts snippet (one key, or one
// table) on its own; the error is config's reason without its file and
// line.
func validate(snippet string) error {
	_, err := config.Parse("(import-mc)", []byte(snippet))
	if err == nil {
		return nil
	}
	msg := err.Error()
	if i := strings.Index(msg, ": "); i >= 0 && strings.HasPrefix(msg, "(import-mc)") {
		msg = msg[i+2:]
	}
	return errors.New(msg)
}

func itoa(n int) string { return strconv.Itoa(n) }

func baseName(path string) string {
	b := filepath.Base(path)
	if b == "." || b == "/" {
		return path
	}
	return b
}
