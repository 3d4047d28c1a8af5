package maps

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
)

// ActionKind is what an access entry tells the server to do.
type ActionKind int

// The values of Connect:, From: and To: entries.
const (
	ActionOK         ActionKind = iota + 1 // accept, overriding other checks; not relaying
	ActionRelay                            // accept and allow relaying (implies OK)
	ActionReject                           // refuse: 550 5.7.1 Access denied
	ActionDiscard                          // accept and throw the message away
	ActionSkip                             // stop this search; the default applies
	ActionError                            // refuse with the entry's code and text
	ActionQuarantine                       // accept and hold the message; Text is the reason
)

func (k ActionKind) String() string {
	switch k {
	case ActionOK:
		return "OK"
	case ActionRelay:
		return "RELAY"
	case ActionReject:
		return "REJECT"
	case ActionDiscard:
		return "DISCARD"
	case ActionSkip:
		return "SKIP"
	case ActionError:
		return "ERROR"
	case ActionQuarantine:
		return "QUARANTINE"
	}
	return fmt.Sprintf("ActionKind(%d)", int(k))
}

// Action is a parsed access value. For ActionReject and ActionError, Code,
// Enhanced and Text make the reply; for ActionQuarantine, Text is the
// reason.
type Action struct {
	Kind     ActionKind
	Code     int
	Enhanced string
	Text     string
}

// Reply is the SMTP reply of a refusal ("550 5.7.1 Access denied"), or ""
// for actions that accept.
func (a Action) Reply() string {
	if a.Kind != ActionReject && a.Kind != ActionError {
		return ""
	}
	return reply(a.Code, a.Enhanced, a.Text)
}

// The default refusals, from proto.m4: check_relay and check_mail say
// "550 5.7.1 Access denied"; check_rcpt says confRCPTREJ_MSG.
var (
	rejectAction     = Action{Kind: ActionReject, Code: 550, Enhanced: "5.7.1", Text: "Access denied"}
	rejectRcptAction = Action{Kind: ActionReject, Code: 550, Enhanced: "5.2.1", Text: "Mailbox disabled for this recipient"}
)

// Access is a parsed access map (FEATURE(access_db)). A nil *Access is an
// empty map.
type Access struct {
	tagged   map[string]accessEntry // by "tag:key"
	untagged map[string]accessEntry // by key; apart, so that no key can pass for a tagged one
}

type accessEntry struct {
	value  string
	action Action // zero Kind for tags whose values are not actions
}

// actionTags are the tags whose values are actions; "" is an untagged key,
// the deprecated form that every lookup still falls back to.
var actionTags = map[string]bool{"connect": true, "from": true, "to": true, "": true}

// LoadAccess reads the access map at path; a missing file is an empty map.
// See ParseAccess for what comes back.
func LoadAccess(path string) (*Access, error) {
	f, err := openSource(path)
	if err != nil {
		return &Access{}, err
	}
	defer f.Close()
	return ParseAccess(path, f)
}

// ParseAccess reads an access map source; name is used in error messages.
// It always returns a usable map holding the good lines; the error joins
// one *LineError per bad line (see Problems).
//
// Values of Connect:, From:, To: and untagged keys must be actions; other
// tags (GreetPause:, ClientRate:, ClientConn:, Spam:, AuthInfo:,
// Srv_Features:, Try_TLS:, ...) are kept as written for Tagged and
// ClientValue.
func ParseAccess(name string, r io.Reader) (*Access, error) {
	entries, err := ReadSource(name, r)
	errs := Problems(err)
	a := &Access{tagged: make(map[string]accessEntry, len(entries)), untagged: map[string]accessEntry{}}
	seen := newDups(name)
	for _, e := range entries {
		tag, rest := splitTag(e.Key)
		acts := actionTags[tag]
		norm, nerr := normKey(rest)
		if nerr != nil {
			if acts {
				errs = append(errs, lineErr(name, e, "%v", nerr))
				continue
			}
			norm = rest
		}
		key, into := norm, a.untagged
		if tag != "" {
			key, into = tag+":"+norm, a.tagged
		}
		ae := accessEntry{value: e.Value}
		if acts {
			if norm == "" {
				errs = append(errs, lineErr(name, e, "no key after %q", e.Key))
				continue
			}
			act, perr := parseAction(e.Value)
			if perr != nil {
				errs = append(errs, lineErr(name, e, "%v", perr))
				continue
			}
			if act.Kind == ActionSkip && strings.Contains(norm, "@") {
				errs = append(errs, lineErr(name, e, "SKIP applies to host names, domains and networks only, not to the address %q", norm))
				continue
			}
			ae.action = act
		}
		// A tagged key cannot look like an untagged one (it has a
		// colon after a word that is not "ipv6"), so one set of keys
		// finds the duplicates of both.
		if seen.first(key, e.Line, &errs) {
			into[key] = ae
		}
	}
	return a, errors.Join(errs...)
}

// splitTag separates "connect:192.0.2" into its tag and key. "IPv6:" at
// the start is part of an untagged key, not a tag.
func splitTag(key string) (tag, rest string) {
	i := strings.IndexByte(key, ':')
	if i <= 0 || key[:i] == "ipv6" {
		return "", key
	}
	for j := 0; j < i; j++ {
		c := key[j]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return "", key
		}
	}
	return key[:i], key[i+1:]
}

// normKey canonicalises IPv6 keys, bare ("ipv6:2001:db8") or in brackets
// ("[ipv6:2001:db8::1]"), so that leading zeros and "::" do not decide a
// match. Other keys are returned as they are (already lowercased).
func normKey(k string) (string, error) {
	inner, bracket := k, false
	if strings.HasPrefix(k, "[") && strings.HasSuffix(k, "]") {
		inner, bracket = k[1:len(k)-1], true
	}
	rest, ok := strings.CutPrefix(inner, "ipv6:")
	if !ok {
		return k, nil
	}
	n, ok := normIPv6(rest)
	if !ok {
		return k, fmt.Errorf("%q is not an IPv6 address or a prefix of whole 16-bit groups", k)
	}
	if bracket {
		return "[ipv6:" + n + "]", nil
	}
	return "ipv6:" + n, nil
}

// parseAction reads an access value: OK, RELAY, REJECT, DISCARD, SKIP,
// QUARANTINE:reason, ERROR:D.S.N:CODE text, ERROR:CODE text (either text
// may be in double quotes) or the legacy bare "CODE text". Keywords ignore
// case, as sendmail's rulesets do.
func parseAction(v string) (Action, error) {
	switch strings.ToUpper(v) {
	case "OK":
		return Action{Kind: ActionOK}, nil
	case "RELAY":
		return Action{Kind: ActionRelay}, nil
	case "REJECT":
		return rejectAction, nil
	case "DISCARD":
		return Action{Kind: ActionDiscard}, nil
	case "SKIP":
		return Action{Kind: ActionSkip}, nil
	}
	if rest, ok := cutPrefixFold(v, "quarantine:"); ok {
		reason := dequote(strings.TrimSpace(rest))
		if reason == "" {
			return Action{}, errors.New("QUARANTINE: needs a reason")
		}
		return Action{Kind: ActionQuarantine, Text: reason}, nil
	}
	rest, tagged := cutPrefixFold(v, "error:")
	status := ""
	if tagged {
		if w, r, sep := cutWord(rest); sep == ':' && isEnhanced(w) {
			status, rest = w, r
		}
	}
	code, enh, text, ok := splitReply(rest)
	if !ok {
		if tagged {
			return Action{}, fmt.Errorf("%q has no reply code (want ERROR:550 text or ERROR:5.7.1:550 text)", v)
		}
		return Action{}, fmt.Errorf("unknown value %q (want OK, RELAY, REJECT, DISCARD, SKIP, ERROR:550 text, QUARANTINE:reason)", v)
	}
	if status != "" {
		if enh != "" && enh != status {
			return Action{}, fmt.Errorf("two statuses: %s and %s", status, enh)
		}
		enh = status
	}
	if enh == "" {
		// As Postfix does for access tables: a policy refusal without
		// a status is X.7.1 ("delivery not authorized"). Sendmail
		// sends 5.0.0 here, even after a 4xx code (cf/README warns).
		enh = fmt.Sprintf("%d.7.1", code/100)
	}
	if err := checkRefusal(code, enh); err != nil {
		return Action{}, err
	}
	return Action{Kind: ActionError, Code: code, Enhanced: enh, Text: text}, nil
}

// Len is the number of entries, all tags together.
func (a *Access) Len() int {
	if a == nil {
		return 0
	}
	return len(a.tagged) + len(a.untagged)
}

// Tagged returns the value of "tag:key" as written, for any tag; tag ""
// looks up an untagged key. Tag and key ignore case; IPv6 keys are
// compared by their groups. An empty key finds the tag's default entry
// ("ClientRate:  10").
func (a *Access) Tagged(tag, key string) (string, bool) {
	if a == nil {
		return "", false
	}
	tag = strings.TrimSuffix(lowerASCII(tag), ":")
	k, _ := normKey(lowerASCII(key))
	if tag == "" {
		e, ok := a.untagged[k]
		return e.value, ok
	}
	e, ok := a.tagged[tag+":"+k]
	return e.value, ok
}

// lookup tries "tag:key", then the untagged key: per key, not after all
// tagged keys, as LookUpDomain and friends do.
func (a *Access) lookup(tag, key string) (accessEntry, bool) {
	if e, ok := a.tagged[tag+":"+key]; ok {
		return e, true
	}
	e, ok := a.untagged[key]
	return e, ok
}

// search is one of sendmail's lookup routines (D, A, F or U) over its keys
// in order. The first entry found ends it; a SKIP entry ends it with
// nothing found, so the next routine runs.
func (a *Access) search(tag string, keys []string) (Action, bool) {
	for _, k := range keys {
		if e, ok := a.lookup(tag, lowerASCII(k)); ok {
			if e.action.Kind == ActionSkip {
				return Action{}, false
			}
			return e.action, true
		}
	}
	return Action{}, false
}

// Connect is check_relay: what to do with a client at ip whose verified
// host name is hostname ("" when it did not resolve, or resolved but could
// not be confirmed). Sendmail looks up:
//
//  1. The host name, then each parent domain: mail.example.com,
//     example.com, com. A client without a name is looked up by
//     sendmail's stand-in name "[192.0.2.7]", then "[192.0.2]",
//     "[192.0]", "[192]": keys in square brackets match only such
//     clients.
//  2. The address: 192.0.2.7, 192.0.2, 192.0, 192 (whole octets). An
//     IPv6 client 2001:db8::1 is looked up as IPv6:2001:db8:0:0:0:0:0:1,
//     then with 7, 6, ... 1 leading groups; keys are compared group by
//     group, so IPv6:2001:0db8 and IPv6:2001:db8 are the same key and a
//     key with "::" is one whole address. (Sendmail compares the text of
//     the compressed address, which misses keys with leading zeros such
//     as cf/README's own IPv6:2002:c0a8:02c7.) An IPv4-mapped IPv6
//     client is looked up as IPv4.
//
// Each key is tried with "Connect:" and then untagged. A SKIP entry stops
// the step it is found in. The first other entry found is returned; ok is
// false when nothing applies.
func (a *Access) Connect(ip netip.Addr, hostname string) (Action, bool) {
	if a == nil {
		return Action{}, false
	}
	if act, ok := a.search("connect", hostKeys(hostname, ip)); ok {
		return act, true
	}
	return a.search("connect", addrKeys(ip))
}

// RelayClient reports whether the access map lets a client relay: as
// sendmail's Relay_ok, its address (as in Connect) and then its verified
// host name and parent domains have "Connect:... RELAY" (or an untagged
// RELAY). Unlike Connect it asks the address first, and a client without a
// verified name is judged by its address alone.
func (a *Access) RelayClient(ip netip.Addr, hostname string) bool {
	if a == nil {
		return false
	}
	if act, ok := a.search("connect", addrKeys(ip)); ok && act.Kind == ActionRelay {
		return true
	}
	name := strings.TrimSuffix(lowerASCII(hostname), ".")
	if _, err := netip.ParseAddr(name); err == nil || name == "" || name[0] == '[' {
		return false
	}
	act, ok := a.search("connect", domainKeys(name))
	return ok && act.Kind == ActionRelay
}

// From is check_mail: what to do with the envelope sender addr
// (local@domain, no angle brackets). Sendmail's order (proto.m4,
// Basic_check_mail: "user@address, user@, address"):
//
//  1. the full address: user+detail@dom, user+*@dom, user@dom
//  2. the local part: user+detail@, user+*@, user@
//  3. the domain and its parents: mail.example.com, example.com, com
//     (a domain literal [192.0.2.7] as in Connect's step 1)
//
// each key with "From:" and then untagged. An address without a domain
// has only step 2. The null sender is never looked up (RFC 1123 says it
// must be accepted): ok is false.
func (a *Access) From(addr string) (Action, bool) {
	if a == nil || addr == "" || addr == "<>" {
		return Action{}, false
	}
	local, dom := splitAddr(addr)
	for _, keys := range [][]string{fullKeys(local, dom), userKeys(local), domKeys(dom)} {
		if act, ok := a.search("from", keys); ok {
			return act, true
		}
	}
	return Action{}, false
}

// To is check_rcpt's blocklist for a recipient in a domain that is not
// local: the full address and then the domain and its parents, as in From,
// with "To:" and then untagged. "user@" entries are for local recipients
// only; see ToLocal. REJECT says "550 5.2.1 Mailbox disabled for this
// recipient", sendmail's confRCPTREJ_MSG.
func (a *Access) To(addr string) (Action, bool) {
	return a.to(addr, false)
}

// ToLocal is To for a recipient in a local domain ({w}): the full address,
// the local part (user@), then the domain and its parents, the order
// FEATURE(blocklist_recipients) uses.
func (a *Access) ToLocal(addr string) (Action, bool) {
	return a.to(addr, true)
}

func (a *Access) to(addr string, local bool) (Action, bool) {
	if a == nil || addr == "" || addr == "<>" {
		return Action{}, false
	}
	lp, dom := splitAddr(addr)
	lists := [][]string{fullKeys(lp, dom), domKeys(dom)}
	if local || dom == "" {
		lists = [][]string{fullKeys(lp, dom), userKeys(lp), domKeys(dom)}
	}
	for _, keys := range lists {
		if act, ok := a.search("to", keys); ok {
			if act.Kind == ActionReject {
				act = rejectRcptAction
			}
			return act, true
		}
	}
	return Action{}, false
}

// RelayTo reports whether "To:domain RELAY" (or an untagged RELAY) allows
// relaying to domain: the domain and its parents are looked up as in
// Connect's step 1, and only RELAY counts.
func (a *Access) RelayTo(domain string) bool {
	if a == nil {
		return false
	}
	act, ok := a.search("to", domKeys(domain))
	return ok && act.Kind == ActionRelay
}

// ClientValue looks up a per-client setting of another tag, as sendmail
// does for GreetPause:, Srv_Features: and the like: the host name and its
// parents (or the bracketed address, as in Connect), then the address
// prefixes, then the tag's default entry with an empty key ("GreetPause:
// 5000"). Only tagged entries count. The value is returned as written.
func (a *Access) ClientValue(tag string, ip netip.Addr, hostname string) (string, bool) {
	if a == nil {
		return "", false
	}
	tag = strings.TrimSuffix(lowerASCII(tag), ":")
	for _, keys := range [][]string{hostKeys(hostname, ip), addrKeys(ip)} {
		for _, k := range keys {
			if e, ok := a.tagged[tag+":"+k]; ok {
				if strings.EqualFold(e.value, "SKIP") {
					break
				}
				return e.value, true
			}
		}
	}
	e, ok := a.tagged[tag+":"]
	return e.value, ok
}

// hostKeys is step 1 of Connect: the name and its parents, or for a client
// without a name, its bracketed address and the prefixes of that. A caller
// that passes the bare address as the name gets the latter too: its
// "parents" (0.2.7 of 192.0.2.7) would match keys meant for domains.
func hostKeys(hostname string, ip netip.Addr) []string {
	name := strings.TrimSuffix(lowerASCII(hostname), ".")
	if name == "" {
		return bracketKeys(ip)
	}
	if a, err := netip.ParseAddr(name); err == nil {
		return bracketKeys(a)
	}
	return domKeys(name)
}

// domKeys is LookUpDomain's list for a domain part: the name and its
// parents, or a domain literal and its prefixes.
func domKeys(dom string) []string {
	dom = strings.TrimSuffix(lowerASCII(dom), ".")
	if dom == "" {
		return nil
	}
	if strings.HasPrefix(dom, "[") && strings.HasSuffix(dom, "]") {
		inner := strings.TrimPrefix(dom[1:len(dom)-1], "ipv6:")
		if ip, err := netip.ParseAddr(inner); err == nil {
			return bracketKeys(ip)
		}
		return []string{dom}
	}
	return domainKeys(dom)
}

// splitAddr splits at the last '@'; without one, the whole is the local
// part. A trailing dot on the domain is dropped.
func splitAddr(addr string) (local, dom string) {
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return addr, ""
	}
	return addr[:at], strings.TrimSuffix(addr[at+1:], ".")
}

// splitDetail finds user and detail in user+detail the way sendmail's
// "$+ + $*" does: at the first '+' after at least one character.
func splitDetail(local string) (user, detail string, ok bool) {
	i := strings.IndexByte(local, '+')
	if i < 1 {
		return local, "", false
	}
	return local[:i], local[i+1:], true
}

// fullKeys is LookUpFull: the address, then user+*@dom and user@dom when
// there is a +detail.
func fullKeys(local, dom string) []string {
	if dom == "" || local == "" {
		return nil
	}
	keys := []string{local + "@" + dom}
	if user, _, ok := splitDetail(local); ok {
		keys = append(keys, user+"+*@"+dom, user+"@"+dom)
	}
	return keys
}

// userKeys is LookUpUser: user+detail@, user+*@, user@.
func userKeys(local string) []string {
	if local == "" {
		return nil
	}
	keys := []string{local + "@"}
	if user, _, ok := splitDetail(local); ok {
		keys = append(keys, user+"+*@", user+"@")
	}
	return keys
}
