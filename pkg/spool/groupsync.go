package spool

import (
	"sync"

	"github.com/gosendmail/gosendmail/pkg/safeio"
)

// dirSyncer makes directory fsyncs group commits: every caller that asks
// while one fsync runs is served by the next one, so twenty sessions that
// finish a message at the same moment cost one or two fsyncs of
// queue_dir, not twenty. A caller returns only after an fsync that
// started after its request, so its renames are on disk.
type dirSyncer struct {
	dir  string
	once sync.Once
	reqs chan chan error
}

func (s *dirSyncer) start() {
	s.reqs = make(chan chan error, 256)
	go func() {
		for first := range s.reqs {
			batch := []chan error{first}
		drain:
			for {
				select {
				case r := <-s.reqs:
					batch = append(batch, r)
				default:
					break drain
				}
			}
			err := safeio.SyncDir(s.dir)
			for _, r := range batch {
				r <- err
			}
		}
	}()
}

// sync returns once queue_dir has been fsync'd after the call began.
func (s *dirSyncer) sync() error {
	s.once.Do(s.start)
	done := make(chan error, 1)
	s.reqs <- done
	return <-done
}
