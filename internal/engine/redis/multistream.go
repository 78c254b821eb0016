package redis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/opendts/opendts/internal/engine"
)

// stream is the incremental phase of a job: one shard (stream.go) per
// source master, run side by side; a standalone source has one.
type stream struct {
	m      *migration
	shards []*shard
}

// OpenStream starts each shard from the position the copy (or the last
// transaction of an earlier run) saved for it.
func (m *migration) OpenStream(ctx context.Context) (engine.ChangeStream, error) {
	if err := m.applySourceSettings(ctx); err != nil {
		return nil, err
	}
	f, err := m.cp.get(ctx)
	if err != nil {
		return nil, err
	}
	nodes := m.srcNodes
	if m.srcCluster {
		// The shards the copy read, in its order: the checkpoint's
		// fields are numbered by it.
		nodes = nil
		for _, addr := range strings.Split(f[fieldShards], ",") {
			ep, err := withAddr(m.spec.Source, addr)
			if err != nil {
				return nil, engine.Permanent(err)
			}
			nodes = append(nodes, ep)
		}
	}
	s := &stream{m: m}
	for i, node := range nodes {
		suffix := shardSuffix(i)
		pos, err := m.cp.loadPosition(ctx, suffix)
		if err != nil {
			s.Close()
			return nil, engine.Permanent(err)
		}
		db, _ := strconv.Atoi(f[fieldDB+suffix])
		s.shards = append(s.shards, &shard{m: m, src: node, client: m.e.client(node, 0), suffix: suffix,
			multi: len(nodes) > 1, applied: pos, db: db})
	}
	return s, nil
}

func (s *stream) Close() {
	for _, sh := range s.shards {
		sh.client.Close()
	}
}

// Run runs every shard until ctl says stop (each stops at its own part
// of the stop position) or one fails, which stops the others.
func (s *stream) Run(ctx context.Context, ctl *engine.StreamControl) error {
	if len(s.shards) == 1 {
		return s.shards[0].Run(ctx, ctl)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make([]error, len(s.shards))
	var wg sync.WaitGroup
	for i, sh := range s.shards {
		wg.Go(func() {
			if errs[i] = sh.Run(ctx, ctl); errs[i] != nil {
				cancel()
			}
		})
	}
	wg.Wait()
	// The first failure is the cause; the others are cancellations.
	for _, err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
	}
	return errors.Join(errs...)
}

func (s *stream) Applied() engine.Position {
	p := make(multiPos, len(s.shards))
	for i, sh := range s.shards {
		p[i] = sh.Applied().(position)
	}
	return p
}

func (s *stream) SourcePosition(ctx context.Context) (engine.Position, error) {
	p := make(multiPos, len(s.shards))
	for i, sh := range s.shards {
		sp, err := sh.SourcePosition(ctx)
		if err != nil {
			return nil, err
		}
		p[i] = sp.(position)
	}
	return p, nil
}

// Lag: the bytes of all shards, the age of the one furthest behind.
func (s *stream) Lag(ctx context.Context) (engine.Lag, error) {
	out := engine.Lag{Known: true}
	for _, sh := range s.shards {
		l, err := sh.Lag(ctx)
		if err != nil {
			return engine.Lag{}, err
		}
		out.Seconds = max(out.Seconds, l.Seconds)
		out.Bytes += l.Bytes
		out.Known = out.Known && l.Known
	}
	return out, nil
}

// Reconnect waits until every source master and the target answer.
func (s *stream) Reconnect(ctx context.Context) error {
	return s.m.Retry().Do(ctx, "reconnect to the source and the target", func(error) bool { return true }, func() error {
		for _, sh := range s.shards {
			if err := sh.client.Ping(ctx).Err(); err != nil {
				return fmt.Errorf("source %s: %w", sh.src.Address(), err)
			}
		}
		if err := s.m.dst.Ping(ctx).Err(); err != nil {
			return fmt.Errorf("target: %w", err)
		}
		return nil
	})
}

// multiPos is a position in every shard's stream, in shard order.
type multiPos []position

func (p multiPos) Before(o engine.Position) bool {
	op, ok := o.(multiPos)
	if !ok || len(op) != len(p) {
		return false
	}
	for i := range p {
		if p[i].offset < op[i].offset {
			return true
		}
	}
	return false
}

func (p multiPos) String() string {
	s := make([]string, len(p))
	for i, x := range p {
		s[i] = x.String()
	}
	return strings.Join(s, ",")
}

// shardPos is where one shard is, compared with its part of a multiPos.
type shardPos struct {
	suffix string
	pos    position
}

func (p shardPos) Before(o engine.Position) bool {
	op, ok := o.(multiPos)
	if !ok {
		return p.pos.Before(o)
	}
	i := 0
	if p.suffix != "" {
		i, _ = strconv.Atoi(p.suffix[1:])
	}
	return i < len(op) && p.pos.offset < op[i].offset
}

func (p shardPos) String() string { return p.pos.String() }
