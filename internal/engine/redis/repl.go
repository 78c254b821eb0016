package redis

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/opendts/opendts/internal/engine"
)

// replica is opendts's side of a replication link: it is what a Redis
// replica is to its master, minus the data set. Offsets are the master's
// replication offsets: offset is that of the last byte processed, so the
// next PSYNC asks for offset+1, as a Redis replica does.
type replica struct {
	c      *conn
	replid string
	offset int64
	// wmu serialises writes (REPLCONF ACK from a ticker and in answer to
	// GETACK) on the connection.
	wmu sync.Mutex
	// timeout bounds a silent master: it pings every 10 s by default.
	timeout time.Duration
}

// errBacklogLost says a partial resync was refused: the master's backlog
// no longer holds the offset asked for, or its history changed.
var errBacklogLost = errors.New("the source's replication backlog no longer holds the position opendts reached")

// openReplica handshakes and asks for replid/offset+1 (a partial resync),
// or for everything when replid is "". full reports a full resync: the RDB
// follows and must be read with receiveRDB.
func openReplica(ctx context.Context, ep engine.Endpoint, timeout time.Duration, replid string, offset int64) (r *replica, full bool, err error) {
	c, err := dial(ctx, ep, timeout)
	if err != nil {
		return nil, false, err
	}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	c.nc.SetDeadline(time.Now().Add(timeout))
	// capa eof: we read a diskless RDB; capa psync2: a failover keeps the
	// history under the new master's id.
	if _, err := c.do("REPLCONF", "capa", "eof", "capa", "psync2"); err != nil {
		return nil, false, fmt.Errorf("REPLCONF on the source %s: %w", ep.Address(), err)
	}
	args := []string{"PSYNC", "?", "-1"}
	if replid != "" {
		args = []string{"PSYNC", replid, strconv.FormatInt(offset+1, 10)}
	}
	c.writeCmd(args...)
	if err := c.flush(); err != nil {
		return nil, false, err
	}
	var line []byte
	for {
		// The master may send newlines while it prepares.
		if line, err = c.line(); err != nil {
			return nil, false, fmt.Errorf("PSYNC on the source %s: %w", ep.Address(), err)
		}
		if len(line) > 0 {
			break
		}
	}
	r = &replica{c: c, timeout: timeout}
	s := string(line)
	switch {
	case strings.HasPrefix(s, "+FULLRESYNC "):
		f := strings.Fields(s)
		if len(f) != 3 {
			return nil, false, fmt.Errorf("PSYNC: unexpected reply %q", s)
		}
		r.replid = f[1]
		if r.offset, err = strconv.ParseInt(f[2], 10, 64); err != nil {
			return nil, false, fmt.Errorf("PSYNC: unexpected reply %q", s)
		}
		if replid != "" {
			r.c.Close()
			return nil, true, errBacklogLost
		}
		return r, true, nil
	case strings.HasPrefix(s, "+CONTINUE"):
		r.replid, r.offset = replid, offset
		if f := strings.Fields(s); len(f) == 2 {
			r.replid = f[1] // after a failover: same history, new id
		}
		c.nc.SetDeadline(time.Time{})
		return r, false, nil
	case strings.HasPrefix(s, "-"):
		return nil, false, fmt.Errorf("the source %s refused PSYNC: %s", ep.Address(), s[1:])
	}
	return nil, false, fmt.Errorf("PSYNC: unexpected reply %q", truncate(line, 60))
}

// receiveRDB copies the RDB of a full resync into w: disk-based ($len) or
// diskless ($EOF:<mark>, ended by the mark). It returns its size.
func (r *replica) receiveRDB(w io.Writer) (int64, error) {
	c := r.c
	var line []byte
	var err error
	for {
		c.nc.SetReadDeadline(time.Now().Add(r.timeout))
		if line, err = c.line(); err != nil {
			return 0, fmt.Errorf("waiting for the source's RDB: %w", err)
		}
		if len(line) > 0 {
			break
		}
	}
	if line[0] != '$' {
		return 0, fmt.Errorf("expected the RDB, got %q", truncate(line, 60))
	}
	if bytes.HasPrefix(line, []byte("$EOF:")) {
		return r.receiveDiskless(w, bytes.Clone(line[5:]))
	}
	n, err := strconv.ParseInt(string(line[1:]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("bad RDB length %q", line)
	}
	var done int64
	for done < n {
		c.nc.SetReadDeadline(time.Now().Add(r.timeout))
		k, err := io.CopyN(w, c.r, min(n-done, 1<<20))
		done += k
		if err != nil {
			return done, fmt.Errorf("receiving the RDB (%d of %d bytes): %w", done, n, err)
		}
	}
	return n, nil
}

func (r *replica) receiveDiskless(w io.Writer, mark []byte) (int64, error) {
	if len(mark) != 40 {
		return 0, errors.New("bad diskless RDB marker")
	}
	buf := make([]byte, 1<<20)
	var tail []byte
	var total int64
	for {
		r.c.nc.SetReadDeadline(time.Now().Add(r.timeout))
		n, err := r.c.r.Read(buf)
		if n > 0 {
			data := append(tail, buf[:n]...)
			if i := bytes.Index(data, mark); i >= 0 {
				if _, err := w.Write(data[:i]); err != nil {
					return total, err
				}
				total += int64(i)
				if rest := data[i+40:]; len(rest) > 0 {
					// The command stream began in the same read.
					r.c.r = bufio.NewReaderSize(io.MultiReader(bytes.NewReader(bytes.Clone(rest)), r.c.r), 1<<20)
				}
				return total, nil
			}
			keep := max(0, len(data)-40)
			if _, err := w.Write(data[:keep]); err != nil {
				return total, err
			}
			total += int64(keep)
			tail = bytes.Clone(data[keep:])
		}
		if err != nil {
			return total, fmt.Errorf("receiving the RDB: %w", err)
		}
	}
}

// ack tells the master the offset processed.
func (r *replica) ack(offset int64) error {
	r.wmu.Lock()
	defer r.wmu.Unlock()
	r.c.nc.SetWriteDeadline(time.Now().Add(r.timeout))
	r.c.writeCmd("REPLCONF", "ACK", strconv.FormatInt(offset, 10))
	return r.c.flush()
}

// command is one command of the stream, with the offset of its last byte.
type command struct {
	args   [][]byte
	offset int64
	// at is when it was read, for the lag.
	at time.Time
}

// next reads one command of the stream; idle bounds the wait, after
// which it returns errIdle with nothing consumed.
func (r *replica) next(idle time.Duration) (command, error) {
	c := r.c
	if c.r.Buffered() == 0 {
		c.nc.SetReadDeadline(time.Now().Add(idle))
		if _, err := c.r.Peek(1); err != nil {
			if isTimeout(err) {
				return command{}, errIdle
			}
			return command{}, err
		}
	}
	c.nc.SetReadDeadline(time.Now().Add(r.timeout))
	line, err := c.r.ReadSlice('\n')
	if err != nil {
		return command{}, fmt.Errorf("reading the source's stream: %w", err)
	}
	used := int64(len(line))
	if len(line) < 4 || line[0] != '*' {
		return command{}, fmt.Errorf("unexpected data in the source's stream: %q", truncate(line, 40))
	}
	n, err := strconv.Atoi(string(bytes.TrimRight(line[1:], "\r\n")))
	if err != nil || n < 1 {
		return command{}, fmt.Errorf("bad command in the source's stream: %q", truncate(line, 40))
	}
	args := make([][]byte, n)
	for i := range args {
		l, err := c.r.ReadSlice('\n')
		if err != nil {
			return command{}, fmt.Errorf("reading the source's stream: %w", err)
		}
		used += int64(len(l))
		if len(l) < 4 || l[0] != '$' {
			return command{}, fmt.Errorf("unexpected data in the source's stream: %q", truncate(l, 40))
		}
		size, err := strconv.Atoi(string(bytes.TrimRight(l[1:], "\r\n")))
		if err != nil || size < 0 {
			return command{}, fmt.Errorf("bad argument length in the source's stream: %q", truncate(l, 40))
		}
		b := make([]byte, size+2)
		if _, err := io.ReadFull(c.r, b); err != nil {
			return command{}, fmt.Errorf("reading the source's stream: %w", err)
		}
		used += int64(size + 2)
		args[i] = b[:size]
	}
	r.offset += used
	return command{args: args, offset: r.offset, at: time.Now()}, nil
}

var errIdle = errors.New("no data from the source")

func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}

func (r *replica) Close() { r.c.Close() }
