// Package distributor receives spans, splits them by trace ID and pushes
// each trace to the ingesters that own it.
package distributor

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/grafana/dskit/user"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vivace-dev/vivace/distributor/receiver"
	"github.com/vivace-dev/vivace/internal/model"
	"github.com/vivace-dev/vivace/internal/vivacepb"
)

// IngesterClient is the distributor→ingester hop: a gRPC client in
// microservices mode, the ingester itself in monolithic mode.
type IngesterClient interface {
	Push(ctx context.Context, req *vivacepb.PushRequest) (*vivacepb.PushResponse, error)
}

// Distributor is the distributor role; receivers push through it.
type Distributor struct {
	cfg       Config
	ingesters IngesterClient
	logger    *slog.Logger
	m         *metrics
}

var _ receiver.Pusher = (*Distributor)(nil)

// New makes a distributor pushing to ingesters.
func New(cfg Config, ingesters IngesterClient, logger *slog.Logger, reg prometheus.Registerer) (*Distributor, error) {
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
	pr := &vivacepb.PushRequest{Ids: make([][]byte, len(split.IDs)), Traces: split.Traces}
	for i := range split.IDs {
		pr.Ids[i] = split.IDs[i][:]
	}
	if _, err := d.ingesters.Push(user.InjectOrgID(ctx, tenant), pr); err != nil {
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
