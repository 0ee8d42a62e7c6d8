package datadog

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/tinylib/msgp/msgp"
)

// span is one Datadog span as decoded, before translation. Strings alias
// the request body (see str), which must not change until the span is
// translated and encoded.
type span struct {
	service, name, resource, typ string
	traceID, spanID, parentID    uint64
	start, duration              int64
	error                        int32
	meta                         []tag
	metrics                      []metric
}

type tag struct{ key, value string }

type metric struct {
	key   string
	value float64
}

// errMalformed marks a body that is not the format's msgpack or JSON.
var errMalformed = errors.New("malformed payload")

func malformed(what string, err error) error {
	return fmt.Errorf("%w: %s: %v", errMalformed, what, err)
}

// str makes a string of b without copying: b points into the request
// body, which outlives the translation and is never written to. Invalid
// UTF-8 (which OTLP cannot carry) is replaced, as the agent does.
func str(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	s := unsafe.String(unsafe.SliceData(b), len(b))
	if !utf8.ValidString(s) {
		return strings.ToValidUTF8(s, "\uFFFD")
	}
	return s
}

// readString reads a string leniently, as the agent does: nil is "", and
// bin is taken as a string.
func readString(b []byte) (string, []byte, error) {
	switch msgp.NextType(b) {
	case msgp.NilType:
		o, err := msgp.ReadNilBytes(b)
		return "", o, err
	case msgp.BinType:
		v, o, err := msgp.ReadBytesZC(b)
		return str(v), o, err
	}
	v, o, err := msgp.ReadStringZC(b)
	return str(v), o, err
}

// readUint64 reads any msgpack number (or nil, as 0) as a uint64: tracers
// write IDs as signed or unsigned integers of any width, some as floats.
func readUint64(b []byte) (uint64, []byte, error) {
	switch msgp.NextType(b) {
	case msgp.NilType:
		o, err := msgp.ReadNilBytes(b)
		return 0, o, err
	case msgp.IntType:
		v, o, err := msgp.ReadInt64Bytes(b)
		return uint64(v), o, err
	case msgp.Float64Type, msgp.Float32Type:
		v, o, err := readFloat64(b)
		if v < 0 || v >= math.MaxUint64 || v != math.Trunc(v) {
			return 0, o, fmt.Errorf("%v is not an unsigned integer", v)
		}
		return uint64(v), o, err
	}
	return msgp.ReadUint64Bytes(b)
}

func readInt64(b []byte) (int64, []byte, error) {
	v, o, err := readUint64(b)
	return int64(v), o, err
}

func readFloat64(b []byte) (float64, []byte, error) {
	switch msgp.NextType(b) {
	case msgp.NilType:
		o, err := msgp.ReadNilBytes(b)
		return 0, o, err
	case msgp.Float32Type:
		v, o, err := msgp.ReadFloat32Bytes(b)
		return float64(v), o, err
	case msgp.IntType:
		v, o, err := msgp.ReadInt64Bytes(b)
		return float64(v), o, err
	case msgp.UintType:
		v, o, err := msgp.ReadUint64Bytes(b)
		return float64(v), o, err
	}
	return msgp.ReadFloat64Bytes(b)
}

// readArrayHeader reads an array header, nil counting as empty.
func readArrayHeader(b []byte) (uint32, []byte, error) {
	if msgp.IsNil(b) {
		o, err := msgp.ReadNilBytes(b)
		return 0, o, err
	}
	return msgp.ReadArrayHeaderBytes(b)
}

func readMapHeader(b []byte) (uint32, []byte, error) {
	if msgp.IsNil(b) {
		o, err := msgp.ReadNilBytes(b)
		return 0, o, err
	}
	return msgp.ReadMapHeaderBytes(b)
}

// capHint bounds a preallocation by what the rest of the body can hold:
// every element takes at least one byte, so a lying header cannot make us
// allocate more than the body's size.
func capHint(n uint32, rest []byte) int { return int(min(n, uint32(len(rest)))) }

// decodeV04 reads a v0.4 (and msgpack v0.3) payload: an array of traces,
// each an array of spans, each a map keyed by field name.
func decodeV04(b []byte) ([]span, error) {
	nt, b, err := readArrayHeader(b)
	if err != nil {
		return nil, malformed("traces", err)
	}
	spans := make([]span, 0, capHint(nt, b)) // at least one span per trace, usually
	for i := range nt {
		var ns uint32
		if ns, b, err = readArrayHeader(b); err != nil {
			return nil, malformed(fmt.Sprintf("trace %d", i), err)
		}
		for j := range ns {
			var s span
			if b, err = decodeSpanMap(b, &s); err != nil {
				return nil, malformed(fmt.Sprintf("trace %d span %d", i, j), err)
			}
			spans = append(spans, s)
		}
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the traces", errMalformed, len(b))
	}
	return spans, nil
}

func decodeSpanMap(b []byte, s *span) ([]byte, error) {
	n, b, err := readMapHeader(b)
	if err != nil {
		return b, err
	}
	for range n {
		var k []byte
		if k, b, err = msgp.ReadMapKeyZC(b); err != nil {
			return b, err
		}
		switch string(k) {
		case "service":
			s.service, b, err = readString(b)
		case "name":
			s.name, b, err = readString(b)
		case "resource":
			s.resource, b, err = readString(b)
		case "type":
			s.typ, b, err = readString(b)
		case "trace_id":
			s.traceID, b, err = readUint64(b)
		case "span_id":
			s.spanID, b, err = readUint64(b)
		case "parent_id":
			s.parentID, b, err = readUint64(b)
		case "start":
			s.start, b, err = readInt64(b)
		case "duration":
			s.duration, b, err = readInt64(b)
		case "error":
			var v int64
			v, b, err = readInt64(b)
			s.error = int32(v)
		case "meta":
			b, err = decodeMeta(b, s)
		case "metrics":
			b, err = decodeMetrics(b, s)
		default: // meta_struct, span_links, span_events, and what comes next
			b, err = msgp.Skip(b)
		}
		if err != nil {
			return b, fmt.Errorf("%s: %w", k, err)
		}
	}
	return b, nil
}

func decodeMeta(b []byte, s *span) ([]byte, error) {
	n, b, err := readMapHeader(b)
	if err != nil {
		return b, err
	}
	s.meta = make([]tag, 0, capHint(n, b))
	for range n {
		var t tag
		if t.key, b, err = readString(b); err != nil {
			return b, err
		}
		if t.value, b, err = readString(b); err != nil {
			return b, err
		}
		s.meta = append(s.meta, t)
	}
	return b, nil
}

func decodeMetrics(b []byte, s *span) ([]byte, error) {
	n, b, err := readMapHeader(b)
	if err != nil {
		return b, err
	}
	s.metrics = make([]metric, 0, capHint(n, b))
	for range n {
		var m metric
		if m.key, b, err = readString(b); err != nil {
			return b, err
		}
		if m.value, b, err = readFloat64(b); err != nil {
			return b, err
		}
		s.metrics = append(s.metrics, m)
	}
	return b, nil
}

// decodeV05 reads a v0.5 payload: [strings, traces], where a span is an
// array of 12 fields and every string is an index into strings.
func decodeV05(b []byte) ([]span, error) {
	n, b, err := msgp.ReadArrayHeaderBytes(b)
	if err != nil {
		return nil, malformed("payload", err)
	}
	if n != 2 {
		return nil, fmt.Errorf("%w: a v0.5 payload is an array of 2 (strings, traces), not %d", errMalformed, n)
	}
	ns, b, err := msgp.ReadArrayHeaderBytes(b)
	if err != nil {
		return nil, malformed("string table", err)
	}
	dict := make([]string, 0, capHint(ns, b))
	for i := range ns {
		var s string
		if s, b, err = readString(b); err != nil {
			return nil, malformed(fmt.Sprintf("string %d", i), err)
		}
		dict = append(dict, s)
	}
	lookup := func(b []byte) (string, []byte, error) {
		i, o, err := msgp.ReadUint32Bytes(b)
		if err != nil {
			return "", o, err
		}
		if int(i) >= len(dict) {
			return "", o, fmt.Errorf("string index %d is outside the table of %d", i, len(dict))
		}
		return dict[i], o, nil
	}
	nt, b, err := msgp.ReadArrayHeaderBytes(b)
	if err != nil {
		return nil, malformed("traces", err)
	}
	spans := make([]span, 0, capHint(nt, b))
	for i := range nt {
		var nspans uint32
		if nspans, b, err = msgp.ReadArrayHeaderBytes(b); err != nil {
			return nil, malformed(fmt.Sprintf("trace %d", i), err)
		}
		for j := range nspans {
			var s span
			if b, err = decodeSpanV05(b, &s, lookup); err != nil {
				return nil, malformed(fmt.Sprintf("trace %d span %d", i, j), err)
			}
			spans = append(spans, s)
		}
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the traces", errMalformed, len(b))
	}
	return spans, nil
}

func decodeSpanV05(b []byte, s *span, lookup func([]byte) (string, []byte, error)) ([]byte, error) {
	n, b, err := msgp.ReadArrayHeaderBytes(b)
	if err != nil {
		return b, err
	}
	if n != 12 {
		return b, fmt.Errorf("a v0.5 span is an array of 12, not %d", n)
	}
	field := 0
	fail := func(err error) ([]byte, error) { return b, fmt.Errorf("field %d: %w", field, err) }
	if s.service, b, err = lookup(b); err != nil {
		return fail(err)
	}
	field++
	if s.name, b, err = lookup(b); err != nil {
		return fail(err)
	}
	field++
	if s.resource, b, err = lookup(b); err != nil {
		return fail(err)
	}
	field++
	if s.traceID, b, err = readUint64(b); err != nil {
		return fail(err)
	}
	field++
	if s.spanID, b, err = readUint64(b); err != nil {
		return fail(err)
	}
	field++
	if s.parentID, b, err = readUint64(b); err != nil {
		return fail(err)
	}
	field++
	if s.start, b, err = readInt64(b); err != nil {
		return fail(err)
	}
	field++
	if s.duration, b, err = readInt64(b); err != nil {
		return fail(err)
	}
	field++
	var e int64
	if e, b, err = readInt64(b); err != nil {
		return fail(err)
	}
	s.error = int32(e)
	field++
	if n, b, err = readMapHeader(b); err != nil {
		return fail(err)
	}
	s.meta = make([]tag, 0, capHint(n, b))
	for range n {
		var t tag
		if t.key, b, err = lookup(b); err != nil {
			return fail(err)
		}
		if t.value, b, err = lookup(b); err != nil {
			return fail(err)
		}
		s.meta = append(s.meta, t)
	}
	field++
	if n, b, err = readMapHeader(b); err != nil {
		return fail(err)
	}
	s.metrics = make([]metric, 0, capHint(n, b))
	for range n {
		var m metric
		if m.key, b, err = lookup(b); err != nil {
			return fail(err)
		}
		if m.value, b, err = readFloat64(b); err != nil {
			return fail(err)
		}
		s.metrics = append(s.metrics, m)
	}
	field++
	if s.typ, b, err = lookup(b); err != nil {
		return fail(err)
	}
	return b, nil
}

// decodeV07 reads a v0.7 payload: one msgpack TracerPayload, the agent's
// pb.TracerPayload (datadog/trace/tracer_payload.proto) with its msgp keys.
// It is a map of container_id, language_name, language_version,
// tracer_version, runtime_id, chunks, tags, env, hostname and app_version;
// a chunk is a map of priority, origin, spans (v0.4 span maps), tags and
// dropped_trace. The payload's fields that describe the tracer and its
// process go to t (when set, they win over the request headers); a
// chunk's origin and tags become meta of each of its spans, before the
// span's own (which win).
func decodeV07(b []byte, t *tracer) ([]span, error) {
	n, b, err := readMapHeader(b)
	if err != nil {
		return nil, malformed("tracer payload", err)
	}
	var spans []span
	for range n {
		var k []byte
		if k, b, err = msgp.ReadMapKeyZC(b); err != nil {
			return nil, malformed("tracer payload", err)
		}
		var v string
		switch string(k) {
		case "container_id":
			v, b, err = readString(b)
			t.containerID = or(v, t.containerID)
		case "language_name":
			v, b, err = readString(b)
			t.lang = or(v, t.lang)
		case "language_version":
			v, b, err = readString(b)
			t.langVersion = or(v, t.langVersion)
		case "tracer_version":
			v, b, err = readString(b)
			t.version = or(v, t.version)
		case "env":
			t.env, b, err = readString(b)
		case "hostname":
			t.hostname, b, err = readString(b)
		case "app_version":
			t.appVersion, b, err = readString(b)
		case "tags":
			t.tags, b, err = readTags(b)
		case "chunks":
			spans, b, err = decodeChunks(b, spans)
		default: // runtime_id (also the spans' runtime-id meta), container_debug, and what comes next
			b, err = msgp.Skip(b)
		}
		if err != nil {
			return nil, malformed(string(k), err)
		}
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the tracer payload", errMalformed, len(b))
	}
	return spans, nil
}

func or(v, def string) string {
	if v != "" {
		return v
	}
	return def
}

// readTags reads a map of strings, in the order sent.
func readTags(b []byte) ([]tag, []byte, error) {
	n, b, err := readMapHeader(b)
	if err != nil || n == 0 {
		return nil, b, err
	}
	tags := make([]tag, 0, capHint(n, b))
	for range n {
		var t tag
		if t.key, b, err = readString(b); err != nil {
			return nil, b, err
		}
		if t.value, b, err = readString(b); err != nil {
			return nil, b, err
		}
		tags = append(tags, t)
	}
	return tags, b, nil
}

func decodeChunks(b []byte, spans []span) ([]span, []byte, error) {
	nc, b, err := readArrayHeader(b)
	if err != nil {
		return spans, b, err
	}
	for i := range nc {
		if msgp.IsNil(b) {
			if b, err = msgp.ReadNilBytes(b); err != nil {
				return spans, b, err
			}
			continue
		}
		if spans, b, err = decodeChunk(b, spans); err != nil {
			return spans, b, fmt.Errorf("chunk %d: %w", i, err)
		}
	}
	return spans, b, nil
}

func decodeChunk(b []byte, spans []span) ([]span, []byte, error) {
	n, b, err := readMapHeader(b)
	if err != nil {
		return spans, b, err
	}
	first := len(spans)
	var common []tag // the chunk's origin and tags
	for range n {
		var k []byte
		if k, b, err = msgp.ReadMapKeyZC(b); err != nil {
			return spans, b, err
		}
		switch string(k) {
		case "origin":
			var origin string
			if origin, b, err = readString(b); err == nil && origin != "" {
				common = append(common, tag{"_dd.origin", origin})
			}
		case "tags":
			var tags []tag
			tags, b, err = readTags(b)
			common = append(common, tags...)
		case "spans":
			var ns uint32
			if ns, b, err = readArrayHeader(b); err != nil {
				break
			}
			for j := range ns {
				if msgp.IsNil(b) {
					if b, err = msgp.ReadNilBytes(b); err != nil {
						break
					}
					continue
				}
				var s span
				if b, err = decodeSpanMap(b, &s); err != nil {
					err = fmt.Errorf("span %d: %w", j, err)
					break
				}
				spans = append(spans, s)
			}
		default: // priority and dropped_trace are sampling state: Vivace keeps every span
			b, err = msgp.Skip(b)
		}
		if err != nil {
			return spans, b, fmt.Errorf("%s: %w", k, err)
		}
	}
	if len(common) > 0 {
		for i := first; i < len(spans); i++ {
			spans[i].meta = append(append(make([]tag, 0, len(common)+len(spans[i].meta)), common...), spans[i].meta...)
		}
	}
	return spans, b, nil
}

// jsonSpan is a span of the JSON payload (v0.3 and earlier; v0.4 with a
// JSON Content-Type), with the msgpack map's keys.
type jsonSpan struct {
	Service  string             `json:"service"`
	Name     string             `json:"name"`
	Resource string             `json:"resource"`
	Type     string             `json:"type"`
	TraceID  uint64             `json:"trace_id"`
	SpanID   uint64             `json:"span_id"`
	ParentID uint64             `json:"parent_id"`
	Start    int64              `json:"start"`
	Duration int64              `json:"duration"`
	Error    int32              `json:"error"`
	Meta     map[string]string  `json:"meta"`
	Metrics  map[string]float64 `json:"metrics"`
}

// decodeJSON reads a JSON payload: an array of traces, each an array of
// spans. Meta and metrics come out sorted by key (JSON objects have no
// order worth keeping).
func decodeJSON(b []byte) ([]span, error) {
	var traces [][]jsonSpan
	if err := json.Unmarshal(b, &traces); err != nil {
		return nil, malformed("JSON", err)
	}
	var spans []span
	for _, t := range traces {
		for _, js := range t {
			s := span{
				service: js.Service, name: js.Name, resource: js.Resource, typ: js.Type,
				traceID: js.TraceID, spanID: js.SpanID, parentID: js.ParentID,
				start: js.Start, duration: js.Duration, error: js.Error,
			}
			for _, k := range sortedKeys(js.Meta) {
				s.meta = append(s.meta, tag{k, js.Meta[k]})
			}
			for _, k := range sortedKeys(js.Metrics) {
				s.metrics = append(s.metrics, metric{k, js.Metrics[k]})
			}
			spans = append(spans, s)
		}
	}
	return spans, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
