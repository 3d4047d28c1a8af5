package dkim

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/gosendmail/gosendmail/pkg/config"
	"github.com/gosendmail/gosendmail/pkg/dns"
	"github.com/gosendmail/gosendmail/pkg/mailerr"
)

// checkTimeout bounds each DNS attempt of `dkim check`, as the daemon's
// lookups are bounded.
const checkTimeout = 5 * time.Second

// Command builds the `dkim` command with its subcommands keygen and check.
// cfgPath returns the --config value given to the parent command (empty
// for the default). Errors returned carry a sysexits code (*mailerr.Error)
// for the caller's exit status.
func Command(cfgPath func() string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dkim",
		Short: "make DKIM keys and check that DNS publishes them",
		Long: `dkim makes DKIM signing keys and checks them against DNS.

Keys are used through the opendkim-format tables named by [dkim] key_table
and signing_table in the configuration; see "dkim keygen --help" for adding
a domain.`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			cmd.SetOut(cmd.ErrOrStderr())
			cmd.Help()
			return mailerr.New(mailerr.ExUsage, "dkim: say keygen or check")
		},
	}
	cmd.AddCommand(keygenCommand(), checkCommand(cfgPath))
	return cmd
}

func keygenCommand() *cobra.Command {
	var domain, selector, dir string
	var bits int
	var ed bool
	cmd := &cobra.Command{
		Use:   "keygen -d DOMAIN -s SELECTOR [-b BITS | --ed25519] [-D DIR]",
		Short: "make a key pair and its DNS record",
		Long: `keygen makes a DKIM key pair for SELECTOR._domainkey.DOMAIN, as
opendkim-genkey does. It writes DIR/SELECTOR.private (the private key, mode
0600) and DIR/SELECTOR.txt (the DNS record in zone-file form), and prints
the record as one string to paste into a DNS provider's form, with the
KeyTable and SigningTable lines that put the key to use.

RSA keys have 2048 bits unless -b says otherwise (1024 to 4096). --ed25519
makes an Ed25519 key (RFC 8463) instead; many receivers still verify only
RSA, so give a domain an Ed25519 key beside an RSA key, not instead of it.
Existing files are never overwritten.`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if domain == "" || selector == "" {
				return mailerr.New(mailerr.ExUsage, "dkim keygen: -d DOMAIN and -s SELECTOR are required")
			}
			if ed && cmd.Flags().Changed("bits") {
				return mailerr.New(mailerr.ExUsage, "dkim keygen: -b is for RSA keys; an Ed25519 key has no size to choose")
			}
			keyFile, txtFile, plain, err := Keygen(domain, selector, bits, ed, dir)
			if err != nil {
				return err
			}
			if abs, err := filepath.Abs(keyFile); err == nil {
				keyFile = abs
			}
			printKeygen(cmd.OutOrStdout(), domain, selector, keyFile, txtFile, plain)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&domain, "domain", "d", "", "the signing domain (d=)")
	f.StringVarP(&selector, "selector", "s", "", "the selector (s=); the record goes at SELECTOR._domainkey.DOMAIN")
	f.IntVarP(&bits, "bits", "b", DefaultBits, "RSA key size in bits (1024 to 4096)")
	f.BoolVar(&ed, "ed25519", false, "make an Ed25519 key (RFC 8463) instead of RSA")
	f.StringVarP(&dir, "directory", "D", ".", "where to write SELECTOR.private and SELECTOR.txt")
	return cmd
}

func printKeygen(w io.Writer, domain, selector, keyFile, txtFile, plain string) {
	name := selector + "._domainkey." + domain
	fmt.Fprintf(w, "private key:  %s (mode 0600; the daemon's user must be able to read it)\n", keyFile)
	fmt.Fprintf(w, "zone record:  %s\n", txtFile)
	fmt.Fprintf(w, "\nPublish this TXT record at %s:\n\n%s\n\n", name, plain)
	fmt.Fprintf(w, "KeyTable line:\n  %s  %s:%s:%s\n", name, domain, selector, keyFile)
	fmt.Fprintf(w, "SigningTable line (with refile:; add a line per key to sign with both rsa and ed25519):\n  *@%s  %s\n", domain, name)
	fmt.Fprintf(w, "\nThen run \"smtpd dkim check\" once the record is visible in DNS.\n")
}

func checkCommand(cfgPath func() string) *cobra.Command {
	return &cobra.Command{
		Use:   "check",
		Short: "check that DNS publishes each configured key",
		Long: `check loads the KeyTable and SigningTable named in the configuration,
asks DNS ([delivery] dns_server, else the system's resolver) for each key's
record at SELECTOR._domainkey.DOMAIN, and says per domain and selector
whether it is published, parses, and matches the private key. It exits 0
when every key is ok, 78 when something is wrong in the tables, the keys or
the published records, and 75 when DNS could not be asked.`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			path, named := config.Locate(cfgPath())
			cfg, err := config.Load(path, named)
			if err != nil {
				return mailerr.Wrap(mailerr.ExConfig, err, "dkim check")
			}
			if cfg.DKIM.KeyTable == "" && cfg.DKIM.SigningTable == "" {
				return mailerr.New(mailerr.ExConfig, "dkim check: %s sets no [dkim] key_table or signing_table: nothing is signed", path)
			}
			tables, errs := LoadTables(cfg.DKIM.KeyTable, cfg.DKIM.SigningTable)
			r := dns.New(cfg.Delivery.DNSServer, checkTimeout)
			return runCheck(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), r, tables, errs)
		},
	}
}

// runCheck prints the load problems and one line per checked key, and
// returns the error that gives the exit status.
func runCheck(ctx context.Context, out, errOut io.Writer, r Resolver, t *Tables, loadErrs []error) error {
	if ctx == nil {
		ctx = context.Background()
	}
	for _, err := range loadErrs {
		fmt.Fprintf(errOut, "%v\n", err)
	}
	results := Check(ctx, r, t)
	bad, temp := len(loadErrs), 0
	for _, res := range results {
		fmt.Fprintf(out, "%s %s: %s: %s\n", res.Domain, res.Selector, res.Status, res.Detail)
		switch {
		case res.Status == StatusOK:
		case res.Temporary:
			temp++
		default:
			bad++
		}
	}
	switch {
	case bad > 0:
		return mailerr.New(mailerr.ExConfig, "dkim check: %d problem(s) in %d key(s) checked", bad+temp, len(results))
	case temp > 0:
		return mailerr.New(mailerr.ExTempFail, "dkim check: DNS did not answer for %d of %d key(s); try again", temp, len(results))
	case len(results) == 0:
		return mailerr.New(mailerr.ExConfig, "dkim check: the KeyTable has no keys")
	}
	return nil
}
