package jaeger

import (
	"errors"
	"fmt"
	"mime"
	"net/http"

	"github.com/vivace-dev/vivace/distributor/receiver"
	"github.com/vivace-dev/vivace/internal/model"
)

// thriftContentTypes are the content types the Jaeger collector accepts on
// POST /api/traces.
var thriftContentTypes = map[string]bool{
	"application/x-thrift":                 true,
	"application/vnd.apache.thrift.binary": true,
}

// handleThriftHTTP is the Jaeger collector's POST /api/traces. Like the
// collector it answers 202 Accepted with no body, and errors in plain text.
// Where the collector answers 400 to an unsupported content type and 500 to
// a failed write, we answer the more precise 415 and 503 (Jaeger clients
// only look at 2xx or not).
func (r *Receiver) handleThriftHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost) // a 405 must say what is allowed (RFC 9110 15.5.6)
		r.refuseHTTP(w, http.StatusMethodNotAllowed, &badRequest{reason: "method", err: errors.New("only POST is allowed")})
		return
	}
	ct, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type"))
	if !thriftContentTypes[ct] {
		r.refuseHTTP(w, http.StatusUnsupportedMediaType, &badRequest{reason: "content_type",
			err: fmt.Errorf("content type %q is not supported: use application/x-thrift or application/vnd.apache.thrift.binary", ct)})
		return
	}
	tenant, err := model.ResolveTenant(r.multitenancy, req.Header.Get(model.TenantHeader))
	if err != nil {
		r.refuseHTTP(w, http.StatusUnauthorized, &badRequest{reason: "tenant", err: err})
		return
	}
	body, code, err := receiver.ReadBody(req, int64(r.cfg.Protocols.ThriftHTTP.MaxRecvMsgSizeMiB)<<20)
	if err != nil {
		reason := "body"
		if code == http.StatusRequestEntityTooLarge {
			reason = "too_large"
		}
		r.refuseHTTP(w, code, &badRequest{reason: reason, err: err})
		return
	}
	batch, err := decodeThriftBatch(body)
	if err != nil {
		r.refuseHTTP(w, http.StatusBadRequest, err.(*badRequest))
		return
	}
	otlp, spans, err := thriftToOTLP(batch)
	if err != nil {
		r.refuseHTTP(w, http.StatusBadRequest, err.(*badRequest))
		return
	}
	if err := r.pushOTLP(req.Context(), protoThriftHTTP, tenant, otlp, spans); err != nil {
		var br *badRequest
		if errors.As(err, &br) {
			r.refuseHTTP(w, http.StatusBadRequest, br)
			return
		}
		receiver.LogPushFailure(r.logger, err, "tenant", tenant, "protocol", protoThriftHTTP)
		receiver.WriteHTTPError(w, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

func (r *Receiver) refuseHTTP(w http.ResponseWriter, code int, br *badRequest) {
	r.refuse(protoThriftHTTP, br)
	http.Error(w, br.Error(), code)
}
