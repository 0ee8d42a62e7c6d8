// Package opencensus receives spans the way the OpenCensus agent (and the
// OpenTelemetry Collector's opencensus receiver, which Tempo runs) does on
// :55678, so applications exporting with an OpenCensus agent exporter
// (OC_AGENT_HOST=<distributor>:55678) work with Vivace unchanged.
//
// It serves opencensus.proto.agent.trace.v1.TraceService on gRPC:
//
//   - Export: a bidirectional stream of ExportTraceServiceRequest. Each
//     message is translated to OTLP (see translate.go) and pushed as one
//     request before the next is read. No response is sent, as in the
//     collector. A refused message (bad IDs, no Node on the first message,
//     undecodable) ends its stream with InvalidArgument, and a failed push
//     with Unavailable: the Export response has no room for an error, and
//     exporters reconnect and open a new stream. Other streams, and new
//     ones, are served as before.
//   - Config: held open, read and discarded, nothing sent. The OpenCensus
//     Go exporter opens it on every connection and fails the connection if
//     sending its first message fails, which a stream answered
//     Unimplemented at once can make happen; a silent stream is what it
//     expects from an agent that pushes no sampling config.
//
// It also holds open opencensus.proto.agent.metrics.v1.MetricsService
// Export and discards its messages, for the same reason: the Go exporter
// opens it on every connection and treats its failure as a failed
// connection, dropping spans until it reconnects.
//
// Tenancy: the x-scope-orgid metadata of the Export stream.
package opencensus

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/grafana/dskit/services"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/vivace-dev/vivace/distributor/receiver"
)

// stopGrace bounds how long stopping waits for in-flight pushes.
const stopGrace = 10 * time.Second

// Receiver is the OpenCensus receiver, a dskit service owning its listener.
type Receiver struct {
	services.Service

	cfg          Config
	multitenancy bool
	pusher       receiver.Pusher
	logger       *slog.Logger
	m            metrics

	// quit is closed when the receiver stops: the long-lived streams end
	// (Unavailable) once their message in hand is pushed.
	quit chan struct{}
	lis  net.Listener
	srv  *grpc.Server
}

// New makes an OpenCensus receiver pushing through pusher.
func New(cfg Config, multitenancy bool, pusher receiver.Pusher, logger *slog.Logger, reg prometheus.Registerer) (*Receiver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := &Receiver{
		cfg:          cfg,
		multitenancy: multitenancy,
		pusher:       pusher,
		logger:       logger.With("component", "receiver-opencensus"),
		m:            newMetrics(reg),
		quit:         make(chan struct{}),
	}
	r.Service = services.NewBasicService(r.starting, r.running, r.stopping)
	return r, nil
}

// Addr is the bound address once started, nil if the receiver is off.
func (r *Receiver) Addr() net.Addr {
	if r.lis == nil {
		return nil
	}
	return r.lis.Addr()
}

func (r *Receiver) starting(context.Context) error {
	if r.cfg.Endpoint == "" {
		return nil
	}
	var err error
	if r.lis, err = net.Listen("tcp", r.cfg.Endpoint); err != nil {
		return fmt.Errorf("OpenCensus listen: %w", err)
	}
	r.srv = grpc.NewServer(
		grpc.ForceServerCodecV2(receiver.RawCodec{}),
		grpc.MaxRecvMsgSize(r.cfg.MaxRecvMsgSizeMiB<<20),
	)
	r.srv.RegisterService(&traceServiceDesc, r)
	r.srv.RegisterService(&metricsServiceDesc, r)
	r.logger.Info("listening", "protocol", protoGRPC, "addr", r.lis.Addr().String())
	return nil
}

func (r *Receiver) running(ctx context.Context) error {
	if r.srv == nil {
		<-ctx.Done()
		return nil
	}
	errc := make(chan error, 1)
	go func() { errc <- r.srv.Serve(r.lis) }()
	select {
	case <-ctx.Done():
		return nil
	case err := <-errc:
		return fmt.Errorf("OpenCensus receiver: %w", err)
	}
}

func (r *Receiver) stopping(error) error {
	close(r.quit)
	if r.srv == nil {
		return nil
	}
	done := make(chan struct{})
	go func() { r.srv.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(stopGrace):
		r.srv.Stop()
		<-done
	}
	return nil
}
