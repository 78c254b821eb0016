package testpg

import (
	"bufio"
	"context"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5"
)

// copyStream is one side's COPY TO STDOUT, read line by line while the
// server writes: a table is never held in memory.
type copyStream struct {
	r     *bufio.Reader
	pr    *io.PipeReader
	done  chan error
	err   error
	ended bool
}

func startCopy(ctx context.Context, conn *pgx.Conn, q string) *copyStream {
	pr, pw := io.Pipe()
	s := &copyStream{r: bufio.NewReaderSize(pr, 1<<16), pr: pr, done: make(chan error, 1)}
	go func() {
		_, err := conn.PgConn().CopyTo(ctx, pw, q)
		pw.CloseWithError(err) // nil: the reader sees io.EOF
		s.done <- err
	}()
	return s
}

// next returns the next line, with its newline; io.EOF at the end.
func (s *copyStream) next() ([]byte, error) {
	line, err := s.r.ReadBytes('\n')
	if err == io.EOF && len(line) > 0 {
		return nil, fmt.Errorf("COPY output ends inside a row")
	}
	return line, err
}

// wait drains what is left (so that the server's COPY can finish) and
// returns the COPY's error.
func (s *copyStream) wait() error {
	if !s.ended {
		io.Copy(io.Discard, s.pr)
		s.err = <-s.done
		s.ended = true
	}
	return s.err
}
