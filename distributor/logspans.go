package distributor

import (
	"encoding/hex"

	commonv1 "go.opentelemetry.io/proto/otlp/common/v1"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// logSpans logs each span of an accepted request. It decodes the request,
// which the routing path never does: it costs only when the option is on.
func (d *Distributor) logSpans(tenant string, req []byte) {
	cfg := d.cfg.LogReceivedSpans
	td := &tracev1.TracesData{} // same wire form as ExportTraceServiceRequest
	if err := proto.Unmarshal(req, td); err != nil {
		d.logger.Warn("log received spans: undecodable request", "tenant", tenant, "err", err)
		return
	}
	for _, rs := range td.ResourceSpans {
		service := ""
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.Key == "service.name" {
				service = kv.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				if cfg.FilterByStatusError && s.GetStatus().GetCode() != tracev1.Status_STATUS_CODE_ERROR {
					continue
				}
				attrs := []any{
					"tenant", tenant,
					"trace_id", hex.EncodeToString(s.TraceId),
					"span_id", hex.EncodeToString(s.SpanId),
					"service", service,
					"span_name", s.Name,
					"span_kind", s.Kind.String(),
					"span_status", s.GetStatus().GetCode().String(),
				}
				if cfg.IncludeAllAttributes {
					attrs = appendAttrs(attrs, "resource.", rs.GetResource().GetAttributes())
					attrs = appendAttrs(attrs, "span.", s.Attributes)
				}
				d.logger.Info("received span", attrs...)
			}
		}
	}
}

func appendAttrs(dst []any, prefix string, kvs []*commonv1.KeyValue) []any {
	for _, kv := range kvs {
		dst = append(dst, prefix+kv.Key, anyValueString(kv.Value))
	}
	return dst
}

// anyValueString renders an attribute value: strings as they are, the rest
// in protobuf JSON.
func anyValueString(v *commonv1.AnyValue) any {
	switch x := v.GetValue().(type) {
	case *commonv1.AnyValue_StringValue:
		return x.StringValue
	case *commonv1.AnyValue_BoolValue:
		return x.BoolValue
	case *commonv1.AnyValue_IntValue:
		return x.IntValue
	case *commonv1.AnyValue_DoubleValue:
		return x.DoubleValue
	}
	b, _ := protojson.Marshal(v)
	return string(b)
}
