package otlp

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// idFields are the OTLP JSON fields that hold IDs as hex, where protobuf's
// JSON mapping would expect base64 (OTLP specification, JSON encoding).
var idFields = map[string]bool{
	"traceId": true, "spanId": true, "parentSpanId": true,
	"trace_id": true, "span_id": true, "parent_span_id": true,
}

// jsonToProto turns an OTLP/JSON ExportTraceServiceRequest into its protobuf
// encoding. Unknown fields are ignored, as the specification requires.
func jsonToProto(body []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("invalid JSON: data after the top-level value")
	}
	if err := hexIDsToBase64(doc); err != nil {
		return nil, err
	}
	normalized, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	var req coltracepb.ExportTraceServiceRequest
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(normalized, &req); err != nil {
		return nil, fmt.Errorf("invalid OTLP JSON: %w", err)
	}
	return proto.Marshal(&req)
}

func hexIDsToBase64(v any) error {
	switch v := v.(type) {
	case map[string]any:
		for k, val := range v {
			if s, ok := val.(string); ok && idFields[k] {
				b, err := hex.DecodeString(s)
				if err != nil {
					return fmt.Errorf("invalid OTLP JSON: %s %q is not hex", k, s)
				}
				v[k] = base64.StdEncoding.EncodeToString(b)
				continue
			}
			if err := hexIDsToBase64(val); err != nil {
				return err
			}
		}
	case []any:
		for _, e := range v {
			if err := hexIDsToBase64(e); err != nil {
				return err
			}
		}
	}
	return nil
}
