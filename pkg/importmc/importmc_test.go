package importmc

import (
	"bytes"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gosendmail/gosendmail/pkg/config"
	"github.com/gosendmail/gosendmail/pkg/dkim"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// fixedNow is the date in the golden files' headers.
var fixedNow = time.Date(2025, 3, 14, 9, 26, 0, 0, time.UTC)

// convertDir converts testdata/NAME/sendmail.mc as if it were
// /etc/mail/sendmail.mc, with testdata/NAME/opendkim.conf (if any) as
// /etc/opendkim.conf.
func convertDir(t *testing.T, dir string) (*Result, error) {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(dir, "sendmail.mc"))
	if err != nil {
		t.Fatal(err)
	}
	return Convert(src, Options{
		Source:       "/etc/mail/sendmail.mc",
		OpenDKIMConf: "/etc/opendkim.conf",
		ReadFile: func(name string) ([]byte, error) {
			if name != "/etc/opendkim.conf" {
				return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
			}
			b, err := os.ReadFile(filepath.Join(dir, "opendkim.conf"))
			if err != nil {
				return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
			}
			return b, nil
		},
		Now: fixedNow,
	})
}

func report(r *Result) string {
	var b strings.Builder
	for _, it := range r.Items {
		b.WriteString(it.String() + "\n")
	}
	return b.String()
}

// golden compares got with testdata file path, or rewrites it with -update.
func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (run go test -update to accept):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// load writes the TOML to a file and loads it as the daemon would.
func load(t *testing.T, data []byte) *config.Config {
	t.Helper()
	path := filepath.Join(t.TempDir(), "gosendmail.toml")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, true)
	if err != nil {
		t.Fatalf("the translation does not load: %v\n%s", err, data)
	}
	return cfg
}

func TestGolden(t *testing.T) {
	dirs, err := filepath.Glob("testdata/*/sendmail.mc")
	if err != nil || len(dirs) == 0 {
		t.Fatal("no fixtures", err)
	}
	for _, mc := range dirs {
		dir := filepath.Dir(mc)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			res, err := convertDir(t, dir)
			if err != nil {
				golden(t, filepath.Join(dir, "want.err"), err.Error()+"\n")
				return
			}
			golden(t, filepath.Join(dir, "want.toml"), string(res.TOML))
			golden(t, filepath.Join(dir, "want.stderr"), report(res))
			load(t, res.TOML)
		})
	}
}

func hasItem(r *Result, kind Kind, line int, whatPart, whyPart string) bool {
	for _, it := range r.Items {
		if it.Kind == kind && (line < 0 || it.Line == line) && strings.Contains(it.What, whatPart) && strings.Contains(it.Why, whyPart) {
			return true
		}
	}
	return false
}

func TestDebian(t *testing.T) {
	res, err := convertDir(t, "testdata/debian")
	if err != nil {
		t.Fatal(err)
	}
	cfg := load(t, res.TOML)
	want := []config.Listen{
		{Name: "MTA-v4", Address: "127.0.0.1:25", Mode: "mta", Auth: "none"},
		{Name: "MSP-v4", Address: "127.0.0.1:587", Mode: "submission", Auth: "required"},
	}
	if len(cfg.Listen) != len(want) {
		t.Fatalf("listeners %+v, want %+v", cfg.Listen, want)
	}
	for i := range want {
		if cfg.Listen[i] != want[i] {
			t.Errorf("listener %d = %+v, want %+v", i, cfg.Listen[i], want[i])
		}
	}
	if got := strings.Join(cfg.Privacy, ","); got != "needmailhelo,needexpnhelo,needvrfyhelo,restrictqrun,restrictexpand,nobodyreturn,authwarnings" {
		t.Errorf("privacy = %s", got)
	}
	if cfg.LocalHostNames != "/etc/mail/local-host-names" || cfg.Access != "/etc/mail/access" {
		t.Errorf("local_host_names %q, access %q", cfg.LocalHostNames, cfg.Access)
	}
	if cfg.Limits.GreetPause.D() != time.Second {
		t.Errorf("greet_pause = %v", cfg.Limits.GreetPause.D())
	}
	if res.Count(Error) != 0 {
		t.Errorf("errors in Debian's own file:\n%s", report(res))
	}
	// The boilerplate is accepted silently.
	for _, it := range res.Items {
		for _, quiet := range []string{"cf.m4", "dialup.m4", "provider.m4", "VERSIONID", "OSTYPE", "MAILER(", "MAILER_DEFINITIONS", "confHOST_STATUS_DIRECTORY", "_USE_ETC_MAIL_", "no_default_msa", "DAEMON_OPTIONS"} {
			if strings.Contains(it.What, quiet) {
				t.Errorf("boilerplate reported: %s", it)
			}
		}
	}
	for _, c := range []struct {
		line       int
		what, why  string
		kind       Kind
		whatIsText bool
	}{
		{38, "DOMAIN(`debian-mta')", "smmta", Note, false},
		{66, "confCONNECTION_RATE_THROTTLE", "no connection-rate limit", NotTranslated, false},
		{82, "delay_checks", "fixed", NotTranslated, false},
		{88, "conncontrol", "max_connections_per_ip", NotTranslated, false},
		{0, "", "virtusertable", Note, false},
	} {
		if !hasItem(res, c.kind, c.line, c.what, c.why) {
			t.Errorf("no %v item on line %d for %q (%q):\n%s", c.kind, c.line, c.what, c.why, report(res))
		}
	}
}

func TestUser(t *testing.T) {
	res, err := convertDir(t, "testdata/user")
	if err != nil {
		t.Fatal(err)
	}
	cfg := load(t, res.TOML)
	if cfg.Hostname != "mail.example.org" {
		t.Errorf("hostname = %q", cfg.Hostname)
	}
	want := []config.Listen{
		{Name: "MTA-v4", Address: "0.0.0.0:25", Mode: "mta", Auth: "optional"},
		{Name: "MSA-v4", Address: "0.0.0.0:587", Mode: "submission", Auth: "required"},
	}
	if len(cfg.Listen) != 2 || cfg.Listen[0] != want[0] || cfg.Listen[1] != want[1] {
		t.Errorf("listeners %+v, want %+v", cfg.Listen, want)
	}
	if cfg.MaxMessageSize != 26214400 {
		t.Errorf("max_message_size = %d", cfg.MaxMessageSize)
	}
	d := cfg.Delivery
	if d.QueueWarn.D() != 4*time.Hour || d.QueueReturn.D() != 5*24*time.Hour {
		t.Errorf("queue_warn %v, queue_return %v", d.QueueWarn.D(), d.QueueReturn.D())
	}
	if d.ClientFamily != "inet" || d.SmartHost != "[smtp.provider.example]:587" {
		t.Errorf("client_family %q, smart_host %q", d.ClientFamily, d.SmartHost)
	}
	if cfg.Virtusertable != "/etc/mail/virtusertable" || cfg.Mailertable != "/etc/mail/mailertable" || cfg.TrustedUsers != "/etc/mail/trusted-users" {
		t.Errorf("virtusertable %q, mailertable %q, trusted_users %q", cfg.Virtusertable, cfg.Mailertable, cfg.TrustedUsers)
	}
	if got := strings.Join(cfg.Privacy, ","); got != "goaway,noreceipts,restrictqrun,restrictmailq,nobodyreturn" {
		t.Errorf("privacy = %s", got)
	}
	if cfg.DKIM.KeyTable != "refile:/etc/opendkim/KeyTable" || cfg.DKIM.SigningTable != "refile:/etc/opendkim/SigningTable" || cfg.DKIM.OnError != "tempfail" {
		t.Errorf("dkim = %+v", cfg.DKIM)
	}
	if len(cfg.Milter) != 1 {
		t.Fatalf("milters = %+v, want rspamd only (opendkim is replaced)", cfg.Milter)
	}
	m := cfg.Milter[0]
	if m.Name != "rspamd" || m.Socket != "inet:11332@localhost" || m.OnFailure != "tempfail" ||
		m.TimeoutConnect.D() != 30*time.Second || m.TimeoutSend.D() != time.Minute || m.TimeoutRead.D() != time.Minute || m.TimeoutEOM.D() != 5*time.Minute {
		t.Errorf("milter = %+v", m)
	}
	for _, c := range []struct {
		kind      Kind
		line      int
		what, why string
	}{
		{Note, 38, "opendkim", "replaced by native signing"},
		{NotTranslated, 35, "confAUTH_MECHANISMS", "users_file"},
		{NotTranslated, 41, "starttls.m4", "[tls]"},
		{NotTranslated, 47, "MAILER(`procmail')", "procmail"},
		{NotTranslated, 40, "confMILTER_MACROS_CONNECT", "no gosendmail equivalent"},
		{Action, 14, "", "users_file"},
		{NotTranslated, -1, "InternalHosts", "whichever client"},
		{NotTranslated, -1, "Canonicalization relaxed/simple", "relaxed/relaxed"},
		{NotTranslated, 26, "ESMTP_MAILER_ARGS", "no mailer definitions"},
	} {
		if !hasItem(res, c.kind, c.line, c.what, c.why) {
			t.Errorf("no %v item on line %d for %q (%q):\n%s", c.kind, c.line, c.what, c.why, report(res))
		}
	}
	for _, want := range []string{
		"# from sendmail.mc line 16: define(`confDOMAIN_NAME', `mail.example.org')\nhostname = \"mail.example.org\"\n",
		"# from sendmail.mc line 13: DAEMON_OPTIONS(`Family=inet, Name=MTA-v4, Port=smtp, Addr=0.0.0.0')\n[[listen]]\n",
		"# and opendkim.conf line 14: KeyTable refile:/etc/opendkim/KeyTable\n",
		"# gosendmail.toml made by \"smtpd import-mc\" from /etc/mail/sendmail.mc and /etc/opendkim.conf\n# on 2025-03-14 09:26 +0000.\n",
	} {
		if !strings.Contains(string(res.TOML), want) {
			t.Errorf("output lacks %q:\n%s", want, res.TOML)
		}
	}
}

func TestBroken(t *testing.T) {
	res, err := convertDir(t, "testdata/broken-quote")
	if err != nil {
		t.Fatal(err)
	}
	cfg := load(t, res.TOML)
	if res.Count(Error) == 0 {
		t.Fatalf("no error reported:\n%s", report(res))
	}
	if !hasItem(res, Error, 4, "", "unbalanced quote") {
		t.Errorf("the unbalanced quote of line 4 is not reported there:\n%s", report(res))
	}
	// What follows the broken line is still translated.
	if cfg.Delivery.SmartHost != "[relay.example.net]" || cfg.MaxMessageSize != 1000000 {
		t.Errorf("the lines after the error are lost: smart_host %q, max_message_size %d\n%s", cfg.Delivery.SmartHost, cfg.MaxMessageSize, res.TOML)
	}

	res, err = convertDir(t, "testdata/unknown")
	if err != nil {
		t.Fatal(err)
	}
	load(t, res.TOML)
	for _, c := range []struct {
		kind      Kind
		line      int
		what, why string
	}{
		{NotTranslated, 3, "FEATURE(`no_such_feature')", "unknown FEATURE"},
		{NotTranslated, 4, "FROBNICATE(`x')", "unknown macro"},
		{NotTranslated, 5, "confNO_SUCH_OPTION", "no gosendmail equivalent"},
		{NotTranslated, 6, "ifdef", "conditionals"},
		{NotTranslated, 8, "LOCAL_CONFIG", "lines 9-10"},
		{NotTranslated, 13, "hello world", "text outside a macro call"},
		{Error, 14, "", "unbalanced quote: ' without"},
		{NotTranslated, 15, "MAIL_FILTER(`unused'", "not in confINPUT_MAIL_FILTERS"},
		{NotTranslated, 16, "include(`/etc/mail/local.m4')", "not read"},
		{Error, 17, "changequote", "not supported"},
	} {
		if !hasItem(res, c.kind, c.line, c.what, c.why) {
			t.Errorf("no %v item on line %d for %q (%q):\n%s", c.kind, c.line, c.what, c.why, report(res))
		}
	}
}

func TestSingleKeyAndMerge(t *testing.T) {
	res, err := convertDir(t, "testdata/singlekey")
	if err != nil {
		t.Fatal(err)
	}
	cfg := load(t, res.TOML)
	if cfg.DKIM.KeyTable != "/etc/opendkim/KeyTable" || cfg.DKIM.SigningTable != "refile:/etc/opendkim/SigningTable" || cfg.DKIM.OnError != "unsigned" {
		t.Errorf("dkim = %+v", cfg.DKIM)
	}
	for _, want := range []string{
		"one-key setup: add the line \"mail._domainkey.example.com example.com:mail:/etc/opendkim/keys/mail.private\" to /etc/opendkim/KeyTable",
		"one-key setup: add the line \"mail._domainkey.example.net example.net:mail:/etc/opendkim/keys/mail.private\" to /etc/opendkim/KeyTable",
		"one-key setup: add the line \"*@example.com mail._domainkey.example.com\" to /etc/opendkim/SigningTable",
		"one-key setup: add the line \"*@*.example.net mail._domainkey.example.net\" to /etc/opendkim/SigningTable",
	} {
		if !strings.Contains(report(res), want) {
			t.Errorf("report lacks %q:\n%s", want, report(res))
		}
	}
	if !strings.Contains(string(res.TOML), "#     mail._domainkey.example.net example.net:mail:/etc/opendkim/keys/mail.private\n") {
		t.Errorf("the TOML does not show the KeyTable line:\n%s", res.TOML)
	}
	// IPv4 and IPv6 wildcards merge; the default MSA is added.
	want := []config.Listen{
		{Name: "MTA-v4+MTA-v6", Address: ":25", Mode: "mta", Auth: "none"},
		{Name: "SMTPS", Address: "[::1]:465", Mode: "smtps", Auth: "none"},
		{Name: "MSA", Address: "0.0.0.0:587", Mode: "submission", Auth: "none"},
	}
	if len(cfg.Listen) != len(want) {
		t.Fatalf("listeners %+v, want %+v", cfg.Listen, want)
	}
	for i := range want {
		if cfg.Listen[i] != want[i] {
			t.Errorf("listener %d = %+v, want %+v", i, cfg.Listen[i], want[i])
		}
	}
	// confINPUT_MAIL_FILTERS orders the filters; "signer" is opendkim
	// by its socket.
	if len(cfg.Milter) != 2 || cfg.Milter[0].Name != "clamav" || cfg.Milter[1].Name != "spamass" {
		t.Fatalf("milters %+v", cfg.Milter)
	}
	if cfg.Milter[0].OnFailure != "reject" || cfg.Milter[1].OnFailure != "accept" || cfg.Milter[0].Socket != "local:/run/clamav/clamav-milter.ctl" {
		t.Errorf("milters %+v", cfg.Milter)
	}
	if !hasItem(res, Note, -1, "signer", "replaced by native signing") {
		t.Errorf("the opendkim filter found by its socket is not replaced:\n%s", report(res))
	}
	if cfg.Delivery.ClientFamily != "any" {
		t.Errorf("client_family %q with CLIENT_OPTIONS for both families", cfg.Delivery.ClientFamily)
	}
}

func TestNoOpenDKIMConf(t *testing.T) {
	res, err := convertDir(t, "testdata/nodkimconf")
	if err != nil {
		t.Fatal(err)
	}
	cfg := load(t, res.TOML)
	if cfg.DKIM.KeyTable != "" || len(cfg.Milter) != 1 || cfg.Milter[0].Name != "opendkim" || cfg.Milter[0].Socket != "local:/run/opendkim/opendkim.sock" {
		t.Errorf("without opendkim.conf the milter must stay: dkim %+v, milters %+v", cfg.DKIM, cfg.Milter)
	}
	if !hasItem(res, Note, -1, "opendkim", "kept as a [[milter]]: cannot read opendkim.conf") {
		t.Errorf("not said why the milter stays:\n%s", report(res))
	}
}

func TestNotMC(t *testing.T) {
	_, err := convertDir(t, "testdata/sendmail-cf")
	if !errors.Is(err, ErrNotMC) || !strings.Contains(err.Error(), "sendmail.cf") {
		t.Errorf("a sendmail.cf gives %v", err)
	}
	for _, in := range []string{"", "\n\n", "# only a comment\n", "dnl nothing\n", "a\x00b"} {
		if _, err := Convert([]byte(in), Options{}); !errors.Is(err, ErrNotMC) {
			t.Errorf("Convert(%q) = %v, want ErrNotMC", in, err)
		}
	}
}

func TestParser(t *testing.T) {
	src := "divert(-1)\nstray text ignored\ndivert(0)dnl\n" +
		"define(`a', ``nested' quotes')dnl comment\n" +
		"FEATURE(`x',dnl skip me\n   `y' , z(1,2) # a comment, with a comma\n)\n" +
		"# define(`commented', `out')\n" +
		"define(`HOST', `relay.example')define(`SMART_HOST', HOST)\n" +
		"MAILER_DEFINITIONS\n"
	p := parse("t.mc", []byte(src))
	if len(p.items) != 0 {
		t.Errorf("items: %v", p.items)
	}
	want := []struct {
		name string
		line int
		args []string
	}{
		{"define", 4, []string{"a", "`nested' quotes"}},
		{"FEATURE", 5, []string{"x", "y ", "z(1,2) \n"}},
		{"define", 9, []string{"HOST", "relay.example"}},
		{"define", 9, []string{"SMART_HOST", "relay.example"}},
		{"MAILER_DEFINITIONS", 10, nil},
	}
	if len(p.calls) != len(want) {
		t.Fatalf("calls %+v", p.calls)
	}
	for i, w := range want {
		c := p.calls[i]
		if c.name != w.name || c.line != w.line || strings.Join(c.args, "|") != strings.Join(w.args, "|") {
			t.Errorf("call %d = %s line %d %q, want %s line %d %q", i, c.name, c.line, c.args, w.name, w.line, w.args)
		}
	}

	// A missing ')' is found where the next macro starts, not at EOF.
	p = parse("t.mc", []byte("FEATURE(`use_cw_file'\nFEATURE(`use_ct_file')\n"))
	if len(p.calls) != 1 || p.calls[0].arg(0) != "use_ct_file" || len(p.items) != 1 || p.items[0].Line != 1 {
		t.Errorf("calls %+v items %v", p.calls, p.items)
	}
}

func TestExpand(t *testing.T) {
	defs := map[string]string{"A": "`B'x", "B": "b", "LOOP": "LOOP"}
	look := func(n string) (string, bool) {
		if v, ok := defs[n]; ok {
			return v, true
		}
		v, ok := builtinValues[n]
		return v, ok
	}
	for in, want := range map[string]string{
		"A":                                     "Bx",
		"``A''":                                 "`A'",
		"A(":                                    "A(",
		"hash MAIL_SETTINGS_DIR`'virtusertable": "hash /etc/mail/virtusertable",
	} {
		if got, ok := expand(in, look); !ok || got != want {
			t.Errorf("expand(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	if _, ok := expand("LOOP", look); ok {
		t.Error("a self-referring definition expands")
	}
}

func TestTOMLString(t *testing.T) {
	for in, want := range map[string]string{
		`a"b\c`:  `"a\"b\\c"`,
		"x\ty\n": `"x\u0009y\u000A"`,
		"\xff":   "\"\uFFFD\"",
	} {
		if got := tomlString(in); got != want {
			t.Errorf("tomlString(%q) = %s, want %s", in, got, want)
		}
		if err := validate("hostname_x = " + tomlString(in)); err == nil || !strings.Contains(err.Error(), "unknown key") {
			t.Errorf("%s is not a TOML string: %v", tomlString(in), err)
		}
	}
}

// TestSingleKeyTablesWork creates the tables the report asks for and
// checks that pkg/dkim signs with them as opendkim did.
func TestSingleKeyTablesWork(t *testing.T) {
	res, err := convertDir(t, "testdata/singlekey")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "mail.private")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	re := regexp.MustCompile(`add the line "([^"]+)" to (\S+)$`)
	for _, it := range res.Items {
		if it.Kind != Action {
			continue
		}
		m := re.FindStringSubmatch(it.Why)
		if m == nil {
			t.Fatalf("action without a table line: %s", it)
		}
		files[m[2]] += strings.ReplaceAll(m[1], "/etc/opendkim/keys/mail.private", keyFile) + "\n"
	}
	kt, st := filepath.Join(dir, "KeyTable"), filepath.Join(dir, "SigningTable")
	if err := os.WriteFile(kt, []byte(files["/etc/opendkim/KeyTable"]), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(st, []byte(files["/etc/opendkim/SigningTable"]), 0o600); err != nil {
		t.Fatal(err)
	}
	tables, errs := dkim.LoadTables(kt, "refile:"+st)
	if len(errs) > 0 {
		t.Fatalf("tables %v: %v", files, errs)
	}
	for author, want := range map[string]string{"ann@example.com": "d=example.com", "bob@lists.example.net": "d=example.net;", "eve@example.org": ""} {
		sig, err := tables.Sign(strings.NewReader("From: "+author+"\r\nSubject: x\r\n\r\nbody\r\n"), author)
		if err != nil {
			t.Fatalf("%s: %v", author, err)
		}
		if want == "" && len(sig) != 0 || want != "" && (!bytes.Contains(sig, []byte(want)) || !bytes.Contains(sig, []byte("s=mail"))) {
			t.Errorf("%s signed %q, want %s", author, sig, want)
		}
	}
}

func TestSnippets(t *testing.T) {
	for _, c := range []struct {
		mc    string
		check func(*config.Config) bool
		item  string // a report line must contain this ("" for none)
	}{
		{"define(`SMART_HOST', `esmtp:[10.0.0.1]')define(`ESMTP_MAILER_ARGS', `TCP $h 2525')\n",
			func(c *config.Config) bool { return c.Delivery.SmartHost == "[10.0.0.1]:2525" }, ""},
		{"define(`SMART_HOST', `relay.example.net')\n",
			func(c *config.Config) bool { return c.Delivery.SmartHost == "relay.example.net" }, ""},
		{"define(`SMART_HOST', `[a b]')\n",
			func(c *config.Config) bool { return c.Delivery.SmartHost == "" }, "is not a host"},
		{"FEATURE(`no_default_msa')DAEMON_OPTIONS(Port=587, Name=Sub)\n",
			func(c *config.Config) bool {
				return len(c.Listen) == 1 && c.Listen[0] == config.Listen{Name: "MSA", Address: "0.0.0.0:587", Mode: "submission", Auth: "none"}
			}, "arguments after the first are ignored, by sendmail too"},
		{"FEATURE(`no_default_msa')DAEMON_OPTIONS(`Family=inet6, Addr=::1, Port=2525')\n",
			func(c *config.Config) bool {
				return len(c.Listen) == 1 && c.Listen[0].Address == "[::1]:2525" && c.Listen[0].Mode == "mta"
			}, ""},
		{"FEATURE(`no_default_msa')DAEMON_OPTIONS(`Family=local, Addr=/run/sm.sock')\n",
			func(c *config.Config) bool { return len(c.Listen) == 2 }, "no listener could be translated"},
		{"DAEMON_OPTIONS(`Port=25, M=Ef')\n",
			func(c *config.Config) bool { return len(c.Listen) == 2 && c.Listen[1].Address == "0.0.0.0:587" }, "M=f (require fully qualified addresses)"},
		{"INPUT_MAIL_FILTER(`x', S=inet:1@h, F=R)\n",
			func(c *config.Config) bool { return len(c.Milter) == 1 && c.Milter[0].OnFailure == "accept" }, "arguments after the second are ignored"},
		{"INPUT_MAIL_FILTER(`x', `S=tcp:1@h')\n",
			func(c *config.Config) bool { return len(c.Milter) == 0 }, "socket type tcp is not supported"},
		{"define(`confTO_QUEUEWARN', `90')define(`confTO_QUEUERETURN', `1w')\n",
			func(c *config.Config) bool {
				return c.Delivery.QueueWarn.D() == 90*time.Hour && c.Delivery.QueueReturn.D() == 7*24*time.Hour
			}, ""},
		{"FEATURE(`virtusertable', `ldap -1 -v mail')\n",
			func(c *config.Config) bool { return c.Virtusertable == "/etc/mail/virtusertable" }, "map type ldap is not supported"},
		{"FEATURE(`mailertable', `hash -o 'MAIL_SETTINGS_DIR`mt')\n",
			func(c *config.Config) bool { return c.Mailertable == "/etc/mail/mt" }, ""},
		{"define(`confDOMAIN_NAME', `$w.example.com')\n",
			func(c *config.Config) bool { return true }, "sendmail macros"},
		{"define(`confMAX_MESSAGE_SIZE', `25M')\n",
			func(c *config.Config) bool { return c.MaxMessageSize == 50<<20 }, "only digits"},
		{"FEATURE(`greet_pause', `0')\n",
			func(c *config.Config) bool { return c.Limits.GreetPause.D() == time.Second }, "a pause of 0"},
		{"define(`MYFEAT', `FEATURE(`redirect')')MYFEAT\nMYFEAT(`x')\n",
			func(c *config.Config) bool { return true }, "called on its own"},
		{"define(`confPRIVACY_FLAGS', `goaway , noetrn,bogus')\n",
			func(c *config.Config) bool { return strings.Join(c.Privacy, ",") == "goaway,noetrn" }, "unknown privacy words left out: bogus"},
		{"define(`ALIAS_FILE', `/etc/mail/aliases,/etc/mail/lists')\n",
			func(c *config.Config) bool { return c.Aliases == "/etc/aliases" }, "one alias file"},
		{"define(`confCW_FILE', `-o /etc/mail/names')FEATURE(`use_cw_file')\n",
			func(c *config.Config) bool { return c.LocalHostNames == "/etc/mail/names" }, ""},
		{"divert(-1)dnl\ninclude(`/usr/share/sendmail-cf/m4/cf.m4')dnl\nFEATUER(`x')dnl\n",
			func(c *config.Config) bool { return true }, "s.mc:3: not translated: FEATUER(`x'): unknown macro"},
		{"define(`confCT_FILE', `/etc/mail/t')\n",
			func(c *config.Config) bool { return c.TrustedUsers == "/etc/mail/trusted-users" }, "has no effect without FEATURE(`use_ct_file')"},
	} {
		res, err := Convert([]byte(c.mc), Options{Source: "s.mc", Now: fixedNow})
		if err != nil {
			t.Errorf("%q: %v", c.mc, err)
			continue
		}
		cfg := load(t, res.TOML)
		if !c.check(cfg) {
			t.Errorf("%q gives:\n%s", c.mc, res.TOML)
		}
		if c.item != "" && !strings.Contains(report(res), c.item) {
			t.Errorf("%q: the report lacks %q:\n%s", c.mc, c.item, report(res))
		}
		if res.Count(Error) > 0 {
			t.Errorf("%q: errors:\n%s", c.mc, report(res))
		}
	}
}

// MASQUERADE_AS, EXPOSED_USER and masquerade_envelope become their keys;
// root stays exposed as in sendmail's class E.
func TestMasquerade(t *testing.T) {
	mc := "VERSIONID(`test')dnl\nOSTYPE(`debian')dnl\nMASQUERADE_AS(`example.org.')dnl\n" +
		"EXPOSED_USER(`admin postmaster')dnl\nFEATURE(`masquerade_envelope')dnl\nMAILER(`smtp')dnl\n"
	res, err := Convert([]byte(mc), Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`masquerade_as = "example.org"`, `masquerade_envelope = true`,
		`exposed_users = ["root", "admin", "postmaster"]`} {
		if !strings.Contains(string(res.TOML), want+"\n") {
			t.Errorf("no %s in:\n%s", want, res.TOML)
		}
	}
}
