package route

import (
	"os"
	"os/user"
	"strconv"
	"syscall"

	"github.com/gosendmail/gosendmail/pkg/aliases"
	"github.com/gosendmail/gosendmail/pkg/config"
	"github.com/gosendmail/gosendmail/pkg/maps"
)

// Load reads the tables named by the configuration once, for callers
// that route a few addresses and exit (sendmail -bv). The daemon builds
// its Tables from maps it keeps current instead. Problems with the files
// are returned; what could be read is used.
func Load(cfg *config.Config) (*Tables, []error) {
	var errs []error
	am, aerrs := aliases.Load(cfg.Aliases)
	for _, e := range aerrs {
		if !aliases.IsWarning(e) {
			errs = append(errs, e)
		}
	}
	// A nil *aliases.Map is an empty one (a missing alias file).
	local, err := maps.ReadClass(cfg.LocalHostNames)
	if err != nil {
		errs = append(errs, err)
	}
	vt, err := maps.LoadVirtusertable(cfg.Virtusertable)
	if err != nil {
		errs = append(errs, err)
	}
	mt, err := maps.LoadMailertable(cfg.Mailertable)
	if err != nil {
		errs = append(errs, err)
	}
	return &Tables{
		Hostname:    cfg.Hostname,
		LocalDomain: func(d string) bool { return maps.DomainIn(local, d, false) },
		Virtual:     vt.Lookup,
		Aliases:     func() *aliases.Map { return am },
		Include:     ReadInclude,
		UserExists:  UserExists,
		ProgramUser: ProgramUser(cfg.Aliases, cfg.Delivery.DefaultUser),
		Mailertable: mt.Lookup,
		SmartHost:   cfg.Delivery.SmartHost,
	}, errs
}

// UserExists looks a name up in the passwd database.
func UserExists(name string) bool {
	_, err := user.Lookup(name)
	return err == nil
}

// ReadInclude reads an :include: file.
func ReadInclude(path string) ([]aliases.Target, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	targets, errs := aliases.ParseInclude(path, f)
	if len(errs) > 0 {
		return targets, errs[0]
	}
	return targets, nil
}

// ProgramUser is who runs |program and /file targets of the alias file:
// its owner, unless that is root; then the configured default user.
func ProgramUser(aliasFile, defaultUser string) string {
	if fi, err := os.Stat(aliasFile); err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != 0 {
			if u, err := user.LookupId(strconv.Itoa(int(st.Uid))); err == nil {
				return u.Username
			}
		}
	}
	return defaultUser
}
