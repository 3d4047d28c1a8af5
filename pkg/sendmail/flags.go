package sendmail

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gosendmail/gosendmail/pkg/config"
	"github.com/gosendmail/gosendmail/pkg/mailerr"
)

// Options is the parsed command line.
type Options struct {
	Mode         string // -b letter: "m" (default), "s", "p", "i", "v", "d", "D", "t", "P", "C", "h", "H", "a"
	ExtractRcpts bool   // -t
	IgnoreDots   bool   // -i, -oi, -O IgnoreDots
	Sender       string // -f / -r value as given
	SenderSet    bool
	FullName     string // -F
	FullNameSet  bool
	Rcpts        []string // operands
	ConfigPath   string   // -C
	Notify       string   // -N, canonical upper case
	Ret          string   // -R: FULL or HDRS
	EnvID        string   // -V
	BodyType     string   // -B: 7BIT or 8BITMIME
	Verbose      bool     // -v
	DeliveryMode byte     // -od: b, i, q, d
	ErrorMode    byte     // -oe: m, p, q, w, e
	NoAlias      bool     // -n
	HopCount     int      // -h
	LogTag       string   // -L

	QueueRun      bool          // -q given
	QueueInterval time.Duration // -q30m
	QueueFG       bool          // -qf
	QueueFilters  []string      // -qIx, -q!Ry ... as mailq takes them
	Quarantine    *string       // -Q[reason]: non-nil if given
	MailqArgs     []string      // -v, -Ac for -bp

	// Privileged lists the options that name files or directories; only
	// root may use them.
	Privileged []string
	QueueDir   string // -oQ / -O QueueDirectory= (root only)
	AliasFile  string // -oA / -O AliasFile= (root only)

	// Warnings are the flags that were ignored, for stderr and the log.
	Warnings []string
}

// usage builds an EX_USAGE error.
func usage(format string, args ...any) error {
	return mailerr.New(mailerr.ExUsage, format, args...)
}

// optArg are the option letters that take a value, glued (-fuser) or as
// the next argument (-f user), as in sendmail's getopt string.
const optArg = "ABbCdDeFfhLMNOopRrVX"

// Parse reads sendmail's command line (without argv[0]). Options may
// appear anywhere before "--" (GNU getopt order, as Linux sendmail and
// Postfix do); every argument after "--" is a recipient, even one that
// starts with '-'. Grouped flags (-ti) and glued values (-froot, -odi,
// -B8BITMIME, -q30m) parse like their separate forms.
func Parse(args []string) (*Options, error) {
	o := &Options{Mode: "m"}
	for _, a := range args {
		if strings.ContainsAny(a, "\r\n\x00") {
			return nil, usage("CR, LF or NUL in argument %q refused", a)
		}
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			o.Rcpts = append(o.Rcpts, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			o.Rcpts = append(o.Rcpts, a)
			continue
		}
		if strings.HasPrefix(a, "--") {
			if name, val, ok := strings.Cut(a[2:], "="); ok && name == "config" {
				o.ConfigPath = val
				continue
			}
			if a == "--config" && i+1 < len(args) {
				o.ConfigPath = args[i+1]
				i++
				continue
			}
			o.Warnings = append(o.Warnings, fmt.Sprintf("unknown option %s ignored", a))
			continue
		}
		// A cluster of single-letter flags.
		for j := 1; j < len(a); j++ {
			c := a[j]
			if c == 'q' {
				if err := o.queueFlag(a[j+1:]); err != nil {
					return nil, err
				}
				break
			}
			if c == 'Q' {
				r := a[j+1:]
				o.Quarantine = &r
				break
			}
			if strings.IndexByte(optArg, c) < 0 {
				if err := o.boolFlag(c); err != nil {
					return nil, err
				}
				continue
			}
			val := a[j+1:]
			if val == "" {
				if i+1 >= len(args) {
					return nil, usage("option -%c requires a value", c)
				}
				i++
				val = args[i]
			}
			if err := o.valueFlag(c, val); err != nil {
				return nil, err
			}
			break
		}
	}
	return o, nil
}

func (o *Options) boolFlag(c byte) error {
	switch c {
	case 't':
		o.ExtractRcpts = true
	case 'i':
		o.IgnoreDots = true
	case 'v':
		o.Verbose = true
		o.MailqArgs = append(o.MailqArgs, "-v")
	case 'n':
		o.NoAlias = true
	case 'I': // Postfix's and old sendmail's newaliases
		o.Mode = "i"
	case 'G', 'U', 'm', 's', 'c', 'T':
		// -G gateway submission, -U initial submission, -m MeToo, -s and
		// -T obsolete: accepted, nothing to do.
	default:
		o.Warnings = append(o.Warnings, fmt.Sprintf("unknown option -%c ignored", c))
	}
	return nil
}

func (o *Options) valueFlag(c byte, v string) error {
	switch c {
	case 'f', 'r':
		o.Sender, o.SenderSet = v, true
	case 'F':
		o.FullName, o.FullNameSet = v, true
	case 'b':
		return o.modeFlag(v)
	case 'B':
		switch strings.ToUpper(v) {
		case "7BIT", "8BITMIME":
			o.BodyType = strings.ToUpper(v)
		default:
			return usage("-B %s: body type must be 7BIT or 8BITMIME", v)
		}
	case 'C':
		o.ConfigPath = v
	case 'N':
		n, err := parseNotify(v)
		if err != nil {
			return err
		}
		o.Notify = n
	case 'R':
		switch strings.ToLower(v) {
		case "full":
			o.Ret = "FULL"
		case "hdrs", "headers":
			o.Ret = "HDRS"
		default:
			return usage("-R %s: must be full or hdrs", v)
		}
	case 'V':
		if len(v) > 100 || strings.ContainsAny(v, " +=") {
			return usage("-V %s: bad envelope id", v)
		}
		o.EnvID = v
	case 'h':
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return usage("-h %s: hop count must be a number", v)
		}
		o.HopCount = n
	case 'L':
		o.LogTag = sanitizeTag(v)
	case 'X':
		return usage("-X %s: refused: gosendmail never writes a file named on the command line", v)
	case 'D':
		o.Privileged = append(o.Privileged, "-D "+v)
	case 'd', 'M', 'p':
		// Debug levels, macros, protocol: inert here.
		o.Warnings = append(o.Warnings, fmt.Sprintf("option -%c %s ignored", c, v))
	case 'A':
		if v != "c" && v != "m" {
			return usage("-A %s: must be c or m", v)
		}
		o.MailqArgs = append(o.MailqArgs, "-A"+v)
	case 'e':
		return o.errorMode(v)
	case 'o':
		return o.shortOption(v)
	case 'O':
		return o.longOption(v)
	}
	return nil
}

func (o *Options) modeFlag(v string) error {
	switch v {
	case "m", "s", "p", "i", "v", "d", "D", "t", "P", "C", "h", "H", "a":
		o.Mode = v
		return nil
	}
	return usage("-b%s: unknown operation mode", v)
}

// queueFlag handles everything after -q: "" (run once), an interval
// ("30m", "1h30m", "p15m"), "f" (foreground), or a selector ("Isub",
// "!Rsub", "Ssub", "Gname", "L", "Q").
func (o *Options) queueFlag(v string) error {
	o.QueueRun = true
	neg := strings.HasPrefix(v, "!")
	w := strings.TrimPrefix(v, "!")
	if w == "" {
		if neg {
			return usage("-q!: bad queue selector")
		}
		return nil
	}
	switch w[0] {
	case 'I', 'R', 'S':
		if len(w) < 2 {
			return usage("-q%s needs a substring", v)
		}
		o.QueueFilters = append(o.QueueFilters, "-q"+v)
		return nil
	case 'f':
		o.QueueFG = true
		return nil
	case 'G', 'L', 'Q':
		o.Warnings = append(o.Warnings, fmt.Sprintf("-q%s: queue groups and lost/quarantine listings are not separate here; ignored", v))
		return nil
	case 'p':
		w = w[1:]
		if w == "" {
			return nil
		}
	}
	if neg {
		return usage("-q%s: bad queue selector", v)
	}
	// sendmail's default unit is minutes.
	if w[len(w)-1] >= '0' && w[len(w)-1] <= '9' {
		w += "m"
	}
	d, err := config.ParseDuration(w)
	if err != nil || d <= 0 {
		return usage("-q%s: bad queue interval", v)
	}
	o.QueueInterval = d
	return nil
}

// pathOptions are the sendmail options that name files, directories or
// programs, by short letter and long name. Only root may set them.
var pathOptions = map[string]string{
	"A": "AliasFile", "Q": "QueueDirectory", "H": "HelpFile", "S": "StatusFile",
	"E": "ErrorHeader", "u": "DefaultUser", "U": "UserDatabaseSpec", "J": "ForwardPath",
	"P": "PostmasterCopy", "L": "LogLevel",
}

var pathLong = map[string]bool{
	"aliasfile": true, "queuedirectory": true, "helpfile": true, "statusfile": true,
	"errorheader": true, "defaultuser": true, "userdatabasespec": true, "forwardpath": true,
	"pidfile": true, "deadletterdrop": true, "servicewitchfile": true, "serviceswitchfile": true,
	"hostsfile": true, "safefileenvironment": true, "runasuser": true, "trusteduser": true,
	"queuefilemode": true, "dontblamesendmail": true, "mailboxdatabase": true, "dataFileBufferSize": true,
	"xscriptfilebuffersize": true, "cacertfile": true, "cacertpath": true, "servercertfile": true,
	"serverkeyfile": true, "clientcertfile": true, "clientkeyfile": true, "randfile": true,
	"dhparameters": true, "crlfile": true, "crlpath": true, "controlsocketname": true,
	"milter.macros": true, "inputmailfilters": true, "confile": true,
}

// shortOption handles -oXvalue.
func (o *Options) shortOption(v string) error {
	if v == "" {
		return usage("-o needs an option letter")
	}
	letter, val := v[:1], v[1:]
	switch letter {
	case "i":
		o.IgnoreDots = val == "" || strings.EqualFold(val, "true")
	case "d":
		return o.deliveryMode(val)
	case "e":
		return o.errorMode(val)
	case "m", "7", "8":
	case "Q":
		o.Privileged = append(o.Privileged, "-oQ"+val)
		o.QueueDir = val
	case "A":
		o.Privileged = append(o.Privileged, "-oA"+val)
		o.AliasFile = val
	case "M":
		o.Warnings = append(o.Warnings, fmt.Sprintf("-oM%s: macro ignored", val))
	default:
		if long, ok := pathOptions[letter]; ok && letter != "L" {
			o.Privileged = append(o.Privileged, "-o"+v+" ("+long+")")
			return nil
		}
		o.Warnings = append(o.Warnings, fmt.Sprintf("option -o%s ignored", v))
	}
	return nil
}

// longOption handles -O Name=value.
func (o *Options) longOption(v string) error {
	name, val, _ := strings.Cut(v, "=")
	name = strings.TrimSpace(name)
	switch strings.ToLower(name) {
	case "ignoredots":
		o.IgnoreDots = val == "" || strings.EqualFold(val, "true")
	case "deliverymode":
		return o.deliveryMode(val)
	case "errormode":
		return o.errorMode(val)
	case "metoo", "sevenbitinput", "eightbitmode":
	case "queuedirectory":
		o.Privileged = append(o.Privileged, "-O "+v)
		o.QueueDir = val
	case "aliasfile":
		o.Privileged = append(o.Privileged, "-O "+v)
		o.AliasFile = val
	default:
		if pathLong[strings.ToLower(name)] {
			o.Privileged = append(o.Privileged, "-O "+v)
			return nil
		}
		o.Warnings = append(o.Warnings, fmt.Sprintf("option -O %s ignored", v))
	}
	return nil
}

func (o *Options) deliveryMode(v string) error {
	if v == "" {
		v = "i"
	}
	switch c := strings.ToLower(v)[0]; c {
	case 'b', 'i', 'q', 'd', 'a':
		o.DeliveryMode = c
		return nil
	}
	return usage("-od%s: delivery mode must be b, i, q or d", v)
}

func (o *Options) errorMode(v string) error {
	if v == "" {
		v = "p"
	}
	switch c := v[0]; c {
	case 'm', 'p', 'q', 'w', 'e':
		o.ErrorMode = c
		return nil
	}
	return usage("-oe%s: error mode must be m, p, q, w or e", v)
}

// parseNotify checks a -N value: "never" or a comma list of success,
// failure and delay.
func parseNotify(v string) (string, error) {
	var out []string
	seen := map[string]bool{}
	for _, w := range strings.Split(v, ",") {
		w = strings.ToUpper(strings.TrimSpace(w))
		switch w {
		case "NEVER", "SUCCESS", "FAILURE", "DELAY":
		default:
			return "", usage("-N %s: must be never or a list of success, failure, delay", v)
		}
		if !seen[w] {
			seen[w] = true
			out = append(out, w)
		}
	}
	if seen["NEVER"] && len(out) > 1 {
		return "", usage("-N %s: never cannot be combined", v)
	}
	return strings.Join(out, ","), nil
}

// sanitizeTag keeps a syslog tag to safe characters.
func sanitizeTag(s string) string {
	b := []byte(s)
	out := b[:0]
	for _, c := range b {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' {
			out = append(out, c)
		}
		if len(out) == 32 {
			break
		}
	}
	if len(out) == 0 {
		return "sendmail"
	}
	return string(out)
}
