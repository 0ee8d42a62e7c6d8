// Package otlp receives OTLP traces over gRPC (:4317) and HTTP (:4318,
// /v1/traces, protobuf or JSON, gzip or not). Protobuf requests are passed on
// as received bytes: the distributor routes them without decoding the spans.
package otlp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/grafana/dskit/services"
	"github.com/prometheus/client_golang/prometheus"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/vivace-dev/vivace/distributor/receiver"
	"github.com/vivace-dev/vivace/internal/model"
)

// Receiver is the OTLP receiver, a dskit service owning its two listeners.
type Receiver struct {
	services.Service

	cfg          Config
	multitenancy bool
	pusher       receiver.Pusher
	logger       *slog.Logger

	metrics receiver.Metrics

	grpcLis, httpLis net.Listener
	grpcSrv          *grpc.Server
	httpSrv          *http.Server
}

// New makes an OTLP receiver pushing through pusher.
func New(cfg Config, multitenancy bool, pusher receiver.Pusher, logger *slog.Logger, reg prometheus.Registerer) (*Receiver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := &Receiver{
		cfg:          cfg,
		multitenancy: multitenancy,
		pusher:       pusher,
		logger:       logger.With("component", "receiver-otlp"),
		metrics:      receiver.NewMetrics(reg, "otlp"),
	}
	r.Service = services.NewBasicService(r.starting, r.running, r.stopping)
	return r, nil
}

// GRPCAddr and HTTPAddr are the bound addresses, once started (nil if off).
func (r *Receiver) GRPCAddr() net.Addr { return addr(r.grpcLis) }
func (r *Receiver) HTTPAddr() net.Addr { return addr(r.httpLis) }

func addr(l net.Listener) net.Addr {
	if l == nil {
		return nil
	}
	return l.Addr()
}

func (r *Receiver) starting(context.Context) error {
	var err error
	if ep := r.cfg.Protocols.GRPC.Endpoint; ep != "" {
		if r.grpcLis, err = net.Listen("tcp", ep); err != nil {
			return fmt.Errorf("OTLP gRPC listen: %w", err)
		}
		r.grpcSrv = grpc.NewServer(
			grpc.ForceServerCodecV2(receiver.RawCodec{}),
			grpc.MaxRecvMsgSize(r.cfg.Protocols.GRPC.MaxRecvMsgSizeMiB<<20),
		)
		r.grpcSrv.RegisterService(&traceServiceDesc, r)
		r.logger.Info("listening", "protocol", "grpc", "addr", r.grpcLis.Addr().String())
	}
	if ep := r.cfg.Protocols.HTTP.Endpoint; ep != "" {
		if r.httpLis, err = net.Listen("tcp", ep); err != nil {
			if r.grpcLis != nil {
				r.grpcLis.Close()
			}
			return fmt.Errorf("OTLP HTTP listen: %w", err)
		}
		mux := http.NewServeMux()
		mux.HandleFunc("/v1/traces", r.handleHTTP)
		r.httpSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute}
		r.logger.Info("listening", "protocol", "http", "addr", r.httpLis.Addr().String())
	}
	return nil
}

func (r *Receiver) running(ctx context.Context) error {
	errc := make(chan error, 2)
	if r.grpcSrv != nil {
		go func() { errc <- r.grpcSrv.Serve(r.grpcLis) }()
	}
	if r.httpSrv != nil {
		go func() {
			if err := r.httpSrv.Serve(r.httpLis); !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}()
	}
	select {
	case <-ctx.Done():
		return nil
	case err := <-errc:
		return fmt.Errorf("OTLP receiver: %w", err)
	}
}

func (r *Receiver) stopping(error) error {
	if r.grpcSrv != nil {
		r.grpcSrv.GracefulStop()
	}
	if r.httpSrv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return r.httpSrv.Shutdown(ctx)
	}
	return nil
}

// traceServiceDesc is OTLP's TraceService with a handler that takes raw bytes.
var traceServiceDesc = grpc.ServiceDesc{
	ServiceName: "opentelemetry.proto.collector.trace.v1.TraceService",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Export",
		Handler: func(srv any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			var req receiver.RawRequest
			if err := dec(&req); err != nil {
				return nil, err
			}
			return srv.(*Receiver).exportGRPC(ctx, req.B)
		},
	}},
	Metadata: "opentelemetry/proto/collector/trace/v1/trace_service.proto",
}

func (r *Receiver) exportGRPC(ctx context.Context, req []byte) (*coltracepb.ExportTraceServiceResponse, error) {
	tenant, err := receiver.TenantFromGRPC(ctx, r.multitenancy)
	if err != nil {
		r.metrics.Refused.WithLabelValues("grpc", "tenant").Inc()
		return nil, status.Error(codes.Unauthenticated, err.Error())
	}
	if _, err := r.pusher.PushOTLP(ctx, tenant, req); err != nil {
		if errors.Is(err, receiver.ErrBadInput) {
			r.metrics.Refused.WithLabelValues("grpc", "malformed").Inc()
			return nil, status.Error(codes.InvalidArgument, err.Error())
		}
		r.metrics.Requests.WithLabelValues("grpc", receiver.Outcome(err)).Inc()
		receiver.LogPushFailure(r.logger, err, "tenant", tenant)
		return nil, receiver.GRPCStatus(err)
	}
	r.metrics.Requests.WithLabelValues("grpc", "ok").Inc()
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

func (r *Receiver) handleHTTP(w http.ResponseWriter, req *http.Request) {
	ct, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type"))
	isJSON := ct == "application/json"
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost) // a 405 must say what is allowed (RFC 9110 15.5.6)
		r.refuseHTTP(w, isJSON, http.StatusMethodNotAllowed, "method", "only POST is allowed")
		return
	}
	if !isJSON && ct != "application/x-protobuf" && ct != "application/protobuf" {
		r.refuseHTTP(w, isJSON, http.StatusUnsupportedMediaType, "content_type",
			fmt.Sprintf("content type %q is not supported: use application/x-protobuf or application/json", ct))
		return
	}
	tenant, err := model.ResolveTenant(r.multitenancy, req.Header.Get(model.TenantHeader))
	if err != nil {
		r.refuseHTTP(w, isJSON, http.StatusUnauthorized, "tenant", err.Error())
		return
	}
	limit := int64(r.cfg.Protocols.HTTP.MaxRecvMsgSizeMiB) << 20
	body, code, err := receiver.ReadBody(req, limit)
	if err != nil {
		reason := "body"
		if code == http.StatusRequestEntityTooLarge {
			reason = "too_large"
		}
		r.refuseHTTP(w, isJSON, code, reason, err.Error())
		return
	}
	if isJSON {
		if body, err = jsonToProto(body); err != nil {
			r.refuseHTTP(w, true, http.StatusBadRequest, "malformed", err.Error())
			return
		}
	}
	if _, err := r.pusher.PushOTLP(req.Context(), tenant, body); err != nil {
		if errors.Is(err, receiver.ErrBadInput) {
			r.refuseHTTP(w, isJSON, http.StatusBadRequest, "malformed", err.Error())
			return
		}
		r.metrics.Requests.WithLabelValues("http", receiver.Outcome(err)).Inc()
		receiver.LogPushFailure(r.logger, err, "tenant", tenant)
		receiver.SetRetryAfter(w.Header(), err)
		writeStatus(w, isJSON, receiver.HTTPStatus(err), receiver.GRPCCode(err), err.Error())
		return
	}
	r.metrics.Requests.WithLabelValues("http", "ok").Inc()
	writeMessage(w, isJSON, http.StatusOK, &coltracepb.ExportTraceServiceResponse{})
}

func (r *Receiver) refuseHTTP(w http.ResponseWriter, isJSON bool, code int, reason, msg string) {
	r.metrics.Refused.WithLabelValues("http", reason).Inc()
	grpcCode := codes.InvalidArgument
	if code == http.StatusUnauthorized {
		grpcCode = codes.Unauthenticated
	}
	writeStatus(w, isJSON, code, grpcCode, msg)
}

// writeStatus answers with a google.rpc.Status body, as OTLP/HTTP specifies.
func writeStatus(w http.ResponseWriter, isJSON bool, code int, grpcCode codes.Code, msg string) {
	writeMessage(w, isJSON, code, &spb.Status{Code: int32(grpcCode), Message: msg})
}

func writeMessage(w http.ResponseWriter, isJSON bool, code int, m proto.Message) {
	var b []byte
	if isJSON {
		b, _ = protojson.Marshal(m)
		w.Header().Set("Content-Type", "application/json")
	} else {
		b, _ = proto.Marshal(m)
		w.Header().Set("Content-Type", "application/x-protobuf")
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(code)
	w.Write(b)
}
