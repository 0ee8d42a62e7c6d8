// Package querier answers one job: a trace by ID, a search, or a tags
// listing, from the ingesters, from a range of blocks, or both.
package querier

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/grafana/dskit/ring"
	"github.com/grafana/dskit/user"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/vivace-dev/vivace/ingester/client"
	"github.com/vivace-dev/vivace/internal/model"
	"github.com/vivace-dev/vivace/internal/vivacepb"
	"github.com/vivace-dev/vivace/storage"
	"github.com/vivace-dev/vivace/storage/block"
	"github.com/vivace-dev/vivace/storage/blocklist"
)

// Query modes of a TraceByIDRequest.
const (
	ModeAll       = "all"
	ModeIngesters = "ingesters"
	ModeBlocks    = "blocks"
)

// IngesterClient is the querier→ingester hop: a gRPC client, or the
// ingester itself when it runs in this process.
type IngesterClient interface {
	FindTraceByID(ctx context.Context, req *vivacepb.TraceByIDRequest) (*vivacepb.TraceByIDResponse, error)
	Search(ctx context.Context, req *vivacepb.SearchJob) (*vivacepb.SearchResponse, error)
	SearchTags(ctx context.Context, req *vivacepb.TagsJob) (*vivacepb.TagsResult, error)
}

// Ring is what the querier reads of the ingester ring: the owners of a trace
// ID, and every ingester that serves reads, for search.
type Ring interface {
	ring.DoBatchRing
	GetReplicationSetForOperation(op ring.Operation) (ring.ReplicationSet, error)
}

// Ingesters is how the querier reaches the ingesters: the ring that tells
// which own a trace, and a client for each.
type Ingesters struct {
	Ring   Ring
	Client func(ring.InstanceDesc) (IngesterClient, error)
	// Timeout bounds one lookup on one ingester.
	Timeout time.Duration
}

// Querier is the querier role.
type Querier struct {
	ingesters Ingesters
	bkt       storage.Bucket
	blocks    *blocklist.List
	logger    *slog.Logger
	m         *metrics

	mu      sync.Mutex
	readers map[string]map[string]*block.Reader // tenant → block ID; readers cache footers, indexes and blooms
}

// New makes a querier reading from ingesters and the blocks in list.
func New(ingesters Ingesters, bkt storage.Bucket, list *blocklist.List, logger *slog.Logger, reg prometheus.Registerer) *Querier {
	return &Querier{
		ingesters: ingesters,
		bkt:       bkt,
		blocks:    list,
		logger:    logger.With("component", "querier"),
		m:         newMetrics(reg),
		readers:   map[string]map[string]*block.Reader{},
	}
}

// FindTraceByID runs one trace-by-ID job. The answer's trace is an encoded
// TracesData with each span once. With req.LowHalf and no trace of exactly
// the (64-bit) ID, it holds instead every trace whose low 64 bits match, each
// combined on its own. A corrupt block is skipped (see skipCorrupt) and
// marks the answer PARTIAL.
func (q *Querier) FindTraceByID(ctx context.Context, req *vivacepb.TraceByIDRequest) (*vivacepb.TraceByIDResponse, error) {
	tenant, err := user.ExtractOrgID(ctx)
	if err != nil {
		return nil, err
	}
	id, err := model.TraceIDFromBytes(req.TraceId)
	if err != nil {
		return nil, err
	}
	if req.LowHalf && !id.Is64Bit() {
		return nil, fmt.Errorf("%w: low_half asks for a 64-bit ID, not %s", errBadJob, id)
	}
	mode := req.QueryMode
	if mode == "" {
		mode = ModeAll
	}
	f := newFound(id)
	if mode == ModeAll || mode == ModeIngesters {
		answers, err := q.findInIngesters(ctx, tenant, id, req)
		if err != nil {
			return nil, fmt.Errorf("find in ingesters: %w", err)
		}
		for _, a := range answers {
			if len(a.Trace) > 0 {
				f.addEncoded(id, a.Trace, false)
				f.inspected += uint64(len(a.Trace))
			}
		}
	}
	if mode == ModeAll || mode == ModeBlocks {
		if err := q.findInBlocks(ctx, tenant, id, req, f); err != nil {
			return nil, err
		}
	}
	if req.LowHalf && len(f.parts) == 0 {
		// Only after the exact lookup found nothing: see findLowHalf.
		if err := q.findLowHalf(ctx, tenant, id, mode, req, f); err != nil {
			return nil, err
		}
	}
	return f.response()
}

// findInIngesters asks the ingesters that own the trace. Writes reach a
// quorum of them, so answers from a quorum hold every acknowledged span; the
// replicas' copies are merged by the caller.
func (q *Querier) findInIngesters(ctx context.Context, tenant string, id model.TraceID, req *vivacepb.TraceByIDRequest) ([]*vivacepb.TraceByIDResponse, error) {
	rs, err := q.ingesters.Ring.Get(client.Token(tenant, id), ring.Read, nil, nil, nil)
	if err != nil {
		return nil, err
	}
	sub := &vivacepb.TraceByIDRequest{TraceId: id[:], Start: req.Start, End: req.End}
	results, err := rs.Do(ctx, 0, func(ctx context.Context, inst *ring.InstanceDesc) (any, error) {
		c, err := q.ingesters.Client(*inst)
		if err != nil {
			return nil, err
		}
		ctx, cancel := context.WithTimeout(ctx, q.ingesters.Timeout)
		defer cancel()
		resp, err := c.FindTraceByID(ctx, sub)
		if err != nil {
			return nil, fmt.Errorf("ingester %s: %w", inst.Id, err)
		}
		return resp, nil
	})
	if err != nil {
		return nil, err
	}
	answers := make([]*vivacepb.TraceByIDResponse, len(results))
	for i, r := range results {
		answers[i] = r.(*vivacepb.TraceByIDResponse)
	}
	return answers, nil
}

// findInBlocks looks the trace up in every block of the tenant that the
// request's block-ID and time range admit, in parallel; each block costs a
// bloom shard, an index and one row group at most.
func (q *Querier) findInBlocks(ctx context.Context, tenant string, id model.TraceID, req *vivacepb.TraceByIDRequest, f *found) error {
	idHex := id.String()
	var metas []*block.Meta
	for _, m := range q.blocksFor(tenant, req.Start, req.End, req.BlockStart, req.BlockEnd) {
		if idHex >= m.MinID && idHex <= m.MaxID {
			metas = append(metas, m)
		}
	}
	answers := make([][]byte, len(metas))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i, m := range metas {
		g.Go(func() error {
			q.m.blocksInspected.Inc()
			err := q.safeRead(tenant, m, func() (err error) {
				answers[i], err = q.reader(tenant, m).FindEncoded(gctx, id, nil)
				return err
			})
			switch {
			case errors.Is(err, storage.ErrNotFound):
				return nil // deleted since the last poll (compacted or past retention)
			case q.skipCorrupt(tenant, m, err):
				f.skip(m.BlockID)
				return nil
			case err != nil:
				return fmt.Errorf("find in block %s: %w", m.BlockID, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	// In block-ID order: combined answers are deterministic.
	for _, b := range answers {
		if b != nil {
			f.addEncoded(id, b, true)
		}
	}
	return nil
}

func (q *Querier) reader(tenant string, m *block.Meta) *block.Reader {
	q.mu.Lock()
	defer q.mu.Unlock()
	byID := q.readers[tenant]
	if byID == nil {
		byID = map[string]*block.Reader{}
		q.readers[tenant] = byID
	}
	r, ok := byID[m.BlockID]
	if !ok {
		r = block.NewReader(q.bkt, m)
		byID[m.BlockID] = r
	}
	return r
}

// dropGoneReaders forgets the readers of blocks no longer listed (compacted
// or past retention), so what they cache is freed.
func (q *Querier) dropGoneReaders(tenant string, listed []*block.Meta) {
	q.mu.Lock()
	defer q.mu.Unlock()
	byID := q.readers[tenant]
	if len(byID) <= len(listed) {
		return // every reader may still be listed: nothing to check
	}
	keep := make(map[string]bool, len(listed))
	for _, m := range listed {
		keep[m.BlockID] = true
	}
	for id := range byID {
		if !keep[id] {
			delete(byID, id)
		}
	}
}
