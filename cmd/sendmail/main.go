// Command sendmail is part of gosendmail; see man/sendmail.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "sendmail: not built yet")
	os.Exit(69)
}
