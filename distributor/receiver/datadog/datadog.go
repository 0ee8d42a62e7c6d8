// Package datadog receives spans the way the Datadog agent's trace intake
// does (:8126), so dd-trace libraries, Envoy's and Kuma's Datadog tracer
// point at Vivace unchanged:
//
//   - PUT/POST /v0.3/traces: JSON (the default) or msgpack
//     (Content-Type application/msgpack); answered 200 "OK".
//   - PUT/POST /v0.4/traces: msgpack (or JSON with a JSON Content-Type).
//   - PUT/POST /v0.5/traces: msgpack with a string table.
//   - PUT/POST /v0.7/traces: msgpack, one tracer payload (the agent's
//     pb.TracerPayload: trace chunks with chunk-level tags, and the
//     tracer's language, versions, env, host and container). The agent
//     documents it and lists it in /info, the collector's datadog receiver
//     takes it, and libdatadog's trace exporter (the native pipeline of
//     several dd-trace libraries) can be set to send it, though its
//     default, like every dd-trace library's, is v0.4.
//   - GET /info: the endpoints above, so tracers that ask (dd-trace-go)
//     stay on them.
//
// v0.4, v0.5 and v0.7 are answered 200 with {"rate_by_service":{...}} as the
// agent does: every service samples at 1, so tracers keep sending
// everything. Spans are translated to OTLP (see translate.go) and pushed
// as one request. Unlike Zipkin and Jaeger, a span with a zero trace or
// span ID does not refuse the request: as the agent does, it is dropped
// (and counted) and the rest is kept.
package datadog

import (
	"errors"
	"log/slog"
	"mime"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/vivace-dev/vivace/distributor/receiver"
	"github.com/vivace-dev/vivace/internal/model"
)

// Receiver is the Datadog receiver, a dskit service owning its listener.
type Receiver struct {
	*receiver.HTTPServer

	cfg          Config
	multitenancy bool
	pusher       receiver.Pusher
	logger       *slog.Logger
	metrics      receiver.Metrics
}

// New makes a Datadog receiver pushing through pusher.
func New(cfg Config, multitenancy bool, pusher receiver.Pusher, logger *slog.Logger, reg prometheus.Registerer) (*Receiver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := &Receiver{
		cfg:          cfg,
		multitenancy: multitenancy,
		pusher:       pusher,
		logger:       logger.With("component", "receiver-datadog"),
		metrics:      receiver.NewMetrics(reg, "datadog"),
	}
	r.HTTPServer = receiver.NewHTTPServer("Datadog", cfg.Endpoint, r.Handler(), r.logger)
	return r, nil
}

// version is an intake endpoint's version, and the protocol label of the metrics.
type version string

const (
	v03 version = "v0.3"
	v04 version = "v0.4"
	v05 version = "v0.5"
	v07 version = "v0.7"
)

// infoBody is GET /info: what dd-trace-go reads (endpoints, client_drop_p0s,
// config) with the agent's field names. Not advertising /v0.6/stats keeps
// tracers from computing stats client-side and dropping P0 traces, and not
// advertising /v1.0/traces keeps dd-trace-go on v0.4.
const infoBody = `{"version":"vivace","endpoints":["/v0.3/traces","/v0.4/traces","/v0.5/traces","/v0.7/traces"],` +
	`"client_drop_p0s":false,"span_meta_structs":false,"long_running_spans":false,"config":{"statsd_port":0}}` + "\n"

// rateBody is the agent's answer to v0.4, v0.5 and v0.7: "service:,env:" is the
// default rate, applied to every service without its own.
const rateBody = `{"rate_by_service":{"service:,env:":1}}` + "\n"

// Handler serves the agent's trace intake.
func (r *Receiver) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/v0.3/traces", func(w http.ResponseWriter, req *http.Request) { r.handle(w, req, v03) })
	mux.HandleFunc("/v0.4/traces", func(w http.ResponseWriter, req *http.Request) { r.handle(w, req, v04) })
	mux.HandleFunc("/v0.5/traces", func(w http.ResponseWriter, req *http.Request) { r.handle(w, req, v05) })
	mux.HandleFunc("/v0.7/traces", func(w http.ResponseWriter, req *http.Request) { r.handle(w, req, v07) })
	mux.HandleFunc("/info", func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodGet && req.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "only GET is allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(infoBody))
	})
	return mux
}

// isJSON says whether a payload of version v with this Content-Type is
// JSON: v0.3 is JSON unless it says msgpack, v0.4 msgpack unless it says
// JSON, v0.5 and v0.7 always msgpack.
func isJSON(v version, contentType string) bool {
	ct, _, _ := mime.ParseMediaType(contentType)
	switch v {
	case v03:
		return ct != "application/msgpack"
	case v04:
		return ct == "application/json" || ct == "text/json"
	}
	return false
}

// decode reads a payload of version v; a v0.7 one also tells more of t.
func decode(v version, contentType string, body []byte, t *tracer) ([]span, error) {
	switch {
	case isJSON(v, contentType):
		return decodeJSON(body)
	case v == v05:
		return decodeV05(body)
	case v == v07:
		return decodeV07(body, t)
	}
	return decodeV04(body)
}

func (r *Receiver) handle(w http.ResponseWriter, req *http.Request, v version) {
	if req.Method != http.MethodPost && req.Method != http.MethodPut {
		w.Header().Set("Allow", "POST, PUT")
		r.refuse(w, v, http.StatusMethodNotAllowed, "method", "only POST and PUT are allowed", 0)
		return
	}
	tenant, err := model.ResolveTenant(r.multitenancy, req.Header.Get(model.TenantHeader))
	if err != nil {
		r.refuse(w, v, http.StatusUnauthorized, "tenant", err.Error(), 0)
		return
	}
	body, code, err := receiver.ReadBody(req, r.cfg.MaxRequestBodySize)
	if err != nil {
		reason := "body"
		switch code {
		case http.StatusRequestEntityTooLarge:
			reason = "too_large"
		case http.StatusUnsupportedMediaType:
			reason = "content_encoding"
		}
		r.refuse(w, v, code, reason, err.Error(), 0)
		return
	}
	t := tracer{
		lang:    req.Header.Get("Datadog-Meta-Lang"),
		version: req.Header.Get("Datadog-Meta-Tracer-Version"),
	}
	spans, err := decode(v, req.Header.Get("Content-Type"), body, &t)
	if err != nil {
		r.refuse(w, v, http.StatusBadRequest, "malformed", err.Error(), 0)
		return
	}
	otlp, kept, dropped := translate(spans, t)
	if dropped > 0 {
		r.metrics.RefusedSpans.WithLabelValues("invalid_span").Add(float64(dropped))
	}
	if kept > 0 {
		enc, err := proto.Marshal(otlp)
		if err != nil { // a translation bug, not the client's fault
			r.metrics.Requests.WithLabelValues(string(v), "error").Inc()
			r.logger.Error("encode OTLP", "tenant", tenant, "err", err)
			http.Error(w, "encode OTLP: "+err.Error(), http.StatusInternalServerError)
			return
		}
		if _, err := r.pusher.PushOTLP(req.Context(), tenant, enc); err != nil {
			if errors.Is(err, receiver.ErrBadInput) {
				r.refuse(w, v, http.StatusBadRequest, "malformed", err.Error(), kept)
				return
			}
			r.metrics.Requests.WithLabelValues(string(v), receiver.Outcome(err)).Inc()
			receiver.LogPushFailure(r.logger, err, "tenant", tenant)
			receiver.WriteHTTPError(w, err)
			return
		}
	}
	r.metrics.Requests.WithLabelValues(string(v), "ok").Inc()
	if v == v03 {
		_, _ = w.Write([]byte("OK\n"))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(rateBody))
}

func (r *Receiver) refuse(w http.ResponseWriter, v version, code int, reason, msg string, spans int) {
	r.metrics.Refused.WithLabelValues(string(v), reason).Inc()
	if spans > 0 {
		r.metrics.RefusedSpans.WithLabelValues(reason).Add(float64(spans))
	}
	r.logger.Debug("refused request", "protocol", string(v), "reason", reason, "err", msg)
	http.Error(w, msg, code)
}
