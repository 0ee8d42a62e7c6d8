package querier

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/grafana/dskit/ring"
	"github.com/grafana/dskit/user"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
	"golang.org/x/sync/errgroup"

	"github.com/vivace-dev/vivace/internal/model"
	"github.com/vivace-dev/vivace/internal/search"
	"github.com/vivace-dev/vivace/internal/vivacepb"
	"github.com/vivace-dev/vivace/storage"
	"github.com/vivace-dev/vivace/storage/block"
)

// errStop ends a block scan early without error: the job's limit is reached.
var errStop = errors.New("stop")

// Search runs one search job: over every ingester (each holds different
// traces) or over the blocks in the job's block-ID and time range. Replicas
// answer for the same traces; results are merged by trace ID.
func (q *Querier) Search(ctx context.Context, job *vivacepb.SearchJob) (*vivacepb.SearchResponse, error) {
	tenant, err := user.ExtractOrgID(ctx)
	if err != nil {
		return nil, err
	}
	m, err := search.NewMatcher(job)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errBadJob, err)
	}
	res := search.NewResults(int(job.Limit), int(job.SpansPerSpanSet))
	mode := job.QueryMode
	if mode == "" {
		mode = ModeAll
	}
	if mode == ModeAll || mode == ModeIngesters {
		answers, err := forEachIngester(ctx, q, func(ctx context.Context, c IngesterClient) (*vivacepb.SearchResponse, error) {
			return c.Search(ctx, job)
		})
		if err != nil {
			return nil, fmt.Errorf("search ingesters: %w", err)
		}
		for _, a := range answers {
			res.Add(a)
		}
	}
	if (mode == ModeAll || mode == ModeBlocks) && !res.Full() {
		if err := q.searchBlocks(ctx, tenant, m, job, res); err != nil {
			return nil, err
		}
	}
	return res.Response(), nil
}

// searchBlocks scans the blocks the job admits, in parallel, until the job's
// limit of traces is found. A corrupt block is skipped (see skipCorrupt).
func (q *Querier) searchBlocks(ctx context.Context, tenant string, m *search.Matcher, job *vivacepb.SearchJob, res *search.Results) error {
	metas := q.blocksFor(tenant, job.Start, job.End, job.BlockStart, job.BlockEnd)
	start, end := m.TimeRange()
	opts := block.SearchOptions{Conditions: m.Query.Conditions(), Start: start, End: end, Project: true, Fields: m.Query.Fields()}
	var mu sync.Mutex // guards res
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for _, meta := range metas {
		g.Go(func() error {
			q.m.blocksInspected.Inc()
			var st block.SearchStats
			err := q.safeRead(tenant, meta, func() (err error) {
				st, err = q.reader(tenant, meta).Search(gctx, opts, func(_ model.TraceID, td *tracev1.TracesData) error {
					md := m.Match(td)
					if md == nil {
						return nil
					}
					mu.Lock()
					defer mu.Unlock()
					res.AddTrace(md)
					if res.Full() {
						cancel() // the other blocks stop too
						return errStop
					}
					return nil
				})
				return err
			})
			mu.Lock()
			res.Add(&vivacepb.SearchResponse{Metrics: &vivacepb.SearchMetrics{
				InspectedTraces: uint32(st.InspectedTraces),
				InspectedSpans:  st.InspectedSpans,
				InspectedBytes:  st.InspectedBytes,
				TotalBlocks:     1,
				TotalBlockBytes: uint64(meta.Size),
			}})
			full := res.Full()
			mu.Unlock()
			switch {
			case err == nil, errors.Is(err, errStop), errors.Is(err, storage.ErrNotFound):
				return nil // ErrNotFound: deleted since the last poll
			case full && errors.Is(err, context.Canceled):
				return nil
			case q.skipCorrupt(tenant, meta, err):
				return nil
			}
			return fmt.Errorf("search block %s: %w", meta.BlockID, err)
		})
	}
	return g.Wait()
}

// blocksFor lists the tenant's blocks in a block-ID range (empty bounds are
// open) that overlap [start, end] (unix seconds, 0 open), in ID order.
func (q *Querier) blocksFor(tenant string, start, end int64, blockStart, blockEnd string) []*block.Meta {
	all := q.blocks.Metas(tenant)
	q.dropGoneReaders(tenant, all)
	var metas []*block.Meta
	for _, m := range all {
		switch {
		case blockStart != "" && m.BlockID < blockStart,
			blockEnd != "" && m.BlockID > blockEnd,
			start > 0 && m.EndTime.Before(time.Unix(start, 0)),
			end > 0 && m.StartTime.Unix() > end:
			continue
		}
		metas = append(metas, m)
	}
	slices.SortFunc(metas, func(a, b *block.Meta) int { return strings.Compare(a.BlockID, b.BlockID) })
	return metas
}

// SearchTags runs one tags job: tag names by scope, or one tag's values.
func (q *Querier) SearchTags(ctx context.Context, job *vivacepb.TagsJob) (*vivacepb.TagsResult, error) {
	tenant, err := user.ExtractOrgID(ctx)
	if err != nil {
		return nil, err
	}
	tags, err := search.NewTags(job)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errBadJob, err)
	}
	var inspected uint64
	mode := job.QueryMode
	if mode == "" {
		mode = ModeAll
	}
	if mode == ModeAll || mode == ModeIngesters {
		answers, err := forEachIngester(ctx, q, func(ctx context.Context, c IngesterClient) (*vivacepb.TagsResult, error) {
			return c.SearchTags(ctx, job)
		})
		if err != nil {
			return nil, fmt.Errorf("search tags in ingesters: %w", err)
		}
		for _, a := range answers {
			tags.AddResult(a)
			inspected += a.InspectedBytes
		}
	}
	if mode == ModeAll || mode == ModeBlocks {
		// Blocks one at a time: the collector is not safe for concurrent use,
		// and a limit is usually reached in the first blocks.
		for _, meta := range q.blocksFor(tenant, job.Start, job.End, job.BlockStart, job.BlockEnd) {
			if tags.Full() {
				break
			}
			var st block.SearchStats
			err := q.safeRead(tenant, meta, func() (err error) {
				st, err = q.reader(tenant, meta).Search(ctx, block.SearchOptions{}, func(_ model.TraceID, td *tracev1.TracesData) error {
					tags.Add(td)
					if tags.Full() {
						return errStop
					}
					return nil
				})
				return err
			})
			inspected += st.InspectedBytes
			if err != nil && !errors.Is(err, errStop) && !errors.Is(err, storage.ErrNotFound) && !q.skipCorrupt(tenant, meta, err) {
				return nil, fmt.Errorf("search tags in block %s: %w", meta.BlockID, err)
			}
		}
	}
	res := tags.Result()
	res.InspectedBytes = inspected
	return res, nil
}

// forEachIngester calls every ingester of the ring that may serve reads, in
// parallel. Each holds different traces, so all must answer (unlike a lookup
// by ID, a quorum is not enough); the ring's error says which is missing.
func forEachIngester[T any](ctx context.Context, q *Querier, call func(ctx context.Context, c IngesterClient) (T, error)) ([]T, error) {
	rs, err := q.ingesters.Ring.GetReplicationSetForOperation(ring.Read)
	if err != nil {
		return nil, err
	}
	out := make([]T, len(rs.Instances))
	g, gctx := errgroup.WithContext(ctx)
	for i, inst := range rs.Instances {
		g.Go(func() error {
			c, err := q.ingesters.Client(inst)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(gctx, q.ingesters.Timeout)
			defer cancel()
			if out[i], err = call(ctx, c); err != nil {
				return fmt.Errorf("ingester %s: %w", inst.Id, err)
			}
			return nil
		})
	}
	return out, g.Wait()
}
