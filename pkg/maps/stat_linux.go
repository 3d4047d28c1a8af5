package maps

import (
	"io/fs"
	"syscall"
)

// sysSig adds what a rename or a same-second, same-size edit changes:
// the inode (a new file was renamed into place) and the ctime, which
// touch -r or cp -p cannot set back.
type sysSig struct {
	dev, ino uint64
	ctime    int64
}

func sysSigOf(fi fs.FileInfo) sysSig {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return sysSig{}
	}
	return sysSig{dev: uint64(st.Dev), ino: st.Ino, ctime: st.Ctim.Nano()}
}
