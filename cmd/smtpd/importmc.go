package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/gosendmail/gosendmail/pkg/importmc"
	"github.com/gosendmail/gosendmail/pkg/mailerr"
	"github.com/gosendmail/gosendmail/pkg/safeio"
	"github.com/spf13/cobra"
)

// importMCCommand is `smtpd import-mc`: pkg/importmc's translation of a
// sendmail.mc into gosendmail.toml. It sets *code to the exit status: 0
// translated (untranslated items are listed, not failures), 65 the input
// has syntax errors (the output is still written) or is no sendmail.mc,
// 66 the input cannot be read, 73 -o cannot be written. --config is not
// used: the subcommand reads no configuration.
func importMCCommand(cfgFlag *string, code *int) *cobra.Command {
	_ = cfgFlag
	var out, dkimConf string
	cmd := &cobra.Command{
		Use:   "import-mc SENDMAIL.MC [-o FILE] [--opendkim-conf PATH]",
		Short: "translate a sendmail.mc into gosendmail.toml",
		Long: `import-mc reads a sendmail.mc (e.g. /etc/mail/sendmail.mc) and writes the
equivalent gosendmail.toml to standard output, or to FILE with -o (replaced
atomically). Each key in it says which sendmail.mc line it comes from.

Standard error lists, with file and line, everything that was not
translated and why, notes where gosendmail behaves differently, and what
must be done by hand (such as creating DKIM tables).

The .mc is not run through m4: import-mc reads the m4 that .mc files are
written in (quotes, dnl, comments, define, divert) and does not read the
files it includes. It translates DAEMON_OPTIONS, confDOMAIN_NAME,
confPRIVACY_FLAGS, confMAX_MESSAGE_SIZE, confTO_QUEUEWARN,
confTO_QUEUERETURN, SMART_HOST (with RELAY_MAILER_ARGS' port),
ClientPortOptions Family=, FEATURE(use_cw_file, use_ct_file, virtusertable,
mailertable, access_db, greet_pause) and INPUT_MAIL_FILTER /
confINPUT_MAIL_FILTERS ([[milter]]). An opendkim filter is replaced by
gosendmail's own signing ([dkim]) from the KeyTable and SigningTable of
opendkim.conf (--opendkim-conf); if that file cannot be read, the filter
is kept as a [[milter]].

Exit status: 0 when translated, even with items not translated; 65 when the
input has syntax errors (what parsed is still written) or is not a
sendmail.mc; 66 when it cannot be read; 73 when -o FILE cannot be written.`,
		Args:          cobra.ExactArgs(1),
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			src, err := os.ReadFile(args[0])
			if err != nil {
				*code = mailerr.ExNoInput
				return fmt.Errorf("import-mc: %w", err)
			}
			res, err := importmc.Convert(src, importmc.Options{Source: args[0], OpenDKIMConf: dkimConf, Now: time.Now()})
			if err != nil {
				*code = mailerr.ExSoftware
				if errors.Is(err, importmc.ErrNotMC) {
					*code = mailerr.ExDataErr
				}
				return fmt.Errorf("import-mc: %w", err)
			}
			stderr := cmd.ErrOrStderr()
			for _, it := range res.Items {
				fmt.Fprintln(stderr, it)
			}
			write := func(w io.Writer) error { _, err := w.Write(res.TOML); return err }
			dest := "standard output"
			if out == "" || out == "-" {
				if err := write(cmd.OutOrStdout()); err != nil {
					*code = mailerr.ExIOErr
					return fmt.Errorf("import-mc: %w", err)
				}
			} else {
				dest = out
				tmp := filepath.Join(filepath.Dir(out), "."+filepath.Base(out)+".import-mc."+strconv.Itoa(os.Getpid()))
				if err := safeio.WriteFile(tmp, out, 0o644, write); err != nil {
					*code = mailerr.ExCantCreat
					return fmt.Errorf("import-mc: cannot write %s: %w", out, err)
				}
			}
			fmt.Fprintf(stderr, "import-mc: the translation of %s is on %s: %d not translated, %d notes, %d actions needed, %d errors\n",
				args[0], dest, res.Count(importmc.NotTranslated), res.Count(importmc.Note), res.Count(importmc.Action), res.Count(importmc.Error))
			if res.Count(importmc.Error) > 0 {
				*code = mailerr.ExDataErr
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&out, "output", "o", "", "write the configuration to `FILE` (atomically) instead of standard output")
	f.StringVar(&dkimConf, "opendkim-conf", "/etc/opendkim.conf", "opendkim.conf to read for an opendkim milter (`PATH`; \"\" reads none and keeps the milter)")
	return cmd
}
