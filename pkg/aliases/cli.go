package aliases

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/gosendmail/gosendmail/pkg/mailerr"
)

// Main is the newaliases command line (also reached as sendmail -bi and
// through a link named newaliases); args exclude the program name.
func Main(args []string, stdout, stderr io.Writer) int {
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
			status = Run(cfgPath, stdout, stderr)
		},
	}
	cmd.SetArgs(args)
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	cmd.Flags().StringVar(&cfgPath, "config", "", "read the configuration from `FILE`")
	// sendmail's newaliases takes -v; the summary is always printed here.
	cmd.Flags().BoolP("verbose", "v", false, "accepted for sendmail compatibility; no effect")
	if err := cmd.Execute(); err != nil {
		fmt.Fprintf(stderr, "newaliases: %v\n", err)
		return mailerr.ExUsage
	}
	return status
}
