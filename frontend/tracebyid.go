package frontend

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"

	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/vivace-dev/vivace/internal/model"
	"github.com/vivace-dev/vivace/internal/vivacepb"
)

const (
	contentTypeJSON     = "application/json"
	contentTypeProtobuf = "application/protobuf"
)

// traceByIDV1 answers GET /api/traces/<id> as Tempo does: a bare Trace
// ({"batches": [...]} in JSON), and 422 for a trace over max_bytes_per_trace.
func (f *Frontend) traceByIDV1(w http.ResponseWriter, r *http.Request) error {
	tr, err := f.parseTraceRequest(r)
	if err != nil {
		return err
	}
	td, _, err := f.findTrace(r.Context(), tr)
	if err != nil {
		return err
	}
	if td == nil {
		return errTraceNotFound
	}
	encoded, err := proto.Marshal(td)
	if err != nil {
		return err
	}
	if max := f.limits.MaxBytesPerTrace(tr.tenant); max > 0 && len(encoded) > max {
		return &httpError{http.StatusUnprocessableEntity, fmt.Sprintf("trace exceeds max size (max bytes: %d)", max)}
	}
	if tr.proto {
		// tempopb.Trace and OTLP TracesData share one wire form.
		return write(w, contentTypeProtobuf, encoded)
	}
	body, err := batchesJSON(td)
	if err != nil {
		return err
	}
	return write(w, contentTypeJSON, body)
}

// traceByIDV2 answers GET /api/v2/traces/<id> with Tempo's
// TraceByIDResponse; a trace over max_bytes_per_trace is cut to what fits
// and marked PARTIAL.
func (f *Frontend) traceByIDV2(w http.ResponseWriter, r *http.Request) error {
	tr, err := f.parseTraceRequest(r)
	if err != nil {
		return err
	}
	td, inspected, err := f.findTrace(r.Context(), tr)
	if err != nil {
		return err
	}
	if td == nil {
		return errTraceNotFound
	}
	resp := &vivacepb.TraceByIDResponse{Metrics: &vivacepb.TraceByIDMetrics{InspectedBytes: inspected}}
	if max := f.limits.MaxBytesPerTrace(tr.tenant); max > 0 {
		var cut bool
		if td, cut = model.Truncate(td, max); cut {
			resp.Status = vivacepb.PartialStatus_PARTIAL
			resp.Message = fmt.Sprintf("Trace exceeds maximum size of %d bytes, a partial trace is returned", max)
		}
	}
	if tr.proto {
		if resp.Trace, err = proto.Marshal(td); err != nil {
			return err
		}
		b, err := proto.Marshal(resp)
		if err != nil {
			return err
		}
		return write(w, contentTypeProtobuf, b)
	}
	body, err := v2JSON(td, resp)
	if err != nil {
		return err
	}
	return write(w, contentTypeJSON, body)
}

func write(w http.ResponseWriter, contentType string, body []byte) error {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	_, err := w.Write(body)
	return err
}

// batchesJSON renders Tempo's v1 trace JSON: {"batches":[<ResourceSpans>...]},
// each ResourceSpans in protobuf JSON (base64 IDs, enum names, int64 strings).
func batchesJSON(td *tracev1.TracesData) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(`{"batches":[`)
	for i, rs := range td.ResourceSpans {
		if i > 0 {
			b.WriteByte(',')
		}
		j, err := protojson.Marshal(rs)
		if err != nil {
			return nil, err
		}
		b.Write(j)
	}
	b.WriteString(`]}`)
	return b.Bytes(), nil
}

// v2JSON renders Tempo's TraceByIDResponse JSON:
// {"trace":{"resourceSpans":[...]},"metrics":{...},"status":"PARTIAL","message":"..."},
// with zero-valued fields left out as protobuf JSON does.
func v2JSON(td *tracev1.TracesData, resp *vivacepb.TraceByIDResponse) ([]byte, error) {
	trace, err := protojson.Marshal(td)
	if err != nil {
		return nil, err
	}
	// The rest of the envelope is a TraceByIDResponse without its trace.
	rest, err := protojson.Marshal(resp)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteString(`{"trace":`)
	b.Write(trace)
	if rest = bytes.TrimSpace(rest); len(rest) > 2 {
		b.WriteByte(',')
		b.Write(rest[1:]) // "metrics":...}, after the opening brace
	} else {
		b.WriteByte('}')
	}
	return b.Bytes(), nil
}
