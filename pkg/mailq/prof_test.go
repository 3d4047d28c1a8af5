package mailq

import (
	"io"
	"testing"
)

func BenchmarkProfList(b *testing.B) {
	for i := 0; i < b.N; i++ {
		items, _, err := LoadMTA("/tmp/mq/spool/mqueue")
		if err != nil {
			b.Fatal(err)
		}
		Print(io.Discard, nil, &Section{Dir: "/x", Items: items}, Options{})
	}
}
