//go:build crashtest

package safeio

import (
	"os"
	"strconv"
	"sync"
	"syscall"
)

var crash struct {
	sync.Mutex
	n, at int
}

func init() {
	crash.at, _ = strconv.Atoi(os.Getenv("GOSENDMAIL_CRASH_AT"))
}

// crashPoint kills the process at the Nth step when GOSENDMAIL_CRASH_AT=N.
func crashPoint(step string) {
	crash.Lock()
	defer crash.Unlock()
	crash.n++
	if crash.at > 0 && crash.n == crash.at {
		os.Stderr.WriteString("crashtest: killed at step " + strconv.Itoa(crash.n) + " (" + step + ")\n")
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	}
}
