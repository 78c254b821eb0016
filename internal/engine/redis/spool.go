package redis

import (
	"io"
	"os"
	"sync"
)

// spool is the RDB on its way: the replication link writes it to a local
// file as fast as the source sends it (so the source's fork and output
// buffer are released soon), while the restore reads the same file behind
// the writer, so that parsing and writing to the target overlap the
// transfer.
type spool struct {
	f    *os.File
	mu   sync.Mutex
	cond *sync.Cond
	size int64
	done bool
	err  error
}

func newSpool(f *os.File) *spool {
	s := &spool{f: f}
	s.cond = sync.NewCond(&s.mu)
	return s
}

// Write appends to the file; it is the receiver's side.
func (s *spool) Write(p []byte) (int, error) {
	n, err := s.f.Write(p)
	s.mu.Lock()
	s.size += int64(n)
	s.cond.Broadcast()
	s.mu.Unlock()
	return n, err
}

// finish marks the end of the transfer, with its error.
func (s *spool) finish(err error) {
	s.mu.Lock()
	s.done, s.err = true, err
	s.cond.Broadcast()
	s.mu.Unlock()
}

// reader reads the file from the start, waiting for the writer where it
// catches up, until the transfer ended.
func (s *spool) reader() io.Reader { return &spoolReader{s: s} }

type spoolReader struct {
	s   *spool
	off int64
}

func (r *spoolReader) Read(p []byte) (int, error) {
	s := r.s
	s.mu.Lock()
	for r.off >= s.size && !s.done {
		s.cond.Wait()
	}
	size, done, err := s.size, s.done, s.err
	s.mu.Unlock()
	if r.off >= size {
		if done && err != nil {
			return 0, err
		}
		return 0, io.EOF
	}
	n, rerr := s.f.ReadAt(p[:min(int64(len(p)), size-r.off)], r.off)
	r.off += int64(n)
	if rerr == io.EOF && n > 0 {
		rerr = nil
	}
	return n, rerr
}
