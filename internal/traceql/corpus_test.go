package traceql_test

import (
	"time"

	commonv1 "go.opentelemetry.io/proto/otlp/common/v1"
	resourcev1 "go.opentelemetry.io/proto/otlp/resource/v1"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
)

// The fixed corpus the evaluation tests run over: small hand-built traces,
// each showing one situation. Trace n has the trace ID 0x...0n and span m of
// it the span ID 0x...0n0m, so span:id "0000000000000103" is trace 1, span 3.

const (
	server      = tracev1.Span_SPAN_KIND_SERVER
	client      = tracev1.Span_SPAN_KIND_CLIENT
	internal    = tracev1.Span_SPAN_KIND_INTERNAL
	producer    = tracev1.Span_SPAN_KIND_PRODUCER
	consumer    = tracev1.Span_SPAN_KIND_CONSUMER
	unspecified = tracev1.Span_SPAN_KIND_UNSPECIFIED

	statusOK    = tracev1.Status_STATUS_CODE_OK
	statusError = tracev1.Status_STATUS_CODE_ERROR
)

var t0 = uint64(time.Date(2026, time.March, 14, 15, 9, 26, 0, time.UTC).UnixNano())

type corpusTrace struct {
	name string
	td   *tracev1.TracesData
}

// corpus returns fresh traces, so that no test can change another's.
func corpus() []corpusTrace {
	return []corpusTrace{
		{"checkout", checkoutTrace()},
		{"db", dbTrace()},
		{"zipkin", zipkinTrace()},
		{"missing-root", missingRootTrace()},
		{"resource-types", resourceTypesTrace()},
		{"span-types", spanTypesTrace()},
		{"long", longTrace()},
		{"siblings", siblingsTrace()},
		{"deep", deepTrace()},
		{"quoted", quotedNamesTrace()},
		{"lonely", lonelyTrace()},
	}
}

// checkoutTrace: frontend → checkout → payment, failing in payment. The
// frontend's spans arrive in two ResourceSpans, as from two batches.
func checkoutTrace() *tracev1.TracesData {
	const tr = 1
	frontend := res("frontend", str("deployment.environment", "production"), str("service.version", "1.4.0"))
	checkout := res("checkout", str("deployment.environment", "production"))
	payment := res("payment", str("deployment.environment", "production"), str("cloud.region", "eu-west-1"))
	return td(
		rs(frontend, ss(scope("http", "0.57.1"),
			span(tr, 1, 0, "POST /api/checkout", server, 0, 900,
				attrs(str("http.request.method", "POST"), integer("http.response.status_code", 500), str("http.route", "/api/checkout"))),
		)),
		rs(checkout, ss(scope("grpc", "0.59.0"),
			span(tr, 3, 2, "oteldemo.CheckoutService/PlaceOrder", server, 15, 840),
			span(tr, 4, 3, "chargeCard", client, 100, 600, status(statusError, "rpc error: code = Unavailable")),
			span(tr, 6, 3, "sendOrderConfirmation", internal, 720, 100, status(statusOK, "")),
		)),
		rs(payment, ss(scope("grpc", "0.57.1"),
			span(tr, 5, 4, "oteldemo.PaymentService/Charge", server, 110, 580,
				status(statusError, "payment declined: insufficient funds"),
				attrs(double("app.payment.amount", 129.99), str("app.payment.card_type", "visa"))),
		)),
		rs(frontend, ss(scope("http", "0.57.1"),
			span(tr, 2, 1, "checkout.PlaceOrder", client, 10, 850, attrs(str("rpc.system", "grpc"))),
		)),
	)
}

// dbTrace: a catalog listing with two SQL queries and a cache lookup.
func dbTrace() *tracev1.TracesData {
	const tr = 2
	return td(
		rs(res("frontend"), ss(scope("http", "0.57.1"),
			span(tr, 1, 0, "GET /api/products", server, 0, 300, attrs(integer("http.response.status_code", 200))),
		)),
		rs(res("product-catalog"), ss(scope("grpc", "0.59.0"),
			span(tr, 2, 1, "oteldemo.ProductCatalogService/ListProducts", server, 20, 250, status(statusOK, "")),
			span(tr, 3, 2, "SELECT products", client, 30, 100,
				attrs(str("db.system", "postgresql"), str("db.query.text", "SELECT id FROM products"), integer("db.rows", 42))),
			span(tr, 4, 2, "SELECT products", client, 140, 20, attrs(str("db.system", "postgresql"), integer("db.rows", 0))),
			span(tr, 5, 2, "cache GET", client, 170, 1, attrs(str("db.system", "redis"), boolean("app.cache.hit", true))),
		)),
	)
}

// zipkinTrace: a Zipkin "shared" span: the client span and the server span
// of one call carry the same span ID (2), both with the caller as parent.
func zipkinTrace() *tracev1.TracesData {
	const tr = 3
	return td(
		rs(res("frontend"), ss(scope("zipkin", ""),
			span(tr, 1, 0, "GET /cart", server, 0, 200),
			span(tr, 2, 1, "get", client, 10, 180),
		)),
		rs(res("cart"), ss(scope("zipkin", ""),
			span(tr, 2, 1, "get", server, 12, 176),
			span(tr, 3, 2, "HGET", client, 20, 10, attrs(str("db.system", "redis"))),
		)),
	)
}

// missingRootTrace: a partial trace whose spans' parents never arrived; the
// earliest span stands in for the root.
func missingRootTrace() *tracev1.TracesData {
	const tr = 4
	orphanLate := span(tr, 1, 0, "orphan late", internal, 50, 50)
	orphanLate.ParentSpanId = spanID(tr, 9)
	orphanEarly := span(tr, 2, 0, "orphan early", internal, 10, 20)
	orphanEarly.ParentSpanId = spanID(tr, 8)
	return td(rs(res("inventory"), ss(scope("inventory", "3.0.0"),
		orphanLate,
		orphanEarly,
		span(tr, 3, 2, "child of early", internal, 12, 5),
	)))
}

// resourceTypesTrace: resource attributes of every type, and a span
// attribute shadowing a resource attribute of the same name.
func resourceTypesTrace() *tracev1.TracesData {
	const tr = 5
	r := res("worker",
		integer("process.pid", 4242),
		double("host.cpu.load", 0.75),
		boolean("feature.enabled", true),
		array("host.ip", sv("10.0.0.1"), sv("10.0.0.2")),
		str("service.namespace", "batch"),
		kvlist("k8s.pod.labels", str("app", "worker")),
	)
	return td(rs(r, ss(scope("batch", "1.0.0"),
		span(tr, 1, 0, "process batch", internal, 0, 2000, attrs(str("process.pid", "span-level"))),
		span(tr, 2, 1, "write output", client, 100, 1800),
	)))
}

// spanTypesTrace: span attributes of every OTLP type.
func spanTypesTrace() *tracev1.TracesData {
	const tr = 6
	return td(rs(res("api"), ss(scope("http", "1.0.0"),
		span(tr, 1, 0, "GET /items", server, 0, 50, attrs(
			integer("http.response.status_code", 404),
			double("app.ratio", 0.5),
			boolean("app.retry", true),
			array("app.tags", sv("blue"), sv("green")),
			array("app.codes", iv(1), iv(2), iv(3)),
			&commonv1.KeyValue{Key: "app.digest", Value: &commonv1.AnyValue{Value: &commonv1.AnyValue_BytesValue{BytesValue: []byte{1, 2}}}},
			kvlist("app.user", str("id", "u1")),
			integer("app.count", 3),
			double("app.score", 3.0),
			str("app.code_str", "404"),
			str("app.empty", ""),
		)),
		span(tr, 2, 1, "auth", internal, 10, 10, attrs(boolean("app.retry", false), integer("app.count", 7))),
	)))
}

// longTrace: an order handled asynchronously: the root span lasts 1s, the
// trace 5s. Has producer, consumer and unspecified spans.
func longTrace() *tracev1.TracesData {
	const tr = 7
	return td(
		rs(res("orders"), ss(scope("http", "1.0.0"),
			span(tr, 1, 0, "POST /orders", server, 0, 1000),
			span(tr, 2, 1, "publish order", producer, 100, 50),
		)),
		rs(res("accounting"), ss(scope("kafka", "2.12.0"),
			span(tr, 3, 2, "process order", consumer, 4000, 1000),
			span(tr, 4, 3, "INSERT accounting.orders", client, 4100, 200, attrs(str("db.system", "mysql"))),
			span(tr, 5, 3, "unspecified work", unspecified, 4500, 100),
		)),
	)
}

// siblingsTrace: a gateway fanning out to three backends.
func siblingsTrace() *tracev1.TracesData {
	const tr = 8
	return td(rs(res("gateway"), ss(scope("http", "1.0.0"),
		span(tr, 1, 0, "GET /feed", server, 0, 400),
		span(tr, 2, 1, "fetch user", client, 10, 50, attrs(boolean("app.cache.hit", true))),
		span(tr, 3, 1, "fetch posts", client, 10, 290, attrs(boolean("app.cache.hit", false)), status(statusError, "timeout")),
		span(tr, 4, 1, "fetch ads", client, 10, 70),
		span(tr, 5, 1, "render", internal, 300, 90),
		span(tr, 6, 3, "decode posts", internal, 200, 90),
	)))
}

// deepTrace: a chain five levels deep under two instrumentation scopes.
func deepTrace() *tracev1.TracesData {
	const tr = 9
	httpScope := scope("chain-http", "1.0.0")
	httpScope.Attributes = []*commonv1.KeyValue{str("otel.scope.kind", "library")}
	return td(rs(res("chain"),
		ss(httpScope,
			span(tr, 1, 0, "level 1", server, 0, 500),
			span(tr, 2, 1, "level 2", internal, 10, 400),
		),
		ss(scope("chain-db", "2.1.0"),
			span(tr, 3, 2, "level 3", internal, 20, 300),
			span(tr, 4, 3, "level 4", internal, 30, 200, status(statusError, "deep failure")),
			span(tr, 5, 4, "level 5", client, 40, 100),
		),
	))
}

// quotedNamesTrace: attribute names that need quoting in TraceQL.
func quotedNamesTrace() *tracev1.TracesData {
	const tr = 10
	return td(rs(res("names"), ss(scope("names", "1.0.0"),
		span(tr, 1, 0, "odd names", server, 0, 5, attrs(
			str("attribute name with space", "value"),
			str("http.request.header.content-type", "application/json"),
			str(`say "hi"`, "quoted"),
			str("über", "unicode"),
			str("a.b", "dotted"),
			str("app.note", "line1\nline2"),
		)),
	)))
}

// lonelyTrace: one span with no resource, no attributes, no duration.
func lonelyTrace() *tracev1.TracesData {
	const tr = 11
	return td(&tracev1.ResourceSpans{ScopeSpans: []*tracev1.ScopeSpans{ss(nil, span(tr, 1, 0, "lonely", unspecified, 0, 0))}})
}

// Builders.

func traceID(tr byte) []byte { return []byte{15: tr} }

func spanID(tr, n byte) []byte { return []byte{6: tr, 7: n} }

type spanOption func(*tracev1.Span)

func span(tr, id, parent byte, name string, kind tracev1.Span_SpanKind, startMs, durMs int, opts ...spanOption) *tracev1.Span {
	s := &tracev1.Span{
		TraceId:           traceID(tr),
		SpanId:            spanID(tr, id),
		Name:              name,
		Kind:              kind,
		StartTimeUnixNano: t0 + uint64(startMs)*uint64(time.Millisecond),
		EndTimeUnixNano:   t0 + uint64(startMs+durMs)*uint64(time.Millisecond),
	}
	if parent != 0 {
		s.ParentSpanId = spanID(tr, parent)
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

func attrs(kvs ...*commonv1.KeyValue) spanOption {
	return func(s *tracev1.Span) { s.Attributes = kvs }
}

func status(code tracev1.Status_StatusCode, msg string) spanOption {
	return func(s *tracev1.Span) { s.Status = &tracev1.Status{Code: code, Message: msg} }
}

func td(rss ...*tracev1.ResourceSpans) *tracev1.TracesData {
	return &tracev1.TracesData{ResourceSpans: rss}
}

func rs(r *resourcev1.Resource, sss ...*tracev1.ScopeSpans) *tracev1.ResourceSpans {
	return &tracev1.ResourceSpans{Resource: r, ScopeSpans: sss}
}

func ss(s *commonv1.InstrumentationScope, spans ...*tracev1.Span) *tracev1.ScopeSpans {
	return &tracev1.ScopeSpans{Scope: s, Spans: spans}
}

func scope(name, version string) *commonv1.InstrumentationScope {
	return &commonv1.InstrumentationScope{Name: name, Version: version}
}

func res(service string, kvs ...*commonv1.KeyValue) *resourcev1.Resource {
	return &resourcev1.Resource{Attributes: append([]*commonv1.KeyValue{str("service.name", service)}, kvs...)}
}

func sv(s string) *commonv1.AnyValue {
	return &commonv1.AnyValue{Value: &commonv1.AnyValue_StringValue{StringValue: s}}
}

func iv(n int64) *commonv1.AnyValue {
	return &commonv1.AnyValue{Value: &commonv1.AnyValue_IntValue{IntValue: n}}
}

func str(k, v string) *commonv1.KeyValue { return &commonv1.KeyValue{Key: k, Value: sv(v)} }

func integer(k string, v int64) *commonv1.KeyValue { return &commonv1.KeyValue{Key: k, Value: iv(v)} }

func double(k string, v float64) *commonv1.KeyValue {
	return &commonv1.KeyValue{Key: k, Value: &commonv1.AnyValue{Value: &commonv1.AnyValue_DoubleValue{DoubleValue: v}}}
}

func boolean(k string, v bool) *commonv1.KeyValue {
	return &commonv1.KeyValue{Key: k, Value: &commonv1.AnyValue{Value: &commonv1.AnyValue_BoolValue{BoolValue: v}}}
}

func array(k string, vs ...*commonv1.AnyValue) *commonv1.KeyValue {
	return &commonv1.KeyValue{Key: k, Value: &commonv1.AnyValue{Value: &commonv1.AnyValue_ArrayValue{ArrayValue: &commonv1.ArrayValue{Values: vs}}}}
}

func kvlist(k string, kvs ...*commonv1.KeyValue) *commonv1.KeyValue {
	return &commonv1.KeyValue{Key: k, Value: &commonv1.AnyValue{Value: &commonv1.AnyValue_KvlistValue{KvlistValue: &commonv1.KeyValueList{Values: kvs}}}}
}
