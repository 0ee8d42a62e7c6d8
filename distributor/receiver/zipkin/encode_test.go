package zipkin

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	zipkinmodel "github.com/openzipkin/zipkin-go/model"
	zipkinpb "github.com/openzipkin/zipkin-go/proto/zipkin_proto3"
	"github.com/openzipkin/zipkin-go/reporter"
	"github.com/stretchr/testify/require"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// TestAppendRequestMatchesRef holds appendRequest to the bytes proto.Marshal
// writes for translateRef's request, for the fuzz seeds under testdata/,
// zipkin-go's serializations and random batches. The table tests check the
// same of every batch they make, through encodeRequest.
func TestAppendRequestMatchesRef(t *testing.T) {
	t.Run("testdata", func(t *testing.T) {
		formats := map[string]format{"FuzzZipkinJSONV2": formatJSONV2, "FuzzZipkinProto": formatProto, "FuzzZipkinJSONV1": formatJSONV1}
		files, err := filepath.Glob(filepath.Join("testdata", "fuzz", "*", "*"))
		require.NoError(t, err)
		require.NotEmpty(t, files)
		decoded := 0
		for _, file := range files {
			f, ok := formats[filepath.Base(filepath.Dir(file))]
			require.True(t, ok, file)
			b, _, err := decode(f, readSeed(t, file))
			if err != nil || len(b.spans) == 0 {
				continue
			}
			decoded++
			t.Run(file, func(t *testing.T) { requireSameAsRef(t, b) })
		}
		require.NotZero(t, decoded)
	})

	t.Run("zipkin-go", func(t *testing.T) {
		for name, models := range map[string][]*zipkinmodel.SpanModel{"spans": zipkinGoSpans(), "envoy": benchModels(50)} {
			for _, ser := range []reporter.SpanSerializer{reporter.JSONSerializer{}, zipkinpb.SpanSerializer{}} {
				t.Run(name+"/"+ser.ContentType(), func(t *testing.T) {
					requireSameAsRef(t, decodeSerialized(t, ser, models))
				})
			}
		}
	})

	t.Run("random batches", func(t *testing.T) {
		for seed := range uint64(500) {
			b := randomBatch(rand.New(rand.NewPCG(seed, 1)))
			t.Run(strconv.FormatUint(seed, 10), func(t *testing.T) { encodeRequest(t, b) })
		}
	})

	t.Run("random zipkin-go spans", func(t *testing.T) {
		for seed := range uint64(50) {
			models := randomModels(rand.New(rand.NewPCG(seed, 2)))
			for _, ser := range []reporter.SpanSerializer{reporter.JSONSerializer{}, zipkinpb.SpanSerializer{}} {
				t.Run(fmt.Sprintf("%d/%s", seed, ser.ContentType()), func(t *testing.T) {
					requireSameAsRef(t, decodeSerialized(t, ser, models))
				})
			}
		}
	})

	t.Run("more resources and scopes than a pooled encoder keeps", func(t *testing.T) {
		var b batch
		for i := range 3000 {
			sp := span{traceID: [16]byte{15: 1}, id: [8]byte{7: byte(i) | 1}, timestamp: 1, tagsFrom: len(b.tags)}
			sp.local.serviceName = fmt.Sprintf("svc-%d", i%1500)
			b.addTag(sp.tagsFrom, tagScopeName, fmt.Sprintf("scope-%d", i/1500))
			sp.tagsTo = len(b.tags)
			b.spans = append(b.spans, sp)
		}
		req := encodeRequest(t, &b)
		require.Len(t, req.ResourceSpans, 1500)
		require.Len(t, req.ResourceSpans[0].ScopeSpans, 2)
		// The next request, on a fresh or reused encoder, is unaffected.
		small := randomBatch(rand.New(rand.NewPCG(7, 1)))
		encodeRequest(t, small)
	})
}

// readSeed reads a fuzz seed file of one []byte value.
func readSeed(tb testing.TB, file string) []byte {
	tb.Helper()
	data, err := os.ReadFile(file)
	require.NoError(tb, err)
	header, value, ok := strings.Cut(strings.TrimSpace(string(data)), "\n")
	require.True(tb, ok && header == "go test fuzz v1", file)
	value, ok = strings.CutPrefix(value, "[]byte(")
	require.True(tb, ok, file)
	s, err := strconv.Unquote(strings.TrimSuffix(value, ")"))
	require.NoError(tb, err, file)
	return []byte(s)
}

func decodeSerialized(tb testing.TB, ser reporter.SpanSerializer, models []*zipkinmodel.SpanModel) *batch {
	tb.Helper()
	body, err := ser.Serialize(models)
	require.NoError(tb, err)
	f := formatJSONV2
	if ser.ContentType() == (zipkinpb.SpanSerializer{}).ContentType() {
		f = formatProto
	}
	b, n, err := decode(f, body)
	require.NoError(tb, err)
	require.Equal(tb, len(models), n)
	return b
}

// Vocabularies of the random batches: the tags the translation reads, with
// values it treats apart, and strings long enough for two- and three-byte
// lengths.
var (
	randomTagKeys = []string{
		"", "http.method", "component", "é", tagStatusCode, tagStatusDescription, tagError,
		tagScopeName, tagScopeVersion, tagLibraryName, tagLibraryVersion, tagTraceState,
		tagOpenTracingSpanKind, attrPeerService, attrLocalAddress, attrLocalPort, attrPeerAddress, attrPeerPort,
	}
	randomTagValues = []string{
		"", "x", "true", "TRUE", "false", "OK", "ERROR", "UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR",
		"client", "server", "producer", "consumer", "internal", "v1", "lib", "rojo=00f067aa0ba902b7",
		"caf\u00e9 \U0001F600", "\uFFFD", strings.Repeat("a", 200), strings.Repeat("b", 20000),
	}
	randomNames    = []string{"", "get", "router backend egress", strings.Repeat("n", 130)}
	randomServices = []string{"", "frontend", "backend", "db", "caf\u00e9"}
	randomIPv4s    = []string{"", "10.0.0.1", "192.168.99.101"}
	randomIPv6s    = []string{"", "2001:db8::1", "::1"}
	randomPorts    = []uint16{0, 1, 127, 128, 8080, 65535}
)

func pick[T any](rng *rand.Rand, xs []T) T { return xs[rng.IntN(len(xs))] }

// randomBatch is a batch as the decoders make them, with every field
// present or not at random: strings valid UTF-8, annotation times not 0, and
// times whose nanoseconds fit.
func randomBatch(rng *rand.Rand) *batch {
	b := &batch{}
	endpoint := func() endpoint {
		return endpoint{serviceName: pick(rng, randomServices), ip4: pick(rng, randomIPv4s), ip6: pick(rng, randomIPv6s), port: pick(rng, randomPorts)}
	}
	micros := func() uint64 {
		switch rng.IntN(4) {
		case 0:
			return 0
		case 1:
			return 1 + rng.Uint64N(1000)
		}
		return 1 + rng.Uint64N(maxMicros/2)
	}
	for range rng.IntN(30) {
		sp := span{
			name:      pick(rng, randomNames),
			kind:      tracev1.Span_SpanKind(rng.IntN(6)),
			timestamp: micros(),
			duration:  micros(),
			debug:     rng.IntN(4) == 0,
			shared:    rng.IntN(3) == 0,
			tagsFrom:  len(b.tags),
			annosFrom: len(b.annos),
		}
		if rng.IntN(3) > 0 {
			sp.local = endpoint()
		}
		if rng.IntN(2) > 0 {
			sp.remote = endpoint()
		}
		for i := range sp.traceID {
			if i >= 8 || rng.IntN(2) == 0 {
				sp.traceID[i] = byte(rng.IntN(256))
			}
		}
		sp.traceID[15] |= 1
		sp.id = [8]byte{byte(rng.IntN(4)), 7: byte(rng.IntN(3)) + 1}
		switch rng.IntN(3) {
		case 0:
			sp.parentID, sp.hasParent = [8]byte{7: byte(rng.IntN(3)) + 1}, true // sometimes the span's own ID
		case 1:
			sp.parentID, sp.hasParent = sp.id, true
		}
		tags := rng.IntN(8)
		if rng.IntN(20) == 0 {
			tags = 60 // past addTag's switch to an index
		}
		for range tags {
			k := pick(rng, randomTagKeys)
			if tags > 8 {
				k += strconv.Itoa(rng.IntN(50))
			}
			b.addTag(sp.tagsFrom, k, pick(rng, randomTagValues))
		}
		sp.tagsTo = len(b.tags)
		for range rng.IntN(4) {
			b.annos = append(b.annos, annotation{ts: 1 + rng.Uint64N(maxMicros/2), value: pick(rng, randomTagValues)})
		}
		sp.annosTo = len(b.annos)
		b.spans = append(b.spans, sp)
	}
	return b
}

// randomModels are zipkin-go spans of random shape, for its serializers.
func randomModels(rng *rand.Rand) []*zipkinmodel.SpanModel {
	kinds := []zipkinmodel.Kind{zipkinmodel.Undetermined, zipkinmodel.Client, zipkinmodel.Server, zipkinmodel.Producer, zipkinmodel.Consumer}
	endpoint := func() *zipkinmodel.Endpoint {
		if rng.IntN(3) == 0 {
			return nil
		}
		e := &zipkinmodel.Endpoint{ServiceName: pick(rng, randomServices), Port: pick(rng, randomPorts)}
		if ip := pick(rng, randomIPv4s); ip != "" {
			e.IPv4 = net.ParseIP(ip).To4()
		}
		if ip := pick(rng, randomIPv6s); ip != "" {
			e.IPv6 = net.ParseIP(ip)
		}
		return e
	}
	out := make([]*zipkinmodel.SpanModel, 1+rng.IntN(20))
	for i := range out {
		ts := time.UnixMicro(1 + rng.Int64N(1<<52))
		m := &zipkinmodel.SpanModel{
			SpanContext: zipkinmodel.SpanContext{
				TraceID: zipkinmodel.TraceID{High: rng.Uint64() * uint64(rng.IntN(2)), Low: rng.Uint64() | 1},
				ID:      zipkinmodel.ID(rng.Uint64() | 1),
				Debug:   rng.IntN(4) == 0,
			},
			Name: pick(rng, randomNames), Kind: pick(rng, kinds), Shared: rng.IntN(3) == 0,
			LocalEndpoint: endpoint(), RemoteEndpoint: endpoint(),
		}
		if rng.IntN(4) > 0 {
			m.Timestamp, m.Duration = ts, time.Duration(rng.IntN(1e6))*time.Microsecond
		}
		if rng.IntN(2) == 0 {
			parent := zipkinmodel.ID(rng.Uint64() | 1)
			m.ParentID = &parent
		}
		for range rng.IntN(3) {
			m.Annotations = append(m.Annotations, zipkinmodel.Annotation{Timestamp: ts.Add(time.Duration(rng.IntN(1000)) * time.Microsecond), Value: pick(rng, randomTagValues[1:])})
		}
		if n := rng.IntN(8); n > 0 {
			m.Tags = map[string]string{}
			for range n {
				m.Tags[pick(rng, randomTagKeys[1:])] = pick(rng, randomTagValues)
			}
		}
		out[i] = m
	}
	return out
}

// invalidUTF8Proto is a zipkin.proto3 list of one span whose tag value is
// not UTF-8, which proto.Marshal would not write.
func invalidUTF8Proto(tb testing.TB) []byte {
	tb.Helper()
	valid, err := proto.Marshal(&zipkinpb.ListOfSpans{Spans: []*zipkinpb.Span{{
		TraceId: []byte{1, 2, 3, 4, 5, 6, 7, 8}, Id: []byte{1, 2, 3, 4, 5, 6, 7, 8}, Name: "get", Timestamp: 1,
		Tags: map[string]string{"http.path": "/MARK"},
	}}})
	require.NoError(tb, err)
	invalid := []byte(strings.Replace(string(valid), "MARK", "\xffARK", 1))
	require.NotEqual(tb, valid, invalid)
	return invalid
}

// TestInvalidUTF8 checks that no invalid UTF-8 reaches the OTLP request,
// whose proto3 strings must be valid: JSON strings get U+FFFD for each
// invalid byte, as encoding/json does (the body is still JSON and the rest
// of it is kept), and a protobuf body with an invalid string is no valid
// zipkin.proto3 and is refused, as proto.Unmarshal refuses it.
func TestInvalidUTF8(t *testing.T) {
	invalidProto := invalidUTF8Proto(t)

	t.Run("protobuf tag value: 400", func(t *testing.T) {
		p := &fakePusher{}
		r := handlerOnly(t, p)
		resp := serve(r, httpReq{contentType: "application/x-protobuf", body: invalidProto})
		require.Equal(t, http.StatusBadRequest, resp.code, resp.body)
		require.Contains(t, resp.body, "invalid zipkin.proto3 ListOfSpans")
		require.Contains(t, resp.body, "invalid UTF-8")
		require.Equal(t, 1.0, r.refusedCount("v2_proto", "malformed"))
		require.Empty(t, p.all())
	})

	invalid := strings.NewReplacer("<ff>", "\xff", "<fe>", "\xfe", "<c3>", "\xc3", "<e282>", "\xe2\x82")
	for _, tc := range []struct {
		name, path, body string
	}{
		{"v2 JSON", "/api/v2/spans", `[{"traceId":"01","id":"02","timestamp":1,"name":"g<ff>et",` +
			`"localEndpoint":{"serviceName":"front<c3>"},"tags":{"k<fe>":"v<ff><ff>x","esc\n":"<e282>\n"}}]`},
		{"v1 JSON", "/api/v1/spans", `[{"traceId":"01","id":"02","timestamp":1,"name":"g<ff>et",` +
			`"binaryAnnotations":[{"key":"k<fe>","value":"v<ff><ff>x","endpoint":{"serviceName":"front<c3>"}},` +
			`{"key":"esc\n","value":"<e282>\n","endpoint":{"serviceName":"front<c3>"}}]}]`},
	} {
		t.Run(tc.name+": 202, U+FFFD", func(t *testing.T) {
			p := &fakePusher{}
			r := handlerOnly(t, p)
			resp := serve(r, httpReq{path: tc.path, contentType: "application/json", body: []byte(invalid.Replace(tc.body))})
			require.Equal(t, http.StatusAccepted, resp.code, resp.body)
			got := p.last(t).req // proto.Unmarshal checked its UTF-8
			require.Equal(t, "front\uFFFD", got.ResourceSpans[0].Resource.Attributes[0].Value.GetStringValue())
			s := spans(got)[0]
			require.Equal(t, "g\uFFFDet", s.Name)
			require.Equal(t, "k\uFFFD", s.Attributes[0].Key)
			require.Equal(t, "v\uFFFDx", s.Attributes[0].Value.GetStringValue())
			require.Equal(t, "esc\n", s.Attributes[1].Key)
			require.Equal(t, "\uFFFD\n", s.Attributes[1].Value.GetStringValue())
		})
	}
}
