package local

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosendmail/gosendmail/pkg/mailerr"
)

// maxOutput is how much of a command's output is kept for the bounce.
const maxOutput = 1024

// CommandError tells how a |command delivery failed. It is the cause
// (mailerr.Error.Err) of the error Deliver returns, found with errors.As;
// the bounce should quote Output.
type CommandError struct {
	Status   int            // exit status; -1 if the command did not exit
	Signal   syscall.Signal // the signal that ended it; 0 if none
	TimedOut bool           // killed by us after PipeTimeout
	Output   string         // the first KiB of its stdout and stderr
}

func (e *CommandError) Error() string {
	var s string
	switch {
	case e.TimedOut:
		s = "timed out"
	case e.Signal != 0:
		s = fmt.Sprintf("killed by signal %d (%v)", int(e.Signal), e.Signal)
	default:
		s = fmt.Sprintf("exit status %d", e.Status)
	}
	if out := oneLine(e.Output, 200); out != "" {
		s += ": " + out
	}
	return s
}

// oneLine squeezes program output into a single log-safe line.
func oneLine(s string, limit int) string {
	s = strings.Join(strings.Fields(clean(strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == '\t' {
			return ' '
		}
		return r
	}, s))), " ")
	if len(s) > limit {
		s = s[:limit] + "..."
	}
	return s
}

// sysexits maps a program's exit status to sendmail's reply for it (the
// SysExMsg table of sendmail 8). The 4xx ones are temporary.
var sysexits = map[int]struct {
	code     int
	enhanced string
	text     string
}{
	mailerr.ExUsage:       {500, "5.0.0", "Bad usage"},
	mailerr.ExDataErr:     {501, "5.6.0", "Data format error"},
	mailerr.ExNoInput:     {550, "5.3.0", "Cannot open input"},
	mailerr.ExNoUser:      {550, "5.1.1", "User unknown"},
	mailerr.ExNoHost:      {550, "5.1.2", "Host unknown"},
	mailerr.ExUnavailable: {554, "5.0.0", "Service unavailable"},
	mailerr.ExSoftware:    {554, "5.3.0", "Internal error"},
	mailerr.ExOSErr:       {451, "4.0.0", "Operating system error"},
	mailerr.ExOSFile:      {554, "5.3.5", "System file missing"},
	mailerr.ExCantCreat:   {550, "5.0.0", "Can't create output"},
	mailerr.ExIOErr:       {451, "4.0.0", "I/O error"},
	mailerr.ExTempFail:    {450, "4.0.0", "Deferred"},
	mailerr.ExProtocol:    {554, "5.5.0", "Remote protocol error"},
	mailerr.ExNoPerm:      {550, "5.0.0", "Insufficient permission"},
	mailerr.ExConfig:      {554, "5.3.5", "Local configuration error"},
}

// capture keeps the first maxOutput bytes written to it and swallows the
// rest, so a chatty program never blocks on a full pipe.
type capture struct{ buf []byte }

func (c *capture) Write(p []byte) (int, error) {
	if n := maxOutput - len(c.buf); n > 0 {
		c.buf = append(c.buf, p[:min(n, len(p))]...)
	}
	return len(p), nil
}

func (a *Agent) deliverPipe(ctx context.Context, req Request, acct *Account) error {
	command := req.Target.Command
	if strings.TrimSpace(command) == "" {
		return configError("Empty command for %s", clean(req.Recipient))
	}
	if err := a.checkRunAs("command", acct); err != nil {
		return err
	}
	var cred *syscall.Credential
	switch {
	case isRoot():
		// Only the account's own group: root's supplementary groups must
		// not follow the command, and the account's others are not needed
		// (Postfix does the same).
		cred = &syscall.Credential{Uid: uint32(acct.UID), Gid: uint32(acct.GID), Groups: []uint32{uint32(acct.GID)}}
	case acct.UID != os.Geteuid():
		return configError("Cannot run a command as uid %d: not running as root", acct.UID)
	}

	timeout := orDefault(a.PipeTimeout, defaultPipeTimeout)
	runCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	markCloseOnExec()

	// HOME as working directory, as sendmail's prog mailer (D=$z:/); if
	// the account cannot enter it (chdir runs after setuid), "/".
	dirs := []string{"/"}
	if acct.Home != "" && filepath.IsAbs(acct.Home) && acct.Home != "/" {
		dirs = []string{acct.Home, "/"}
	}
	env := pipeEnv(&req, acct)
	for i, dir := range dirs {
		out := &capture{}
		cmd := exec.CommandContext(runCtx, "/bin/sh", "-c", command)
		cmd.Env = env
		cmd.Dir = dir
		cmd.Stdout, cmd.Stderr = out, out
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: cred}
		// On timeout kill the process group, not just the shell: a
		// pipeline or a background child would keep running otherwise.
		cmd.Cancel = func() error {
			err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			if errors.Is(err, syscall.ESRCH) {
				// Gone already: a command that just exited 0 has
				// delivered, and exec reports that when told so.
				return os.ErrProcessDone
			}
			return err
		}
		// A grandchild that escaped the group may hold stdout open; do not
		// wait for it for ever once the command itself is gone.
		cmd.WaitDelay = 5 * time.Second
		stdin, err := cmd.StdinPipe()
		if err != nil {
			return withCause(mailerr.SMTP(451, "4.3.0", "Cannot run command"), err)
		}
		if err := cmd.Start(); err != nil {
			stdin.Close()
			if i < len(dirs)-1 {
				continue
			}
			return withCause(mailerr.SMTP(451, "4.3.0", "Cannot run command"), err)
		}
		fed := make(chan struct{})
		go func() {
			defer close(fed)
			// A command may exit without reading its input; the EPIPE
			// that follows is not a failure, its exit status decides.
			writeMessage(bufio.NewWriterSize(stdin, 64<<10), &req, false, time.Time{})
			stdin.Close()
		}()
		err = cmd.Wait()
		<-fed
		return commandResult(ctx, runCtx, err, string(out.buf), timeout)
	}
	return nil // not reached: the last directory returns
}

// commandResult turns the outcome of cmd.Wait into Deliver's answer.
func commandResult(ctx, runCtx context.Context, err error, output string, timeout time.Duration) error {
	if err == nil || errors.Is(err, exec.ErrWaitDelay) {
		// ErrWaitDelay: the command exited 0 and only a leftover child
		// still held its output open.
		return nil
	}
	if ctx.Err() != nil {
		return interrupted(ctx.Err())
	}
	ce := &CommandError{Status: -1, Output: output}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return withCause(mailerr.SMTP(451, "4.3.0", "Cannot run command"), err)
	}
	ws, _ := ee.Sys().(syscall.WaitStatus)
	switch {
	case runCtx.Err() != nil:
		ce.TimedOut = true
		if ws.Signaled() {
			ce.Signal = ws.Signal()
		}
		return withCause(mailerr.SMTP(451, "4.3.0", "Command timed out after %v", timeout), ce)
	case ws.Signaled():
		ce.Signal = ws.Signal()
		return withCause(mailerr.SMTP(451, "4.3.0", "Command died with signal %d", int(ce.Signal)), ce)
	}
	ce.Status = ws.ExitStatus()
	if x, ok := sysexits[ce.Status]; ok {
		e := mailerr.SMTP(x.code, x.enhanced, "%s", x.text)
		e.Exit = ce.Status
		return withCause(e, ce)
	}
	return withCause(mailerr.SMTP(554, "5.3.0", "unknown mailer error %d", ce.Status), ce)
}

// pipeEnv is the whole environment of a command (see the package doc).
func pipeEnv(req *Request, acct *Account) []string {
	local, domain := req.Recipient, ""
	if i := strings.LastIndexByte(local, '@'); i >= 0 {
		local, domain = local[:i], local[i+1:]
	}
	home := acct.Home
	if home == "" {
		home = "/"
	}
	env := []string{
		"PATH=/usr/bin:/bin",
		"HOME=" + clean(home),
		"USER=" + clean(req.User),
		"LOGNAME=" + clean(req.User),
		"SHELL=/bin/sh",
		"SENDER=" + clean(req.Sender),
		"RECIPIENT=" + clean(req.Recipient),
		"LOCAL=" + clean(local),
		"DOMAIN=" + clean(domain),
	}
	if i := strings.IndexByte(local, '+'); i >= 0 {
		env = append(env, "EXTENSION="+clean(local[i+1:]))
	}
	if req.OriginalRecipient != "" {
		env = append(env, "ORIGINAL_RECIPIENT="+clean(req.OriginalRecipient))
	}
	return env
}

// markCloseOnExec sets close-on-exec on every descriptor above 2. Go opens
// all of its files so, but a library or cgo code may not have, and such a
// descriptor (a mailbox, a queue file, a listening socket) would leak into
// every command run for the aliases (sendmail CVE-2014-3956). The flag
// changes nothing for this process itself.
func markCloseOnExec() {
	for _, dir := range []string{"/proc/self/fd", "/dev/fd"} {
		ents, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range ents {
			if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
				unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC)
			}
		}
		return
	}
}
