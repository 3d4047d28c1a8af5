// Command smtpd is gosendmail's daemon (see smtpd(8)); its subcommands
// print the effective configuration and manage DKIM keys.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/gosendmail/gosendmail/pkg/config"
	"github.com/gosendmail/gosendmail/pkg/daemon"
	"github.com/gosendmail/gosendmail/pkg/dkim"
	"github.com/gosendmail/gosendmail/pkg/mailerr"
	"github.com/gosendmail/gosendmail/pkg/privlocal"
	"github.com/gosendmail/gosendmail/pkg/version"
	toml "github.com/pelletier/go-toml/v2"
	"github.com/spf13/cobra"
)

func main() {
	var cfgFlag string
	code := 0
	root := &cobra.Command{
		Use:   "smtpd",
		Short: "gosendmail daemon (foreground)",
		Long: `smtpd runs gosendmail's daemon in the foreground (systemd runs it so).

It runs the SMTP listeners, picks up mail queued by sendmail, runs the
queue (local and remote delivery, DKIM signing of mail that leaves,
retries and bounces) and answers the control socket (mailq, newaliases,
sendmail -q).`,
		Version:       version.Version,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			path, named := config.Locate(cfgFlag)
			code = daemon.Run(context.Background(), path, named, os.Stderr)
			return nil
		},
	}
	root.PersistentFlags().StringVar(&cfgFlag, "config", "", "configuration file (default $GOSENDMAIL_CONFIG or "+config.DefaultPath+")")
	root.AddCommand(&cobra.Command{
		Use:    "local-agent",
		Short:  "the privileged local delivery part (started by the daemon, not by hand)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			path, named := config.Locate(cfgFlag)
			code = privlocal.Main(path, named, os.Stderr)
			return nil
		},
	})
	root.AddCommand(&cobra.Command{
		Use:   "config",
		Short: "print the effective configuration, defaults filled in",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			path, named := config.Locate(cfgFlag)
			cfg, err := config.Load(path, named)
			if err != nil {
				code = mailerr.ExConfig
				return err
			}
			b, err := toml.Marshal(cfg)
			if err != nil {
				return err
			}
			fmt.Fprintf(os.Stdout, "# effective configuration from %s\n%s", path, b)
			return nil
		},
	})
	root.AddCommand(dkim.Command(func() string { return cfgFlag }))
	root.AddCommand(doctorCommand(&cfgFlag, &code))
	root.AddCommand(importMCCommand(&cfgFlag, &code))
	if err := root.Execute(); err != nil {
		fmt.Fprintf(os.Stderr, "smtpd: %v\n", err)
		var me *mailerr.Error
		if code == 0 && errors.As(err, &me) && me.Exit != 0 {
			code = me.Exit
		}
		if code == 0 {
			code = mailerr.ExUsage
		}
	}
	os.Exit(code)
}
