// Command smtpd is part of gosendmail; see man/smtpd.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "smtpd: not built yet")
	os.Exit(69)
}
