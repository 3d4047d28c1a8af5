// Command mailq lists and manages the mail queues; see pkg/mailq and
// man/mailq.
package main

import (
	"os"

	"github.com/gosendmail/gosendmail/pkg/mailq"
)

func main() {
	os.Exit(mailq.Main(os.Args[1:], os.Stdout, os.Stderr))
}
