package redis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// sink is where restored keys go: one server (writer) or a cluster's
// masters (clusterWriter).
type sink interface {
	// send queues one command whose key, if any, is args[1]; what names
	// it in an error.
	send(what string, args ...[]byte) error
	selectDB(db int) error
	// close flushes and waits for every reply; it returns the first
	// refusal.
	close() error
}

// newSink connects to the target.
func (m *migration) newSink(ctx context.Context) (sink, error) {
	if m.dstCluster {
		return newClusterWriter(ctx, m.e, m.spec.Target)
	}
	c, err := dial(ctx, m.spec.Target, m.e.cfg.DialTimeout)
	if err != nil {
		return nil, err
	}
	return newWriter(c, nil), nil
}

// pending is a command whose reply is still to come.
type pending struct {
	what string
	args [][]byte
}

// writer pipelines commands to one server: a goroutine reads the replies
// while more commands are written, so a round trip is paid per buffer,
// not per key.
type writer struct {
	c       *conn
	pending chan pending
	done    chan error
	db      int
	// redirect, for a cluster node, carries out a command the node
	// answered with MOVED or ASK; nil elsewhere.
	redirect func(re RespError, p pending) error
}

func newWriter(c *conn, redirect func(RespError, pending) error) *writer {
	w := &writer{c: c, pending: make(chan pending, 65536), done: make(chan error, 1), redirect: redirect}
	go w.readReplies()
	return w
}

func isRedirect(re RespError) bool {
	return strings.HasPrefix(string(re), "MOVED ") || strings.HasPrefix(string(re), "ASK ")
}

func (w *writer) readReplies() {
	var first error
	for p := range w.pending {
		_, err := w.c.reply()
		var re RespError
		if errors.As(err, &re) {
			if w.redirect != nil && isRedirect(re) {
				err = w.redirect(re, p)
				if err == nil {
					continue
				}
				if first == nil {
					first = err
				}
				continue
			}
			if first == nil {
				first = fmt.Errorf("the target refused %s: %s", p.what, re)
			}
			continue
		}
		if err != nil {
			if first == nil {
				first = fmt.Errorf("reading the target's replies: %w", err)
			}
			w.c.Close() // the writer's next write fails
			for range w.pending {
			}
			break
		}
	}
	w.done <- first
}

func (w *writer) send(what string, args ...[]byte) error {
	w.c.writeCmdBytes(args)
	p := pending{what: what}
	if w.redirect != nil {
		p.args = args // kept to send again elsewhere
	}
	select {
	case w.pending <- p:
	default:
		// The reader is behind: what is buffered must reach the target
		// before waiting, or both would wait forever.
		if err := w.c.flush(); err != nil {
			return err
		}
		w.pending <- p
	}
	if w.c.w.Buffered() > 256<<10 {
		return w.c.flush()
	}
	return nil
}

func (w *writer) selectDB(db int) error {
	if db == w.db {
		return nil
	}
	w.db = db
	return w.send("SELECT", []byte("SELECT"), []byte(strconv.Itoa(db)))
}

func (w *writer) close() error {
	ferr := w.c.flush()
	close(w.pending)
	err := <-w.done
	if err == nil {
		err = ferr
	}
	w.c.Close()
	return err
}
