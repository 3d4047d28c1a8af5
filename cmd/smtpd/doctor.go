package main

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/gosendmail/gosendmail/pkg/config"
	"github.com/gosendmail/gosendmail/pkg/doctor"
	"github.com/gosendmail/gosendmail/pkg/mailerr"
	"github.com/spf13/cobra"
)

// doctorCommand is `smtpd doctor`: pkg/doctor's checks of what receivers
// see in DNS. It sets *code to the exit status: 0 nothing failed, 1 a
// check failed, 69 DNS unreachable, 78 a configuration it cannot load,
// 64 a bad --addr.
func doctorCommand(cfgFlag *string, code *int) *cobra.Command {
	var jsonOut bool
	var addrs []string
	cmd := &cobra.Command{
		Use:   "doctor [--json] [--addr IP]...",
		Short: "check the DNS records receivers look at: A/AAAA, PTR, MX, SPF, DKIM, DMARC",
		Long: `doctor asks DNS ([delivery] dns_server, else the system's resolver) what
receiving mail servers will find about this host and its domains, and
prints one line per finding: OK, WARN or FAIL, what was found and, unless
OK, what to do.

For hostname and each local domain (local_host_names, the virtusertable's
domains) and signing domain ([dkim] tables) it checks: hostname's A/AAAA
records; that each of this host's outbound addresses has exactly one PTR,
which resolves back to it and equals the EHLO name (hostname); that the MX
records of local domains lead to this host; that each domain, hostname and
the MX host name publish one SPF record that parses and authorizes the
outbound addresses; that each DKIM selector is published and matches its
key (as "dkim check" does); that each domain has a DMARC record that
parses (p=none warns); and whether mail may leave over IPv6
([delivery] client_family) from an address without a matching PTR.

This host's addresses are those given with --addr, else the public
addresses of the interfaces, else (behind NAT) hostname's A/AAAA records.

Exit status: 0 when nothing failed (warnings allowed), 1 when a check
failed, 69 when the DNS server could not be reached, 78 when the
configuration cannot be loaded.`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			var ips []netip.Addr
			for _, a := range addrs {
				ip, err := netip.ParseAddr(strings.Trim(a, "[]"))
				if err != nil {
					*code = mailerr.ExUsage
					return fmt.Errorf("doctor: --addr %q is not an IP address", a)
				}
				ips = append(ips, ip.Unmap())
			}
			path, named := config.Locate(*cfgFlag)
			cfg, err := config.Load(path, named)
			if err != nil {
				*code = mailerr.ExConfig
				return err
			}
			rep := doctor.Run(cmd.Context(), cfg, doctor.Options{Addrs: ips})
			if jsonOut {
				err = rep.WriteJSON(cmd.OutOrStdout())
			} else {
				err = rep.WriteText(cmd.OutOrStdout())
			}
			if err != nil {
				*code = mailerr.ExIOErr
				return err
			}
			*code = rep.ExitCode()
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&jsonOut, "json", false, `print a JSON array of {"check", "subject", "status", "detail", "advice"} objects`)
	f.StringArrayVar(&addrs, "addr", nil, "an address of this host to check (repeatable); default: the interfaces' public addresses")
	return cmd
}
