package importmc

import (
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gosendmail/gosendmail/pkg/config"
	"github.com/gosendmail/gosendmail/pkg/route"
)

// setting is one key of the output with the comment lines above it.
type setting struct {
	key   string
	val   string   // TOML value
	from  []string // "from sendmail.mc line N: ..." lines
	notes []string // further comment lines
}

// def is a define()d name: its last value and where it was set.
type def struct {
	val  string
	line int
	what string
}

// listener is one DAEMON_OPTIONS (or sendmail's default daemon).
type listener struct {
	name, host, mode string
	port             int
	family           string // inet or inet6
	wildcard         bool
	what             string
	authRequired     bool // M=a
	noAuth           bool // M=A
	line             int
	from             []string
	notes            []string
}

// filter is one MAIL_FILTER / INPUT_MAIL_FILTER definition.
type filter struct {
	name, socket string
	line         int
	what         string
	onFailure    string // tempfail, reject, accept
	flagNotes    []string
	timeouts     map[string]string // timeout_connect... → duration
	bad          string            // why it cannot become a [[milter]]
	used         bool
}

// milterOut is a [[milter]] of the output.
type milterOut struct {
	f     *filter
	from  []string
	notes []string
}

type translator struct {
	exposed     []string // EXPOSED_USER names, for exposed_users
	exposedLine int
	opt         Options
	file        string // the .mc as messages show it
	base        string // its base name, for comments
	items       []Item
	pused       map[string]bool // names the parser substituted

	defs map[string]*def
	used map[string]bool // defined names used inside other values

	top, limits, tls, delivery, dkim []setting
	dkimNotes                        []string

	listeners    []*listener
	daemonCalls  int
	noDefaultMSA bool
	saslInclude  bool

	clientFamilies map[string]bool
	clientFrom     []string
	clientLine     int

	useCW, useCT *call
	features     map[string]bool

	filters    map[string]*filter
	filterList []string // confINPUT_MAIL_FILTERS as the file has built it
	listLine   int
	listWhat   string
	milters    []milterOut

	od     *odConf // opendkim.conf, read once
	odErr  error
	odRead bool
	dkimBy *filter // the filter [dkim] replaced
}

func newTranslator(opt Options, p *parser) *translator {
	return &translator{
		opt: opt, file: opt.Source, base: baseName(opt.Source), pused: p.used,
		defs: map[string]*def{}, used: map[string]bool{},
		clientFamilies: map[string]bool{}, features: map[string]bool{},
		filters: map[string]*filter{},
	}
}

func (t *translator) item(line int, k Kind, what, why string) {
	t.items = append(t.items, Item{File: t.file, Line: line, Kind: k, What: what, Why: why})
}

func (t *translator) notTranslated(c call, why string) {
	t.item(c.line, NotTranslated, c.String(), why)
}

func (t *translator) fromLine(line int, what string) string {
	return fmt.Sprintf("from %s line %d: %s", t.base, line, what)
}

// set validates key = val in section (the top level when "") and adds it
// to tbl, replacing an earlier value; a value gosendmail refuses is
// reported instead.
// It returns the setting (valid until tbl grows), or nil.
func (t *translator) set(tbl *[]setting, section, key, val string, line int, what string, notes ...string) *setting {
	snippet := key + " = " + val + "\n"
	if section != "" {
		snippet = "[" + section + "]\n" + snippet
	}
	if err := validate(snippet); err != nil {
		t.item(line, NotTranslated, what, "gosendmail refuses the value: "+err.Error())
		return nil
	}
	s := setting{key: key, val: val, notes: notes}
	if what != "" {
		s.from = []string{t.fromLine(line, what)}
	}
	for i := range *tbl {
		if (*tbl)[i].key == key {
			(*tbl)[i] = s
			return &(*tbl)[i]
		}
	}
	*tbl = append(*tbl, s)
	return &(*tbl)[len(*tbl)-1]
}

// lookup is the translator's view of define()d names, for expanding
// values; it marks the names it substitutes as used.
func (t *translator) lookup(name string) (string, bool) {
	if d, ok := t.defs[name]; ok {
		t.used[name] = true
		return d.val, true
	}
	v, ok := builtinValues[name]
	return v, ok
}

// value is a define()d name's value as m4 would use it: expanded and
// trimmed. ok is false if the name is not defined or cannot be expanded.
func (t *translator) value(name string) (v string, d *def, ok bool) {
	d = t.defs[name]
	if d == nil {
		return "", nil, false
	}
	v, ok = expand(d.val, t.lookup)
	if !ok {
		t.item(d.line, NotTranslated, d.what, "the value refers to itself, or expands too far, to be evaluated")
		return "", d, false
	}
	return strings.TrimSpace(v), d, true
}

func (t *translator) call(c call) {
	switch c.name {
	case "define":
		t.define(c)
	case "undefine":
		t.undefine(c)
	case "include", "sinclude":
		t.include(c)
	case "VERSIONID", "OSTYPE":
		// Accepted: they name the configuration and select sendmail's
		// paths for the system, none of which carries over.
	case "DOMAIN":
		t.domain(c)
	case "FEATURE":
		t.feature(c)
	case "MAILER":
		t.mailer(c)
	case "DAEMON_OPTIONS":
		t.daemonOptions(c)
	case "CLIENT_OPTIONS":
		if len(c.args) > 1 {
			t.notTranslated(c, "arguments after the first are ignored, by sendmail too: quote the whole list as one argument")
		}
		t.clientOptions(c.line, c.String(), c.arg(0))
	case "INPUT_MAIL_FILTER", "MAIL_FILTER":
		t.mailFilter(c)
	case "MASQUERADE_AS":
		dom := strings.TrimSuffix(strings.TrimSpace(c.arg(0)), ".")
		if dom == "" || strings.ContainsAny(dom, "$") {
			t.notTranslated(c, "the domain is empty or uses sendmail macros")
			return
		}
		t.set(&t.top, "", "masquerade_as", tomlString(dom), c.line, c.String(),
			"mail from local users shows this domain in From: instead of hostname")
	case "EXPOSED_USER":
		t.exposed = append(t.exposed, strings.Fields(c.arg(0))...)
		if t.exposedLine == 0 {
			t.exposedLine = c.line
		}
	case "RELAY_DOMAIN_FILE":
		path := mapPath(c.arg(0))
		if !strings.HasPrefix(path, "/") {
			t.notTranslated(c, "not an absolute file name")
			return
		}
		t.set(&t.top, "", "relay_domains", tomlString(path), c.line, c.String())
	default:
		if _, ok := sections[c.name]; ok && !c.paren {
			return // the parser reports the text that follows
		}
		if m4Builtins[c.name] {
			why := "m4's " + c.name + " is not evaluated by import-mc"
			if c.name == "ifdef" || c.name == "ifelse" {
				why = "conditionals are not evaluated: nothing inside them is imported; write the settings out unconditionally"
			}
			t.notTranslated(c, why)
			return
		}
		if why, ok := macroWhy[c.name]; ok {
			t.notTranslated(c, why)
			return
		}
		if _, ok := t.defs[c.name]; ok {
			t.notTranslated(c, "a macro defined in sendmail.mc called on its own: import-mc does not expand it here")
			return
		}
		if c.discard {
			return // text that divert(-1) throws away
		}
		t.notTranslated(c, "unknown macro: not one of sendmail's m4 macros that import-mc knows (a typo?)")
	}
}

// define records a definition; cf.m4 reads its conf* names at the end of
// the file, so they are translated in finish with their last values.
func (t *translator) define(c call) {
	name := c.arg(0)
	if name == "" {
		t.notTranslated(c, "define without a name")
		return
	}
	val := ""
	if len(c.args) > 1 {
		val = c.args[1]
	}
	if name == "confINPUT_MAIL_FILTERS" {
		v, _ := expand(val, t.lookup)
		t.filterList = splitList(v)
		t.listLine, t.listWhat = c.line, c.String()
		return
	}
	t.defs[name] = &def{val: val, line: c.line, what: c.String()}
}

// boilerplateUndefines are undefine()s of Debian's sendmail.mc: sendmail.conf
// settings with no meaning here.
var boilerplateUndefines = map[string]bool{"confHOST_STATUS_DIRECTORY": true}

func (t *translator) undefine(c call) {
	for i := range c.args {
		name := c.arg(i)
		if name == "confINPUT_MAIL_FILTERS" {
			t.filterList, t.listLine, t.listWhat = nil, c.line, c.String()
			continue
		}
		if _, ok := t.defs[name]; ok {
			delete(t.defs, name)
			continue
		}
		if boilerplateUndefines[name] || name == "" {
			continue
		}
		t.notTranslated(c, "removes cf.m4's default for "+name+", which has no gosendmail equivalent")
	}
}

func (t *translator) include(c call) {
	path := c.arg(0)
	switch {
	case strings.HasSuffix(path, "/m4/cf.m4") || path == "cf.m4",
		path == "/etc/mail/m4/dialup.m4", path == "/etc/mail/m4/provider.m4":
		// sendmail's own macros, and Debian's (normally empty) dial-up
		// and provider files: accepted without reading them.
	case path == "/etc/mail/tls/starttls.m4":
		t.notTranslated(c, "not read: Debian's STARTTLS settings; set [tls] cert_file and key_file to the certificate and key it names")
	case path == "/etc/mail/sasl/sasl.m4":
		t.saslInclude = true
		t.notTranslated(c, "not read: Debian's SMTP AUTH (SASL) settings; gosendmail checks AUTH against [auth] users_file (one user:bcrypt-hash per line)")
	default:
		t.notTranslated(c, "not read: import-mc reads only sendmail.mc; copy the settings into it to import them")
	}
}

func (t *translator) domain(c call) {
	if c.arg(0) == "debian-mta" {
		t.item(c.line, Note, c.String(), "Debian's MTA domain file adapts sendmail to Debian (the smmta account, /run/sendmail, /var/lib/sendmail); "+
			"gosendmail's defaults already use Debian's spools (queue_dir /var/spool/mqueue, maildrop_dir /var/spool/mqueue-client) and /etc/mail, "+
			"and it runs as its own account (user), not smmta")
		return
	}
	t.notTranslated(c, "domain file not read: copy its settings into sendmail.mc to import them")
}

func (t *translator) mailer(c call) {
	switch c.arg(0) {
	case "local", "smtp":
		// gosendmail's own local and SMTP delivery.
	case "procmail":
		t.notTranslated(c, "gosendmail delivers local mail itself (mail_spool_dir, [delivery] local_format); run procmail from ~/.forward or an alias instead")
	default:
		t.notTranslated(c, "gosendmail has only its own local and SMTP delivery: the "+c.arg(0)+" mailer has no equivalent")
	}
}

func (t *translator) feature(c call) {
	name := c.arg(0)
	if name == "" {
		t.notTranslated(c, "FEATURE without a name")
		return
	}
	t.features[name] = true
	switch name {
	case "use_cw_file":
		cc := c
		t.useCW = &cc
	case "use_ct_file":
		cc := c
		t.useCT = &cc
	case "virtusertable":
		t.mapFeature(c, "virtusertable", "/etc/mail/virtusertable")
	case "mailertable":
		t.mapFeature(c, "mailertable", "/etc/mail/mailertable")
	case "access_db":
		t.mapFeature(c, "access", "/etc/mail/access")
		var rest []string
		for _, o := range c.args[min(2, len(c.args)):] {
			switch o = strings.TrimSpace(o); o {
			case "", "skip":
				// gosendmail's access file always understands SKIP.
			default:
				rest = append(rest, o)
			}
		}
		if len(rest) > 0 {
			t.notTranslated(c, "access_db options "+strings.Join(rest, ", ")+" have no gosendmail equivalent (SKIP is always understood)")
		}
	case "no_default_msa":
		t.noDefaultMSA = true
	case "masquerade_envelope":
		t.set(&t.top, "", "masquerade_envelope", "true", c.line, c.String())
	case "greet_pause":
		ms := c.arg(1)
		if ms == "" {
			t.notTranslated(c, "without a value sendmail takes the pause from the access file's GreetPause: entries; gosendmail uses [limits] greet_pause (default 1s) for every client outside relay_from")
			return
		}
		n, err := strconv.Atoi(ms)
		if err != nil || n < 0 || n > 3600*1000 {
			t.notTranslated(c, "the pause is not a number of milliseconds")
			return
		}
		if n == 0 {
			t.notTranslated(c, "a pause of 0 turns the check off; gosendmail's greet_pause must be positive")
			return
		}
		t.set(&t.limits, "limits", "greet_pause", tomlString((time.Duration(n) * time.Millisecond).String()), c.line, c.String(),
			"relay_from clients never wait (sendmail: GreetPause: entries in the access file)")
	default:
		why, ok := featureWhy[name]
		if !ok {
			why = "unknown FEATURE: sendmail has no feature of that name (a typo?)"
		}
		t.notTranslated(c, why)
	}
}

// mapFeature translates FEATURE(`virtusertable'), mailertable and access_db.
func (t *translator) mapFeature(c call, key, def string) {
	path, why := mapSpec(c.arg(1), def)
	if why != "" {
		t.notTranslated(c, why)
		return
	}
	t.set(&t.top, "", key, tomlString(path), c.line, c.String(), "the text file is read as it is: no makemap, no .db")
}

// mapSpec reads a map specification such as "hash -o /etc/mail/access"
// and returns the text file gosendmail should read.
func mapSpec(spec, def string) (string, string) {
	f := strings.Fields(spec)
	if len(f) == 0 {
		return def, ""
	}
	if strings.HasPrefix(f[0], "/") && len(f) == 1 {
		return mapPath(f[0]), ""
	}
	switch strings.ToLower(f[0]) {
	case "hash", "btree", "dbm", "cdb", "text", "implicit":
	default:
		return "", "map type " + f[0] + " is not supported: gosendmail reads plain text files only"
	}
	path := ""
	for _, x := range f[1:] {
		if strings.HasPrefix(x, "/") {
			path = x
		}
	}
	if path == "" {
		return "", "the map specification names no absolute file"
	}
	return mapPath(path), ""
}

// mapPath turns a database name into its text source: makemap's input is
// conventionally the name without .db.
func mapPath(p string) string {
	p = strings.TrimSpace(p)
	for _, suf := range []string{".db", ".cdb", ".dir", ".pag"} {
		if q, ok := strings.CutSuffix(p, suf); ok && q != "" {
			return q
		}
	}
	return p
}

// daemonOptions reads DAEMON_OPTIONS(`Family=inet, Name=MTA, Port=25, Addr=..., M=Ea').
func (t *translator) daemonOptions(c call) {
	t.daemonCalls++
	what := c.String()
	if len(c.args) > 1 {
		t.notTranslated(c, "arguments after the first are ignored, by sendmail too: quote the whole list as one argument")
	}
	l := &listener{family: "inet", port: 25, line: c.line, what: what, from: []string{t.fromLine(c.line, what)}}
	var others []string
	mods := ""
	addr := ""
	for _, f := range strings.Split(c.arg(0), ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		k, v, ok := strings.Cut(f, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" {
			t.notTranslated(c, fmt.Sprintf("%q is not key=value: not a listener", f))
			return
		}
		switch k[0] {
		case 'A':
			addr = v
		case 'F':
			l.family = strings.ToLower(v)
		case 'M':
			mods += v
		case 'N':
			l.name = v
		case 'P':
			p, ok := parsePort(v)
			if !ok {
				t.notTranslated(c, fmt.Sprintf("port %q is not a number or one of smtp, submission, smtps", v))
				return
			}
			l.port = p
		default:
			others = append(others, k)
		}
	}
	switch l.family {
	case "inet", "inet6":
	case "local", "unix":
		t.notTranslated(c, "listening on a unix-domain socket is not supported")
		return
	default:
		t.notTranslated(c, "address family "+l.family+" is not supported (inet and inet6 are)")
		return
	}
	switch {
	case addr == "" || addr == "0.0.0.0" && l.family == "inet" || addr == "::" && l.family == "inet6" || strings.EqualFold(addr, "INADDR_ANY"):
		l.wildcard = true
		l.host = "0.0.0.0"
		if l.family == "inet6" {
			l.host = "::"
		}
	default:
		ip, err := netip.ParseAddr(strings.Trim(addr, "[]"))
		if err == nil {
			if ip.Is4() != (l.family == "inet") {
				t.notTranslated(c, "Addr="+addr+" is not an address of family "+l.family)
				return
			}
			l.host = ip.String()
		} else if validHostname(addr) {
			l.host = addr
			l.notes = append(l.notes, "Addr="+addr+" is a name: the listener binds the first address it resolves to")
		} else {
			t.notTranslated(c, "Addr="+addr+" is not an address or host name")
			return
		}
	}
	for _, m := range mods {
		switch m {
		case 'a':
			l.authRequired = true
		case 'A':
			l.noAuth = true
		case 'E':
			l.notes = append(l.notes, "M=E (no ETRN): gosendmail never offers ETRN")
		case 's':
			l.mode = "smtps"
		case ' ', ',':
		default:
			why, ok := modifierWhy[m]
			if !ok {
				why = "unknown modifier"
			}
			t.notTranslated(c, fmt.Sprintf("M=%c (%s) has no gosendmail equivalent; the listener is translated without it", m, why))
		}
	}
	if len(others) > 0 {
		t.notTranslated(c, strings.Join(others, ", ")+" have no gosendmail equivalent; the listener is translated without them")
	}
	if l.mode == "" {
		switch {
		case l.port == 465:
			l.mode = "smtps"
		case l.port == 587 || strings.HasPrefix(strings.ToUpper(l.name), "MSA"):
			l.mode = "submission"
		default:
			l.mode = "mta"
		}
	}
	if l.name == "" {
		l.name = map[string]string{"mta": "MTA", "submission": "MSA", "smtps": "SMTPS"}[l.mode]
	}
	t.listeners = append(t.listeners, l)
}

func parsePort(v string) (int, bool) {
	switch strings.ToLower(v) {
	case "smtp":
		return 25, true
	case "submission":
		return 587, true
	case "smtps", "ssmtp", "urd":
		return 465, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 || n > 65535 {
		return 0, false
	}
	return n, true
}

// clientOptions reads ClientPortOptions: only Family= carries over.
func (t *translator) clientOptions(line int, what, v string) {
	var others []string
	fam := ""
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		k, val, _ := strings.Cut(f, "=")
		k, val = strings.TrimSpace(k), strings.TrimSpace(val)
		if k != "" && k[0] == 'F' {
			fam = strings.ToLower(val)
			continue
		}
		others = append(others, f)
	}
	if len(others) > 0 {
		t.item(line, NotTranslated, what, strings.Join(others, ", ")+": only Family= has a gosendmail equivalent ([delivery] client_family)")
	}
	switch fam {
	case "":
		if len(others) == 0 {
			t.item(line, NotTranslated, what, "empty client options")
		}
		return
	case "inet", "inet6":
		t.clientFamilies[fam] = true
		t.clientFrom = append(t.clientFrom, t.fromLine(line, what))
		t.clientLine = line
	default:
		t.item(line, NotTranslated, what, "address family "+fam+" has no gosendmail equivalent (inet and inet6 do)")
	}
}

// mailFilter reads MAIL_FILTER and INPUT_MAIL_FILTER(`name', `S=..., F=..., T=...').
func (t *translator) mailFilter(c call) {
	name := c.arg(0)
	if name == "" {
		t.notTranslated(c, "a mail filter without a name")
		return
	}
	if len(c.args) > 2 {
		t.notTranslated(c, "arguments after the second are ignored, by sendmail too: quote the equates (S=, F=, T=) as one argument")
	}
	f := &filter{name: name, line: c.line, what: c.String(), onFailure: "accept", timeouts: map[string]string{}}
	flags := ""
	for _, e := range strings.Split(c.arg(1), ",") {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		k, v, _ := strings.Cut(e, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if k == "" {
			f.flagNotes = append(f.flagNotes, e+" is not an equate")
			continue
		}
		switch k[0] {
		case 'S':
			f.socket = v
		case 'F':
			flags += v
		case 'T':
			t.milterTimeouts(f, v)
		default:
			f.flagNotes = append(f.flagNotes, k+"= has no gosendmail equivalent")
		}
	}
	hasR, hasT := strings.ContainsRune(flags, 'R'), strings.ContainsAny(flags, "T4")
	switch {
	case hasR:
		f.onFailure = "reject"
		if hasT {
			f.flagNotes = append(f.flagNotes, "F=R wins over F=T, as in sendmail")
		}
	case hasT:
		f.onFailure = "tempfail"
	}
	if strings.ContainsRune(flags, '4') {
		f.flagNotes = append(f.flagNotes, "F=4 (421 and close) becomes tempfail")
	}
	for _, r := range flags {
		if !strings.ContainsRune("RT4", r) {
			f.flagNotes = append(f.flagNotes, fmt.Sprintf("F=%c has no gosendmail equivalent", r))
		}
	}
	if why := checkSocket(f.socket); why != "" {
		f.bad = why
	}
	t.filters[name] = f
	if c.name == "INPUT_MAIL_FILTER" {
		t.filterList = append(t.filterList, name)
		if t.listLine == 0 {
			t.listLine, t.listWhat = c.line, c.String()
		}
	}
}

// milterTimeouts reads T=C:5m;S:10s;R:10s;E:5m (sendmail's default unit
// here is the second).
func (t *translator) milterTimeouts(f *filter, v string) {
	keys := map[string]string{"C": "timeout_connect", "S": "timeout_send", "R": "timeout_read", "E": "timeout_eom"}
	for _, part := range strings.Split(v, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, val, ok := strings.Cut(part, ":")
		key, known := keys[strings.TrimSpace(k)]
		if !ok || !known {
			f.flagNotes = append(f.flagNotes, "timeout "+part+" has no gosendmail equivalent")
			continue
		}
		d, ok := sendmailTime(strings.TrimSpace(val), "s")
		if !ok {
			f.flagNotes = append(f.flagNotes, "timeout "+part+" is not a duration")
			continue
		}
		f.timeouts[key] = d
	}
}

// checkSocket checks a milter socket in sendmail's syntax, which is also
// gosendmail's.
func checkSocket(s string) string {
	if s == "" {
		return "no socket (S=)"
	}
	if strings.ContainsAny(s, " \t\"\\") {
		return "socket " + s + " is malformed"
	}
	proto, rest, ok := strings.Cut(s, ":")
	if !ok {
		return "socket " + s + " has no type (inet:, inet6:, unix:, local:)"
	}
	switch proto {
	case "inet", "inet6":
		port, host, ok := strings.Cut(rest, "@")
		if _, ok2 := parsePort(port); !ok || !ok2 || host == "" {
			return "socket " + s + " is not PORT@HOST"
		}
	case "unix", "local":
		if !strings.HasPrefix(rest, "/") {
			return "socket " + s + " is not an absolute path"
		}
	default:
		return "socket type " + proto + " is not supported (inet:, inet6:, unix:, local:)"
	}
	return ""
}

// finish translates what cf.m4 reads at the end of the file: the
// definitions, the listeners, the filters.
func (t *translator) finish() {
	t.finishDefines()
	t.finishFiles()
	t.finishClient()
	t.finishListeners()
	t.finishFilters()
	t.absentNotes()
}

// consumed are names that other translations read; they are not reported
// on their own.
var consumed = map[string]bool{
	"_USE_ETC_MAIL_": true, "SMART_HOST": true, "confCW_FILE": true, "confCT_FILE": true,
	"confAUTH_MECHANISMS": true,
}

func (t *translator) finishDefines() {
	var names []string
	for n := range t.defs {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool { return t.defs[names[i]].line < t.defs[names[j]].line })
	// A name another value refers to is a helper (define(`CERT_DIR', ...)
	// for confSERVER_CERT), whichever comes first.
	for _, name := range names {
		expand(t.defs[name].val, func(n string) (string, bool) {
			if d, ok := t.defs[n]; ok && n != name {
				t.used[n] = true
				return d.val, true
			}
			return "", false
		})
	}
	t.smartHost()
	if len(t.exposed) > 0 {
		// sendmail's class E holds root from the start.
		users := []string{tomlString("root")}
		for _, u := range t.exposed {
			if u != "root" {
				users = append(users, tomlString(u))
			}
		}
		t.set(&t.top, "", "exposed_users", "["+strings.Join(users, ", ")+"]", t.exposedLine, "EXPOSED_USER")
	}
	for _, name := range names {
		if consumed[name] {
			continue
		}
		v, d, ok := t.value(name)
		if !ok {
			continue
		}
		what := d.what
		bad := func(why string) { t.item(d.line, NotTranslated, what, why) }
		switch name {
		case "confDOMAIN_NAME":
			if strings.Contains(v, "$") {
				bad("the value uses sendmail macros ($...), which import-mc cannot evaluate: set hostname by hand")
			} else if !validHostname(v) {
				bad(fmt.Sprintf("%q is not a host name", v))
			} else {
				t.set(&t.top, "", "hostname", tomlString(strings.TrimSuffix(v, ".")), d.line, what)
			}
		case "confPRIVACY_FLAGS":
			t.privacy(v, d)
		case "confMAX_MESSAGE_SIZE":
			n, err := strconv.ParseInt(v, 10, 64)
			switch {
			case err != nil || n < 0 || n > 1<<50:
				bad("not a number of bytes (sendmail reads only digits here)")
			case n == 0:
				bad("0 means no limit in sendmail; gosendmail needs one: max_message_size keeps its default (50M)")
			default:
				t.set(&t.top, "", "max_message_size", strconv.FormatInt(n, 10), d.line, what)
			}
		case "confTO_QUEUEWARN", "confTO_QUEUEWARN_NORMAL":
			t.duration(&t.delivery, "delivery", "queue_warn", v, "h", d)
		case "confTO_QUEUERETURN", "confTO_QUEUERETURN_NORMAL":
			t.duration(&t.delivery, "delivery", "queue_return", v, "d", d)
		case "confTO_QUEUEWARN_URGENT", "confTO_QUEUEWARN_NONURGENT", "confTO_QUEUEWARN_DSN",
			"confTO_QUEUERETURN_URGENT", "confTO_QUEUERETURN_NONURGENT", "confTO_QUEUERETURN_DSN":
			bad("gosendmail has one queue_warn and one queue_return for every message, not one per priority")
		case "confCLIENT_OPTIONS":
			t.clientOptions(d.line, what, v)
		case "confCR_FILE":
			t.filePath(&t.top, "", "relay_domains", v, d)
		case "ALIAS_FILE":
			t.aliasFile(v, d)
		case "QUEUE_DIR":
			if strings.ContainsAny(v, "*?[") {
				bad("queue groups (wildcard queue directories) have no gosendmail equivalent: gosendmail has one queue_dir")
			} else {
				t.filePath(&t.top, "", "queue_dir", v, d)
			}
		case "confMAX_RCPTS_PER_MESSAGE":
			t.count(&t.limits, "limits", "max_recipients", v, d)
		case "confMAX_DAEMON_CHILDREN":
			t.count(&t.limits, "limits", "max_connections", v, d)
		case "confSERVER_CERT":
			t.filePath(&t.tls, "tls", "cert_file", v, d)
		case "confSERVER_KEY":
			t.filePath(&t.tls, "tls", "key_file", v, d)
		case "confDEF_USER_ID":
			u, _, _ := strings.Cut(v, ":")
			if _, err := strconv.Atoi(u); err == nil || u == "" || !validToken(u) {
				bad("gosendmail's [delivery] default_user takes an account name, not a number")
			} else {
				t.set(&t.delivery, "delivery", "default_user", tomlString(u), d.line, what)
			}
		default:
			if t.used[name] || t.pused[name] {
				continue // a helper for other values
			}
			if m, ok := strings.CutSuffix(name, "_MAILER_ARGS"); ok {
				bad("arguments of sendmail's " + strings.ToLower(m) + " mailer: gosendmail has no mailer definitions (only the port of SMART_HOST's mailer carries over)")
				continue
			}
			why, ok := defineWhy[name]
			if !ok {
				why = "sendmail setting " + name + " has no gosendmail equivalent"
			}
			bad(why)
		}
	}
}

func (t *translator) privacy(v string, d *def) {
	words := strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r' })
	var known, unknown []string
	seen := map[string]bool{}
	for _, w := range words {
		w = strings.ToLower(w)
		if seen[w] {
			continue
		}
		seen[w] = true
		if privacyWords[w] {
			known = append(known, tomlString(w))
		} else {
			unknown = append(unknown, w)
		}
	}
	if len(unknown) > 0 {
		t.item(d.line, NotTranslated, d.what, "unknown privacy words left out: "+strings.Join(unknown, ", "))
	}
	if len(known) == 0 {
		if len(unknown) == 0 {
			t.item(d.line, NotTranslated, d.what, "no privacy words: privacy keeps its default")
		}
		return
	}
	t.set(&t.top, "", "privacy", "["+strings.Join(known, ", ")+"]", d.line, d.what)
}

var privacyWords = map[string]bool{
	"public": true, "needmailhelo": true, "needexpnhelo": true, "needvrfyhelo": true,
	"noexpn": true, "novrfy": true, "noetrn": true, "noverb": true, "restrictmailq": true,
	"restrictqrun": true, "restrictexpand": true, "noreceipts": true, "nobodyreturn": true,
	"authwarnings": true, "noactualrecipient": true, "goaway": true,
}

// sendmailTime reads a sendmail time (e.g. "4h", "1h30m", "5d", or a bare
// number in unit) as a gosendmail duration string.
func sendmailTime(v, unit string) (string, bool) {
	if v == "" {
		return "", false
	}
	if _, err := strconv.Atoi(v); err == nil {
		v += unit
	}
	if _, err := config.ParseDuration(v); err != nil {
		return "", false
	}
	return v, true
}

func (t *translator) duration(tbl *[]setting, section, key, v, unit string, d *def) {
	s, ok := sendmailTime(v, unit)
	if !ok {
		t.item(d.line, NotTranslated, d.what, fmt.Sprintf("%q is not a duration", v))
		return
	}
	if x, _ := config.ParseDuration(s); x == 0 {
		t.item(d.line, NotTranslated, d.what, "0 turns this off in sendmail; gosendmail has no such setting: "+key+" keeps its default")
		return
	}
	t.set(tbl, section, key, tomlString(s), d.line, d.what)
}

func (t *translator) count(tbl *[]setting, section, key, v string, d *def) {
	n, err := strconv.Atoi(v)
	switch {
	case err != nil || n < 0 || n > 1<<30:
		t.item(d.line, NotTranslated, d.what, fmt.Sprintf("%q is not a count", v))
	case n == 0:
		t.item(d.line, NotTranslated, d.what, "0 means no limit in sendmail; gosendmail needs one: "+key+" keeps its default")
	default:
		t.set(tbl, section, key, strconv.Itoa(n), d.line, d.what)
	}
}

func (t *translator) filePath(tbl *[]setting, section, key, v string, d *def) {
	v = strings.TrimSpace(strings.TrimPrefix(v, "-o"))
	if !strings.HasPrefix(v, "/") || strings.ContainsAny(v, " \t") {
		t.item(d.line, NotTranslated, d.what, fmt.Sprintf("%q is not an absolute file name", v))
		return
	}
	t.set(tbl, section, key, tomlString(v), d.line, d.what)
}

func (t *translator) aliasFile(v string, d *def) {
	files := splitList(v)
	if len(files) != 1 {
		t.item(d.line, NotTranslated, d.what, "gosendmail reads one alias file: merge them into one")
		return
	}
	f := files[0]
	if typ, rest, ok := strings.Cut(f, ":"); ok && !strings.HasPrefix(f, "/") {
		switch typ {
		case "hash", "btree", "dbm", "cdb", "implicit", "text":
			f = rest
		default:
			t.item(d.line, NotTranslated, d.what, "alias map type "+typ+" is not supported: gosendmail reads a text file")
			return
		}
	}
	t.filePath(&t.top, "", "aliases", mapPath(f), d)
}

// smartHost translates SMART_HOST, with the port of its mailer's
// *_MAILER_ARGS (`TCP $h 587').
func (t *translator) smartHost() {
	v, d, ok := t.value("SMART_HOST")
	if !ok {
		return
	}
	what := d.what
	if v == "" {
		t.item(d.line, NotTranslated, what, "empty SMART_HOST: no smart host")
		return
	}
	mailer := "relay"
	host := v
	if m, rest, ok := strings.Cut(v, ":"); ok && !strings.HasPrefix(v, "[") && isMailerName(m) {
		mailer, host = m, rest
	}
	argsName := strings.ToUpper(mailer) + "_MAILER_ARGS"
	var notes []string
	from := []string{}
	if mv, md, ok := t.value(argsName); ok {
		t.used[argsName] = true
		f := strings.Fields(mv)
		switch {
		case len(f) == 3 && f[0] == "TCP" && f[1] == "$h":
			p, ok := parsePort(f[2])
			if !ok {
				t.item(md.line, NotTranslated, md.what, "the port is not a number")
				break
			}
			if p != 25 {
				if strings.Contains(host, "]:") || !strings.HasPrefix(host, "[") && strings.Contains(host, ":") {
					t.item(md.line, NotTranslated, md.what, "SMART_HOST names a port already")
					break
				}
				host += ":" + strconv.Itoa(p)
			}
			from = append(from, t.fromLine(md.line, md.what))
		case len(f) == 2 && f[0] == "TCP" && f[1] == "$h":
		default:
			t.item(md.line, NotTranslated, md.what, "only `TCP $h PORT' mailer arguments have a gosendmail equivalent (the port of smart_host)")
		}
	}
	if mailer != "relay" {
		notes = append(notes, "sendmail used the "+mailer+" mailer; gosendmail speaks ESMTP to the smart host")
	}
	h, _, _, err := route.ParseHost(host)
	if err != nil || !validHostname(strings.Trim(h, "[]")) && !validIP(h) {
		t.item(d.line, NotTranslated, what, fmt.Sprintf("%q is not a host, [host] or host:port", host))
		return
	}
	if s := t.set(&t.delivery, "delivery", "smart_host", tomlString(host), d.line, what, notes...); s != nil {
		s.from = append(s.from, from...)
	}
}

func isMailerName(m string) bool {
	switch m {
	case "relay", "smtp", "esmtp", "smtp8", "dsmtp":
		return true
	}
	return false
}

// finishFiles translates use_cw_file and use_ct_file with confCW_FILE
// and confCT_FILE.
func (t *translator) finishFiles() {
	for _, x := range []struct {
		feat      *call
		conf, key string
		def       string
	}{
		{t.useCW, "confCW_FILE", "local_host_names", "/etc/mail/local-host-names"},
		{t.useCT, "confCT_FILE", "trusted_users", "/etc/mail/trusted-users"},
	} {
		v, d, ok := t.value(x.conf)
		if x.feat == nil {
			if ok {
				t.item(d.line, NotTranslated, d.what, "has no effect without FEATURE(`"+map[string]string{"confCW_FILE": "use_cw_file", "confCT_FILE": "use_ct_file"}[x.conf]+"')")
			}
			continue
		}
		path := x.def
		from := []string{}
		if ok {
			p := strings.TrimSpace(strings.TrimPrefix(v, "-o"))
			if !strings.HasPrefix(p, "/") || strings.ContainsAny(p, " \t") {
				t.item(d.line, NotTranslated, d.what, fmt.Sprintf("%q is not an absolute file name: the default is used", p))
			} else {
				path = p
				from = append(from, t.fromLine(d.line, d.what))
			}
		}
		if s := t.set(&t.top, "", x.key, tomlString(path), x.feat.line, x.feat.String()); s != nil {
			s.from = append(s.from, from...)
		}
	}
}

func (t *translator) finishClient() {
	fam := ""
	switch {
	case t.clientFamilies["inet"] && t.clientFamilies["inet6"]:
		fam = "any"
	case t.clientFamilies["inet"]:
		fam = "inet"
	case t.clientFamilies["inet6"]:
		fam = "inet6"
	default:
		return
	}
	note := []string{}
	if fam == "inet" {
		note = append(note, "outbound connections use IPv4 only")
	}
	if s := t.set(&t.delivery, "delivery", "client_family", tomlString(fam), t.clientLine, "", note...); s != nil {
		s.from = t.clientFrom
	}
}

// authOffered says whether sendmail offered AUTH where M= does not say.
func (t *translator) authOffered() bool {
	_, ok := t.defs["confAUTH_MECHANISMS"]
	return ok || t.saslInclude
}

func (t *translator) finishListeners() {
	if d, ok := t.defs["confAUTH_MECHANISMS"]; ok {
		t.item(d.line, NotTranslated, d.what, "gosendmail checks AUTH against [auth] users_file (one user:bcrypt-hash per line), not Cyrus SASL: set users_file; listeners without M=a or M=A get auth = \"optional\"")
	}
	if t.daemonCalls == 0 {
		t.listeners = append(t.listeners, &listener{name: "MTA", host: "0.0.0.0", port: 25, family: "inet", wildcard: true, mode: "mta",
			from: []string{"sendmail's default MTA daemon (" + t.base + " has no DAEMON_OPTIONS): IPv4, port 25"}})
	}
	has587 := false
	for _, l := range t.listeners {
		if l.port == 587 {
			has587 = true
		}
	}
	if !t.noDefaultMSA && !has587 {
		t.listeners = append(t.listeners, &listener{name: "MSA", host: "0.0.0.0", port: 587, family: "inet", wildcard: true, mode: "submission",
			from:  []string{"sendmail's default MSA daemon (" + t.base + " has no FEATURE(`no_default_msa')): IPv4, port 587, M=E"},
			notes: []string{"M=E (no ETRN): gosendmail never offers ETRN"}})
	}
	// An IPv6 wildcard listener in Go takes IPv4 too, so it cannot sit
	// beside an IPv4 wildcard one on the same port: merge the pair.
	var out []*listener
	for _, l := range t.listeners {
		merged := false
		for _, o := range out {
			if o.port != l.port {
				continue
			}
			if o.wildcard && l.wildcard && o.family != l.family {
				if o.mode == l.mode && t.auth(o) == t.auth(l) {
					o.host = ""
					o.from = append(o.from, l.from...)
					o.notes = append(o.notes, "the IPv4 and IPv6 listeners are merged: \":"+strconv.Itoa(o.port)+"\" takes both")
					if o.name != l.name {
						o.name += "+" + l.name
					}
				} else {
					t.item(l.line, NotTranslated, l.what,
						fmt.Sprintf("an IPv6 wildcard listener takes IPv4 too, so it cannot differ from the IPv4 one on port %d (line %d)", l.port, o.line))
				}
				merged = true
				break
			}
			if o.host == l.host || o.wildcard && o.family == "inet6" && o.host == "" {
				t.item(l.line, NotTranslated, l.what,
					fmt.Sprintf("the same address and port as the listener of line %d", o.line))
				merged = true
				break
			}
		}
		if !merged {
			out = append(out, l)
		}
	}
	t.listeners = t.listeners[:0]
	authNeeded := false
	for _, l := range out {
		if err := validate(l.toml(t.auth(l))); err != nil {
			t.item(l.line, NotTranslated, l.what, "gosendmail refuses the listener: "+err.Error())
			continue
		}
		if t.auth(l) != "none" {
			authNeeded = true
		}
		t.listeners = append(t.listeners, l)
	}
	if len(t.listeners) == 0 {
		t.item(0, Note, "", "no listener could be translated: gosendmail's default listeners apply (MTA on :25, submission on :587)")
	}
	if authNeeded {
		line := 0
		for _, l := range t.listeners {
			if l.authRequired {
				line = l.line
				break
			}
		}
		t.item(line, Action, "", "a listener takes SMTP AUTH: set [auth] users_file (one user:bcrypt-hash per line); gosendmail does not use SASL (saslauthd, sasldb)")
	}
}

func (t *translator) auth(l *listener) string {
	switch {
	case l.authRequired:
		return "required"
	case l.noAuth:
		return "none"
	case t.authOffered():
		return "optional"
	}
	return "none"
}

func (l *listener) address() string {
	if l.host == "" {
		return ":" + strconv.Itoa(l.port)
	}
	return net.JoinHostPort(l.host, strconv.Itoa(l.port))
}

func (l *listener) toml(auth string) string {
	return "[[listen]]\nname = " + tomlString(l.name) + "\naddress = " + tomlString(l.address()) +
		"\nmode = " + tomlString(l.mode) + "\nauth = " + tomlString(auth) + "\n"
}

func (t *translator) finishFilters() {
	seen := map[string]bool{}
	for _, name := range t.filterList {
		if seen[name] {
			continue
		}
		seen[name] = true
		f := t.filters[name]
		if f == nil {
			t.item(t.listLine, NotTranslated, t.listWhat, "no MAIL_FILTER or INPUT_MAIL_FILTER defines the filter "+name)
			continue
		}
		f.used = true
		if t.isDKIM(f) {
			t.dkimFilter(f)
			continue
		}
		t.addMilter(f, nil)
	}
	var unused []*filter
	for _, f := range t.filters {
		if !f.used {
			unused = append(unused, f)
		}
	}
	sort.Slice(unused, func(i, j int) bool { return unused[i].line < unused[j].line })
	for _, f := range unused {
		t.item(f.line, NotTranslated, f.what, "not in confINPUT_MAIL_FILTERS, so sendmail does not run it (a DAEMON_OPTIONS InputMailFilters= has no gosendmail equivalent)")
	}
}

// addMilter adds f as a [[milter]].
func (t *translator) addMilter(f *filter, notes []string) {
	if f.bad != "" {
		t.item(f.line, NotTranslated, f.what, f.bad)
		return
	}
	for _, n := range f.flagNotes {
		t.item(f.line, NotTranslated, f.what, n)
	}
	m := milterOut{f: f, from: []string{t.fromLine(f.line, f.what)}, notes: notes}
	if err := validate(m.toml()); err != nil {
		t.item(f.line, NotTranslated, f.what, "gosendmail refuses the filter: "+err.Error())
		return
	}
	t.milters = append(t.milters, m)
}

var timeoutKeys = []string{"timeout_connect", "timeout_send", "timeout_read", "timeout_eom"}

func (m milterOut) toml() string {
	s := "[[milter]]\nname = " + tomlString(m.f.name) + "\nsocket = " + tomlString(m.f.socket) + "\non_failure = " + tomlString(m.f.onFailure) + "\n"
	for _, k := range timeoutKeys {
		if v, ok := m.f.timeouts[k]; ok {
			s += k + " = " + tomlString(v) + "\n"
		}
	}
	return s
}

// absentNotes says where gosendmail's defaults differ from what sendmail
// does when sendmail.mc leaves a feature out.
func (t *translator) absentNotes() {
	for _, x := range []struct{ feat, key, path string }{
		{"use_cw_file", "local_host_names", "/etc/mail/local-host-names"},
		{"use_ct_file", "trusted_users", "/etc/mail/trusted-users"},
		{"virtusertable", "virtusertable", "/etc/mail/virtusertable"},
		{"mailertable", "mailertable", "/etc/mail/mailertable"},
		{"access_db", "access", "/etc/mail/access"},
	} {
		if !t.features[x.feat] {
			t.item(0, Note, "", fmt.Sprintf("no FEATURE(`%s'): gosendmail still reads %s (%s) if it exists", x.feat, x.path, x.key))
		}
	}
	if _, ok := t.defs["confMAX_MESSAGE_SIZE"]; !ok {
		t.item(0, Note, "", "no confMAX_MESSAGE_SIZE: sendmail takes messages of any size, gosendmail up to max_message_size (default 50M)")
	}
	if _, ok := t.defs["confPRIVACY_FLAGS"]; !ok {
		t.item(0, Note, "", "no confPRIVACY_FLAGS: sendmail's default is authwarnings, gosendmail's privacy default is goaway, noreceipts, authwarnings")
	}
}

func splitList(v string) []string {
	var out []string
	for _, x := range strings.Split(v, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

// validHostname accepts DNS names (letters, digits, '-', '_', dots; a
// trailing dot allowed).
func validHostname(h string) bool {
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

func validIP(s string) bool {
	_, err := netip.ParseAddr(strings.TrimPrefix(strings.Trim(s, "[]"), "IPv6:"))
	return err == nil
}

// validToken accepts account names and selectors.
func validToken(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// absPath reports whether p is a clean-enough absolute file name.
func absPath(p string) bool {
	return strings.HasPrefix(p, "/") && !strings.ContainsAny(p, " \t\r\n\x00") && filepath.IsAbs(p)
}
