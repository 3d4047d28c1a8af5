// Command smtpd is gosendmail's daemon; see smtpd(8). In this build it
// picks up mail that the sendmail command queued and answers the control
// socket; the SMTP listeners and delivery come with later work.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/gosendmail/gosendmail/pkg/config"
	"github.com/gosendmail/gosendmail/pkg/daemon"
	"github.com/gosendmail/gosendmail/pkg/mailerr"
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

This build picks up mail queued by sendmail into the queue and answers the
control socket (newaliases reload, mailq). The SMTP listeners, the queue
runner and delivery are not in this build yet.`,
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
	if err := root.Execute(); err != nil {
		fmt.Fprintf(os.Stderr, "smtpd: %v\n", err)
		if code == 0 {
			code = mailerr.ExUsage
		}
	}
	os.Exit(code)
}
