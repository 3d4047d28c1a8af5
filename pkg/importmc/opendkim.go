package importmc

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
)

// odVal is one opendkim.conf setting.
type odVal struct {
	key, val string
	line     int
}

// odConf is an opendkim.conf: "Name value" lines, '#' comments, names
// case-insensitive.
type odConf struct {
	path  string
	vals  map[string]odVal // by lower-case name; the last one wins
	order []odVal
}

func parseOpenDKIM(path string, data []byte) *odConf {
	c := &odConf{path: path, vals: map[string]odVal{}}
	for n, line := range strings.Split(string(data), "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		v := odVal{key: f[0], val: strings.Join(f[1:], " "), line: n + 1}
		c.vals[strings.ToLower(f[0])] = v
		c.order = append(c.order, v)
	}
	return c
}

func (c *odConf) get(name string) odVal { return c.vals[strings.ToLower(name)] }

func (c *odConf) bool(name string) bool {
	switch strings.ToLower(c.get(name).val) {
	case "yes", "true", "1", "on":
		return true
	}
	return false
}

// opendkim reads Options.OpenDKIMConf once.
func (t *translator) opendkim() (*odConf, error) {
	if !t.odRead {
		t.odRead = true
		if t.opt.OpenDKIMConf == "" {
			t.odErr = errors.New("no opendkim.conf was given (--opendkim-conf)")
		} else if data, err := t.opt.ReadFile(t.opt.OpenDKIMConf); err != nil {
			t.odErr = err
		} else {
			t.od = parseOpenDKIM(t.opt.OpenDKIMConf, data)
		}
	}
	return t.od, t.odErr
}

// normSocket makes equal milter sockets compare equal.
func normSocket(s string) string {
	s = strings.TrimSpace(s)
	if rest, ok := strings.CutPrefix(s, "local:"); ok {
		return "unix:" + rest
	}
	if port, host, ok := strings.Cut(s, "@"); ok && strings.HasPrefix(s, "inet:") && strings.EqualFold(host, "localhost") {
		return port + "@127.0.0.1"
	}
	return s
}

// isDKIM says whether f is opendkim: by its name, or by the socket
// opendkim.conf says opendkim listens on.
func (t *translator) isDKIM(f *filter) bool {
	if strings.Contains(strings.ToLower(f.name), "dkim") {
		return true
	}
	if f.socket == "" {
		return false
	}
	c, err := t.opendkim()
	return err == nil && c.get("Socket").val != "" && normSocket(c.get("Socket").val) == normSocket(f.socket)
}

func (t *translator) odFrom(c *odConf, v odVal) string {
	return fmt.Sprintf("and %s line %d: %s %s", baseName(c.path), v.line, v.key, v.val)
}

// keepDKIMMilter keeps an opendkim filter as a [[milter]] when its
// signing cannot be done natively from opendkim.conf.
func (t *translator) keepDKIMMilter(f *filter, why string) {
	t.item(f.line, Note, f.what, "kept as a [[milter]]: "+why+"; to let gosendmail sign instead, set [dkim] key_table and signing_table (see smtpd dkim keygen --help)")
	t.addMilter(f, []string{"kept: " + why})
}

// dkimFilter replaces an opendkim milter by [dkim], read from opendkim.conf.
func (t *translator) dkimFilter(f *filter) {
	c, err := t.opendkim()
	if err != nil {
		t.keepDKIMMilter(f, "cannot read opendkim.conf: "+err.Error())
		return
	}
	if t.dkimBy != nil {
		t.item(f.line, Note, f.what, fmt.Sprintf("replaced by native signing, as the filter of line %d", t.dkimBy.line))
		return
	}
	mode := c.get("Mode")
	if mode.val != "" && !strings.Contains(strings.ToLower(mode.val), "s") {
		t.dkimBy = f
		t.item(f.line, Note, f.what, fmt.Sprintf("replaced by native verification: %s line %d (Mode %s) only verifies, and gosendmail checks DKIM signatures of inbound mail itself", c.path, mode.line, mode.val))
		return
	}
	kt, st := c.get("KeyTable"), c.get("SigningTable")
	switch {
	case kt.val != "" && st.val != "":
		for _, v := range []odVal{kt, st} {
			if why := checkDataset(v.val); why != "" {
				t.keepDKIMMilter(f, fmt.Sprintf("%s line %d: %s %s: %s", c.path, v.line, v.key, v.val, why))
				return
			}
		}
		a := t.set(&t.dkim, "dkim", "key_table", tomlString(kt.val), f.line, f.what)
		b := t.set(&t.dkim, "dkim", "signing_table", tomlString(st.val), f.line, f.what)
		if a == nil || b == nil {
			t.dkim = nil
			t.keepDKIMMilter(f, "gosendmail refuses the tables")
			return
		}
		appendFrom(t.dkim, "key_table", t.odFrom(c, kt))
		appendFrom(t.dkim, "signing_table", t.odFrom(c, st))
	case kt.val != "" || st.val != "":
		t.keepDKIMMilter(f, c.path+" has a KeyTable or a SigningTable, not both")
		return
	default:
		if !t.singleKey(f, c) {
			return
		}
	}
	t.dkimBy = f
	onErr, note := "tempfail", ""
	switch f.onFailure {
	case "reject":
		note = "F=R rejected mail while opendkim was down; gosendmail's nearest is tempfail: mail that cannot be signed waits"
	case "accept":
		onErr, note = "unsigned", "without F=T or F=R sendmail sent mail unsigned while opendkim was down"
	}
	var notes []string
	if note != "" {
		notes = append(notes, note)
	}
	t.set(&t.dkim, "dkim", "on_error", tomlString(onErr), f.line, f.what, notes...)
	t.dkimNotes = append(t.dkimNotes, "Check the keys and their DNS records with \"smtpd dkim check\".")
	t.item(f.line, Note, f.what, "replaced by native signing: [dkim] from "+c.path)
	for _, n := range f.flagNotes {
		t.item(f.line, NotTranslated, f.what, n)
	}
	t.opendkimReport(c)
}

// singleKey translates opendkim's one-key setup (Domain, Selector,
// KeyFile) into tables, which the user must create; false if it kept the
// milter instead.
func (t *translator) singleKey(f *filter, c *odConf) bool {
	dom, sel, kf := c.get("Domain"), c.get("Selector"), c.get("KeyFile")
	if dom.val == "" || sel.val == "" || kf.val == "" {
		t.keepDKIMMilter(f, c.path+" names no signing key (neither KeyTable and SigningTable nor Domain, Selector and KeyFile)")
		return false
	}
	domains := strings.FieldsFunc(dom.val, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
	for _, d := range domains {
		if d != "*" && !validHostname(d) {
			t.keepDKIMMilter(f, fmt.Sprintf("%s line %d: Domain %s is a file or dataset, not a list of domains", c.path, dom.line, dom.val))
			return false
		}
	}
	if !validToken(sel.val) {
		t.keepDKIMMilter(f, fmt.Sprintf("%s line %d: Selector %q is not a selector", c.path, sel.line, sel.val))
		return false
	}
	key := kf.val
	if !strings.HasPrefix(key, "/") {
		if base := c.get("BaseDirectory").val; base != "" {
			key = filepath.Join(base, key)
		}
	}
	if !absPath(key) || strings.Contains(key, ":") {
		t.keepDKIMMilter(f, fmt.Sprintf("%s line %d: KeyFile %q is not an absolute file name", c.path, kf.line, kf.val))
		return false
	}
	// One KeyTable entry per domain, so that mail from a subdomain is
	// signed for the listed domain (where the key is published), as
	// opendkim does; "*" (any domain) signs for the author's domain.
	var ktLines, stLines []string
	star := false
	for _, d := range domains {
		star = star || d == "*"
	}
	if star {
		name := sel.val + "._domainkey"
		ktLines = append(ktLines, name+" %:"+sel.val+":"+key)
		stLines = append(stLines, "* "+name)
	} else {
		for _, d := range domains {
			d = strings.ToLower(d)
			name := sel.val + "._domainkey." + d
			ktLines = append(ktLines, name+" "+d+":"+sel.val+":"+key)
			stLines = append(stLines, "*@"+d+" "+name)
			if c.bool("SubDomains") {
				stLines = append(stLines, "*@*."+d+" "+name)
			}
		}
	}
	const ktPath, stPath = "/etc/opendkim/KeyTable", "/etc/opendkim/SigningTable"
	a := t.set(&t.dkim, "dkim", "key_table", tomlString(ktPath), f.line, f.what)
	b := t.set(&t.dkim, "dkim", "signing_table", tomlString("refile:"+stPath), f.line, f.what)
	if a == nil || b == nil {
		t.dkim = nil
		t.keepDKIMMilter(f, "gosendmail refuses the tables")
		return false
	}
	t.dkimNotes = append(t.dkimNotes,
		fmt.Sprintf("%s signs with one key (Domain, Selector, KeyFile: lines %d, %d, %d);", c.path, dom.line, sel.line, kf.line),
		"gosendmail reads opendkim's tables instead. Create them with these lines:",
		"  "+ktPath+":")
	for _, l := range ktLines {
		t.dkimNotes = append(t.dkimNotes, "    "+l)
	}
	t.dkimNotes = append(t.dkimNotes, "  "+stPath+":")
	for _, l := range stLines {
		t.dkimNotes = append(t.dkimNotes, "    "+l)
	}
	for _, l := range ktLines {
		t.items = append(t.items, Item{File: c.path, Line: dom.line, Kind: Action, What: "Domain " + dom.val,
			Why: fmt.Sprintf("one-key setup: add the line %q to %s", l, ktPath)})
	}
	for _, l := range stLines {
		t.items = append(t.items, Item{File: c.path, Line: dom.line, Kind: Action, What: "Domain " + dom.val,
			Why: fmt.Sprintf("one-key setup: add the line %q to %s", l, stPath)})
	}
	return true
}

// checkDataset says why gosendmail cannot read an opendkim dataset.
func checkDataset(spec string) string {
	p := spec
	if x, ok := strings.CutPrefix(spec, "refile:"); ok {
		p = x
	} else if x, ok := strings.CutPrefix(spec, "file:"); ok {
		p = x
	} else if i := strings.IndexByte(spec, ':'); i > 0 && !strings.HasPrefix(spec, "/") {
		return "dataset type " + spec[:i] + " is not supported: gosendmail reads flat files (optionally refile:)"
	}
	if strings.HasSuffix(p, ".db") {
		return "Berkeley DB tables are not supported: use the flat file it was made from"
	}
	if !absPath(p) {
		return "not an absolute file name"
	}
	return ""
}

// odQuiet are opendkim.conf settings about running opendkim itself, or
// that gosendmail does anyway: nothing to report.
var odQuiet = map[string]bool{
	"keytable": true, "signingtable": true, "domain": true, "selector": true, "keyfile": true,
	"mode": true, "socket": true, "subdomains": true, "basedirectory": true,
	"syslog": true, "syslogsuccess": true, "syslogfacility": true, "logwhy": true, "logresults": true,
	"umask": true, "userid": true, "pidfile": true, "trustanchorfile": true, "autorestart": true,
	"autorestartrate": true, "autorestartcount": true, "background": true, "temporarydirectory": true,
	"nameservers": true, "dnstimeout": true, "softwareheader": true, "resolverconfiguration": true,
}

// opendkimReport lists the opendkim.conf settings gosendmail does not follow.
func (t *translator) opendkimReport(c *odConf) {
	for _, v := range c.order {
		k := strings.ToLower(v.key)
		if odQuiet[k] {
			continue
		}
		why := ""
		switch k {
		case "canonicalization":
			if strings.ToLower(v.val) != "relaxed/relaxed" {
				why = "gosendmail signs with c=relaxed/relaxed"
			}
		case "oversignheaders":
			if strings.ToLower(v.val) != "from" {
				why = "gosendmail oversigns From only"
			}
		case "signaturealgorithm":
			if strings.ToLower(v.val) != "rsa-sha256" {
				why = "the algorithm follows the key: rsa-sha256 for RSA keys, ed25519-sha256 for Ed25519 keys"
			}
		case "requiresafekeys":
			if c.bool(v.key) || v.val == "" {
				continue
			}
			why = "gosendmail always refuses key files that every user may read or write"
		case "internalhosts", "externalignorelist":
			why = "gosendmail signs every message it sends to a foreign host whose author the SigningTable names, whichever client submitted it"
		case "multiplesignatures":
			why = "gosendmail applies the first matching SigningTable line, and every line with the same key"
		default:
			why = "opendkim option " + v.key + " has no gosendmail equivalent"
		}
		if why != "" {
			t.items = append(t.items, Item{File: c.path, Line: v.line, Kind: NotTranslated, What: v.key + " " + v.val, Why: why})
		}
	}
}
