package milter

import (
	"bufio"
	"io"
	"sync"
)

// Buffers are recycled between connections and messages: a filter in the
// path allocated several per message (a reader per connection, the body
// chunk, the line-ending conversion, the header reader), and the garbage
// collector's work for them was a good part of what a no-op filter cost
// the daemon.

// readerSize is the buffer of a pooled reader: a filter's answers and a
// message's header lines mostly fit; longer ones are read in pieces.
const readerSize = 4096

var readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readerSize) }}

// getReader returns a pooled reader reading r.
func getReader(r io.Reader) *bufio.Reader {
	br := readers.Get().(*bufio.Reader)
	br.Reset(r)
	return br
}

// putReader returns br to the pool; it must not be used again.
func putReader(br *bufio.Reader) {
	br.Reset(nil)
	readers.Put(br)
}

// Body chunk buffers come in two sizes: small for the usual message, and
// chunkSize for the rest.
const smallChunk = 8 << 10

var (
	smallChunks = sync.Pool{New: func() any { b := make([]byte, smallChunk); return &b }}
	largeChunks = sync.Pool{New: func() any { b := make([]byte, chunkSize); return &b }}
)

// getChunk returns a pooled buffer of at least n bytes (at most chunkSize).
func getChunk(n int) *[]byte {
	if n <= smallChunk {
		return smallChunks.Get().(*[]byte)
	}
	return largeChunks.Get().(*[]byte)
}

// putChunk returns a buffer from getChunk to its pool.
func putChunk(b *[]byte) {
	switch len(*b) {
	case smallChunk:
		smallChunks.Put(b)
	case chunkSize:
		largeChunks.Put(b)
	}
}
