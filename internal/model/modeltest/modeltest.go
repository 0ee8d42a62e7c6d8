// Package modeltest makes realistic, deterministic OTLP traces for tests and
// benchmarks: several services with the resource attributes SDKs really send,
// instrumentation scopes, span trees, errors, events, links, and attributes of
// every OTLP value type.
package modeltest

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	commonv1 "go.opentelemetry.io/proto/otlp/common/v1"
	resourcev1 "go.opentelemetry.io/proto/otlp/resource/v1"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/vivace-dev/vivace/internal/model"
)

// BaseTime is the time traces start near: every trace starts within ten
// minutes after it. Tests that need other times set it before generating
// traces (and not while another goroutine generates).
var BaseTime = time.Date(2026, time.March, 14, 15, 9, 26, 0, time.UTC)

const schemaURL = "https://opentelemetry.io/schemas/1.26.0"

// service is one deployed service: its resource is fixed per trace.
type service struct {
	name, namespace, lang, sdkVersion, runtime, runtimeVersion string
	scopes                                                     []scopeDef
	ops                                                        []string
}

type scopeDef struct{ name, version string }

var services = []service{
	{"frontend", "shop", "nodejs", "1.30.1", "nodejs", "22.12.0",
		[]scopeDef{{"@opentelemetry/instrumentation-http", "0.57.1"}, {"@opentelemetry/instrumentation-express", "0.47.0"}},
		[]string{"GET /", "GET /api/products", "POST /api/cart", "GET /api/cart", "POST /api/checkout", "render product-page"}},
	{"checkout", "shop", "go", "1.34.0", "go", "go1.24.1",
		[]scopeDef{{"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc", "0.59.0"}, {"github.com/shop/checkout", "2.3.1"}},
		[]string{"oteldemo.CheckoutService/PlaceOrder", "prepareOrderItemsAndShippingQuoteFromCart", "chargeCard", "sendOrderConfirmation"}},
	{"cart", "shop", "dotnet", "1.11.2", "dotnet", "8.0.12",
		[]scopeDef{{"OpenTelemetry.Instrumentation.AspNetCore", "1.10.1"}, {"StackExchange.Redis", "2.8.24"}},
		[]string{"oteldemo.CartService/GetCart", "oteldemo.CartService/AddItem", "HGET", "HMSET", "EXPIRE"}},
	{"product-catalog", "shop", "go", "1.34.0", "go", "go1.24.1",
		[]scopeDef{{"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc", "0.59.0"}},
		[]string{"oteldemo.ProductCatalogService/ListProducts", "oteldemo.ProductCatalogService/GetProduct", "SELECT products"}},
	{"payment", "shop", "nodejs", "1.30.1", "nodejs", "22.12.0",
		[]scopeDef{{"@opentelemetry/instrumentation-grpc", "0.57.1"}, {"payment", "1.0.4"}},
		[]string{"oteldemo.PaymentService/Charge", "charge", "validate card"}},
	{"accounting", "shop", "java", "1.46.0", "OpenJDK Runtime Environment", "21.0.6+7-LTS",
		[]scopeDef{{"io.opentelemetry.kafka-clients-0.11", "2.12.0-alpha"}, {"io.opentelemetry.jdbc", "2.12.0-alpha"}},
		[]string{"orders process", "INSERT accounting.orders", "SELECT accounting.ledger"}},
}

var (
	regions   = []string{"eu-west-1", "us-east-1", "ap-southeast-2"}
	nodes     = []string{"ip-10-0-12-34.ec2.internal", "ip-10-0-44-201.ec2.internal", "ip-10-0-71-9.ec2.internal", "ip-10-0-90-166.ec2.internal"}
	methods   = []string{"GET", "GET", "GET", "POST", "PUT", "DELETE"}
	routes    = []string{"/api/products/{id}", "/api/cart", "/api/checkout", "/api/recommendations", "/api/ads", "/"}
	userAgent = []string{
		"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/134.0.0.0 Safari/537.36",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 18_3 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.3 Mobile/15E148 Safari/604.1",
		"python-requests/2.32.3",
	}
	errorMessages = []string{
		"rpc error: code = Unavailable desc = connection refused",
		"context deadline exceeded",
		"payment declined: insufficient funds",
		"redis: connection pool timeout",
	}
	exceptionTypes = []string{"System.TimeoutException", "java.net.SocketTimeoutException", "Error", "*errors.errorString"}
	currencies     = []string{"USD", "EUR", "JPY", "GBP", "CAD"}
	traceStates    = []string{"", "", "", "congo=t61rcWkgMzE", "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"}
)

// Traces returns n traces with fresh random IDs, sorted by ID, each with a
// number of spans drawn around meanSpans (at least 1; exponential-like tail).
func Traces(rng *rand.Rand, n, meanSpans int) ([]model.TraceID, []*tracev1.TracesData) {
	ids := IDs(rng, n)
	traces := make([]*tracev1.TracesData, n)
	for i, id := range ids {
		traces[i] = Trace(rng, id, SpanCount(rng, meanSpans))
	}
	return ids, traces
}

// IDs returns n distinct random non-zero trace IDs in ascending order.
func IDs(rng *rand.Rand, n int) []model.TraceID {
	seen := make(map[model.TraceID]struct{}, n)
	ids := make([]model.TraceID, 0, n)
	for len(ids) < n {
		var id model.TraceID
		fill(rng, id[:])
		if _, dup := seen[id]; dup || id.IsZero() {
			continue
		}
		seen[id] = struct{}{}
		ids = append(ids, id)
	}
	slices.SortFunc(ids, model.TraceID.Compare)
	return ids
}

// SpanCount draws a span count with the given mean: at least 1, with the long
// tail real traces have.
func SpanCount(rng *rand.Rand, mean int) int {
	if mean <= 1 {
		return 1
	}
	return 1 + int(rng.ExpFloat64()*float64(mean-1)+0.5)
}

// Trace builds one trace of exactly spans spans (at least 1) with the given ID.
// The spans form a tree under one root, spread over 1 to 3 services; every
// (resource, scope) pair appears in exactly one ResourceSpans/ScopeSpans.
func Trace(rng *rand.Rand, id model.TraceID, spans int) *tracev1.TracesData {
	spans = max(spans, 1)
	g := gen{rng: rng, id: id}

	// Pick 1-3 distinct services; the first holds the root.
	nsvc := 1 + rng.IntN(3)
	perm := rng.Perm(len(services))[:nsvc]
	type bucket struct {
		rs     *tracev1.ResourceSpans
		scopes []*tracev1.ScopeSpans
	}
	buckets := make([]bucket, nsvc)
	for i, si := range perm {
		svc := &services[si]
		rs := &tracev1.ResourceSpans{Resource: g.resource(svc), SchemaUrl: schemaURL}
		nscopes := 1 + rng.IntN(len(svc.scopes))
		for j := 0; j < nscopes; j++ {
			rs.ScopeSpans = append(rs.ScopeSpans, &tracev1.ScopeSpans{Scope: g.scope(svc.scopes[j]), SchemaUrl: schemaURL})
		}
		buckets[i] = bucket{rs: rs, scopes: rs.ScopeSpans}
	}

	start := uint64(BaseTime.UnixNano()) + uint64(rng.Int64N(int64(10*time.Minute)))
	rootDur := uint64(5*time.Millisecond) + uint64(rng.Int64N(int64(2*time.Second)))
	type node struct {
		span       *tracev1.Span
		start, end uint64
		svc        int
	}
	nodes := make([]node, 0, spans)
	for i := 0; i < spans; i++ {
		var (
			parent     *node
			svc        int
			s, e       uint64
			remoteEdge bool
		)
		if i == 0 {
			s, e = start, start+rootDur
		} else {
			parent = &nodes[rng.IntN(len(nodes))]
			svc = parent.svc
			if nsvc > 1 && rng.IntN(4) == 0 {
				svc = rng.IntN(nsvc)
				remoteEdge = svc != parent.svc
			}
			pd := parent.end - parent.start
			s = parent.start + uint64(rng.Int64N(int64(pd/2+1)))
			e = s + uint64(rng.Int64N(int64(parent.end-s+1)))
		}
		b := &buckets[svc]
		sc := b.scopes[rng.IntN(len(b.scopes))]
		span := g.span(&services[perm[svc]], s, e, i == 0, remoteEdge)
		if parent != nil {
			span.ParentSpanId = parent.span.SpanId
		}
		sc.Spans = append(sc.Spans, span)
		nodes = append(nodes, node{span: span, start: s, end: e, svc: svc})
	}

	td := &tracev1.TracesData{}
	for _, b := range buckets {
		var kept []*tracev1.ScopeSpans
		for _, sc := range b.rs.ScopeSpans {
			if len(sc.Spans) > 0 {
				kept = append(kept, sc)
			}
		}
		if len(kept) == 0 {
			continue
		}
		b.rs.ScopeSpans = kept
		td.ResourceSpans = append(td.ResourceSpans, b.rs)
	}
	return td
}

type gen struct {
	rng *rand.Rand
	id  model.TraceID
}

func (g *gen) pick(xs []string) string { return xs[g.rng.IntN(len(xs))] }

func (g *gen) hex(n int) string {
	b := make([]byte, n)
	fill(g.rng, b)
	return fmt.Sprintf("%x", b)
}

func (g *gen) resource(svc *service) *resourcev1.Resource {
	// Instances are few per service, as in a real deployment, so resources repeat
	// across traces (and dictionary-encode well).
	inst := g.rng.IntN(4)
	pod := fmt.Sprintf("%s-7d9f8b6c5-%c%c%c%c%c", svc.name, 'a'+rune(inst), 'k'+rune(inst), 'x', 'q'+rune(inst), 'z')
	attrs := []*commonv1.KeyValue{
		str("service.name", svc.name),
		str("service.namespace", svc.namespace),
		str("service.version", "1."+fmt.Sprint(4+inst%2)+".0"),
		str("service.instance.id", fmt.Sprintf("%s-%08x-0000-4000-8000-%012x", svc.name, inst*7919, inst*104729)),
		str("deployment.environment.name", "production"),
		str("telemetry.sdk.name", "opentelemetry"),
		str("telemetry.sdk.language", svc.lang),
		str("telemetry.sdk.version", svc.sdkVersion),
		str("process.runtime.name", svc.runtime),
		str("process.runtime.version", svc.runtimeVersion),
		integer("process.pid", int64(1+inst*17)),
		str("host.name", pod),
		str("host.arch", "amd64"),
		str("os.type", "linux"),
		str("k8s.namespace.name", svc.namespace),
		str("k8s.pod.name", pod),
		str("k8s.node.name", nodes[inst%len(nodes)]),
		str("k8s.deployment.name", svc.name),
		str("cloud.region", regions[inst%len(regions)]),
	}
	// 15 to 19 attributes: drop a few optional ones from the end.
	attrs = attrs[:15+g.rng.IntN(5)]
	r := &resourcev1.Resource{Attributes: attrs}
	if g.rng.IntN(10) == 0 {
		r.DroppedAttributesCount = uint32(1 + g.rng.IntN(3))
	}
	return r
}

func (g *gen) scope(d scopeDef) *commonv1.InstrumentationScope {
	s := &commonv1.InstrumentationScope{Name: d.name, Version: d.version}
	if g.rng.IntN(2) == 0 {
		s.Attributes = []*commonv1.KeyValue{str("otel.scope.kind", "library"), boolean("otel.scope.stable", g.rng.IntN(2) == 0)}
	}
	return s
}

func (g *gen) span(svc *service, start, end uint64, root, remote bool) *tracev1.Span {
	rng := g.rng
	s := &tracev1.Span{
		TraceId:           append([]byte(nil), g.id[:]...),
		SpanId:            g.spanID(),
		TraceState:        g.pick(traceStates),
		Name:              g.pick(svc.ops),
		StartTimeUnixNano: start,
		EndTimeUnixNano:   end,
		Flags:             0x100 | 0x01, // has-is-remote known, sampled
	}
	switch {
	case root:
		s.Kind = tracev1.Span_SPAN_KIND_SERVER
	case remote:
		s.Kind = tracev1.Span_SPAN_KIND_SERVER
		s.Flags |= 0x200 // parent is remote
	default:
		s.Kind = []tracev1.Span_SpanKind{
			tracev1.Span_SPAN_KIND_INTERNAL, tracev1.Span_SPAN_KIND_CLIENT, tracev1.Span_SPAN_KIND_CLIENT,
			tracev1.Span_SPAN_KIND_PRODUCER, tracev1.Span_SPAN_KIND_CONSUMER, tracev1.Span_SPAN_KIND_UNSPECIFIED,
		}[rng.IntN(6)]
	}
	s.Attributes = g.spanAttributes(5 + rng.IntN(11))
	if rng.IntN(20) == 0 {
		s.DroppedAttributesCount = uint32(1 + rng.IntN(8))
	}

	failed := rng.IntN(12) == 0
	switch {
	case failed:
		s.Status = &tracev1.Status{Code: tracev1.Status_STATUS_CODE_ERROR, Message: g.pick(errorMessages)}
	case rng.IntN(3) == 0:
		s.Status = &tracev1.Status{Code: tracev1.Status_STATUS_CODE_OK}
	case rng.IntN(2) == 0:
		s.Status = &tracev1.Status{} // unset, but present
	}

	for n := rng.IntN(3); n > 0; n-- {
		s.Events = append(s.Events, g.event(start, end, "log"))
	}
	if failed {
		s.Events = append(s.Events, g.event(start, end, "exception"))
	}
	if rng.IntN(15) == 0 {
		s.DroppedEventsCount = uint32(1 + rng.IntN(4))
	}
	for n := rng.IntN(4) - 1; n > 0; n-- { // a third of the spans have links
		s.Links = append(s.Links, g.link())
	}
	if rng.IntN(30) == 0 {
		s.DroppedLinksCount = 1
	}
	return s
}

func (g *gen) spanID() []byte {
	b := make([]byte, 8)
	for {
		fill(g.rng, b)
		for _, c := range b {
			if c != 0 {
				return b
			}
		}
	}
}

// spanAttributes returns n (5 to 15) attributes with at least one of every
// OTLP value type: string, bool, int, double, bytes, array, kvlist, and an
// array nested in a kvlist.
func (g *gen) spanAttributes(n int) []*commonv1.KeyValue {
	rng := g.rng
	attrs := []*commonv1.KeyValue{
		str("http.request.method", g.pick(methods)),
		integer("http.response.status_code", []int64{200, 200, 200, 201, 204, 404, 500, 503}[rng.IntN(8)]),
		boolean("app.cache.hit", rng.IntN(3) == 0),
		double("app.order.amount", float64(rng.IntN(100000))/100),
		{Key: "app.request.digest", Value: &commonv1.AnyValue{Value: &commonv1.AnyValue_BytesValue{BytesValue: g.bytes(8)}}},
		{Key: "app.product.ids", Value: array(
			stringValue(fmt.Sprintf("OLJCESPC%d", rng.IntN(9))),
			stringValue(fmt.Sprintf("66VCHSJN%d", rng.IntN(9))),
			&commonv1.AnyValue{Value: &commonv1.AnyValue_IntValue{IntValue: int64(rng.IntN(5))}},
		)},
		{Key: "app.user", Value: kvlist(
			str("id", g.hex(6)),
			str("currency", g.pick(currencies)),
			&commonv1.KeyValue{Key: "roles", Value: array(stringValue("customer"), stringValue(g.pick([]string{"beta", "staff", "gold"})))},
			&commonv1.KeyValue{Key: "prefs", Value: kvlist(boolean("newsletter", rng.IntN(2) == 0), double("discount", 0.05*float64(rng.IntN(4))))},
		)},
	}
	optional := []*commonv1.KeyValue{
		str("url.path", g.pick(routes)),
		str("http.route", g.pick(routes)),
		str("server.address", "frontend-proxy"),
		integer("server.port", 8080),
		str("user_agent.original", g.pick(userAgent)),
		str("network.protocol.version", "1.1"),
		str("rpc.system", "grpc"),
		integer("rpc.grpc.status_code", int64(rng.IntN(3))),
		str("db.system", "postgresql"),
		str("db.query.text", "SELECT id, name, price FROM products WHERE id = $1"),
		integer("app.cart.items.count", int64(rng.IntN(12))),
		str("session.id", g.hex(16)),
		{Key: "app.empty", Value: &commonv1.AnyValue{}},
	}
	rng.Shuffle(len(optional), func(i, j int) { optional[i], optional[j] = optional[j], optional[i] })
	if n > len(attrs) {
		attrs = append(attrs, optional[:min(n-len(attrs), len(optional))]...)
	}
	return attrs
}

func (g *gen) event(start, end uint64, kind string) *tracev1.Span_Event {
	t := start + uint64(g.rng.Int64N(int64(end-start+1)))
	if kind == "exception" {
		return &tracev1.Span_Event{
			TimeUnixNano: t,
			Name:         "exception",
			Attributes: []*commonv1.KeyValue{
				str("exception.type", g.pick(exceptionTypes)),
				str("exception.message", g.pick(errorMessages)),
				str("exception.stacktrace", "at Checkout.PlaceOrder (checkout.go:212)\nat Server.Handle (server.go:88)\nat main (main.go:41)"),
				boolean("exception.escaped", g.rng.IntN(2) == 0),
			},
		}
	}
	ev := &tracev1.Span_Event{
		TimeUnixNano: t,
		Name:         g.pick([]string{"message", "cache miss", "retry", "acquired lock"}),
		Attributes: []*commonv1.KeyValue{
			str("message.type", g.pick([]string{"SENT", "RECEIVED"})),
			integer("message.id", int64(g.rng.IntN(10))),
			integer("message.uncompressed_size", int64(g.rng.IntN(4096))),
		},
	}
	if g.rng.IntN(10) == 0 {
		ev.DroppedAttributesCount = 2
	}
	return ev
}

func (g *gen) link() *tracev1.Span_Link {
	tid := make([]byte, 16)
	fill(g.rng, tid)
	l := &tracev1.Span_Link{
		TraceId:    tid,
		SpanId:     g.spanID(),
		TraceState: g.pick(traceStates[3:]),
		Attributes: []*commonv1.KeyValue{
			str("link.kind", g.pick([]string{"follows_from", "batch", "retry_of"})),
			integer("messaging.batch.index", int64(g.rng.IntN(64))),
		},
		Flags: 0x101,
	}
	if g.rng.IntN(8) == 0 {
		l.DroppedAttributesCount = 1
	}
	return l
}

func (g *gen) bytes(n int) []byte {
	b := make([]byte, n)
	fill(g.rng, b)
	return b
}

func fill(rng *rand.Rand, b []byte) {
	for i := 0; i < len(b); i += 8 {
		v := rng.Uint64()
		for j := i; j < len(b) && j < i+8; j++ {
			b[j] = byte(v)
			v >>= 8
		}
	}
}

func str(k, v string) *commonv1.KeyValue {
	return &commonv1.KeyValue{Key: k, Value: stringValue(v)}
}

func stringValue(v string) *commonv1.AnyValue {
	return &commonv1.AnyValue{Value: &commonv1.AnyValue_StringValue{StringValue: v}}
}

func integer(k string, v int64) *commonv1.KeyValue {
	return &commonv1.KeyValue{Key: k, Value: &commonv1.AnyValue{Value: &commonv1.AnyValue_IntValue{IntValue: v}}}
}

func boolean(k string, v bool) *commonv1.KeyValue {
	return &commonv1.KeyValue{Key: k, Value: &commonv1.AnyValue{Value: &commonv1.AnyValue_BoolValue{BoolValue: v}}}
}

func double(k string, v float64) *commonv1.KeyValue {
	return &commonv1.KeyValue{Key: k, Value: &commonv1.AnyValue{Value: &commonv1.AnyValue_DoubleValue{DoubleValue: v}}}
}

func array(vs ...*commonv1.AnyValue) *commonv1.AnyValue {
	return &commonv1.AnyValue{Value: &commonv1.AnyValue_ArrayValue{ArrayValue: &commonv1.ArrayValue{Values: vs}}}
}

func kvlist(kvs ...*commonv1.KeyValue) *commonv1.AnyValue {
	return &commonv1.AnyValue{Value: &commonv1.AnyValue_KvlistValue{KvlistValue: &commonv1.KeyValueList{Values: kvs}}}
}
