package querier

import (
	"context"
	"errors"
	"fmt"

	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
	"golang.org/x/sync/errgroup"
	"google.golang.org/protobuf/proto"

	"github.com/vivace-dev/vivace/internal/model"
	"github.com/vivace-dev/vivace/internal/vivacepb"
	"github.com/vivace-dev/vivace/storage"
)

// findLowHalf finds the traces whose low 64 bits are those of the 64-bit
// id, for tracers and logs that keep only the low half of a 128-bit ID. It
// runs only after the exact lookup found nothing, as it costs much more:
//   - every ingester is asked, as in a search: the ring places a trace by
//     its whole ID, which the low half does not tell;
//   - every block in the request's block-ID and time range scans its
//     trace_id column (the bloom filters and ID ranges are keyed on whole
//     IDs), then looks each match up as usual.
func (q *Querier) findLowHalf(ctx context.Context, tenant string, id model.TraceID, mode string, req *vivacepb.TraceByIDRequest, f *found) error {
	q.m.lowHalfLookups.Inc()
	if mode == ModeAll || mode == ModeIngesters {
		sub := &vivacepb.TraceByIDRequest{TraceId: id[:], Start: req.Start, End: req.End, LowHalf: true}
		answers, err := forEachIngester(ctx, q, func(ctx context.Context, c IngesterClient) (*vivacepb.TraceByIDResponse, error) {
			return c.FindTraceByID(ctx, sub)
		})
		if err != nil {
			return fmt.Errorf("find low half in ingesters: %w", err)
		}
		for _, a := range answers {
			if err := addByTrace(f, a.Trace); err != nil {
				return err
			}
			f.inspected += uint64(len(a.Trace))
		}
	}
	if mode == ModeAll || mode == ModeBlocks {
		return q.findLowHalfInBlocks(ctx, tenant, id.Low64(), req, f)
	}
	return nil
}

// addByTrace adds an ingester's answer, which may hold several traces.
func addByTrace(f *found, b []byte) error {
	if len(b) == 0 {
		return nil
	}
	split, err := model.SplitByTrace(b)
	if err != nil {
		return fmt.Errorf("decode ingester answer: %w", err)
	}
	for i, tid := range split.IDs {
		td := &tracev1.TracesData{}
		if err := proto.Unmarshal(split.Traces[i], td); err != nil {
			return fmt.Errorf("decode ingester answer: %w", err)
		}
		f.add(tid, td)
	}
	return nil
}

type idTrace struct {
	id model.TraceID
	td *tracev1.TracesData
}

func (q *Querier) findLowHalfInBlocks(ctx context.Context, tenant string, low uint64, req *vivacepb.TraceByIDRequest, f *found) error {
	metas := q.blocksFor(tenant, req.Start, req.End, req.BlockStart, req.BlockEnd)
	results := make([][]idTrace, len(metas))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i, m := range metas {
		g.Go(func() error {
			q.m.blocksInspected.Inc()
			err := q.safeRead(tenant, m, func() error {
				r := q.reader(tenant, m)
				ids, err := r.FindLow64(gctx, low)
				if err != nil {
					return err
				}
				for _, tid := range ids {
					td, err := r.FindTraceByID(gctx, tid)
					if err != nil {
						return err
					}
					if td != nil {
						results[i] = append(results[i], idTrace{tid, td})
					}
				}
				return nil
			})
			switch {
			case errors.Is(err, storage.ErrNotFound):
				results[i] = nil // deleted since the last poll
				return nil
			case q.skipCorrupt(tenant, m, err):
				results[i] = nil
				f.skip(m.BlockID)
				return nil
			case err != nil:
				return fmt.Errorf("find low half in block %s: %w", m.BlockID, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for _, rs := range results {
		for _, r := range rs {
			f.add(r.id, r.td)
		}
	}
	return nil
}
