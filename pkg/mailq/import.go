package mailq

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gosendmail/gosendmail/pkg/control"
	"github.com/gosendmail/gosendmail/pkg/envelope"
	"github.com/gosendmail/gosendmail/pkg/mailerr"
	"github.com/gosendmail/gosendmail/pkg/maillog"
	"github.com/gosendmail/gosendmail/pkg/privsep"
	"github.com/gosendmail/gosendmail/pkg/safeio"
	"github.com/gosendmail/gosendmail/pkg/sendmailq"
	"github.com/gosendmail/gosendmail/pkg/spool"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

const importHelp = `Take the messages that sendmail 8 left in its queue (qf and df files, the
qf format of sendmail 8.10 to 8.18: versions V4 to V8) into gosendmail's
queue (queue_dir), so that switching MTAs loses no mail in flight.

DIR is a sendmail queue directory, usually /var/spool/mqueue (and
/var/spool/mqueue-client for mail sendmail's MSP had not passed on). Its
layouts are all read: qfID and dfID side by side, the qf/, df/ and xf/
subdirectories, and queue group directories one level down (q1, q2, ...).
Besides qf files, mailq takes hf files (quarantined by sendmail: held
here, see "mailq release") and Qf files (set aside as unreadable by
sendmail, or by gosendmail when it met a sendmail file in queue_dir).

Each message keeps its queue ID when queue_dir does not hold it already,
and gets a new one otherwise (always when DIR is queue_dir). Its header
is rebuilt from the qf as sendmail would send it on by SMTP (conditional
fields such as Return-Path: and Full-Name: are left out, Bcc: too when
sendmail would drop it), followed by the df with CRLF line ends.
Recipients, DSN parameters (NOTIFY, ORCPT, ENVID, RET), arrival time,
attempts, last status and the delay warning flag carry over; the daemon
tries the messages as soon as it sees them. Only once a message is
durably in queue_dir are sendmail's files renamed in place to
imported.qfID and imported.dfID, which neither sendmail nor a second
import touches again; remove them when satisfied.

A file that cannot be read, does not parse, has no df, or has recipients
that are programs or files (|prog, /file, :include:, \user: only
aliases may make those) is listed on stderr with the reason and left in
place. A file locked by a running sendmail is left too: stop sendmail
first. Each import prints "SENDMAILID -> ID (N recipients)" and is
logged.

When queue_dir is sendmail's directory, import before the daemon starts
or mailq lists the queue: they take sendmail's qf files for corrupt ones
of their own and set them aside as Qf files (which import still takes),
and the daemon removes, when it starts, df files over an hour old that
have no qf.

Only root may import (or a user who may read and write both DIR and
queue_dir).

Exit status:
  0   every message found was imported (or there was none)
  65  some files could not be read or imported (listed; left in place)
  69  DIR is not there
  75  some files were locked or could not be queued now (listed; left
      in place): run again; or a message was queued but sendmail's
      files could not be renamed (said so: rename them by hand)
  77  permission denied
When several apply: 65, then 77, 69, 75.`

func (c *cli) importCommand() *cobra.Command {
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "import DIR... [--dry-run]",
		Short: "Take the messages of sendmail 8's queue into gosendmail's",
		Long:  importHelp,
		Args:  cobra.MinimumNArgs(1),
		RunE: func(_ *cobra.Command, dirs []string) error {
			if err := checkImportAccess(dirs, c.cfg.QueueDir, dryRun); err != nil {
				return err
			}
			im := &Importer{
				Queue:    spool.Open(c.cfg.QueueDir),
				Hostname: c.cfg.Hostname,
				DryRun:   dryRun,
				By:       whoAmI(),
				Prog:     prog,
				Out:      c.stdout,
				Err:      c.stderr,
			}
			if !dryRun {
				im.Log = maillog.Open(c.cfg.Log, "sendmail", false)
			}
			code := im.Run(dirs)
			if len(im.Imported) > 0 {
				c.kickDaemon(im.Imported)
			}
			return statusErr(code)
		},
	}
	cmd.Flags().BoolVarP(&dryRun, "dry-run", "n", false, "read and check everything, change nothing")
	return cmd
}

// checkImportAccess refuses a caller who is not root and cannot read and
// write the directories involved.
func checkImportAccess(dirs []string, queueDir string, dryRun bool) error {
	if os.Geteuid() == 0 {
		return nil
	}
	check := func(dir string, mode uint32) error {
		err := unix.Access(dir, mode)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, unix.ENOENT):
			return mailerr.New(mailerr.ExUnavailable, "import: %s: no such directory", dir)
		}
		return mailerr.New(mailerr.ExNoPerm, "import: only root may import a sendmail queue (%s: %v)", dir, err)
	}
	mode := uint32(unix.R_OK | unix.X_OK)
	if !dryRun {
		mode |= unix.W_OK
	}
	for _, d := range dirs {
		if err := check(d, mode); err != nil {
			return err
		}
	}
	if dryRun {
		return nil
	}
	return check(queueDir, unix.R_OK|unix.W_OK|unix.X_OK)
}

// kickDaemon asks a running daemon to try the imported messages now. The
// queue runner finds them on its next scan anyway, so no daemon is no
// error.
func (c *cli) kickDaemon(ids []string) {
	resp, err := control.Call(c.cfg.ControlSocket, control.Request{Cmd: "flush", Args: ids}, 10*time.Second)
	switch {
	case errors.Is(err, control.ErrNoDaemon):
	case err != nil:
		c.warn(fmt.Errorf("import: could not ask the daemon to deliver the imported messages now: %v", err))
	case !resp.OK && !unsupported(resp.Error):
		c.warn(fmt.Errorf("import: the daemon did not schedule the imported messages: %s", resp.Error))
	}
}

// Importer moves messages from a sendmail 8 queue into a gosendmail
// queue; see importHelp for what it does and the exit statuses.
type Importer struct {
	Queue    *spool.Queue
	Hostname string // qualifies an unqualified envelope sender
	Log      *maillog.Logger
	DryRun   bool
	By       string // who asks, for the log
	Prog     string
	Out, Err io.Writer

	// Imported lists the queue IDs of the messages Run queued.
	Imported []string

	owner *fileOwner // create queue files as this user (root importing for the daemon's user)
}

type fileOwner struct{ uid, gid int }

// importRank orders exit statuses: the worst wins.
func importRank(code int) int {
	switch code {
	case 0:
		return 0
	case mailerr.ExDataErr:
		return 5
	case mailerr.ExNoPerm:
		return 4
	case mailerr.ExUnavailable:
		return 3
	case mailerr.ExTempFail:
		return 2
	}
	return 1
}

// Run imports every sendmail queue file found in dirs and returns the
// exit status.
func (im *Importer) Run(dirs []string) int {
	code := 0
	note := func(c int) {
		if importRank(c) > importRank(code) {
			code = c
		}
	}
	if !im.DryRun && os.Geteuid() == 0 {
		if fi, err := os.Stat(im.Queue.Dir); err == nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != 0 {
				im.owner = &fileOwner{int(st.Uid), int(st.Gid)}
			}
		}
	}
	for _, dir := range dirs {
		if abs, err := filepath.Abs(dir); err == nil {
			dir = abs // the log names the files
		}
		ents, err := sendmailq.Scan(dir)
		if err != nil {
			c := mailerr.ExUnavailable
			if errors.Is(err, fs.ErrPermission) {
				c = mailerr.ExNoPerm
			}
			fmt.Fprintf(im.Err, "%s: import: %s\n", im.Prog, oneLine(err.Error()))
			note(c)
			continue
		}
		n := 0
		for i := range ents {
			done, err := im.importOne(&ents[i])
			if err != nil {
				fmt.Fprintf(im.Err, "%s: %s\n", im.Prog, oneLine(err.Error()))
				if im.Log != nil {
					im.Log.Warnf(ents[i].ID, "import of sendmail queue file: %s", oneLine(err.Error()))
				}
				note(mailerr.ExitCode(err))
			}
			if done || err != nil {
				n++
			}
		}
		if n == 0 {
			fmt.Fprintf(im.Err, "%s: import: no sendmail queue files in %s\n", im.Prog, dir)
		}
	}
	return code
}

// leftErr is a file left in place, with its exit status.
func leftErr(code int, path, format string, args ...any) error {
	return mailerr.New(code, "%s: %s; left in place", path, fmt.Sprintf(format, args...))
}

// fileErr turns a failure to open or read a sendmail file into leftErr.
func fileErr(path string, err error) error {
	err = unwrapPath(err)
	code := mailerr.ExDataErr
	if errors.Is(err, fs.ErrPermission) {
		code = mailerr.ExNoPerm
	}
	return leftErr(code, path, "cannot read: %v", err)
}

// importOne imports one control file. done is false for a file that is
// not sendmail's (gosendmail's own, when DIR is queue_dir) or that went
// away meanwhile (delivered by sendmail).
func (im *Importer) importOne(e *sendmailq.Entry) (done bool, err error) {
	flag := os.O_RDWR
	if im.DryRun {
		flag = os.O_RDONLY
	}
	qfFile, err := os.OpenFile(e.Path, flag|unix.O_NOFOLLOW, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return true, fileErr(e.Path, err)
	}
	defer qfFile.Close() // and with it the locks
	var st unix.Stat_t
	if err := unix.Fstat(int(qfFile.Fd()), &st); err != nil {
		return true, fileErr(e.Path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return true, leftErr(mailerr.ExDataErr, e.Path, "not a regular file")
	}
	if err := lockQf(qfFile, !im.DryRun); err != nil {
		if errors.Is(err, errBusy) {
			return true, leftErr(mailerr.ExTempFail, e.Path, "locked by a running sendmail (stop it first), try again later")
		}
		return true, leftErr(mailerr.ExTempFail, e.Path, "cannot lock: %v", err)
	}
	// sendmail removes a qf once it has delivered the message, under the
	// lock this may have waited for.
	var now unix.Stat_t
	if err := unix.Stat(e.Path, &now); err != nil || now.Ino != st.Ino || now.Dev != st.Dev {
		return false, nil
	}
	data, err := io.ReadAll(io.LimitReader(qfFile, sendmailq.MaxQfSize+1))
	if err != nil {
		return true, fileErr(e.Path, err)
	}
	if bytes.HasPrefix(data, []byte(spool.Version+"\n")) {
		return false, nil // gosendmail's own file: DIR is queue_dir
	}
	qf, err := sendmailq.Parse(e.ID, data)
	if err != nil {
		return true, leftErr(mailerr.ExDataErr, e.Path, "%v", err)
	}
	env, err := im.envelope(e, qf, &st)
	if err != nil {
		return true, leftErr(mailerr.ExDataErr, e.Path, "%v", err)
	}
	dfPath, dfFile, err := openData(e, qf)
	if err != nil {
		return true, err
	}
	defer dfFile.Close()

	if im.DryRun {
		fmt.Fprintf(im.Out, "%s -> (dry run) (%s)\n", e.ID, plural(len(env.Rcpts), "recipient"))
		return true, nil
	}
	id, already := im.alreadyQueued(e.ID, env)
	if !already {
		body := spool.Mark8Bit(qf.Message(dfFile, sendmailq.SMTPMailerFlags), env)
		if spool.ValidID(e.ID) {
			env.ID = e.ID // kept unless queue_dir has it
		}
		if err := im.create(env, body); err != nil {
			return true, leftErr(exitForWrite(err), e.Path, "cannot queue in %s: %v", im.Queue.Dir, unwrapPath(err))
		}
		id = env.ID
	}
	im.Imported = append(im.Imported, id)
	if err := setAside(e, dfPath); err != nil {
		return true, mailerr.New(mailerr.ExTempFail,
			"%s: imported as %s, but %v; rename or remove sendmail's files by hand, or a second import or sendmail will deliver the message again", e.Path, id, err)
	}
	note := ""
	if already {
		note = ", already queued"
	}
	fmt.Fprintf(im.Out, "%s -> %s (%s%s)\n", e.ID, id, plural(len(env.Rcpts), "recipient"), note)
	if im.Log != nil {
		im.Log.Printf(id, "imported by %s from sendmail queue file %s (sendmail ID %s): from=%s, size=%d, nrcpts=%d",
			im.By, e.Path, e.ID, displaySender(env.Sender), im.Queue.Size(id), len(env.Rcpts))
	}
	return true, nil
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}

func displaySender(s string) string {
	if s == "" {
		return "<>"
	}
	return "<" + s + ">"
}

func exitForWrite(err error) int {
	if errors.Is(err, fs.ErrPermission) {
		return mailerr.ExNoPerm
	}
	return mailerr.ExTempFail
}

var errBusy = errors.New("locked")

// lockQf takes the locks sendmail takes on a qf it works on: flock, and
// an fcntl lock for sendmail built to use those, both without waiting.
// held keeps them until the file is closed, so that a sendmail started
// meanwhile leaves the file alone; otherwise (dry run, file opened
// read-only) they are only tested.
func lockQf(f *os.File, held bool) error {
	fd := int(f.Fd())
	if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		if errors.Is(err, unix.EWOULDBLOCK) {
			return errBusy
		}
		return err
	}
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: io.SeekStart}
	if held {
		if err := unix.FcntlFlock(uintptr(fd), unix.F_SETLK, &lk); err != nil {
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES) {
				return errBusy
			}
			return err
		}
		return nil
	}
	if err := unix.FcntlFlock(uintptr(fd), unix.F_GETLK, &lk); err != nil {
		return err
	}
	if lk.Type != unix.F_UNLCK {
		return errBusy
	}
	return nil
}

// openData opens the message's df, wherever the layout puts it.
func openData(e *sendmailq.Entry, qf *sendmailq.File) (string, *os.File, error) {
	paths, err := e.DataPaths(qf)
	if err != nil {
		return "", nil, leftErr(mailerr.ExDataErr, e.Path, "%v", err)
	}
	for _, p := range paths {
		f, err := os.OpenFile(p, os.O_RDONLY|unix.O_NOFOLLOW, 0)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", nil, fileErr(p, err)
		}
		fi, err := f.Stat()
		if err != nil || !fi.Mode().IsRegular() {
			f.Close()
			return "", nil, leftErr(mailerr.ExDataErr, e.Path, "%s is not a regular file", p)
		}
		return p, f, nil
	}
	return "", nil, leftErr(mailerr.ExDataErr, e.Path, "no data file df%s in %s", e.ID, strings.Join(dirsOf(paths), " or "))
}

// dirsOf lists the directories of paths that exist (all if none does).
func dirsOf(paths []string) []string {
	var out, all []string
	seen := map[string]bool{}
	for _, p := range paths {
		d := filepath.Dir(p)
		if seen[d] {
			continue
		}
		seen[d] = true
		all = append(all, d)
		if fi, err := os.Stat(d); err == nil && fi.IsDir() {
			out = append(out, d)
		}
	}
	if len(out) == 0 {
		return all
	}
	return out
}

// alreadyQueued reports whether queue_dir holds this very message under
// its sendmail ID: imported by an earlier run that stopped before it
// could set sendmail's files aside.
func (im *Importer) alreadyQueued(id string, env *spool.Envelope) (string, bool) {
	if !spool.ValidID(id) {
		return "", false
	}
	f, err := os.OpenFile(im.Queue.EnvelopePath(id), os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return "", false
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, spool.MaxQfSize+1))
	if err != nil {
		return "", false
	}
	have, err := spool.Unmarshal(id, data)
	if err != nil || !have.Created.Equal(env.Created) || have.Sender != env.Sender || len(have.Rcpts) != len(env.Rcpts) {
		return "", false
	}
	for i := range have.Rcpts {
		if have.Rcpts[i].Addr != env.Rcpts[i].Addr {
			return "", false
		}
	}
	return id, true
}

// create queues the message, as the owner of queue_dir when root imports
// for a daemon that runs as another user: the daemon must be able to
// read, rewrite and remove the files.
func (im *Importer) create(env *spool.Envelope, body io.Reader) error {
	if im.owner == nil {
		return im.Queue.Create(env, body)
	}
	return asOwner(im.owner.uid, im.owner.gid, func() error { return im.Queue.Create(env, body) })
}

// asOwner runs fn with the file system identity of uid and gid (Linux
// setfsuid: this thread only, so the thread is locked for the while).
func asOwner(uid, gid int, fn func() error) error {
	runtime.LockOSThread()
	oldGID, _ := unix.SetfsgidRetGid(gid)
	oldUID, _ := unix.SetfsuidRetUid(uid)
	restore := func() bool {
		unix.SetfsuidRetUid(oldUID)
		unix.SetfsgidRetGid(oldGID)
		u, _ := unix.SetfsuidRetUid(-1)
		g, _ := unix.SetfsgidRetGid(-1)
		return u == oldUID && g == oldGID
	}
	u, _ := unix.SetfsuidRetUid(-1)
	g, _ := unix.SetfsgidRetGid(-1)
	if u != uid || g != gid {
		if restore() {
			runtime.UnlockOSThread()
		}
		return fmt.Errorf("cannot take the identity of uid %d, gid %d to write the queue files", uid, gid)
	}
	err := fn()
	if restore() {
		runtime.UnlockOSThread()
	} // else the thread stays with this goroutine, and dies with it
	return err
}

// setAside renames sendmail's files in place to imported.<name>, qf (the
// one sendmail looks for) first, and makes the renames durable.
func setAside(e *sendmailq.Entry, dfPath string) error {
	dirs := map[string]bool{}
	for _, p := range []string{e.Path, dfPath} {
		dir, name := filepath.Split(p)
		if err := os.Rename(p, filepath.Join(dir, "imported."+name)); err != nil {
			return fmt.Errorf("cannot rename %s: %v", p, unwrapPath(err))
		}
		dirs[filepath.Clean(dir)] = true
	}
	for d := range dirs {
		if err := safeio.SyncDir(d); err != nil {
			return fmt.Errorf("cannot sync %s: %v", d, err)
		}
	}
	return nil
}

// envelope builds the queue envelope of a sendmail message, checking
// every address.
func (im *Importer) envelope(e *sendmailq.Entry, qf *sendmailq.File, st *unix.Stat_t) (*spool.Envelope, error) {
	env := &spool.Envelope{
		Created:     qf.Created,
		LastAttempt: qf.LastAttempt,
		Attempts:    qf.Attempts,
		Priority:    max(qf.Priority, 0),
		UID:         -1,
		Status:      qf.Status,
		Ret:         qf.Ret(),
		EnvID:       xtextDecode(qf.EnvID),
		Client:      clientOf(qf),
	}
	switch qf.BodyType {
	case "", "7BIT", "8BITMIME":
		env.BodyType = qf.BodyType
	default:
		return nil, fmt.Errorf("body type %s: gosendmail relays 7BIT and 8BITMIME only", qf.BodyType)
	}
	if env.BodyType == "" && qf.HasFlag('8') {
		env.BodyType = "8BITMIME"
	}
	if qf.WarningSent() {
		env.SetFlag('w')
	}
	sender, err := importSender(qf, im.Hostname)
	if err != nil {
		return nil, err
	}
	env.Sender = sender
	if qf.IsResponse() {
		// A DSN sendmail generated: one of ours, for the double-bounce rule.
		env.SetFlag('b')
	}
	switch {
	case qf.Quarantine != "":
		env.Hold = qf.Quarantine
	case e.Kind == sendmailq.Quarantined:
		env.Hold = "quarantined by sendmail"
	}
	for i := range qf.Rcpts {
		r := &qf.Rcpts[i]
		addr, err := importRcpt(r.Addr)
		if errors.Is(err, errNotMailbox) {
			return nil, fmt.Errorf("recipient %q: %w; deliver it with sendmail (sendmail -qI%s) before switching", strings.TrimSpace(r.Addr), err, e.ID)
		}
		if err != nil {
			return nil, err
		}
		env.Rcpts = append(env.Rcpts, spool.Recipient{Addr: addr, State: spool.Pending, Notify: r.Notify(), ORcpt: importORcpt(r.ORcpt)})
	}
	// Mail of sendmail's MSP queue belongs to the user who submitted
	// it, who owns its files (as for a drop file, the owner, never
	// the content, says who that is).
	if st.Uid != 0 {
		if fi, err := os.Stat(e.QueueDir); err == nil {
			if dst, ok := fi.Sys().(*syscall.Stat_t); ok && dst.Uid != st.Uid {
				env.UID = int(st.Uid)
				env.User = privsep.UserName(env.UID)
			}
		}
	}
	return env, nil
}

// importSender is the envelope sender of a sendmail message: "" (the null
// sender) for sendmail's own reports (F flag r: sendmail sends them with
// MAIL FROM:<> whatever S holds, MAILER-DAEMON as a rule) and for <>.
func importSender(qf *sendmailq.File, hostname string) (string, error) {
	s := strings.TrimSpace(qf.Sender)
	if qf.IsResponse() || s == "" || s == "<>" {
		return "", nil
	}
	list := envelope.ParseList(s)
	if len(list) != 1 {
		return "", fmt.Errorf("sender %q is not one address", s)
	}
	a, err := envelope.ParseSender(list[0].Addr)
	if err != nil {
		return "", fmt.Errorf("sender: %v", err)
	}
	if a == "" {
		return "", nil
	}
	return envelope.Qualify(a, hostname), nil
}

// errNotMailbox is importRcpt's refusal of a program, file or include.
var errNotMailbox = errors.New("a program, a file or a mailbox that sendmail's aliases or a .forward made")

// importRcpt is a recipient address as gosendmail's envelope holds it.
// Programs, files, include lists and \user (a mailbox past the aliases)
// are what sendmail's alias and .forward expansion made; no queue file
// may make them, so they are refused (and the file left for sendmail).
func importRcpt(addr string) (string, error) {
	s := strings.TrimSpace(addr)
	inner := strings.Trim(strings.TrimSuffix(strings.TrimPrefix(s, "<"), ">"), "\"")
	if strings.HasPrefix(inner, "|") || strings.HasPrefix(inner, "/") || strings.HasPrefix(inner, "\\") ||
		strings.HasPrefix(strings.ToLower(inner), ":include:") {
		return "", errNotMailbox
	}
	list := envelope.ParseList(s)
	if len(list) != 1 {
		return "", fmt.Errorf("recipient %q is not one address", s)
	}
	a, err := envelope.CheckMailbox(list[0].Addr)
	if err != nil {
		return "", fmt.Errorf("recipient: %v", err)
	}
	return a, nil
}

// importORcpt is a DSN ORCPT as gosendmail holds it: "type;address" with
// the address decoded from xtext (as go-smtp hands it over).
func importORcpt(v string) string {
	typ, addr, ok := strings.Cut(v, ";")
	if !ok {
		return v
	}
	return strings.TrimSpace(typ) + ";" + xtextDecode(strings.TrimSpace(addr))
}

// xtextDecode undoes RFC 3461 xtext ("+2B" for '+'); a malformed value is
// kept as it is.
func xtextDecode(s string) string {
	if !strings.Contains(s, "+") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '+' {
			b.WriteByte(s[i])
			continue
		}
		if i+2 >= len(s) {
			return s
		}
		v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
		if err != nil {
			return s
		}
		b.WriteByte(byte(v))
		i += 2
	}
	return b.String()
}

// clientOf is the SMTP client "host [ip]" of a message that came by
// SMTP, from the macros sendmail keeps in the qf.
func clientOf(qf *sendmailq.File) string {
	clean := func(s string) string {
		if strings.IndexFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f || r >= 0x80 }) >= 0 {
			return ""
		}
		return strings.TrimSpace(s)
	}
	if addr := clean(qf.Macros["client_addr"]); addr != "" {
		name := clean(qf.Macros["client_name"])
		if name == "" {
			name = clean(qf.Macros["s"])
		}
		if name == "" {
			name = "[" + addr + "]"
		}
		return name + " [" + addr + "]"
	}
	if r := strings.ToUpper(qf.Macros["r"]); strings.Contains(r, "SMTP") {
		if v := clean(qf.Macros["_"]); strings.Contains(v, "[") {
			return v
		}
	}
	return ""
}
