package redis

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/opendts/opendts/internal/engine"
)

// conn is a raw RESP connection: the replication stream and the applier
// need byte-level control (offsets, pipelined MULTI/EXEC) that go-redis
// does not give.
type conn struct {
	nc net.Conn
	r  *bufio.Reader
	w  *bufio.Writer
}

// RespError is an error reply of the server.
type RespError string

func (e RespError) Error() string { return string(e) }

// dial connects and authenticates: AUTH with the user when one is given,
// the default user otherwise. The password is never part of an error.
func dial(ctx context.Context, ep engine.Endpoint, timeout time.Duration) (*conn, error) {
	d := net.Dialer{Timeout: timeout}
	nc, err := d.DialContext(ctx, "tcp", ep.Address())
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", ep.Address(), err)
	}
	c := &conn{nc: nc, r: bufio.NewReaderSize(nc, 1<<20), w: bufio.NewWriterSize(nc, 1<<20)}
	if ep.Password != "" || ep.User != "" {
		args := []string{"AUTH", ep.Password}
		if ep.User != "" {
			args = []string{"AUTH", ep.User, ep.Password}
		}
		nc.SetDeadline(time.Now().Add(timeout))
		if _, err := c.do(args...); err != nil {
			nc.Close()
			var re RespError
			if errors.As(err, &re) {
				return nil, fmt.Errorf("authenticate to %s: %s", ep.Address(), re)
			}
			return nil, fmt.Errorf("authenticate to %s: %w", ep.Address(), err)
		}
		nc.SetDeadline(time.Time{})
	}
	return c, nil
}

func (c *conn) Close() error { return c.nc.Close() }

// writeCmd buffers one command.
func (c *conn) writeCmd(args ...string) {
	c.w.WriteByte('*')
	c.w.WriteString(strconv.Itoa(len(args)))
	c.w.WriteString("\r\n")
	for _, a := range args {
		c.writeBulk([]byte(a))
	}
}

// writeCmdBytes buffers one command of byte arguments.
func (c *conn) writeCmdBytes(args [][]byte) {
	c.w.WriteByte('*')
	c.w.WriteString(strconv.Itoa(len(args)))
	c.w.WriteString("\r\n")
	for _, a := range args {
		c.writeBulk(a)
	}
}

func (c *conn) writeBulk(a []byte) {
	c.w.WriteByte('$')
	c.w.WriteString(strconv.Itoa(len(a)))
	c.w.WriteString("\r\n")
	c.w.Write(a)
	c.w.WriteString("\r\n")
}

func (c *conn) flush() error { return c.w.Flush() }

// do sends one command and reads its reply.
func (c *conn) do(args ...string) (any, error) {
	c.writeCmd(args...)
	if err := c.flush(); err != nil {
		return nil, err
	}
	return c.reply()
}

// reply reads one reply: string, int64, []byte (bulk), nil, []any, or a
// RespError as the error.
func (c *conn) reply() (any, error) {
	line, err := c.line()
	if err != nil {
		return nil, err
	}
	if len(line) == 0 {
		return nil, errors.New("empty reply line")
	}
	switch line[0] {
	case '+':
		return string(line[1:]), nil
	case '-':
		return nil, RespError(line[1:])
	case ':':
		return strconv.ParseInt(string(line[1:]), 10, 64)
	case '$':
		n, err := strconv.Atoi(string(line[1:]))
		if err != nil {
			return nil, fmt.Errorf("bad bulk length %q", line)
		}
		if n < 0 {
			return nil, nil
		}
		b := make([]byte, n+2)
		if _, err := io.ReadFull(c.r, b); err != nil {
			return nil, err
		}
		return b[:n], nil
	case '*':
		n, err := strconv.Atoi(string(line[1:]))
		if err != nil {
			return nil, fmt.Errorf("bad array length %q", line)
		}
		if n < 0 {
			return nil, nil
		}
		out := make([]any, n)
		for i := range out {
			v, err := c.reply()
			var re RespError
			if errors.As(err, &re) {
				out[i] = re // an error inside an array (EXEC) is a value
				continue
			}
			if err != nil {
				return nil, err
			}
			out[i] = v
		}
		return out, nil
	}
	return nil, fmt.Errorf("unexpected reply %q", truncate(line, 40))
}

// line reads up to CRLF, without it.
func (c *conn) line() ([]byte, error) {
	b, err := c.r.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		return nil, errors.New("reply line too long")
	}
	if err != nil {
		return nil, err
	}
	if len(b) >= 2 && b[len(b)-2] == '\r' {
		return b[:len(b)-2], nil
	}
	return b[:len(b)-1], nil
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}
