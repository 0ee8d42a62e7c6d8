package compactor

import (
	"context"
	"fmt"
	"sync"

	"github.com/google/uuid"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/vivace-dev/vivace/internal/model"
	"github.com/vivace-dev/vivace/storage/block"
)

// mergeStats is what a merge read and wrote.
type mergeStats struct {
	spansIn, spansOut int64
}

// merge writes the traces of blocks, all of one tenant, into one new block
// one level above the highest of theirs. It streams: each source is read in
// trace-ID order, one row group at a time, by its own goroutine (decoding is
// most of the work), and a trace is combined from the sources holding it
// (dropping duplicate spans) and written before the next is taken. Memory
// holds about a row group per source and the writer's.
func (c *Compactor) merge(ctx context.Context, tenant string, blocks []*block.Meta) (*block.Meta, mergeStats, error) {
	var st mergeStats
	level := 0
	for _, m := range blocks {
		level = max(level, m.CompactionLevel+1)
	}
	w, err := block.NewWriter(c.blockCfg, c.tempDir, tenant, uuid.New())
	if err != nil {
		return nil, st, err
	}
	defer w.Abort()
	w.SetCompactionLevel(level)

	readCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel() // before Wait: readers blocked on a full channel give up
	srcs := make([]*source, len(blocks))
	for i, m := range blocks {
		srcs[i] = read(readCtx, &wg, block.NewReader(c.bkt, m))
		if err := srcs[i].advance(); err != nil {
			return nil, st, err
		}
	}
	parts := make([]*tracev1.TracesData, 0, len(srcs))
	for {
		var (
			id    model.TraceID
			found bool
		)
		for _, s := range srcs {
			if s.ok && (!found || s.id.Compare(id) < 0) {
				id, found = s.id, true
			}
		}
		if !found {
			break
		}
		parts = parts[:0]
		for _, s := range srcs {
			if s.ok && s.id == id {
				parts = append(parts, s.td)
				st.spansIn += int64(model.SpanCount(s.td))
				if err := s.advance(); err != nil {
					return nil, st, err
				}
			}
		}
		td := model.Combine(parts...)
		st.spansOut += int64(model.SpanCount(td))
		if err := w.Add(id, td); err != nil {
			return nil, st, fmt.Errorf("write trace %s: %w", id, err)
		}
	}
	// A source whose reading was cancelled ends early, without an error.
	if err := ctx.Err(); err != nil {
		return nil, st, err
	}
	meta, err := w.Finish(ctx, c.bkt)
	return meta, st, err
}

// source is one block being merged, and its next trace.
type source struct {
	ch <-chan trace
	id model.TraceID
	td *tracev1.TracesData
	ok bool // id and td hold a trace
}

// trace is a block's next trace, or the error that ended its reading.
type trace struct {
	id  model.TraceID
	td  *tracev1.TracesData
	err error
}

// read starts reading a block's traces in order; the channel is closed at
// the end, after an error, or when ctx is cancelled.
func read(ctx context.Context, wg *sync.WaitGroup, r *block.Reader) *source {
	// A short queue is enough to keep the reader busy; a long one (256)
	// tripled the memory of a merge and was slower.
	ch := make(chan trace, 16)
	wg.Go(func() {
		defer close(ch)
		send := func(t trace) error {
			select {
			case ch <- t:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		err := r.Iterate(ctx, func(id model.TraceID, td *tracev1.TracesData) error {
			return send(trace{id: id, td: td})
		})
		if err != nil {
			_ = send(trace{err: err})
		}
	})
	return &source{ch: ch}
}

// advance takes the source's next trace, if there is one.
func (s *source) advance() error {
	t, ok := <-s.ch
	if t.err != nil {
		return t.err
	}
	s.id, s.td, s.ok = t.id, t.td, ok
	return nil
}
