// Command newaliases checks the alias file and makes a running smtpd reload
// it; see newaliases(8). The work is done by aliases.Main, which
// sendmail -bi shares.
package main

import (
	"os"

	"github.com/gosendmail/gosendmail/pkg/aliases"
)

func main() {
	os.Exit(aliases.Main(os.Args[1:], os.Stdout, os.Stderr))
}
