// Command newaliases checks the alias file and makes a running smtpd reload
// it; see man/newaliases. The work is done by aliases.Run, which sendmail -bi
// shares.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/gosendmail/gosendmail/pkg/aliases"
	"github.com/gosendmail/gosendmail/pkg/mailerr"
)

func main() {
	var cfgPath string
	status := mailerr.ExOK
	cmd := &cobra.Command{
		Use:   "newaliases [--config FILE]",
		Short: "Check the alias file and make the running daemon reload it",
		Args:  cobra.NoArgs,
		// Errors are printed once, below, in the one-line form every
		// gosendmail binary uses.
		SilenceErrors: true,
		SilenceUsage:  true,
		Run: func(*cobra.Command, []string) {
			status = aliases.Run(cfgPath, os.Stdout, os.Stderr)
		},
	}
	cmd.Flags().StringVar(&cfgPath, "config", "", "read the configuration from `FILE`")
	// sendmail's newaliases takes -v; the summary is always printed here.
	cmd.Flags().BoolP("verbose", "v", false, "accepted for sendmail compatibility; no effect")
	if err := cmd.Execute(); err != nil {
		fmt.Fprintf(os.Stderr, "newaliases: %v\n", err)
		os.Exit(mailerr.ExUsage)
	}
	os.Exit(status)
}
