package smtpd

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"golang.org/x/crypto/bcrypt"
)

// Authenticator checks SMTP AUTH credentials.
type Authenticator interface {
	Check(user, pass string) bool
}

// UsersFile is the [auth] users_file: one "user:bcrypt-hash" per line,
// '#' comments and blank lines allowed. The hash is what
// `htpasswd -nbB user pass` or `mkpasswd -m bcrypt` print ($2y$, $2b$,
// $2a$). The file is read again when it changes; a file with a bad line
// keeps the previous version.
type UsersFile struct {
	Path string
	Warn func(error)

	mu    sync.Mutex
	mod   time.Time
	size  int64
	users map[string][]byte
}

// ParseUsers reads the users file format.
func ParseUsers(name string, data []byte) (map[string][]byte, error) {
	users := map[string][]byte{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		user, hash, ok := strings.Cut(line, ":")
		if !ok || user == "" || strings.ContainsAny(user, " \t") {
			return nil, fmt.Errorf("%s: line %d: want user:bcrypt-hash", name, n)
		}
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			return nil, fmt.Errorf("%s: line %d: user %s: not a bcrypt hash", name, n, user)
		}
		users[user] = []byte(hash)
	}
	return users, sc.Err()
}

func (u *UsersFile) load() map[string][]byte {
	u.mu.Lock()
	defer u.mu.Unlock()
	fi, err := os.Stat(u.Path)
	if err != nil {
		if u.users == nil && u.Warn != nil {
			u.Warn(err)
		}
		return u.users
	}
	if u.users != nil && fi.ModTime().Equal(u.mod) && fi.Size() == u.size {
		return u.users
	}
	data, err := os.ReadFile(u.Path)
	if err == nil {
		var users map[string][]byte
		users, err = ParseUsers(u.Path, data)
		if err == nil {
			u.users, u.mod, u.size = users, fi.ModTime(), fi.Size()
			return u.users
		}
	}
	if u.Warn != nil {
		u.Warn(err)
	}
	return u.users
}

// Check compares a password with the stored hash. Unknown users cost a
// hash comparison too, so timing does not tell which users exist.
func (u *UsersFile) Check(user, pass string) bool {
	users := u.load()
	hash, ok := users[user]
	if !ok {
		bcrypt.CompareHashAndPassword(dummyHash(), []byte(pass))
		return false
	}
	return bcrypt.CompareHashAndPassword(hash, []byte(pass)) == nil
}

var dummyHash = sync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte("x"), bcrypt.DefaultCost)
	return h
})

// AuthMechanisms lists PLAIN and LOGIN when the listener has AUTH; go-smtp
// offers them only over TLS.
func (s *Session) AuthMechanisms() []string {
	if s.b.Auth == nil || s.b.Listener.Auth == "none" {
		return nil
	}
	return []string{sasl.Plain, sasl.Login}
}

var errAuthFailed = &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "Authentication credentials invalid"}

// Auth runs one AUTH exchange.
func (s *Session) Auth(mech string) (sasl.Server, error) {
	if s.b.Auth == nil {
		return nil, smtp.ErrAuthUnsupported
	}
	check := func(user, pass string) error {
		if s.b.Auth.Check(user, pass) {
			s.user = user
			s.b.Log.Printf("", "AUTH=server, relay=%s, authid=%s, mech=%s, bits=0", s.relay, user, mech)
			return nil
		}
		s.authFailed(mech, user)
		return errAuthFailed
	}
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(identity, user, pass string) error {
			if identity != "" && identity != user {
				s.authFailed(mech, user)
				return errAuthFailed
			}
			return check(user, pass)
		}), nil
	case sasl.Login:
		return &loginServer{check: check}, nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

// authFailed logs in the shape fail2ban's sendmail-auth filter reads.
func (s *Session) authFailed(mech, user string) {
	s.b.Log.Printf("", "AUTH failure (%s): authentication failure (-13) SASL(-13): authentication failure: checkpass failed, user=%s, relay=%s", mech, sanitizeHelo(user), s.relay)
	s.bad++
	if max := s.b.Config().Limits.MaxBadCommands; max > 0 && s.bad >= max {
		s.b.Log.Printf("", "%s: possible SMTP attack: command=AUTH, count=%d", s.relay, s.bad)
		if s.conn != nil {
			s.conn.hangup()
		}
	}
}

// loginServer is the server side of the LOGIN mechanism
// (draft-murchison-sasl-login): "Username:", then "Password:".
type loginServer struct {
	check func(user, pass string) error
	user  string
	step  int
}

func (l *loginServer) Next(resp []byte) ([]byte, bool, error) {
	switch l.step {
	case 0:
		l.step++
		if len(resp) > 0 { // initial response carries the user name
			l.user = string(resp)
			l.step++
			return []byte("Password:"), false, nil
		}
		return []byte("Username:"), false, nil
	case 1:
		l.user = string(resp)
		l.step++
		return []byte("Password:"), false, nil
	case 2:
		l.step++
		return nil, true, l.check(l.user, string(resp))
	}
	return nil, true, errors.New("unexpected response")
}
