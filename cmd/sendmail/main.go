// Command sendmail submits mail from local programs (PHP's mail(), cron,
// mailx, git) and understands sendmail 8's flags; see sendmail(8). Installed
// as mailq or newaliases it acts as those commands.
package main

import (
	"os"

	"github.com/gosendmail/gosendmail/pkg/aliases"
	"github.com/gosendmail/gosendmail/pkg/mailq"
	"github.com/gosendmail/gosendmail/pkg/sendmail"
)

func main() {
	os.Exit(sendmail.Main(os.Args, os.Stdin, os.Stdout, os.Stderr, sendmail.Hooks{
		Mailq:      mailq.Main,
		Newaliases: aliases.Main,
	}))
}
