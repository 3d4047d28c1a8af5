//go:build !linux

package maps

import "io/fs"

// sysSig is empty where we do not read the system's stat: size and mtime
// alone tell versions apart.
type sysSig struct{}

func sysSigOf(fs.FileInfo) sysSig { return sysSig{} }
