// Package jaeger receives Jaeger spans the way a Jaeger collector and agent
// do, so Jaeger clients and agents work with Vivace unchanged:
//
//   - thrift over HTTP (:14268): POST /api/traces, a thrift-binary
//     jaeger.Batch; answered 202 Accepted with no body, as the Jaeger
//     collector does.
//   - gRPC (:14250): jaeger.api_v2.CollectorService/PostSpans.
//   - UDP (:6831 thrift compact, :6832 thrift binary): one Agent.emitBatch
//     call per datagram, as Jaeger clients send to an agent.
//
// Every batch is translated to OTLP (see translate.go) and pushed as one
// ExportTraceServiceRequest.
//
// Tenancy: the thrift HTTP receiver reads the X-Scope-OrgID header and the
// gRPC one the x-scope-orgid metadata. UDP has no headers: without
// multitenancy its spans go to the single tenant; with multitenancy every
// datagram is refused (counted as reason "tenant") and a warning is logged
// at start, since no tenant can be told apart.
package jaeger

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/grafana/dskit/services"
	"github.com/prometheus/client_golang/prometheus"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/vivace-dev/vivace/distributor/receiver"
)

// stopGrace bounds how long stopping waits for in-flight requests.
const stopGrace = 10 * time.Second

// Receiver is the Jaeger receiver, a dskit service owning its listeners.
type Receiver struct {
	services.Service

	cfg          Config
	multitenancy bool
	pusher       receiver.Pusher
	logger       *slog.Logger
	m            metrics

	httpLis, grpcLis net.Listener
	httpSrv          *http.Server
	grpcSrv          *grpc.Server
	binary, compact  *udpServer
}

// New makes a Jaeger receiver pushing through pusher.
func New(cfg Config, multitenancy bool, pusher receiver.Pusher, logger *slog.Logger, reg prometheus.Registerer) (*Receiver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := &Receiver{
		cfg:          cfg,
		multitenancy: multitenancy,
		pusher:       pusher,
		logger:       logger.With("component", "receiver-jaeger"),
		m:            newMetrics(reg),
	}
	r.Service = services.NewBasicService(r.starting, r.running, r.stopping)
	return r, nil
}

// ThriftHTTPAddr, GRPCAddr, ThriftBinaryAddr and ThriftCompactAddr are the
// bound addresses, once started (nil if off).
func (r *Receiver) ThriftHTTPAddr() net.Addr { return addr(r.httpLis) }
func (r *Receiver) GRPCAddr() net.Addr       { return addr(r.grpcLis) }
func (r *Receiver) ThriftBinaryAddr() net.Addr {
	if r.binary == nil {
		return nil
	}
	return r.binary.conn.LocalAddr()
}
func (r *Receiver) ThriftCompactAddr() net.Addr {
	if r.compact == nil {
		return nil
	}
	return r.compact.conn.LocalAddr()
}

func addr(l net.Listener) net.Addr {
	if l == nil {
		return nil
	}
	return l.Addr()
}

func (r *Receiver) starting(context.Context) (err error) {
	defer func() {
		if err != nil {
			r.closeListeners()
		}
	}()
	p := &r.cfg.Protocols
	if ep := p.ThriftHTTP.Endpoint; ep != "" {
		if r.httpLis, err = net.Listen("tcp", ep); err != nil {
			return fmt.Errorf("jaeger thrift HTTP listen: %w", err)
		}
		mux := http.NewServeMux()
		mux.HandleFunc("/api/traces", r.handleThriftHTTP)
		r.httpSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute}
		r.logger.Info("listening", "protocol", protoThriftHTTP, "addr", r.httpLis.Addr().String())
	}
	if ep := p.GRPC.Endpoint; ep != "" {
		if r.grpcLis, err = net.Listen("tcp", ep); err != nil {
			return fmt.Errorf("jaeger gRPC listen: %w", err)
		}
		r.grpcSrv = grpc.NewServer(
			grpc.ForceServerCodecV2(receiver.RawCodec{}),
			grpc.MaxRecvMsgSize(p.GRPC.MaxRecvMsgSizeMiB<<20),
		)
		r.grpcSrv.RegisterService(&collectorServiceDesc, r)
		r.logger.Info("listening", "protocol", protoGRPC, "addr", r.grpcLis.Addr().String())
	}
	if p.ThriftBinary.Endpoint != "" {
		if r.binary, err = listenUDP(p.ThriftBinary, protoThriftBinary, false); err != nil {
			return err
		}
		r.logger.Info("listening", "protocol", protoThriftBinary, "addr", r.binary.conn.LocalAddr().String())
	}
	if p.ThriftCompact.Endpoint != "" {
		if r.compact, err = listenUDP(p.ThriftCompact, protoThriftCompact, true); err != nil {
			return err
		}
		r.logger.Info("listening", "protocol", protoThriftCompact, "addr", r.compact.conn.LocalAddr().String())
	}
	if r.multitenancy && (r.binary != nil || r.compact != nil) {
		r.logger.Warn("multitenancy is enabled and UDP carries no tenant: every Jaeger UDP datagram will be refused; send thrift over HTTP or gRPC with X-Scope-OrgID, or turn the UDP endpoints off")
	}
	return nil
}

func (r *Receiver) closeListeners() {
	for _, l := range []net.Listener{r.httpLis, r.grpcLis} {
		if l != nil {
			l.Close()
		}
	}
	for _, u := range []*udpServer{r.binary, r.compact} {
		if u != nil {
			u.conn.Close()
		}
	}
}

func (r *Receiver) running(ctx context.Context) error {
	errc := make(chan error, 2)
	if r.httpSrv != nil {
		go func() {
			if err := r.httpSrv.Serve(r.httpLis); !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("thrift HTTP: %w", err)
			}
		}()
	}
	if r.grpcSrv != nil {
		go func() {
			if err := r.grpcSrv.Serve(r.grpcLis); err != nil {
				errc <- fmt.Errorf("gRPC: %w", err)
			}
		}()
	}
	for _, u := range []*udpServer{r.binary, r.compact} {
		if u != nil {
			u.start(r)
		}
	}
	select {
	case <-ctx.Done():
		return nil
	case err := <-errc:
		return fmt.Errorf("jaeger receiver: %w", err)
	}
}

func (r *Receiver) stopping(error) error {
	var errs []error
	if r.grpcSrv != nil {
		done := make(chan struct{})
		go func() { r.grpcSrv.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-time.After(stopGrace):
			r.grpcSrv.Stop()
			<-done
		}
	}
	if r.httpSrv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), stopGrace)
		if err := r.httpSrv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("thrift HTTP shutdown: %w", err))
			r.httpSrv.Close()
		}
		cancel()
	}
	for _, u := range []*udpServer{r.binary, r.compact} {
		if u != nil {
			u.stop()
		}
	}
	return errors.Join(errs...)
}

// pushOTLP encodes and pushes a translated batch. A *badRequest error is the
// sender's fault; any other is the server's (and is counted here).
func (r *Receiver) pushOTLP(ctx context.Context, protocol, tenant string, req *coltracepb.ExportTraceServiceRequest, spans int) error {
	if spans > 0 {
		b, err := proto.Marshal(req)
		if err != nil {
			r.m.Requests.WithLabelValues(protocol, "error").Inc()
			return fmt.Errorf("encode OTLP: %w", err)
		}
		if _, err := r.pusher.PushOTLP(ctx, tenant, b); err != nil {
			if errors.Is(err, receiver.ErrBadInput) {
				return &badRequest{reason: "rejected", spans: spans, err: err}
			}
			r.m.Requests.WithLabelValues(protocol, receiver.Outcome(err)).Inc()
			return err
		}
	}
	r.m.Requests.WithLabelValues(protocol, "ok").Inc()
	return nil
}

// refuse counts a request refused as the sender's fault.
func (r *Receiver) refuse(protocol string, br *badRequest) {
	r.m.Refused.WithLabelValues(protocol, br.reason).Inc()
	if br.spans > 0 {
		r.m.RefusedSpans.WithLabelValues(br.reason).Add(float64(br.spans))
	}
}
