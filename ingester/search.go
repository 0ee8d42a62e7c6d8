package ingester

import (
	"context"
	"errors"

	"github.com/grafana/dskit/user"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/vivace-dev/vivace/ingester/wal"
	"github.com/vivace-dev/vivace/internal/model"
	"github.com/vivace-dev/vivace/internal/search"
	"github.com/vivace-dev/vivace/internal/traceql"
	"github.com/vivace-dev/vivace/internal/vivacepb"
)

// errStop ends forEachTrace early without error.
var errStop = errors.New("stop")

// Search runs a TraceQL query over the tenant's live traces: every trace in
// the WAL, its parts from all generations combined.
func (i *Ingester) Search(ctx context.Context, job *vivacepb.SearchJob) (*vivacepb.SearchResponse, error) {
	m, err := search.NewMatcher(job)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	res := search.NewResults(int(job.Limit), int(job.SpansPerSpanSet))
	metrics := &vivacepb.SearchMetrics{}
	err = i.forEachTrace(ctx, func(td *tracev1.TracesData, size int) error {
		metrics.InspectedTraces++
		metrics.InspectedBytes += uint64(size)
		if md := m.Match(td); md != nil {
			res.AddTrace(md)
			if res.Full() {
				return errStop
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	resp := res.Response()
	resp.Metrics = metrics
	return resp, nil
}

// SearchTags lists the tag names, or one tag's values, of live traces.
func (i *Ingester) SearchTags(ctx context.Context, job *vivacepb.TagsJob) (*vivacepb.TagsResult, error) {
	tags, err := search.NewTags(job)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	var inspected uint64
	err = i.forEachTrace(ctx, func(td *tracev1.TracesData, size int) error {
		inspected += uint64(size)
		if !inTimeRange(td, job.Start, job.End) {
			return nil
		}
		tags.Add(td)
		if tags.Full() {
			return errStop
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	res := tags.Result()
	res.InspectedBytes = inspected
	return res, nil
}

// inTimeRange tells whether a trace overlaps [start, end] (unix seconds, 0 open).
func inTimeRange(td *tracev1.TracesData, start, end int64) bool {
	if start == 0 && end == 0 {
		return true
	}
	s := traceql.Summarize(td)
	return (start == 0 || s.StartUnixNano+s.DurationNanos >= uint64(start)*1e9) &&
		(end == 0 || s.StartUnixNano < uint64(end+1)*1e9)
}

// forEachTrace decodes each live trace of the context's tenant and calls fn
// with it and its encoded size, until fn returns an error (errStop: no error).
func (i *Ingester) forEachTrace(ctx context.Context, fn func(td *tracev1.TracesData, size int) error) error {
	tenant, err := user.ExtractOrgID(ctx)
	if err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	type part struct {
		seg  *wal.Segment
		refs []wal.Ref
	}
	// A snapshot of the index under the lock; the WAL is read after.
	traces := map[model.TraceID][]part{}
	var order []model.TraceID
	i.mu.RLock()
	if i.head == nil {
		i.mu.RUnlock()
		return status.Error(codes.Unavailable, "ingester is starting")
	}
	for _, g := range append(i.older[:len(i.older):len(i.older)], i.head) {
		for id, refs := range g.traces[tenant] {
			if _, ok := traces[id]; !ok {
				order = append(order, id)
			}
			traces[id] = append(traces[id], part{g.seg, refs})
		}
	}
	i.mu.RUnlock()
	var buf []byte
	for _, id := range order {
		if err := ctx.Err(); err != nil {
			return err
		}
		buf = buf[:0]
		for _, p := range traces[id] {
			for _, ref := range p.refs {
				n := len(buf)
				if buf, err = p.seg.AppendAt(buf, ref); err != nil {
					if errors.Is(err, wal.ErrClosed) {
						buf = buf[:n] // flushed and dropped meanwhile: the blocks answer for it
						break
					}
					return status.Error(codes.Internal, err.Error())
				}
			}
		}
		if len(buf) == 0 {
			continue
		}
		td := &tracev1.TracesData{}
		if err := proto.Unmarshal(buf, td); err != nil {
			i.logger.Warn("undecodable trace in WAL", "tenant", tenant, "trace_id", id.String(), "err", err)
			continue
		}
		if err := fn(td, len(buf)); err != nil {
			if errors.Is(err, errStop) {
				return nil
			}
			return err
		}
	}
	return nil
}
