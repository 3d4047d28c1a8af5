// Package sendmail is the sendmail command: sendmail 8's flag surface
// (flags.go), reading a message from a local program (message.go), and
// completing and queueing it in maildrop_dir (submit.go).
//
// The command runs setgid to the drop group when installed. Main therefore
// first makes fds 0-2 safe, reads the one environment variable it honours
// (GOSENDMAIL_CONFIG), clears the rest, sets a umask, and gives up the
// group before reading any file the caller named (-C, the variable) and in
// every mode but submission. Options that name files or directories are
// for root only; -X is refused for everyone.
//
// Exit status: 0 once the message is durable; never 75 (PHP's mail()
// counts 75 as success). See mailerr for the codes.
package sendmail

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/gosendmail/gosendmail/pkg/config"
	"github.com/gosendmail/gosendmail/pkg/control"
	"github.com/gosendmail/gosendmail/pkg/envelope"
	"github.com/gosendmail/gosendmail/pkg/mailerr"
	"github.com/gosendmail/gosendmail/pkg/maillog"
	"github.com/gosendmail/gosendmail/pkg/maps"
	"github.com/gosendmail/gosendmail/pkg/privsep"
	"github.com/gosendmail/gosendmail/pkg/route"
	"github.com/gosendmail/gosendmail/pkg/smtpd"
)

// Hooks are the other commands sendmail's modes lead to (-bp is mailq,
// -bi newaliases). cmd/sendmail wires them so this package does not
// depend on theirs.
type Hooks struct {
	Mailq      func(args []string, stdout, stderr io.Writer) int
	Newaliases func(args []string, stdout, stderr io.Writer) int
}

// Main runs the sendmail command; argv includes the program name.
func Main(argv []string, stdin io.Reader, stdout, stderr io.Writer, hooks Hooks) int {
	privsep.SanitizeFDs()
	envConfig := os.Getenv(config.EnvVar)
	privsep.TrimEnv()
	privsep.SetUmask()

	prog := filepath.Base(argv[0])
	switch prog {
	case "mailq":
		privsep.DropGroup()
		return hooks.Mailq(withEnvConfig(argv[1:], envConfig), stdout, stderr)
	case "newaliases":
		privsep.DropGroup()
		return hooks.Newaliases(withEnvConfig(argv[1:], envConfig), stdout, stderr)
	}

	fail := func(err error) int {
		fmt.Fprintf(stderr, "sendmail: %v\n", err)
		return mailerr.ExitCode(err)
	}
	o, err := Parse(argv[1:])
	if err != nil {
		return fail(err)
	}
	caller := privsep.CurrentCaller()
	if len(o.Privileged) > 0 && caller.UID != 0 {
		privsep.DropGroup()
		return fail(mailerr.New(mailerr.ExNoPerm, "%s: permission denied: only root may name files or directories", o.Privileged[0]))
	}

	cfgFlag := o.ConfigPath
	if cfgFlag == "" {
		cfgFlag = envConfig
	}
	path, named := config.Locate(cfgFlag)
	// A caller who names another configuration runs as a plain user, as
	// sendmail does with -C: drop the group before the file is read.
	if (o.Mode != "m" && o.Mode != "s") || o.QueueRun || (named && caller.UID != 0) {
		if err := privsep.DropGroup(); err != nil {
			return fail(mailerr.Wrap(mailerr.ExOSErr, err, "cannot drop privileges"))
		}
	}
	cfg, err := config.Load(path, named)
	if err != nil {
		fmt.Fprintf(stderr, "sendmail: %v\n", err)
		return mailerr.ExConfig
	}
	if caller.UID == 0 {
		if o.QueueDir != "" {
			cfg.QueueDir = o.QueueDir
		}
		if o.AliasFile != "" {
			cfg.Aliases = o.AliasFile
		}
	}
	tag := "sendmail"
	if o.LogTag != "" {
		tag = o.LogTag
	}
	log := maillog.Open(cfg.Log, tag, false)
	for _, w := range o.Warnings {
		fmt.Fprintf(stderr, "sendmail: warning: %s\n", w)
		log.Warnf("", "%s: %s", caller.Name, w)
	}

	cfgArgs := []string{}
	if named {
		cfgArgs = []string{"--config", path}
	}
	switch {
	case o.Mode == "p":
		return hooks.Mailq(append(append(cfgArgs, o.MailqArgs...), o.QueueFilters...), stdout, stderr)
	case o.Mode == "i":
		return hooks.Newaliases(cfgArgs, stdout, stderr)
	case o.Mode == "s":
		b := &smtpd.Backend{
			Config:    func() *config.Config { return cfg },
			Tables:    smtpd.OpenTables{},
			Queue:     &smtpd.DropStore{Dir: cfg.MaildropDir},
			Log:       log,
			Listener:  config.Listen{Name: "stdin", Mode: "submission", Auth: "none"},
			LocalUser: caller.Name,
		}
		if err := smtpd.ServeStdio(cfg, b, stdin, stdout); err != nil {
			return fail(mailerr.Wrap(mailerr.ExIOErr, err, "-bs"))
		}
		return mailerr.ExOK
	case o.Mode == "v":
		return verify(cfg, o.Rcpts, stdout, stderr)
	case o.Mode == "d" || o.Mode == "D":
		return fail(startDaemon(path, named))
	case o.Mode == "t":
		return fail(mailerr.New(mailerr.ExUsage, "-bt: rule-set test mode does not exist in gosendmail (there are no rulesets)"))
	case o.Mode == "C":
		fmt.Fprintf(stdout, "%s: configuration OK\n", displayPath(cfg.Path))
		return mailerr.ExOK
	case o.Mode == "h" || o.Mode == "H" || o.Mode == "P" || o.Mode == "a":
		fmt.Fprintf(stderr, "sendmail: warning: -b%s is not supported; ignored\n", o.Mode)
		return mailerr.ExOK
	case o.QueueRun:
		return queueRun(cfg, o, stdout, stderr)
	case o.Quarantine != nil:
		return fail(mailerr.New(mailerr.ExUsage, "-Q: use mailq hold ID / mailq release ID"))
	}

	sub := &Submission{Cfg: cfg, Opts: o, Caller: caller, Trusted: isTrusted(cfg, caller), Now: time.Now(), Log: log}
	res, err := sub.Submit(stdin)
	if err != nil {
		log.Warnf("", "%s: submission refused: %v", caller.Name, err)
		return fail(err)
	}
	if o.Verbose {
		fmt.Fprintf(stderr, "%s: queued for delivery to %s\n", res.ID, strings.Join(res.Rcpts, ", "))
	}
	return mailerr.ExOK
}

// verify is sendmail -bv: how each address would be delivered, without
// sending anything. Exit 0 if all are deliverable, 67 if one is unknown,
// 64 for bad syntax.
func verify(cfg *config.Config, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "sendmail: Recipient names must be specified")
		return mailerr.ExUsage
	}
	tables, errs := route.Load(cfg)
	for _, err := range errs {
		fmt.Fprintf(stderr, "sendmail: warning: %v\n", err)
	}
	code := mailerr.ExOK
	for _, arg := range args {
		for _, m := range envelope.ParseList(arg) {
			addr, err := envelope.CheckMailbox(m.Addr)
			if err != nil {
				fmt.Fprintf(stdout, "%s... Invalid address: %s\n", m.Addr, err.(*envelope.Error).Reason)
				if code == mailerr.ExOK {
					code = mailerr.ExUsage
				}
				continue
			}
			for _, t := range tables.Resolve(addr) {
				fmt.Fprintln(stdout, route.Describe(addr, t))
				if t.Kind == route.Error && code == mailerr.ExOK {
					code = mailerr.ExNoUser
					if t.Err.Temporary {
						code = mailerr.ExTempFail
					}
				}
			}
		}
	}
	return code
}

// queueRun is sendmail -q: ask the daemon to try the queue (or the
// messages the -qI/-qR/-qS selectors pick) now. The daemon runs the queue
// continuously, so an interval (-q30m) only warns.
func queueRun(cfg *config.Config, o *Options, stdout, stderr io.Writer) int {
	if o.QueueInterval > 0 {
		fmt.Fprintf(stderr, "sendmail: warning: -q%s: smtpd runs the queue continuously; running it once now\n", strings.TrimSuffix(o.QueueInterval.String(), "0s"))
	}
	resp, err := control.Call(cfg.ControlSocket, control.Request{Cmd: "flush", Args: o.QueueFilters}, 30*time.Second)
	switch {
	case errors.Is(err, control.ErrNoDaemon):
		fmt.Fprintf(stderr, "sendmail: -q: the daemon is not running (%s); queued mail is delivered when smtpd starts\n", cfg.ControlSocket)
		return mailerr.ExUnavailable
	case errors.Is(err, os.ErrPermission):
		fmt.Fprintln(stderr, "sendmail: You do not have permission to process the queue")
		return mailerr.ExNoPerm
	case err != nil:
		fmt.Fprintf(stderr, "sendmail: -q: %v\n", err)
		return mailerr.ExTempFail
	case !resp.OK:
		fmt.Fprintf(stderr, "sendmail: %s\n", resp.Error)
		if resp.Status != 0 {
			return resp.Status
		}
		return mailerr.ExUnavailable
	}
	if o.Verbose {
		fmt.Fprintln(stdout, resp.Output)
	}
	return mailerr.ExOK
}

// startDaemon replaces this process with smtpd, found beside the
// sendmail binary (as installed, /usr/sbin) or in /usr/sbin. -bd and -bD
// both run it in the foreground: systemd, not sendmail, backgrounds
// daemons now.
func startDaemon(cfgPath string, named bool) error {
	exe, err := os.Executable()
	if err != nil {
		return mailerr.Wrap(mailerr.ExOSFile, err, "cannot find smtpd")
	}
	smtpdPath := filepath.Join(filepath.Dir(exe), "smtpd")
	if _, err := os.Stat(smtpdPath); err != nil {
		smtpdPath = "/usr/sbin/smtpd"
	}
	argv := []string{"smtpd"}
	if named {
		argv = append(argv, "--config", cfgPath)
	}
	err = syscall.Exec(smtpdPath, argv, os.Environ())
	return mailerr.Wrap(mailerr.ExOSFile, err, "cannot start %s", smtpdPath)
}

func displayPath(p string) string {
	if p == "" {
		return "built-in defaults"
	}
	return p
}

// withEnvConfig passes $GOSENDMAIL_CONFIG on as --config to a command
// reached through sendmail's names, since the environment is cleared.
func withEnvConfig(args []string, env string) []string {
	if env == "" {
		return args
	}
	for _, a := range args {
		if a == "--config" || strings.HasPrefix(a, "--config=") {
			return args
		}
	}
	return append([]string{"--config", env}, args...)
}

// isTrusted: root, and the users listed in trusted_users, may set the
// sender without a warning.
func isTrusted(cfg *config.Config, c privsep.Caller) bool {
	if c.UID == 0 {
		return true
	}
	users, err := maps.ReadClass(cfg.TrustedUsers)
	return err == nil && users.Has(c.Name)
}
