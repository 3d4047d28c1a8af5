// Package config is the only package that knows gosendmail's file paths and
// defaults. It reads the one TOML file described in CONTRACT.md
// (/etc/mail/gosendmail.toml unless --config or $GOSENDMAIL_CONFIG names
// another), fills in defaults for every key left out, and validates values.
//
// Every error names the file, the line and the key, e.g.
//
//	/etc/mail/gosendmail.toml:12: key "delivery.retry_min": bad duration "zz"
//
// A missing default file is not an error: the built-in defaults apply. A
// missing file that the caller named is.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"strings"
	"time"

	toml "github.com/pelletier/go-toml/v2"
)

// DefaultPath is where the configuration lives on an installed system. It
// is a variable so that packagers (and the tests of the setgid path) can
// set it at link time with -ldflags -X.
var DefaultPath = "/etc/mail/gosendmail.toml"

// EnvVar names the environment variable that may point at another file.
const EnvVar = "GOSENDMAIL_CONFIG"

// Config is the whole configuration. Field tags are the TOML keys.
type Config struct {
	Hostname       string   `toml:"hostname"`
	QueueDir       string   `toml:"queue_dir"`
	MaildropDir    string   `toml:"maildrop_dir"`
	MailSpoolDir   string   `toml:"mail_spool_dir"`
	LocalHostNames string   `toml:"local_host_names"`
	Virtusertable  string   `toml:"virtusertable"`
	TrustedUsers   string   `toml:"trusted_users"`
	Aliases        string   `toml:"aliases"`
	Access         string   `toml:"access"`
	RelayDomains   string   `toml:"relay_domains"`
	Mailertable    string   `toml:"mailertable"`
	RelayFrom      []string `toml:"relay_from"`
	Privacy        []string `toml:"privacy"`
	MaxMessageSize Size     `toml:"max_message_size"`
	Log            string   `toml:"log"`
	User           string   `toml:"user"`
	DropGroup      string   `toml:"drop_group"`
	ControlSocket  string   `toml:"control_socket"`
	// MailqAllUsers lets every local user list the whole queue through
	// the daemon (sendmail's and Postfix's default). By default a user
	// who cannot read the spool sees only the messages they submitted;
	// root and the daemon's own user always see everything. The privacy
	// word restrictmailq refuses other users' listings altogether and
	// overrides this key.
	MailqAllUsers bool `toml:"mailq_all_users"`
	// MasqueradeAs is sendmail's MASQUERADE_AS: the domain that mail
	// submitted with the sendmail command shows in the From: field it is
	// given (instead of hostname), and with MasqueradeEnvelope in its
	// envelope sender too. Users in ExposedUsers keep hostname.
	MasqueradeAs       string   `toml:"masquerade_as"`
	MasqueradeEnvelope bool     `toml:"masquerade_envelope"`
	ExposedUsers       []string `toml:"exposed_users"`
	// DMARCReject refuses mail from foreign clients that fails DMARC under
	// a p=reject policy; by default it is only recorded (the spam filter
	// decides).
	DMARCReject bool     `toml:"dmarc_reject"`
	Auth        Auth     `toml:"auth"`
	Limits      Limits   `toml:"limits"`
	Listen      []Listen `toml:"listen"`
	TLS         TLS      `toml:"tls"`
	Delivery    Delivery `toml:"delivery"`
	DKIM        DKIM     `toml:"dkim"`
	Milter      []Milter `toml:"milter"`
	Submission  Submit   `toml:"submission"`

	// Path is the file this configuration was read from ("" for built-in
	// defaults only). It is not a key.
	Path string `toml:"-"`
	// relayNets is RelayFrom parsed.
	relayNets []netip.Prefix
}

// Auth configures SMTP AUTH on listeners that ask for it.
type Auth struct {
	UsersFile string `toml:"users_file"`
}

// Limits bounds what one daemon accepts.
type Limits struct {
	MaxConnections      int `toml:"max_connections"`
	MaxConnectionsPerIP int `toml:"max_connections_per_ip"`
	MaxRecipients       int `toml:"max_recipients"`
	MaxBadCommands      int `toml:"max_bad_commands"`
	// GreetPause is how long the banner waits, watching for clients that
	// talk first (sendmail's greet_pause); relay_from clients never wait.
	GreetPause Duration `toml:"greet_pause"`
}

// Listen is one SMTP listener.
type Listen struct {
	Name    string `toml:"name"`
	Address string `toml:"address"`
	Mode    string `toml:"mode"` // mta, submission, smtps
	Auth    string `toml:"auth"` // none, optional, required
}

// TLS holds the certificate offered with STARTTLS and on smtps listeners.
type TLS struct {
	CertFile string `toml:"cert_file"`
	KeyFile  string `toml:"key_file"`
}

// Delivery configures the queue runner and outbound connections.
type Delivery struct {
	ClientFamily string   `toml:"client_family"` // any, inet, inet6
	RemotePort   int      `toml:"remote_port"`
	DNSServer    string   `toml:"dns_server"`
	SmartHost    string   `toml:"smart_host"`
	RetryMin     Duration `toml:"retry_min"`
	RetryMax     Duration `toml:"retry_max"`
	QueueWarn    Duration `toml:"queue_warn"`
	QueueReturn  Duration `toml:"queue_return"`
	LocalFormat  string   `toml:"local_format"` // mbox, maildir
	// DefaultUser runs |program and /file targets of a root-owned alias
	// file (sendmail's DefaultUser); never root.
	DefaultUser string `toml:"default_user"`
}

// DKIM names opendkim-format key and signing tables.
type DKIM struct {
	KeyTable     string `toml:"key_table"`
	SigningTable string `toml:"signing_table"`
	OnError      string `toml:"on_error"` // tempfail, unsigned
}

// Milter is one external mail filter.
type Milter struct {
	Name           string   `toml:"name"`
	Socket         string   `toml:"socket"`
	OnFailure      string   `toml:"on_failure"`
	TimeoutConnect Duration `toml:"timeout_connect"`
	TimeoutSend    Duration `toml:"timeout_send"`
	TimeoutRead    Duration `toml:"timeout_read"`
	TimeoutEOM     Duration `toml:"timeout_eom"`
}

// Submit configures local submission through the sendmail command.
type Submit struct {
	// FromPolicy says what a non-trusted caller's -f does: "warn" adds
	// X-Authentication-Warning (sendmail's authwarnings), "allow" adds
	// nothing, "refuse" rejects the submission.
	FromPolicy string `toml:"from_policy"`
}

// Defaults returns the built-in configuration: the one place that holds
// every default value.
func Defaults() *Config {
	c := &Config{
		Hostname:       "",
		ExposedUsers:   []string{"root"},
		QueueDir:       "/var/spool/mqueue",
		MaildropDir:    "/var/spool/mqueue-client",
		MailSpoolDir:   "/var/mail",
		LocalHostNames: "/etc/mail/local-host-names",
		Virtusertable:  "/etc/mail/virtusertable",
		TrustedUsers:   "/etc/mail/trusted-users",
		Aliases:        "/etc/aliases",
		Access:         "/etc/mail/access",
		RelayDomains:   "/etc/mail/relay-domains",
		Mailertable:    "/etc/mail/mailertable",
		RelayFrom:      []string{"127.0.0.0/8", "::1/128"},
		Privacy:        []string{"goaway", "noreceipts", "authwarnings"},
		MaxMessageSize: 50 << 20,
		Log:            "syslog",
		User:           "gosendmail",
		DropGroup:      "gosendmail-drop",
		ControlSocket:  "/run/gosendmail/control",
		Limits: Limits{
			MaxConnections:      2000,
			MaxConnectionsPerIP: 20,
			MaxRecipients:       1000,
			MaxBadCommands:      20,
			GreetPause:          Duration(time.Second),
		},
		Delivery: Delivery{
			ClientFamily: "any",
			RemotePort:   25,
			RetryMin:     Duration(15 * time.Minute),
			RetryMax:     Duration(4 * time.Hour),
			QueueWarn:    Duration(4 * time.Hour),
			QueueReturn:  Duration(5 * 24 * time.Hour),
			LocalFormat:  "mbox",
			DefaultUser:  "nobody",
		},
		DKIM:       DKIM{OnError: "tempfail"},
		Submission: Submit{FromPolicy: "warn"},
	}
	return c
}

// DefaultListeners is what runs when the file has no [[listen]] table.
func DefaultListeners() []Listen {
	return []Listen{
		{Name: "MTA", Address: ":25", Mode: "mta", Auth: "none"},
		{Name: "submission", Address: ":587", Mode: "submission", Auth: "none"},
	}
}

// Locate returns the file to read and whether the caller named it (by flag
// or environment) rather than falling back to the default.
func Locate(flagPath string) (path string, named bool) {
	if flagPath != "" {
		return flagPath, true
	}
	if p := os.Getenv(EnvVar); p != "" {
		return p, true
	}
	return DefaultPath, false
}

// Load reads the configuration at path. A missing file is an error only if
// named is true; otherwise the defaults are returned.
func Load(path string, named bool) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if !named && errors.Is(err, fs.ErrNotExist) {
			c := Defaults()
			if err := c.finish(""); err != nil {
				return nil, err
			}
			return c, nil
		}
		return nil, fmt.Errorf("%s: %w", path, unwrapPath(err))
	}
	return Parse(path, data)
}

func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Parse decodes data (read from path, used in messages) over the defaults.
func Parse(path string, data []byte) (*Config, error) {
	c := Defaults()
	c.Listen = nil
	dec := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields()
	if err := dec.Decode(c); err != nil {
		return nil, decodeError(path, err)
	}
	if err := c.finish(path); err != nil {
		return nil, err
	}
	return c, nil
}

// decodeError turns go-toml's errors into "file:line: key "k": reason".
func decodeError(path string, err error) error {
	var se *toml.StrictMissingError
	if errors.As(err, &se) && len(se.Errors) > 0 {
		var lines []string
		for _, e := range se.Errors {
			row, _ := e.Position()
			lines = append(lines, fmt.Sprintf("%s:%d: unknown key %q", path, row, strings.Join(e.Key(), ".")))
		}
		return errors.New(strings.Join(lines, "\n"))
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		row, _ := de.Position()
		msg := strings.TrimPrefix(de.Error(), "toml: ")
		if k := de.Key(); len(k) > 0 {
			return fmt.Errorf("%s:%d: key %q: %s", path, row, strings.Join(k, "."), msg)
		}
		return fmt.Errorf("%s:%d: %s", path, row, msg)
	}
	return fmt.Errorf("%s: %v", path, err)
}

// fieldError is a validation error for a key whose line we look up in the
// file's text.
func (c *Config) fieldError(key, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if c.Path == "" {
		return fmt.Errorf("built-in default for %q: %s", key, msg)
	}
	return fmt.Errorf("%s:%d: key %q: %s", c.Path, c.lineOf(key), key, msg)
}

// lineOf finds the line where a dotted key is set; 0 if unknown.
func (c *Config) lineOf(key string) int {
	data, err := os.ReadFile(c.Path)
	if err != nil {
		return 0
	}
	table, leaf := "", key
	if i := strings.LastIndex(key, "."); i >= 0 {
		table, leaf = key[:i], key[i+1:]
	}
	cur := ""
	for n, line := range strings.Split(string(data), "\n") {
		t := strings.TrimSpace(line)
		if strings.HasPrefix(t, "[") {
			cur = strings.Trim(t, "[] \t")
			continue
		}
		k, _, ok := strings.Cut(t, "=")
		k = strings.Trim(strings.TrimSpace(k), `"`)
		if ok && (k == leaf && cur == table || k == key && cur == "") {
			return n + 1
		}
	}
	return 0
}

func (c *Config) finish(path string) error {
	c.Path = path
	if c.Hostname == "" {
		c.Hostname = systemHostname()
	} else if err := checkHostname(c.Hostname); err != nil {
		return c.fieldError("hostname", "%v", err)
	}
	if c.MasqueradeAs != "" {
		if err := checkHostname(c.MasqueradeAs); err != nil {
			return c.fieldError("masquerade_as", "%v", err)
		}
	}
	if len(c.Listen) == 0 {
		c.Listen = DefaultListeners()
	}
	for i := range c.Listen {
		l := &c.Listen[i]
		if l.Mode == "" {
			l.Mode = "mta"
		}
		if l.Auth == "" {
			l.Auth = "none"
		}
		if l.Name == "" {
			l.Name = l.Mode
		}
		if l.Address == "" {
			return c.fieldError("listen.address", "listener %q has no address", l.Name)
		}
		if !oneOf(l.Mode, "mta", "submission", "smtps") {
			return c.fieldError("listen.mode", "%q is not one of mta, submission, smtps", l.Mode)
		}
		if !oneOf(l.Auth, "none", "optional", "required") {
			return c.fieldError("listen.auth", "%q is not one of none, optional, required", l.Auth)
		}
	}
	for _, p := range c.RelayFrom {
		pfx, err := parsePrefix(p)
		if err != nil {
			return c.fieldError("relay_from", "%v", err)
		}
		c.relayNets = append(c.relayNets, pfx)
	}
	for _, w := range c.Privacy {
		if !knownPrivacy[strings.ToLower(w)] {
			return c.fieldError("privacy", "unknown privacy word %q", w)
		}
	}
	for key, dir := range map[string]string{"queue_dir": c.QueueDir, "maildrop_dir": c.MaildropDir, "mail_spool_dir": c.MailSpoolDir} {
		if !strings.HasPrefix(dir, "/") {
			return c.fieldError(key, "%q is not an absolute path", dir)
		}
	}
	if c.Log != "syslog" && c.Log != "stderr" && !strings.HasPrefix(c.Log, "/") {
		return c.fieldError("log", "%q is not syslog, stderr or an absolute path", c.Log)
	}
	if c.MaxMessageSize <= 0 {
		return c.fieldError("max_message_size", "must be positive")
	}
	if !oneOf(c.Delivery.ClientFamily, "any", "inet", "inet6") {
		return c.fieldError("delivery.client_family", "%q is not one of any, inet, inet6", c.Delivery.ClientFamily)
	}
	if !oneOf(c.Delivery.LocalFormat, "mbox", "maildir") {
		return c.fieldError("delivery.local_format", "%q is not mbox or maildir", c.Delivery.LocalFormat)
	}
	if c.Delivery.RemotePort <= 0 || c.Delivery.RemotePort > 65535 {
		return c.fieldError("delivery.remote_port", "%d is not a port", c.Delivery.RemotePort)
	}
	if c.Delivery.RetryMin <= 0 || c.Delivery.RetryMax < c.Delivery.RetryMin {
		return c.fieldError("delivery.retry_max", "retry_max must be at least retry_min, and both positive")
	}
	if c.Delivery.DefaultUser == "" || c.Delivery.DefaultUser == "root" || c.Delivery.DefaultUser == "0" {
		return c.fieldError("delivery.default_user", "must name an unprivileged account")
	}
	if !oneOf(c.DKIM.OnError, "tempfail", "unsigned") {
		return c.fieldError("dkim.on_error", "%q is not tempfail or unsigned", c.DKIM.OnError)
	}
	if !oneOf(c.Submission.FromPolicy, "warn", "allow", "refuse") {
		return c.fieldError("submission.from_policy", "%q is not warn, allow or refuse", c.Submission.FromPolicy)
	}
	for i := range c.Milter {
		m := &c.Milter[i]
		if m.OnFailure == "" {
			m.OnFailure = "tempfail"
		}
		if !oneOf(m.OnFailure, "tempfail", "reject", "accept") {
			return c.fieldError("milter.on_failure", "%q is not tempfail, reject or accept", m.OnFailure)
		}
		if m.TimeoutConnect == 0 {
			m.TimeoutConnect = Duration(5 * time.Minute)
		}
		if m.TimeoutSend == 0 {
			m.TimeoutSend = Duration(10 * time.Second)
		}
		if m.TimeoutRead == 0 {
			m.TimeoutRead = Duration(10 * time.Second)
		}
		if m.TimeoutEOM == 0 {
			m.TimeoutEOM = Duration(5 * time.Minute)
		}
	}
	return nil
}

func oneOf(s string, set ...string) bool {
	for _, x := range set {
		if s == x {
			return true
		}
	}
	return false
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("bad network %q", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("bad network %q", s)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// RelayAllowed reports whether a client at addr may relay without AUTH.
func (c *Config) RelayAllowed(addr netip.Addr) bool {
	addr = addr.Unmap()
	for _, p := range c.relayNets {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

var knownPrivacy = map[string]bool{
	"public": true, "needmailhelo": true, "needexpnhelo": true, "needvrfyhelo": true,
	"noexpn": true, "novrfy": true, "noetrn": true, "noverb": true, "restrictmailq": true,
	"restrictqrun": true, "restrictexpand": true, "noreceipts": true, "nobodyreturn": true,
	"authwarnings": true, "noactualrecipient": true, "goaway": true,
}

// goaway expands to these, as in sendmail.
var goawayWords = []string{"needmailhelo", "needexpnhelo", "needvrfyhelo", "noexpn", "novrfy", "noverb", "authwarnings", "noactualrecipient"}

// HeaderDomain is the domain of a local user's address in the From: field
// of mail they submit: masquerade_as, unless unset or the user is exposed.
func (c *Config) HeaderDomain(user string) string {
	if c.MasqueradeAs == "" {
		return c.Hostname
	}
	for _, u := range c.ExposedUsers {
		if u == user {
			return c.Hostname
		}
	}
	return c.MasqueradeAs
}

// EnvelopeDomain is the domain of a local user's envelope sender: as
// HeaderDomain with masquerade_envelope, else hostname.
func (c *Config) EnvelopeDomain(user string) string {
	if !c.MasqueradeEnvelope {
		return c.Hostname
	}
	return c.HeaderDomain(user)
}

// OwnAddress reports whether addr is the local user's own address, which
// they may give as sender without an X-Authentication-Warning:
// user@hostname, or user@ the domain masquerade_envelope gives them.
func (c *Config) OwnAddress(user, addr string) bool {
	return strings.EqualFold(addr, user+"@"+c.Hostname) || strings.EqualFold(addr, user+"@"+c.EnvelopeDomain(user))
}

// HasPrivacy reports whether a privacy word is in force (goaway expanded).
func (c *Config) HasPrivacy(word string) bool {
	for _, w := range c.Privacy {
		w = strings.ToLower(w)
		if w == word {
			return true
		}
		if w == "goaway" {
			for _, g := range goawayWords {
				if g == word {
					return true
				}
			}
		}
	}
	return false
}

func checkHostname(h string) error {
	if len(h) > 253 || strings.ContainsAny(h, " \t\r\n\x00/@[]<>") || strings.HasPrefix(h, ".") || strings.HasPrefix(h, "-") {
		return fmt.Errorf("%q is not a host name", h)
	}
	return nil
}

// systemHostname returns the kernel's host name. DNS is not asked: Debian's
// sendmail postinst hung for a minute doing that on hosts without an FQDN.
func systemHostname() string {
	h, err := os.Hostname()
	if err != nil || checkHostname(h) != nil {
		return "localhost"
	}
	return h
}
