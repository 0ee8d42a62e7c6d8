package compactor

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/google/uuid"

	"github.com/vivace-dev/vivace/internal/model"
	"github.com/vivace-dev/vivace/storage/block"
)

// mergeStats is what a merge read and wrote.
type mergeStats struct {
	spansIn, spansOut int64
}

// merge writes the traces of blocks, all of one tenant, into one new block
// one level above the highest of theirs. It streams: each source is read in
// trace-ID order, one row group at a time, by its own goroutine, and a trace
// is combined from the sources holding it (dropping duplicate spans) and
// written before the next is taken. Traces are copied as their rows, never
// decoded into OTLP (that was most of the work of a merge), and the rows of
// a source that gives none (a replica of spans an earlier source holds) are
// mostly not even read. Memory holds about a row group per source and the
// writer's.
//
// An error reading a source is a *sourceError naming the block.
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
	parts := make([]*block.TraceRows, 0, len(srcs))
	from := make([]*source, 0, len(srcs)) // the source of each part
	for {
		var (
			id    model.TraceID
			found bool
		)
		for _, s := range srcs {
			if s.ok && (!found || s.tr.ID().Compare(id) < 0) {
				id, found = s.tr.ID(), true
			}
		}
		if !found {
			break
		}
		parts, from = parts[:0], from[:0]
		for _, s := range srcs {
			if s.ok && s.tr.ID() == id {
				parts, from = append(parts, s.tr), append(from, s)
				st.spansIn += int64(s.tr.Len())
				if err := s.advance(); err != nil {
					return nil, st, err
				}
			}
		}
		n, err := w.AddRows(parts...)
		var pe *block.PartError
		switch {
		case errors.As(err, &pe): // reading the rows a part gives
			return nil, st, &sourceError{meta: from[pe.Part].meta, err: pe.Err}
		case err != nil:
			return nil, st, fmt.Errorf("write trace %s: %w", id, err)
		}
		st.spansOut += int64(n)
	}
	// A source whose reading was cancelled ends early, without an error.
	if err := ctx.Err(); err != nil {
		return nil, st, err
	}
	meta, err := w.Finish(ctx, c.bkt)
	return meta, st, err
}

// sourceError is the error that ended the reading of a source block.
type sourceError struct {
	meta *block.Meta
	err  error
}

func (e *sourceError) Error() string { return fmt.Sprintf("read block %s: %v", e.meta.BlockID, e.err) }
func (e *sourceError) Unwrap() error { return e.err }

// source is one block being merged, and its next trace.
type source struct {
	meta *block.Meta
	ch   <-chan trace
	tr   *block.TraceRows
	ok   bool // tr holds a trace
}

// trace is a block's next trace, or the error that ended its reading.
type trace struct {
	tr  *block.TraceRows
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
		err := func() (err error) {
			defer func() {
				// The block package turns what it decodes badly into
				// ErrCorrupt; this is the last line, so that a block
				// nobody foresaw cannot take the process down.
				if p := recover(); p != nil {
					err = fmt.Errorf("%w: panic: %v", block.ErrCorrupt, p)
				}
			}()
			return r.IterateRows(ctx, func(tr *block.TraceRows) error {
				return send(trace{tr: tr})
			})
		}()
		if err != nil && ctx.Err() == nil {
			_ = send(trace{err: &sourceError{meta: r.Meta(), err: err}})
		}
	})
	return &source{meta: r.Meta(), ch: ch}
}

// advance takes the source's next trace, if there is one.
func (s *source) advance() error {
	t, ok := <-s.ch
	if t.err != nil {
		return t.err
	}
	s.tr, s.ok = t.tr, ok
	return nil
}
