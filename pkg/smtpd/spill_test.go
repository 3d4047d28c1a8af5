package smtpd

import (
	"bytes"
	"io"
	"testing"
	"testing/iotest"
)

// A message for the filters is held whole: in memory up to spillMax,
// beyond in a temporary file, whatever the sizes the reader hands out.
func TestSpill(t *testing.T) {
	for _, size := range []int{0, 1, spillStart - 1, spillStart, spillStart + 1, 3 * spillStart, spillMax, spillMax + 1, 3 * spillMax} {
		msg := bytes.Repeat([]byte("0123456789abcdef\r\n"), size/18+1)[:size]
		for _, r := range []io.Reader{bytes.NewReader(msg), iotest.OneByteReader(bytes.NewReader(msg)), iotest.HalfReader(bytes.NewReader(msg))} {
			sp := &spill{}
			n, err := io.Copy(sp, r)
			if err != nil || n != int64(size) {
				t.Fatalf("size %d: copied %d, %v", size, n, err)
			}
			if (sp.f != nil) != (size > spillMax) {
				t.Errorf("size %d: in a file: %v", size, sp.f != nil)
			}
			got, err := io.ReadAll(io.NewSectionReader(sp.readerAt(), 0, n))
			if err != nil || !bytes.Equal(got, msg) {
				t.Errorf("size %d: read back %d bytes (%v), not the message", size, len(got), err)
			}
			sp.close()
		}
	}
}

// A reader's error ends the copy with it.
func TestSpillReadError(t *testing.T) {
	sp := &spill{}
	defer sp.close()
	if _, err := io.Copy(sp, iotest.TimeoutReader(bytes.NewReader(make([]byte, 10)))); err != iotest.ErrTimeout {
		t.Errorf("err %v, want %v", err, iotest.ErrTimeout)
	}
}
