// Package zipkin receives Zipkin spans over HTTP (:9411) as a Zipkin server
// does, so that service meshes and gateways (Envoy, Istio, Kuma, Kong,
// Traefik) and Zipkin tracers post to Vivace unchanged: POST /api/v2/spans
// with JSON or zipkin.proto3 protobuf, POST /api/v1/spans with v1 JSON,
// gzipped or not, answered 202 Accepted with an empty body. Spans are
// translated to OTLP (see translate.go) and pushed.
package zipkin

import (
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vivace-dev/vivace/distributor/receiver"
	"github.com/vivace-dev/vivace/internal/model"
)

// Receiver is the Zipkin receiver, a dskit service owning its listener.
type Receiver struct {
	*receiver.HTTPServer

	cfg          Config
	multitenancy bool
	pusher       receiver.Pusher
	logger       *slog.Logger
	metrics      receiver.Metrics
}

// New makes a Zipkin receiver pushing through pusher.
func New(cfg Config, multitenancy bool, pusher receiver.Pusher, logger *slog.Logger, reg prometheus.Registerer) (*Receiver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := &Receiver{
		cfg:          cfg,
		multitenancy: multitenancy,
		pusher:       pusher,
		logger:       logger.With("component", "receiver-zipkin"),
		metrics:      receiver.NewMetrics(reg, "zipkin"),
	}
	r.HTTPServer = receiver.NewHTTPServer("Zipkin", cfg.Endpoint, r.Handler(), r.logger)
	return r, nil
}

// Handler serves Zipkin's collector API.
func (r *Receiver) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/api/v2/spans", func(w http.ResponseWriter, req *http.Request) { r.handle(w, req, false) })
	mux.HandleFunc("/api/v1/spans", func(w http.ResponseWriter, req *http.Request) { r.handle(w, req, true) })
	return mux
}

// format is a wire format, and the protocol label of the metrics.
type format string

const (
	formatUnknown format = "http" // refused before the format was known
	formatJSONV2  format = "v2_json"
	formatProto   format = "v2_proto"
	formatJSONV1  format = "v1_json"
)

// requestFormat picks the format from the path and Content-Type. Like a
// Zipkin server, a request without a Content-Type is JSON.
func requestFormat(req *http.Request, v1 bool) (format, error) {
	raw := req.Header.Get("Content-Type")
	ct, _, err := mime.ParseMediaType(raw)
	switch {
	case raw == "":
		ct = "application/json"
	case err != nil:
		return formatUnknown, fmt.Errorf("invalid Content-Type %q: %v", raw, err)
	}
	switch {
	case ct == "application/json" && v1:
		return formatJSONV1, nil
	case ct == "application/json":
		return formatJSONV2, nil
	case v1 && ct == "application/x-thrift":
		return formatUnknown, errors.New("Zipkin v1 Thrift is not supported: post v1 JSON, or v2 JSON or protobuf to /api/v2/spans")
	case v1:
		return formatUnknown, fmt.Errorf("content type %q is not supported on /api/v1/spans: use application/json", ct)
	case ct == "application/x-protobuf" || ct == "application/protobuf":
		return formatProto, nil
	}
	return formatUnknown, fmt.Errorf("content type %q is not supported: use application/json or application/x-protobuf", ct)
}

func (r *Receiver) handle(w http.ResponseWriter, req *http.Request, v1 bool) {
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost) // a 405 must say what is allowed (RFC 9110 15.5.6)
		r.refuse(w, formatUnknown, http.StatusMethodNotAllowed, "method", "only POST is allowed", 0)
		return
	}
	f, err := requestFormat(req, v1)
	if err != nil {
		r.refuse(w, f, http.StatusUnsupportedMediaType, "content_type", err.Error(), 0)
		return
	}
	tenant, err := model.ResolveTenant(r.multitenancy, req.Header.Get(model.TenantHeader))
	if err != nil {
		r.refuse(w, f, http.StatusUnauthorized, "tenant", err.Error(), 0)
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
		r.refuse(w, f, code, reason, err.Error(), 0)
		return
	}

	// A request is accepted or refused whole: one bad span refuses all of
	// them, with a message naming it, and nothing of it is pushed. The
	// sender can fix and resend the batch, and no half of a batch is stored
	// twice when it does.
	b, n, err := decode(f, body)
	if err != nil {
		reason := "invalid_span"
		if !errors.As(err, new(*spanError)) || errors.Is(err, errSyntax) {
			reason = "malformed"
		}
		r.refuse(w, f, http.StatusBadRequest, reason, err.Error(), n)
		return
	}
	if len(b.spans) == 0 {
		r.metrics.Requests.WithLabelValues(string(f), "ok").Inc()
		w.WriteHeader(http.StatusAccepted)
		return
	}
	buf := requestBufs.Get().(*[]byte)
	otlp := appendRequest((*buf)[:0], b)
	_, err = r.pusher.PushOTLP(req.Context(), tenant, otlp)
	if cap(otlp) <= maxPooledBytes {
		*buf = otlp[:0]
		requestBufs.Put(buf)
	}
	if err != nil {
		if errors.Is(err, receiver.ErrBadInput) {
			r.refuse(w, f, http.StatusBadRequest, "malformed", err.Error(), len(b.spans))
			return
		}
		r.metrics.Requests.WithLabelValues(string(f), receiver.Outcome(err)).Inc()
		receiver.LogPushFailure(r.logger, err, "tenant", tenant)
		receiver.WriteHTTPError(w, err)
		return
	}
	r.metrics.Requests.WithLabelValues(string(f), "ok").Inc()
	w.WriteHeader(http.StatusAccepted)
}

// requestBufs holds the buffers of encoded requests between requests. A
// buffer goes back as soon as PushOTLP returns: the distributor keeps no
// reference to the request's bytes past that. model.SplitByTraceTruncating
// copies what it routes into buffers of its own, which are all the pushes to
// ingesters (even those that go on past the quorum) hold, and the log of
// received spans decodes the request, copying, before PushOTLP returns.
var requestBufs = sync.Pool{New: func() any { return new([]byte) }}

// decode reads a body in format f. n is the number of spans seen, for the
// refused-spans count when err is not nil.
func decode(f format, body []byte) (b *batch, n int, err error) {
	b = &batch{}
	switch f {
	case formatProto:
		n, err = decodeProto(body, b)
	case formatJSONV1:
		n, err = decodeJSONV1(string(body), b)
	default:
		// Estimate: a typical span is a few hundred bytes of JSON.
		b.spans = make([]span, 0, len(body)/400+1)
		b.tags = make([]tag, 0, len(body)/60+1)
		n, err = decodeJSONV2(string(body), b)
	}
	return b, n, err
}

func (r *Receiver) refuse(w http.ResponseWriter, f format, code int, reason, msg string, spans int) {
	r.metrics.Refused.WithLabelValues(string(f), reason).Inc()
	if spans > 0 {
		r.metrics.RefusedSpans.WithLabelValues(reason).Add(float64(spans))
	}
	r.logger.Debug("refused request", "protocol", string(f), "reason", reason, "err", msg)
	http.Error(w, msg, code)
}
