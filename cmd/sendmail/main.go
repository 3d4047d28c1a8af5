// Command sendmail submits mail from local programs (PHP's mail(), cron,
// mailx, git) and understands sendmail 8's flags; see sendmail(8). Installed
// as mailq or newaliases it acts as those commands.
package main

import (
	"fmt"
	"io"
	"os"

	"github.com/gosendmail/gosendmail/pkg/aliases"
	"github.com/gosendmail/gosendmail/pkg/sendmail"
)

func main() {
	os.Exit(sendmail.Main(os.Args, os.Stdin, os.Stdout, os.Stderr, sendmail.Hooks{
		Mailq:      notYet("mailq"),
		Newaliases: aliases.Main,
	}))
}

func notYet(name string) func([]string, io.Writer, io.Writer) int {
	return func(_ []string, _, stderr io.Writer) int {
		fmt.Fprintf(stderr, "sendmail: %s is not available in this build yet\n", name)
		return 69
	}
}
