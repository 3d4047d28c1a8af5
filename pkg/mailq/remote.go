package mailq

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/gosendmail/gosendmail/pkg/config"
	"github.com/gosendmail/gosendmail/pkg/control"
	"github.com/gosendmail/gosendmail/pkg/mailerr"
)

// CmdList is the control command that lists the queues.
const CmdList = "list"

// NotPermitted is sendmail's refusal under PrivacyOptions=restrictmailq.
const NotPermitted = "You are not permitted to see the queue"

// listTimeout bounds the wait for the daemon's listing: 100,000 messages
// take a second or two to read, and other listings may be ahead.
const listTimeout = 2 * time.Minute

// ListArgs are the options of a listing: mailq's flags, and what the
// "list" command carries.
type ListArgs struct {
	Verbose bool
	JSON    bool
	Only    string   // "" both queues, "c" the MSP queue, "m" the MTA queue
	Filters []string // -q values without the "-q": "Rfoo", "!Ibar", "Q"
}

// Encode writes a as the arguments of the "list" command.
func (a ListArgs) Encode() []string {
	var out []string
	if a.Verbose {
		out = append(out, "-v")
	}
	if a.JSON {
		out = append(out, "--json")
	}
	if a.Only != "" {
		out = append(out, "-A"+a.Only)
	}
	for _, f := range a.Filters {
		out = append(out, "-q"+f)
	}
	return out
}

// ParseListArgs reads the arguments of the "list" command and checks
// them as mailq checks its flags.
func ParseListArgs(args []string) (ListArgs, error) {
	var a ListArgs
	for _, arg := range args {
		switch {
		case arg == "-v":
			a.Verbose = true
		case arg == "--json":
			a.JSON = true
		case arg == "-Ac" || arg == "-Am":
			a.Only = arg[2:]
		case strings.HasPrefix(arg, "-q"):
			a.Filters = append(a.Filters, arg[2:])
		default:
			return ListArgs{}, fmt.Errorf("list: unknown argument %q", printable(arg))
		}
	}
	if _, _, _, err := a.plan(); err != nil {
		return ListArgs{}, err
	}
	return a, nil
}

// plan checks a and returns the options for Print and the queues to read.
// Its errors are usage errors.
func (a ListArgs) plan() (opts Options, wantMSP, wantMTA bool, err error) {
	filter, err := ParseFilter(a.Filters)
	if err != nil {
		return Options{}, false, false, err
	}
	wantMSP, wantMTA = true, true
	switch a.Only {
	case "":
	case "c":
		wantMTA = false
	case "m":
		wantMSP = false
	default:
		return Options{}, false, false, fmt.Errorf("-A%s: want -Ac (MSP queue) or -Am (MTA queue)", printable(a.Only))
	}
	return Options{Verbose: a.Verbose, JSON: a.JSON, Filter: filter, Headings: a.Only == ""}, wantMSP, wantMTA, nil
}

// loadQueues reads the wanted queues, the MSP queue first, and stops at
// the first one whose directory cannot be read (a *DirError). warns are
// the files that could not be read.
func loadQueues(mspDir, mtaDir string, wantMSP, wantMTA bool) (msp, mta *Section, warns []error, err error) {
	load := func(dir string, f func(string) ([]Item, []error, error)) (*Section, error) {
		items, w, err := f(dir)
		warns = append(warns, w...)
		if err != nil {
			return nil, err
		}
		return &Section{Dir: dir, Items: items}, nil
	}
	if wantMSP {
		if msp, err = load(mspDir, LoadMSP); err != nil {
			return nil, nil, warns, err
		}
	}
	if wantMTA {
		if mta, err = load(mtaDir, LoadMTA); err != nil {
			return nil, nil, warns, err
		}
	}
	return msp, mta, warns, nil
}

// listSlots bounds the listings the daemon makes at once: each reads the
// whole queue, and any local user may ask.
var listSlots = make(chan struct{}, 2)

// ServeList answers the daemon's "list" command from the local user
// peerUID, for a daemon running as daemonUID with configuration cfg (see
// "Listing through the daemon" above). warns are the queue files that
// could not be read, for the daemon's log: they may be other users'
// messages, so the caller is not told.
func ServeList(cfg *config.Config, peerUID, daemonUID int, args []string) (resp control.Response, warns []error) {
	everything := peerUID == 0 || peerUID == daemonUID
	if !everything && cfg.HasPrivacy("restrictmailq") {
		return control.Response{Error: NotPermitted, Status: mailerr.ExNoPerm}, nil
	}
	everything = everything || cfg.MailqAllUsers
	a, err := ParseListArgs(args)
	if err != nil {
		return control.Response{Error: err.Error(), Status: mailerr.ExUsage}, nil
	}
	opts, wantMSP, wantMTA, _ := a.plan()

	listSlots <- struct{}{}
	defer func() { <-listSlots }()
	msp, mta, warns, err := loadQueues(cfg.MaildropDir, cfg.QueueDir, wantMSP, wantMTA)
	if err != nil {
		return control.Response{Error: oneLine(err.Error()), Status: exitFor(err)}, warns
	}
	if !everything {
		for _, s := range []*Section{msp, mta} {
			if s != nil {
				s.Items = submittedBy(s.Items, peerUID)
			}
		}
	}
	var out strings.Builder
	if err := Print(&out, msp, mta, opts); err != nil {
		return control.Response{Error: "writing the listing: " + err.Error(), Status: mailerr.ExSoftware}, warns
	}
	return control.Response{OK: true, Output: out.String()}, warns
}

// submittedBy returns the items that uid submitted, reusing items' array.
func submittedBy(items []Item, uid int) []Item {
	out := items[:0]
	for i := range items {
		if items[i].UID == uid {
			out = append(out, items[i])
		}
	}
	return out
}

// askDaemon reports whether a listing that failed with err should be
// asked of the daemon instead: the caller is not root and was refused a
// queue directory. Root's listing never depends on the daemon, so it
// works while the daemon is down.
func askDaemon(err error) bool {
	var de *DirError
	// fs.ErrPermission is EACCES and EPERM.
	return geteuid() != 0 && errors.As(err, &de) && errors.Is(err, fs.ErrPermission)
}

// geteuid is os.Geteuid; the tests, run as root, stand in for a user.
var geteuid = os.Geteuid

// listRemote asks the daemon at socket for the listing a describes and
// copies its answer to out.
func listRemote(socket string, a ListArgs, out io.Writer) error {
	resp, err := control.Call(socket, control.Request{Cmd: CmdList, Args: a.Encode()}, listTimeout)
	switch {
	case errors.Is(err, control.ErrNoDaemon):
		// sendmail -q words a dead daemon the same way.
		return mailerr.New(mailerr.ExUnavailable, "the daemon is not running (%s); only root can list the queue without it", socket)
	case errors.Is(err, fs.ErrPermission):
		return mailerr.New(mailerr.ExNoPerm, "cannot list the queue: control socket %s: permission denied", socket)
	case err != nil:
		return mailerr.New(mailerr.ExTempFail, "cannot list the queue: %v", err)
	case !resp.OK:
		msg := oneLine(resp.Error)
		if msg == "" {
			msg = "refused without a reason"
		}
		if resp.Status == 0 && unsupported(msg) {
			// A daemon older than the list command.
			return mailerr.New(mailerr.ExUnavailable, "the daemon cannot list the queue (it says: %s)", msg)
		}
		status := resp.Status
		if status < mailerr.ExUsage || status > mailerr.ExConfig {
			status = mailerr.ExUnavailable
		}
		return mailerr.New(status, "%s", msg)
	}
	if _, err := io.WriteString(out, resp.Output); err != nil {
		return mailerr.New(mailerr.ExIOErr, "writing the listing: %v", err)
	}
	return nil
}
