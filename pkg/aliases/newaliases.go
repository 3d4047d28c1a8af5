package aliases

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"syscall"
	"time"

	"github.com/gosendmail/gosendmail/pkg/config"
	"github.com/gosendmail/gosendmail/pkg/control"
	"github.com/gosendmail/gosendmail/pkg/mailerr"
)

// Run is newaliases (and sendmail -bi): check the alias file named by the
// configuration at cfgPath ("" for the usual search), print sendmail's
// summary line, and ask a running daemon to reload it. There is no database
// to build: the daemon reads the text file itself. It returns the exit
// status:
//
//	0  the file is good (a daemon that is down, or that cannot be reached,
//	   reads it when it starts, so neither is a failure)
//	65 the file has bad lines; the daemon is not asked to reload, so the
//	   aliases in force stay the last good ones
//	72 the file does not exist (sendmail only prints a message, but a
//	   script running newaliases after an edit must learn it went wrong)
//	74 the file cannot be read, 77 permission denied
//	75 the daemon tried to reload and failed
//	78 the configuration is bad
func Run(cfgPath string, stdout, stderr io.Writer) int {
	path, named := config.Locate(cfgPath)
	cfg, err := config.Load(path, named)
	if err != nil {
		// config's errors are one line per problem, each naming file and line.
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintf(stderr, "newaliases: %s\n", line)
		}
		return mailerr.ExConfig
	}
	m, errs := Load(cfg.Aliases)
	status := mailerr.ExOK
	for _, err := range errs {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			fmt.Fprintf(stderr, "newaliases: cannot %s %s: %s\n", pe.Op, pe.Path, strerror(pe.Err))
			return fileStatus(pe.Err)
		}
		fmt.Fprintln(stderr, err)
		if !IsWarning(err) {
			status = mailerr.ExDataErr
		}
	}
	if status != mailerr.ExOK {
		return status
	}
	n, longest, total := m.Stats()
	fmt.Fprintf(stdout, "%s: %d aliases, longest %d bytes, %d bytes total\n", cfg.Aliases, n, longest, total)
	return askReload(cfg.ControlSocket, stderr)
}

func askReload(socket string, stderr io.Writer) int {
	if socket == "" {
		return mailerr.ExOK
	}
	resp, err := control.Call(socket, control.Request{Cmd: "reload", Args: []string{"aliases"}}, 5*time.Second)
	switch {
	case errors.Is(err, control.ErrNoDaemon):
		return mailerr.ExOK
	case err != nil:
		fmt.Fprintf(stderr, "newaliases: warning: cannot ask the daemon to reload the aliases: %v\n", err)
		return mailerr.ExOK
	case !resp.OK:
		fmt.Fprintf(stderr, "newaliases: the daemon did not reload the aliases: %s\n", resp.Error)
		return mailerr.ExTempFail
	}
	return mailerr.ExOK
}

// strerror words an errno as C's strerror does ("No such file or
// directory"), as sendmail's messages show it.
func strerror(err error) string {
	s := err.Error()
	var errno syscall.Errno
	if errors.As(err, &errno) && s != "" {
		return strings.ToUpper(s[:1]) + s[1:]
	}
	return s
}

func fileStatus(err error) int {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return mailerr.ExOSFile
	case errors.Is(err, fs.ErrPermission):
		return mailerr.ExNoPerm
	}
	return mailerr.ExIOErr
}
