// Command mailq is part of gosendmail; see man/mailq.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "mailq: not built yet")
	os.Exit(69)
}
