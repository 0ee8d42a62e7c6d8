package datadog

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tinylib/msgp/msgp"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/vivace-dev/vivace/distributor/receiver"
	"github.com/vivace-dev/vivace/internal/model"
)

// fakePusher checks what it gets as the distributor would, decodes it and
// records it.
type fakePusher struct {
	err     error
	discard bool

	mu     sync.Mutex
	pushes []pushed
}

type pushed struct {
	tenant string
	req    *coltracepb.ExportTraceServiceRequest
}

func (p *fakePusher) PushOTLP(_ context.Context, tenant string, req []byte) (int, error) {
	split, err := model.SplitByTrace(req)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", receiver.ErrBadInput, err)
	}
	if !p.discard {
		var m coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(req, &m); err != nil {
			return 0, fmt.Errorf("%w: %v", receiver.ErrBadInput, err)
		}
		p.mu.Lock()
		p.pushes = append(p.pushes, pushed{tenant: tenant, req: &m})
		p.mu.Unlock()
	}
	if p.err != nil {
		return 0, p.err
	}
	return split.Spans, nil
}

func (p *fakePusher) all() []pushed {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]pushed(nil), p.pushes...)
}

// ddSpan is a span to encode in a test payload; the zero value of a field
// leaves it out of a v0.4 map.
type ddSpan struct {
	Service, Name, Resource, Type string
	TraceID, SpanID, ParentID     uint64
	Start, Duration               int64
	Error                         int32
	Meta                          [][2]string
	Metrics                       []metric
}

// appendV04 encodes traces as a v0.4 payload, fields in the order given.
func appendV04(b []byte, traces ...[]ddSpan) []byte {
	b = msgp.AppendArrayHeader(b, uint32(len(traces)))
	for _, t := range traces {
		b = msgp.AppendArrayHeader(b, uint32(len(t)))
		for _, s := range t {
			b = appendSpanMap(b, s)
		}
	}
	return b
}

// appendSpanMap encodes a span as the map of v0.4 and v0.7.
func appendSpanMap(b []byte, s ddSpan) []byte {
	b = msgp.AppendMapHeader(b, 12)
	b = msgp.AppendString(msgp.AppendString(b, "service"), s.Service)
	b = msgp.AppendString(msgp.AppendString(b, "name"), s.Name)
	b = msgp.AppendString(msgp.AppendString(b, "resource"), s.Resource)
	b = msgp.AppendUint64(msgp.AppendString(b, "trace_id"), s.TraceID)
	b = msgp.AppendUint64(msgp.AppendString(b, "span_id"), s.SpanID)
	b = msgp.AppendUint64(msgp.AppendString(b, "parent_id"), s.ParentID)
	b = msgp.AppendInt64(msgp.AppendString(b, "start"), s.Start)
	b = msgp.AppendInt64(msgp.AppendString(b, "duration"), s.Duration)
	b = msgp.AppendInt32(msgp.AppendString(b, "error"), s.Error)
	b = msgp.AppendMapHeader(msgp.AppendString(b, "meta"), uint32(len(s.Meta)))
	for _, kv := range s.Meta {
		b = msgp.AppendString(msgp.AppendString(b, kv[0]), kv[1])
	}
	b = msgp.AppendMapHeader(msgp.AppendString(b, "metrics"), uint32(len(s.Metrics)))
	for _, m := range s.Metrics {
		b = msgp.AppendFloat64(msgp.AppendString(b, m.key), m.value)
	}
	b = msgp.AppendString(msgp.AppendString(b, "type"), s.Type)
	return b
}

// v07Payload is a v0.7 tracer payload to encode; an empty field is left out.
type v07Payload struct {
	ContainerID, Lang, LangVersion, TracerVersion, RuntimeID, Env, Hostname, AppVersion string
	Tags                                                                                [][2]string
	Chunks                                                                              []v07Chunk
}

type v07Chunk struct {
	Priority int32
	Origin   string
	Tags     [][2]string
	Dropped  bool
	Spans    []ddSpan
}

// appendV07 encodes p as the agent's msgp TracerPayload.
func appendV07(b []byte, p v07Payload) []byte {
	strs := [][2]string{{"container_id", p.ContainerID}, {"language_name", p.Lang}, {"language_version", p.LangVersion},
		{"tracer_version", p.TracerVersion}, {"runtime_id", p.RuntimeID}, {"env", p.Env}, {"hostname", p.Hostname}, {"app_version", p.AppVersion}}
	n := 2 // chunks, tags
	for _, kv := range strs {
		if kv[1] != "" {
			n++
		}
	}
	b = msgp.AppendMapHeader(b, uint32(n))
	for _, kv := range strs {
		if kv[1] != "" {
			b = msgp.AppendString(msgp.AppendString(b, kv[0]), kv[1])
		}
	}
	b = appendTags(msgp.AppendString(b, "tags"), p.Tags)
	b = msgp.AppendArrayHeader(msgp.AppendString(b, "chunks"), uint32(len(p.Chunks)))
	for _, c := range p.Chunks {
		b = msgp.AppendMapHeader(b, 5)
		b = msgp.AppendInt32(msgp.AppendString(b, "priority"), c.Priority)
		b = msgp.AppendString(msgp.AppendString(b, "origin"), c.Origin)
		b = appendTags(msgp.AppendString(b, "tags"), c.Tags)
		b = msgp.AppendBool(msgp.AppendString(b, "dropped_trace"), c.Dropped)
		b = msgp.AppendArrayHeader(msgp.AppendString(b, "spans"), uint32(len(c.Spans)))
		for _, s := range c.Spans {
			b = appendSpanMap(b, s)
		}
	}
	return b
}

func appendTags(b []byte, tags [][2]string) []byte {
	b = msgp.AppendMapHeader(b, uint32(len(tags)))
	for _, kv := range tags {
		b = msgp.AppendString(msgp.AppendString(b, kv[0]), kv[1])
	}
	return b
}

// chunksOf is traces as a v0.7 payload of one chunk per trace, nothing else set.
func chunksOf(traces ...[]ddSpan) v07Payload {
	var p v07Payload
	for _, t := range traces {
		p.Chunks = append(p.Chunks, v07Chunk{Spans: t})
	}
	return p
}

// appendV05 encodes traces as a v0.5 payload with its string table.
func appendV05(b []byte, traces ...[]ddSpan) []byte {
	var dict []string
	index := map[string]uint32{}
	id := func(s string) uint32 {
		i, ok := index[s]
		if !ok {
			i = uint32(len(dict))
			index[s] = i
			dict = append(dict, s)
		}
		return i
	}
	id("")
	var body []byte
	body = msgp.AppendArrayHeader(body, uint32(len(traces)))
	for _, t := range traces {
		body = msgp.AppendArrayHeader(body, uint32(len(t)))
		for _, s := range t {
			body = msgp.AppendArrayHeader(body, 12)
			body = msgp.AppendUint32(body, id(s.Service))
			body = msgp.AppendUint32(body, id(s.Name))
			body = msgp.AppendUint32(body, id(s.Resource))
			body = msgp.AppendUint64(body, s.TraceID)
			body = msgp.AppendUint64(body, s.SpanID)
			body = msgp.AppendUint64(body, s.ParentID)
			body = msgp.AppendInt64(body, s.Start)
			body = msgp.AppendInt64(body, s.Duration)
			body = msgp.AppendInt32(body, s.Error)
			body = msgp.AppendMapHeader(body, uint32(len(s.Meta)))
			for _, kv := range s.Meta {
				body = msgp.AppendUint32(msgp.AppendUint32(body, id(kv[0])), id(kv[1]))
			}
			body = msgp.AppendMapHeader(body, uint32(len(s.Metrics)))
			for _, m := range s.Metrics {
				body = msgp.AppendFloat64(msgp.AppendUint32(body, id(m.key)), m.value)
			}
			body = msgp.AppendUint32(body, id(s.Type))
		}
	}
	b = msgp.AppendArrayHeader(b, 2)
	b = msgp.AppendArrayHeader(b, uint32(len(dict)))
	for _, s := range dict {
		b = msgp.AppendString(b, s)
	}
	return append(b, body...)
}

func countSpans(req *coltracepb.ExportTraceServiceRequest) int {
	n := 0
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			n += len(ss.Spans)
		}
	}
	return n
}

// requireRoutable checks an accepted translation encodes to OTLP the
// distributor can route, every span with valid IDs.
func requireRoutable(tb testing.TB, req *coltracepb.ExportTraceServiceRequest, kept int) {
	tb.Helper()
	require.Equal(tb, kept, countSpans(req))
	if kept == 0 {
		return
	}
	b, err := proto.Marshal(req)
	require.NoError(tb, err)
	split, err := model.SplitByTrace(b)
	require.NoError(tb, err)
	require.Equal(tb, kept, split.Spans)
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				require.Len(tb, s.TraceId, 16)
				require.Len(tb, s.SpanId, 8)
				require.GreaterOrEqual(tb, s.EndTimeUnixNano, s.StartTimeUnixNano)
			}
		}
	}
}
