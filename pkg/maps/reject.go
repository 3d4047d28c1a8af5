package maps

import (
	"fmt"
	"strconv"
	"strings"
)

// Reject is an SMTP refusal written in a map: the `error:` right-hand
// sides of virtusertable and mailertable.
type Reject struct {
	Code     int    // SMTP reply code, 4xx or 5xx
	Enhanced string // RFC 3463 status code, e.g. "5.1.1"
	Text     string // reply text, without code or status
}

// Reply is the reply line as the server sends it, e.g.
// "550 5.1.1 No such user here".
func (r *Reject) Reply() string {
	return reply(r.Code, r.Enhanced, r.Text)
}

// Temporary reports whether the sender should try again later (4xx).
func (r *Reject) Temporary() bool { return r.Code/100 == 4 }

func reply(code int, enhanced, text string) string {
	s := strconv.Itoa(code)
	if enhanced != "" {
		s += " " + enhanced
	}
	if text != "" {
		s += " " + text
	}
	return s
}

// errorKeywords are the words sendmail's error mailer takes in place of a
// status (parseaddr.c ErrorCodes), with the reply sendmail gives for the
// exit status each stands for when the text has none (sysexits.c
// SysExMsg).
var errorKeywords = map[string]Reject{
	"usage":       {500, "5.0.0", "Bad usage"},
	"nouser":      {550, "5.1.1", "User unknown"},
	"nohost":      {550, "5.1.2", "Host unknown"},
	"unavailable": {554, "5.0.0", "Service unavailable"},
	"software":    {554, "5.3.0", "Internal error"},
	"tempfail":    {450, "4.0.0", "Deferred"},
	"protocol":    {554, "5.5.0", "Remote protocol error"},
	"config":      {554, "5.3.5", "Local configuration error"},
}

// parseMapError parses what follows "error:" in a virtusertable or
// mailertable value. The forms, all from cf/README and proto.m4:
//
//	D.S.N:CODE text        error:5.7.0:550 Address invalid
//	keyword CODE text      error:nouser 550 No such user here
//	keyword:CODE text      error:nouser:550 No such user here (mailertable's form)
//	keyword                error:nouser   (550 5.1.1 User unknown)
//	CODE text              error:550 Go away
//
// The text may be in double quotes. A status without a code gets 550 or
// 450 by its class; a code without a status gets the keyword's status, or
// X.0.0 (RFC 3463 "other or undefined"), which is what sendmail sends for
// a reply that carries none.
func parseMapError(s string) (*Reject, error) {
	s = strings.TrimSpace(s)
	var status string
	var kw *Reject
	word, rest, sep := cutWord(s)
	switch {
	case sep == ':' && isEnhanced(word):
		status, s = word, rest
	case isEnhanced(word):
		return nil, fmt.Errorf("status %s must be followed by a colon (e.g. error:%s:550 text)", word, word)
	case errorKeywords[lowerASCII(word)].Code != 0:
		k := errorKeywords[lowerASCII(word)]
		kw, s = &k, rest
	case word != "" && word[0] >= '0' && word[0] <= '9' && strings.Contains(word, "."):
		return nil, fmt.Errorf("bad status %q (want D.S.N, e.g. 5.1.1)", word)
	}
	code, enh, text, hasCode := splitReply(s)
	if !hasCode {
		if status == "" && kw == nil {
			return nil, fmt.Errorf("error: needs a status (e.g. 5.1.1:550 text), a keyword (nouser, nohost, unavailable, tempfail, ...) or a reply code, not %q", s)
		}
		text = dequote(strings.TrimSpace(s))
	}
	r := &Reject{Code: code, Enhanced: enh, Text: text}
	switch {
	case status != "":
		if enh != "" && enh != status {
			return nil, fmt.Errorf("two statuses: %s and %s", status, enh)
		}
		r.Enhanced = status
	case r.Enhanced == "" && kw != nil:
		r.Enhanced = kw.Enhanced
		if hasCode && r.Enhanced[0] != byte('0'+code/100) {
			// "error:nouser 450 try later": the code says what the
			// client does, so the status follows its class.
			r.Enhanced = strconv.Itoa(code/100) + r.Enhanced[1:]
		}
	}
	if !hasCode {
		switch {
		case kw != nil && status == "":
			r.Code = kw.Code
		case r.Enhanced[0] == '4':
			r.Code = 450
		default:
			r.Code = 550
		}
	}
	if r.Text == "" && kw != nil {
		r.Text = kw.Text
	}
	if r.Enhanced == "" {
		r.Enhanced = strconv.Itoa(r.Code/100) + ".0.0"
	}
	if err := checkRefusal(r.Code, r.Enhanced); err != nil {
		return nil, err
	}
	return r, nil
}

// checkRefusal insists on a 4xx or 5xx code whose class the status shares:
// "550" with "4.2.2" would tell the client both to give up and to retry.
func checkRefusal(code int, enhanced string) error {
	if code/100 != 4 && code/100 != 5 {
		return fmt.Errorf("reply code %d is not a refusal (4xx or 5xx)", code)
	}
	if enhanced != "" && enhanced[0] != byte('0'+code/100) {
		return fmt.Errorf("reply code %d and status %s disagree (use %d.x.x with %d)", code, enhanced, code/100, code)
	}
	return nil
}

// cutWord splits s at the first ':', space or tab; sep is the byte found
// (0 at the end of s).
func cutWord(s string) (word, rest string, sep byte) {
	i := strings.IndexAny(s, ": \t")
	if i < 0 {
		return s, "", 0
	}
	return s[:i], s[i+1:], s[i]
}

// splitReply reads "550 text", "550 5.7.1 text" or the same in double
// quotes. ok is false when s does not start with a three-digit code.
func splitReply(s string) (code int, enhanced, text string, ok bool) {
	s = dequote(strings.TrimSpace(s))
	if len(s) < 3 || !isDigits(s[:3]) || len(s) > 3 && s[3] != ' ' && s[3] != '\t' {
		return 0, "", "", false
	}
	code, _ = strconv.Atoi(s[:3])
	text = strings.TrimSpace(s[3:])
	if w, rest, _ := cutWord(text); isEnhanced(w) {
		enhanced, text = w, strings.TrimSpace(rest)
	}
	return code, enhanced, text, true
}

// isEnhanced reports whether s is an RFC 3463 status code: class 2, 4 or
// 5, subject and detail of one to three digits.
func isEnhanced(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 3 || len(parts[0]) != 1 || strings.IndexByte("245", parts[0][0]) < 0 {
		return false
	}
	for _, p := range parts[1:] {
		if len(p) < 1 || len(p) > 3 || !isDigits(p) {
			return false
		}
	}
	return true
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// dequote removes one pair of double quotes around s, as sendmail's
// stripquotes does for error texts written `ERROR:"550 text"`.
func dequote(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return s[1 : len(s)-1]
	}
	return s
}
