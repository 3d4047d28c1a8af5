package privlocal

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/gosendmail/gosendmail/pkg/aliases"
	"github.com/gosendmail/gosendmail/pkg/config"
	"github.com/gosendmail/gosendmail/pkg/mailerr"
	"github.com/gosendmail/gosendmail/pkg/maillog"
	"github.com/gosendmail/gosendmail/pkg/maps"
	"github.com/gosendmail/gosendmail/pkg/route"
	"github.com/gosendmail/gosendmail/pkg/transport/local"
)

// Main is the child (smtpd local-agent): it reads the configuration at
// cfgPath as Start's caller did, serves fd 3 and returns a sysexits code
// when the daemon closes it.
func Main(cfgPath string, named bool, stderr io.Writer) int {
	if os.Geteuid() != 0 {
		fmt.Fprintf(stderr, "smtpd local-agent: %v\n", ErrNotRoot)
		return mailerr.ExNoPerm
	}
	// The daemon's stop ends this process (it closes the socket).
	signal.Ignore(syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	f := os.NewFile(3, "privlocal")
	fc, err := net.FileConn(f)
	f.Close()
	uc, ok := fc.(*net.UnixConn)
	if err != nil || !ok {
		fmt.Fprintf(stderr, "smtpd local-agent: fd 3 is not the daemon's socket (it is started by smtpd)\n")
		return mailerr.ExUsage
	}
	cfg, err := config.Load(cfgPath, named)
	if err != nil {
		fmt.Fprintf(stderr, "smtpd local-agent: %v\n", err)
		return mailerr.ExConfig
	}
	log := maillog.Open(cfg.Log, "sm-mta", true)
	st := &state{path: cfgPath, named: named, log: log}
	st.use(cfg)
	Serve(uc, &Setup{
		Agent:       st.agent,
		Aliases:     func() *aliases.Map { return st.aliasesNow().Get() },
		Include:     route.ReadInclude,
		ProgramUser: st.programUser,
		Reload:      st.reload,
	})
	return 0
}

// state is the child's configuration, replaced on reload.
type state struct {
	path  string
	named bool
	log   *maillog.Logger

	mu      sync.Mutex
	cfg     *config.Config
	ag      *local.Agent
	aliases *maps.Watched[*aliases.Map]
}

func (s *state) use(cfg *config.Config) {
	opt := maps.WatchOptions{OnError: func(err error) { s.log.Warnf("", "local delivery agent: %v", err) }}
	w := aliases.Watch(cfg.Aliases, opt)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cfg = cfg
	s.ag = &local.Agent{SpoolDir: cfg.MailSpoolDir, Hostname: cfg.Hostname}
	s.aliases = w
}

func (s *state) reload() error {
	cfg, err := config.Load(s.path, s.named)
	if err != nil {
		return err
	}
	s.use(cfg)
	return nil
}

func (s *state) agent() *local.Agent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ag
}

func (s *state) aliasesNow() *maps.Watched[*aliases.Map] {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.aliases
}

func (s *state) programUser() string {
	s.mu.Lock()
	cfg := s.cfg
	s.mu.Unlock()
	return route.ProgramUser(cfg.Aliases, cfg.Delivery.DefaultUser)
}
