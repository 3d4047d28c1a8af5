package mailq

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/gosendmail/gosendmail/pkg/config"
	"github.com/gosendmail/gosendmail/pkg/mailerr"
	"github.com/gosendmail/gosendmail/pkg/maillog"
	"github.com/gosendmail/gosendmail/pkg/spool"
	"github.com/spf13/cobra"
)

const prog = "mailq"

// flushTimeout bounds the wait for the daemon's answer to flush.
const flushTimeout = 30 * time.Second

const longHelp = `List the mail queues in sendmail's format, or manage them.

Without a subcommand mailq lists the MSP queue (maildrop_dir: mail left by
the sendmail command for the daemon) and the MTA queue (queue_dir); the
last "Total requests" line counts both. A user who cannot read the queue
directories (by default only root and the daemon's user can) gets the
listing from the running daemon instead: their own messages only, unless
mailq_all_users is set; none under privacy restrictmailq (exit 77).
-q filters as sendmail's:
  -qI<substr>   queue ID contains substr
  -qR<substr>   a pending recipient contains substr (any case)
  -qS<substr>   the sender contains substr (any case)
  -qQ[substr]   held, with a hold reason containing substr
  -q!X...       negates; one letter's filters are OR'ed, different letters AND'ed
The substring may also follow as the next argument (-qR user@example.com)
unless it starts with '-'.

Exit status (sysexits):
  0   done; a listing is 0 even when some queue files are corrupt (warned
      about on stderr)
  64  usage: bad flag or argument, malformed queue ID, remove --all without --yes
  65  a queue file is corrupt (show)
  69  a queue directory or message is not there (not in the queue), hold or
      release of a message still in the maildrop, flush without a queue
      runner, a listing only the daemon can make while it is not running
  74  the listing could not be written
  75  the message is being delivered (locked) or still being submitted; try again
  77  permission denied
  78  the configuration file is bad
With several IDs, every ID is tried and the status is that of the first failure.`

// Main runs mailq with args (the arguments after the program name) and
// returns its exit status. The sendmail command calls it for -bp with the
// arguments that follow -bp, translating -C FILE to --config FILE.
func Main(args []string, stdout, stderr io.Writer) int {
	c := &cli{stdout: stdout, stderr: stderr}
	root := c.command()
	root.SetArgs(joinFilterArgs(args))
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.Execute()
	var done exitStatus
	var me *mailerr.Error
	switch {
	case err == nil:
		return 0
	case errors.As(err, &done):
		return int(done)
	case errors.As(err, &me):
		fmt.Fprintf(stderr, "%s: %s\n", prog, oneLine(err.Error()))
		return mailerr.ExitCode(err)
	}
	// cobra's own errors: unknown flags and commands, argument counts.
	fmt.Fprintf(stderr, "%s: %s (see %s --help)\n", prog, oneLine(err.Error()), prog)
	return mailerr.ExUsage
}

// exitStatus is a failure already reported line by line.
type exitStatus int

func (e exitStatus) Error() string { return "exit status " + strconv.Itoa(int(e)) }

func statusErr(code int) error {
	if code == 0 {
		return nil
	}
	return exitStatus(code)
}

func usage(format string, args ...any) error {
	return mailerr.New(mailerr.ExUsage, format, args...)
}

// bareFilter is a -q flag whose substring is in the next argument.
var bareFilter = regexp.MustCompile(`^-q!?[IRSQ]$`)

// joinFilterArgs turns "-qR foo" into "-qRfoo": sendmail wants the value
// glued on, people type it apart. A following argument that starts with
// '-' is a flag, so "-qQ -v" stays two arguments (-qQ: all held mail).
func joinFilterArgs(args []string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(out, args[i:]...)
		}
		if bareFilter.MatchString(a) && i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
			a += args[i+1]
			i++
		}
		out = append(out, a)
	}
	return out
}

type cli struct {
	stdout, stderr io.Writer
	configPath     string
	cfg            *config.Config

	verbose bool
	json    bool
	only    string
	filters []string
}

func (c *cli) command() *cobra.Command {
	root := &cobra.Command{
		Use:               "mailq [-v] [-Ac|-Am] [-q[!]Xsubstr]... [--json]",
		Short:             "List and manage the mail queues",
		Long:              longHelp,
		Args:              cobra.NoArgs,
		SilenceErrors:     true,
		SilenceUsage:      true,
		PersistentPreRunE: c.loadConfig,
		RunE:              c.list,
	}
	root.CompletionOptions.DisableDefaultCmd = true
	root.PersistentFlags().StringVar(&c.configPath, "config", "",
		"configuration `file` (default $"+config.EnvVar+", else "+config.DefaultPath+")")
	f := root.Flags()
	f.BoolVarP(&c.verbose, "verbose", "v", false, "show priorities (sendmail's -v layout)")
	f.StringVarP(&c.only, "queue", "A", "", "list one `queue`: c the MSP queue (maildrop), m the MTA queue")
	f.StringArrayVarP(&c.filters, "filter", "q", nil, "sendmail queue `filter`: [!]I, R, S or Q and a substring (repeatable)")
	f.BoolVar(&c.json, "json", false, "one JSON object per message, as Postfix's postqueue -j")
	root.AddCommand(c.removeCommand(), c.holdCommand(), c.releaseCommand(), c.showCommand(), c.flushCommand())
	root.AddCommand(c.importCommand())
	return root
}

func (c *cli) loadConfig(*cobra.Command, []string) error {
	path, named := config.Locate(c.configPath)
	cfg, err := config.Load(path, named)
	if err != nil {
		return mailerr.New(mailerr.ExConfig, "%s", oneLine(err.Error()))
	}
	c.cfg = cfg
	return nil
}

func (c *cli) warn(err error) {
	fmt.Fprintf(c.stderr, "%s: warning: %s\n", prog, oneLine(err.Error()))
}

func (c *cli) list(*cobra.Command, []string) error {
	a := ListArgs{Verbose: c.verbose, JSON: c.json, Only: c.only, Filters: c.filters}
	opts, wantMSP, wantMTA, err := a.plan()
	if err != nil {
		return usage("%v", err)
	}
	msp, mta, warns, err := loadQueues(c.cfg.MaildropDir, c.cfg.QueueDir, wantMSP, wantMTA)
	if err != nil && askDaemon(err) {
		// The spool is the daemon's: it lists what this user may see.
		return listRemote(c.cfg.ControlSocket, a, c.stdout)
	}
	for _, w := range warns {
		c.warn(w)
	}
	if err != nil {
		return mailerr.New(exitFor(err), "%s", err)
	}
	if err := Print(c.stdout, msp, mta, opts); err != nil {
		return mailerr.New(mailerr.ExIOErr, "writing the listing: %v", err)
	}
	return nil
}

// manager is what the management commands work through; the log is
// opened only by them, so a listing never touches it.
func (c *cli) manager() *Manager {
	return &Manager{
		MTA:    spool.Open(c.cfg.QueueDir),
		MSPDir: c.cfg.MaildropDir,
		Log:    maillog.Open(c.cfg.Log, "sendmail", false),
		By:     whoAmI(),
		Prog:   prog,
		Out:    c.stdout,
		Err:    c.stderr,
	}
}

// whoAmI names the caller for the log.
func whoAmI() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return "uid " + strconv.Itoa(os.Getuid())
}

func (c *cli) removeCommand() *cobra.Command {
	var sender, recipient string
	var all, yes bool
	cmd := &cobra.Command{
		Use:   "remove {ID... | --sender ADDR | --recipient ADDR | --all --yes}",
		Short: "Remove messages from the queues",
		Long: `Remove messages from the MTA queue or the maildrop, by queue ID or by address.

--sender and --recipient take a whole address (any case, <> optional; "<>"
is the null sender) or "@domain" for every address of a domain; both given
means both must match. --recipient selects a message if any of its pending
recipients matches, and removes the whole message. A message being
delivered is left alone (exit 75); one that is gone is "not in the queue"
(exit 69).`,
		RunE: func(cmd *cobra.Command, ids []string) error {
			byAddr := cmd.Flags().Changed("sender") || cmd.Flags().Changed("recipient")
			switch {
			case len(ids) > 0 && (byAddr || all):
				return usage("remove: give queue IDs or a selection (--sender, --recipient, --all), not both")
			case all && byAddr:
				return usage("remove: --all cannot be combined with --sender or --recipient")
			case all && !yes:
				return usage("remove --all deletes every message in both queues; add --yes to confirm")
			case len(ids) == 0 && !byAddr && !all:
				return usage("remove: give queue IDs, --sender ADDR, --recipient ADDR or --all --yes")
			}
			m := c.manager()
			if len(ids) > 0 {
				return statusErr(m.Remove(ids))
			}
			match := func(*Item) bool { return true }
			if byAddr {
				var s, r func(*Item) bool
				if cmd.Flags().Changed("sender") {
					s = MatchSender(sender)
				}
				if cmd.Flags().Changed("recipient") {
					r = MatchRecipient(recipient)
				}
				match = func(it *Item) bool { return (s == nil || s(it)) && (r == nil || r(it)) }
			}
			return statusErr(m.RemoveMatching(match))
		},
	}
	f := cmd.Flags()
	f.StringVar(&sender, "sender", "", "remove messages from this `address` or @domain")
	f.StringVar(&recipient, "recipient", "", "remove messages to this `address` or @domain")
	f.BoolVar(&all, "all", false, "remove every message of both queues (needs --yes)")
	f.BoolVar(&yes, "yes", false, "confirm --all")
	return cmd
}

func (c *cli) holdCommand() *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "hold ID... [--reason TEXT]",
		Short: "Hold messages in the MTA queue: not delivered until released",
		Long: `Hold messages in the MTA queue: the queue runner leaves them alone until
"mailq release". mailq shows them with an X after the ID and, unless they
have a delivery status, the reason as "(QUARANTINE: reason)". Without
--reason, a held message keeps its reason and another gets "held by USER".
Mail still in the maildrop cannot be held (exit 69).`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(_ *cobra.Command, ids []string) error {
			if strings.IndexFunc(reason, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 {
				return usage("hold: --reason must be one line of text")
			}
			return statusErr(c.manager().Hold(ids, strings.TrimSpace(reason)))
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why the messages are held (shown by mailq)")
	return cmd
}

func (c *cli) releaseCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "release ID...",
		Short: "Release held messages for delivery",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(_ *cobra.Command, ids []string) error {
			return statusErr(c.manager().Release(ids))
		},
	}
}

func (c *cli) showCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "show ID",
		Short: "Show a message's envelope, delivery state and header",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, ids []string) error {
			m := c.manager()
			m.Log = nil // reading changes nothing worth a log line
			return statusErr(m.Show(ids[0]))
		},
	}
}

func (c *cli) flushCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "flush [ID...]",
		Short: "Ask the daemon to try the queue (or these messages) now",
		Long: `Ask the running daemon, over its control socket, to try the whole queue or
the given messages now. mailq delivers nothing itself: with no daemon, or a
daemon without a queue runner, it says so and exits 69.`,
		RunE: func(_ *cobra.Command, ids []string) error {
			return Flush(c.cfg.ControlSocket, ids, c.stdout, flushTimeout)
		},
	}
}
