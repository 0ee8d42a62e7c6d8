// Package distributor receives spans, splits them by trace ID and pushes
// each trace to the ingesters that own it.
package distributor

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/grafana/dskit/ring"
	"github.com/grafana/dskit/user"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vivace-dev/vivace/distributor/receiver"
	"github.com/vivace-dev/vivace/ingester/client"
	"github.com/vivace-dev/vivace/internal/model"
	"github.com/vivace-dev/vivace/internal/vivacepb"
)

// IngesterClient is the distributor→ingester hop: a gRPC client, or the
// ingester itself when it runs in this process.
type IngesterClient interface {
	Push(ctx context.Context, req *vivacepb.PushRequest) (*vivacepb.PushResponse, error)
}

// Ingesters is how the distributor reaches the ingesters: the ring that
// places each trace, and a client for each ingester in it.
type Ingesters struct {
	Ring   ring.DoBatchRing
	Client func(ring.InstanceDesc) (IngesterClient, error)
	// Timeout bounds one push to one ingester.
	Timeout time.Duration
}

// Distributor is the distributor role; receivers push through it.
type Distributor struct {
	cfg       Config
	ingesters Ingesters
	logger    *slog.Logger
	m         *metrics
}

var _ receiver.Pusher = (*Distributor)(nil)

// New makes a distributor pushing to ingesters.
func New(cfg Config, ingesters Ingesters, logger *slog.Logger, reg prometheus.Registerer) (*Distributor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Distributor{cfg: cfg, ingesters: ingesters, logger: logger.With("component", "distributor"), m: newMetrics(reg)}, nil
}

// PushOTLP splits an encoded ExportTraceServiceRequest by trace, without
// decoding the spans, and pushes it. A malformed request is refused whole.
func (d *Distributor) PushOTLP(ctx context.Context, tenant string, req []byte) (int, error) {
	split, err := model.SplitByTrace(req)
	if err != nil {
		d.m.discardedSpans.WithLabelValues(tenant, "malformed").Inc()
		return 0, fmt.Errorf("%w: %v", receiver.ErrBadInput, err)
	}
	if split.Spans == 0 {
		return 0, nil
	}
	if err := d.push(ctx, tenant, split); err != nil {
		d.m.pushFailures.Inc()
		return 0, fmt.Errorf("push to ingesters: %w", err)
	}
	if d.cfg.LogReceivedSpans.Enabled {
		d.logSpans(tenant, req)
	}
	d.m.receivedSpans.WithLabelValues(tenant).Add(float64(split.Spans))
	d.m.receivedBytes.WithLabelValues(tenant).Add(float64(len(req)))
	return split.Spans, nil
}

// push sends each trace to the replication_factor ingesters that own it, one
// request per ingester, and returns once a quorum of them holds every trace.
func (d *Distributor) push(ctx context.Context, tenant string, split *model.Split) error {
	keys := make([]uint32, len(split.IDs))
	for i, id := range split.IDs {
		keys[i] = client.Token(tenant, id)
	}
	// The pushes beyond the quorum go on after the request returns: they
	// must not be cancelled with it.
	pushCtx := user.InjectOrgID(context.WithoutCancel(ctx), tenant)
	return ring.DoBatchWithOptions(ctx, ring.WriteNoExtend, d.ingesters.Ring, keys, func(inst ring.InstanceDesc, idx []int) error {
		req := &vivacepb.PushRequest{Ids: make([][]byte, len(idx)), Traces: make([][]byte, len(idx))}
		for k, i := range idx {
			req.Ids[k], req.Traces[k] = split.IDs[i][:], split.Traces[i]
		}
		c, err := d.ingesters.Client(inst)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(pushCtx, d.ingesters.Timeout)
		defer cancel()
		if _, err := c.Push(ctx, req); err != nil {
			return fmt.Errorf("ingester %s: %w", inst.Id, err)
		}
		return nil
	}, ring.DoBatchOptions{})
}
