// Command newaliases is part of gosendmail; see man/newaliases.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "newaliases: not built yet")
	os.Exit(69)
}
