// Package privsep holds the privilege hygiene of gosendmail's setgid and
// root-started programs: make fds 0-2 safe, trim the environment, set a
// umask, give up a set-group-ID privilege, look up users.
//
// The sendmail command is installed setgid to the drop group. Its caller
// controls argv, the environment, the umask, the current directory and
// which file descriptors are open, so it does these steps before anything
// else, and drops the group before anything the caller names can be read.
package privsep

import (
	"os"
	"os/user"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// SanitizeFDs makes sure descriptors 0, 1 and 2 are open, so that a file
// opened later (a drop file) can never land on stdout or stderr of a caller
// that closed them.
func SanitizeFDs() {
	for fd := 0; fd <= 2; fd++ {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil {
			continue
		}
		mode := os.O_RDWR
		f, err := os.OpenFile("/dev/null", mode, 0)
		if err != nil {
			os.Exit(71) // EX_OSERR: nothing sane can be done
		}
		if int(f.Fd()) != fd {
			unix.Dup2(int(f.Fd()), fd)
			f.Close()
		}
	}
}

// keepEnv lists the variables a submission may keep: time zone for the
// Date header, nothing that steers code.
var keepEnv = []string{"TZ"}

// TrimEnv clears the environment but for keepEnv and a fixed PATH. Values
// the program needs (GOSENDMAIL_CONFIG) must be read before.
func TrimEnv() {
	saved := map[string]string{}
	for _, k := range keepEnv {
		if v, ok := os.LookupEnv(k); ok {
			saved[k] = v
		}
	}
	os.Clearenv()
	for k, v := range saved {
		os.Setenv(k, v)
	}
	os.Setenv("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
}

// SetUmask sets a umask that keeps new files private.
func SetUmask() { unix.Umask(0o077) }

// IsSetgid reports whether the program runs with a group it was not
// started with (an installed setgid binary).
func IsSetgid() bool { return os.Getegid() != os.Getgid() }

// DropGroup gives up the set-group-ID privilege for good: real, effective
// and saved gid all become the real gid. Go applies it to every thread.
func DropGroup() error {
	if !IsSetgid() {
		return nil
	}
	gid := os.Getgid()
	if err := syscall.Setresgid(gid, gid, gid); err != nil {
		return err
	}
	if os.Getegid() != gid {
		return syscall.EPERM
	}
	return nil
}

// Caller describes the real user running the program.
type Caller struct {
	UID      int
	Name     string // login name, or the uid in decimal if unknown
	FullName string // GECOS name, "" if unknown
}

// CurrentCaller looks up the real uid (not the effective one).
func CurrentCaller() Caller {
	uid := os.Getuid()
	c := Caller{UID: uid, Name: strconv.Itoa(uid)}
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		c.Name = u.Username
		c.FullName = u.Name
	}
	return c
}

// UserName returns the login name of uid, or the number.
func UserName(uid int) string {
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		return u.Username
	}
	return strconv.Itoa(uid)
}
