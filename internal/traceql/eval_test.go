package traceql_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/vivace-dev/vivace/internal/model"
	"github.com/vivace-dev/vivace/internal/model/modeltest"
	"github.com/vivace-dev/vivace/internal/traceql"
)

var allTraces = []string{"checkout", "db", "zipkin", "missing-root", "resource-types", "span-types", "long", "siblings", "deep", "quoted", "lonely"}

// except returns allTraces without the given ones.
func except(names ...string) []string {
	return slices.DeleteFunc(slices.Clone(allTraces), func(n string) bool { return slices.Contains(names, n) })
}

// TestEvalMatchingTraces checks every operator and intrinsic against the
// traces of the corpus that must match.
func TestEvalMatchingTraces(t *testing.T) {
	for _, tc := range []struct {
		query string
		want  []string // names of the matching corpus traces
	}{
		// Every span, and literals alone.
		{`{}`, allTraces},
		{``, allTraces},
		{`{ true }`, allTraces},
		{`{ false }`, nil},
		{`{ 1 = 1 }`, allTraces},

		// name
		{`{ name = "chargeCard" }`, []string{"checkout"}},
		{`{ span:name = "SELECT products" }`, []string{"db"}},
		{`{ name = ` + "`GET /cart`" + ` }`, []string{"zipkin"}},
		{`{ name != "lonely" && rootServiceName = "" }`, nil},
		{`{ name =~ "GET .*" }`, []string{"db", "zipkin", "span-types", "siblings"}},
		{`{ name =~ "level" }`, nil}, // anchored: must match the whole name
		{`{ name =~ "level [0-9]" }`, []string{"deep"}},
		{`{ name =~ "(?i)get /CART" }`, []string{"zipkin"}},
		{`{ name =~ "\\Qcache GET" }`, []string{"db"}},
		{`{ name !~ ".* .*" }`, []string{"checkout", "db", "zipkin", "span-types", "siblings", "lonely"}},
		{`{ name > "sendOrder" && name < "u" }`, []string{"checkout"}}, // strings order lexically

		// status and statusMessage
		{`{ status = error }`, []string{"checkout", "siblings", "deep"}},
		{`{ span:status = ok }`, []string{"checkout", "db"}},
		{`{ status = unset && name = "GET /cart" }`, []string{"zipkin"}},
		{`{ span:status != error && rootServiceName = "chain" && name = "level 4" }`, nil},
		{`{ statusMessage = "payment declined: insufficient funds" }`, []string{"checkout"}},
		{`{ span:statusMessage =~ "rpc error.*" }`, []string{"checkout"}},
		{`{ statusMessage = "" && status = error }`, nil},

		// duration
		{`{ duration > 500ms }`, []string{"checkout", "resource-types", "long"}},
		{`{ span:duration >= 500ms && span:duration < 600ms }`, []string{"checkout", "deep"}},
		{`{ duration = 1ms }`, []string{"db"}},
		{`{ duration = 1000000 }`, []string{"db"}}, // nanoseconds
		{`{ duration <= 0s }`, []string{"lonely"}},
		{`{ duration > 1.5s }`, []string{"resource-types"}},
		{`{ duration >= 1m || duration > 1h }`, nil},

		// kind
		{`{ kind = server }`, []string{"checkout", "db", "zipkin", "span-types", "long", "siblings", "deep", "quoted"}},
		{`{ kind = client }`, []string{"checkout", "db", "zipkin", "resource-types", "long", "siblings", "deep"}},
		{`{ kind = internal }`, []string{"checkout", "missing-root", "resource-types", "span-types", "siblings", "deep"}},
		{`{ kind = producer }`, []string{"long"}},
		{`{ span:kind = consumer }`, []string{"long"}},
		{`{ span:kind = unspecified }`, []string{"long", "lonely"}},
		{`{ kind != server && kind != client && kind != internal }`, []string{"long", "lonely"}},

		// trace-level intrinsics
		{`{ traceDuration > 1s }`, []string{"resource-types", "long"}},
		{`{ trace:duration = 90ms }`, []string{"missing-root"}},
		{`{ traceDuration <= 50ms }`, []string{"span-types", "quoted", "lonely"}},
		{`{ trace:duration > 2s && span:duration < 2s && kind = consumer }`, []string{"long"}},
		{`{ rootName = "POST /api/checkout" }`, []string{"checkout"}},
		{`{ trace:rootName = "orphan early" }`, []string{"missing-root"}},
		{`{ rootServiceName = "frontend" }`, []string{"checkout", "db", "zipkin"}},
		{`{ trace:rootService = "inventory" }`, []string{"missing-root"}},
		{`{ trace:rootService = "" }`, []string{"lonely"}},
		{`{ trace:id = "00000000000000000000000000000002" }`, []string{"db"}},
		{`{ trace:id = "2" }`, []string{"db"}},
		{`{ trace:id = "0B" }`, []string{"lonely"}},
		{`{ trace:id != "2" && name = "GET /api/products" }`, nil},

		// span IDs and tree intrinsics
		{`{ span:id = "0000000000000103" }`, []string{"checkout"}},
		{`{ span:id = "103" }`, []string{"checkout"}},
		{`{ span:parentID = "0000000000000302" && name = "HGET" }`, []string{"zipkin"}},
		{`{ span:parentID = nil }`, except("missing-root")},
		{`{ span:childCount > 2 }`, []string{"db", "siblings"}},
		{`{ span:childCount = 0 && resource.service.name = "payment" }`, []string{"checkout"}},
		{`{ nestedSetParent < 0 }`, except("missing-root")},
		{`{ nestedSetParent = 0 }`, []string{"missing-root"}},
		{`{ nestedSetParent < 0 && name = "orphan early" }`, nil},
		{`{ nestedSetLeft = 1 && nestedSetRight = 10 && name = "level 1" }`, []string{"deep"}},
		{`{ nestedSetParent = 4 && name = "level 5" }`, []string{"deep"}},

		// instrumentation scope
		{`{ instrumentation:name = "chain-db" && kind = client }`, []string{"deep"}},
		{`{ instrumentation:version = "3.0.0" }`, []string{"missing-root"}},
		{`{ instrumentation.otel.scope.kind = "library" }`, []string{"deep"}},

		// span and resource attributes, scoped and unscoped
		{`{ span.http.response.status_code = 500 }`, []string{"checkout"}},
		{`{ .http.response.status_code >= 400 }`, []string{"checkout", "span-types"}},
		{`{ .http.response.status_code != 500 }`, []string{"db", "span-types"}}, // a missing attribute is not != 500
		{`{ span.http.response.status_code = 404.0 }`, []string{"span-types"}},  // int against float
		{`{ span.http.response.status_code = "404" }`, nil},                     // a string never equals a number
		{`{ span.app.code_str = 404 }`, nil},
		{`{ span.app.code_str = "404" }`, []string{"span-types"}},
		{`{ resource.service.name = "payment" }`, []string{"checkout"}},
		{`{ .service.name = "cart" }`, []string{"zipkin"}}, // unscoped falls back to the resource
		{`{ span.service.name = "cart" }`, nil},
		{`{ resource.deployment.environment = "production" && span.http.request.method = "POST" }`, []string{"checkout"}},
		{`{ resource.service.name = nil }`, []string{"lonely"}},
		{`{ resource.cloud.region != nil }`, []string{"checkout"}},
		{`{ .db.system =~ "postgresql|mysql" }`, []string{"db", "long"}},
		{`{ .db.system !~ "postgresql|mysql" }`, []string{"db", "zipkin"}}, // redis

		// resource attributes of each type
		{`{ resource.process.pid = 4242 }`, []string{"resource-types"}},
		{`{ resource.process.pid > 4000.5 }`, []string{"resource-types"}},
		{`{ resource.host.cpu.load < 1 }`, []string{"resource-types"}},
		{`{ resource.feature.enabled = true }`, []string{"resource-types"}},
		{`{ resource.feature.enabled }`, []string{"resource-types"}},
		{`{ resource.host.ip = "10.0.0.2" }`, []string{"resource-types"}},
		{`{ resource.host.ip != "10.0.0.3" }`, []string{"resource-types"}},
		{`{ resource.host.ip != "10.0.0.1" }`, nil}, // no element may equal it
		{`{ resource.host.ip =~ "10\\.0\\..*" }`, []string{"resource-types"}},
		{`{ resource.host.ip !~ "192\\..*" }`, []string{"resource-types"}},
		{`{ resource.k8s.pod.labels != nil }`, nil}, // key-value lists are not searchable

		// span attributes of each type
		{`{ span.app.ratio = 0.5 }`, []string{"span-types"}},
		{`{ span.app.retry = true }`, []string{"span-types"}},
		{`{ span.app.retry = false }`, []string{"span-types"}},
		{`{ span.app.retry && name = "GET /items" }`, []string{"span-types"}},
		{`{ !span.app.retry && name = "GET /items" }`, nil},
		{`{ span.app.tags = "green" }`, []string{"span-types"}},
		{`{ span.app.codes = 2 }`, []string{"span-types"}},
		{`{ span.app.codes > 2 }`, []string{"span-types"}},
		{`{ span.app.codes = 4 }`, nil},
		{`{ span.app.digest != nil }`, nil}, // bytes are not searchable
		{`{ span.app.user = nil && name = "GET /items" }`, []string{"span-types"}},
		{`{ span.app.count = 3.0 }`, []string{"span-types"}},
		{`{ span.app.score = 3 }`, []string{"span-types"}},
		{`{ span.app.empty = "" }`, []string{"span-types"}},
		{`{ span.app.missing != 1 }`, nil},
		{`{ span.app.missing = nil && name = "auth" }`, []string{"span-types"}},
		{`{ span.app.count != nil }`, []string{"span-types"}},
		{`{ span.app.retry = 1 }`, nil},
		{`{ span.app.ratio > "0" }`, nil},

		// quoted attribute names and escapes
		{`{ span."attribute name with space" = "value" }`, []string{"quoted"}},
		{`{ span.http.request.header.content-type = "application/json" }`, []string{"quoted"}},
		{`{ span."say \"hi\"" = "quoted" }`, []string{"quoted"}},
		{`{ .über = "unicode" }`, []string{"quoted"}},
		{`{ span."a.b" = "dotted" }`, []string{"quoted"}},
		{`{ span.a."b" = "dotted" }`, []string{"quoted"}},
		{`{ span.app.note = "line1\nline2" }`, []string{"quoted"}},

		// logic and arithmetic
		{`{ name = "fetch user" || name = "level 3" }`, []string{"siblings", "deep"}},
		{`{ (status = error || kind = producer) && resource.service.name != "checkout" }`, []string{"checkout", "long", "siblings", "deep"}},
		{`{ !(status = error) && name = "chargeCard" }`, nil},
		{`{ !(kind = server) && rootServiceName = "gateway" }`, []string{"siblings"}},
		{`{ span.db.rows * 2 = 84 }`, []string{"db"}},
		{`{ span.app.count + 1 = 4 }`, []string{"span-types"}},
		{`{ span.app.count / 2 = 1.5 }`, []string{"span-types"}},
		{`{ span.app.count - 10 = -7 }`, []string{"span-types"}},
		{`{ -span.app.count = -7 }`, []string{"span-types"}},
		{`{ span:duration / 1000000 > 800 }`, []string{"checkout", "resource-types", "long"}},
		{`{ duration - 1ms = 0s }`, []string{"db"}},
		{`{ span.app.count / 0 = 1 }`, nil},

		// span-set operators
		{`{ resource.service.name = "frontend" } && { resource.service.name = "payment" }`, []string{"checkout"}},
		{`{ .db.system = "postgresql" } && { .db.system = "redis" }`, []string{"db"}},
		{`{ status = error } && { kind = producer }`, nil},
		{`{ name = "level 1" } || { name = "fetch ads" }`, []string{"siblings", "deep"}},
		{`{ name = "nothing" } || { name = "lonely" }`, []string{"lonely"}},

		// structural operators
		{`{ resource.service.name = "frontend" } >> { status = error }`, []string{"checkout"}},
		{`{ name = "level 1" } > { name = "level 2" }`, []string{"deep"}},
		{`{ name = "level 1" } > { name = "level 3" }`, nil},
		{`{ name = "level 1" } >> { name = "level 5" }`, []string{"deep"}},
		{`{ name = "level 5" } < { name = "level 4" }`, []string{"deep"}},
		{`{ name = "level 5" } < { name = "level 3" }`, nil},
		{`{ name = "level 5" } << { name = "level 1" }`, []string{"deep"}},
		{`{ name = "fetch user" } ~ { name = "fetch ads" }`, []string{"siblings"}},
		{`{ name = "fetch user" } ~ { name = "fetch user" }`, nil}, // a span is not its own sibling
		{`{ kind = client } ~ { kind = client }`, []string{"db", "siblings"}},
		{`{ kind = client && name = "get" } > { kind = server && name = "get" }`, []string{"zipkin"}},
		{`{ resource.service.name = "cart" && kind = server } > { name = "HGET" }`, []string{"zipkin"}},
		{`{ name = "GET /cart" } > { name = "HGET" }`, nil},
		{`{ name = "GET /cart" } >> { name = "HGET" }`, []string{"zipkin"}},
		{`{ name = "orphan early" } > { name = "child of early" }`, []string{"missing-root"}},
		{`{ } !< { resource.service.name = "product-catalog" }`, []string{"db"}},
		{`{ status = error } !< { status = error }`, []string{"checkout", "siblings", "deep"}},
		{`{ name = "level 1" } !> { name = "level 3" }`, []string{"deep"}},
		{`{ name = "level 1" } !>> { name = "level 1" }`, []string{"deep"}},
		{`{ name = "level 1" } !>> { name = "level 2" }`, nil},
		{`{ name = "level 3" } !<< { name = "level 1" }`, nil},
		{`{ name = "fetch posts" } !~ { name = "fetch user" }`, nil},
		{`{ name = "fetch posts" } !~ { name = "render" || name = "GET /feed" }`, []string{"siblings"}},
		{`{ name = "level 2" } &>> { status = error }`, []string{"deep"}},
		{`{ name = "level 2" } &< { name = "level 1" }`, []string{"deep"}},
		{`{ name = "fetch user" } &~ { name = "fetch ads" }`, []string{"siblings"}},
		{`{ name = "GET /feed" } &> { status = error }`, []string{"siblings"}},
		{`{ name = "level 5" } &<< { kind = server }`, []string{"deep"}},
		{`{ kind = server } > { kind = client } > { kind = server }`, []string{"checkout", "zipkin"}},

		// pipelines
		{`{ kind = client } | count() > 2`, []string{"db", "siblings"}},
		{`{ } | count() = 1`, []string{"quoted", "lonely"}},
		{`{ resource.service.name = "checkout" } | avg(duration) > 500ms`, []string{"checkout"}},
		{`{ } | max(span:duration) = 2s`, []string{"resource-types"}},
		{`{ } | min(duration) < 1ms`, []string{"lonely"}},
		{`{ .db.system != nil } | sum(span.db.rows) = 42`, []string{"db"}},
		{`{ } | sum(duration) > 3500ms`, []string{"checkout", "resource-types"}},
		{`{ span.app.count != nil } | avg(span.app.count) = 5`, []string{"span-types"}},
		{`{ } | min(span.app.count) = 3 | max(span.app.count) = 7`, []string{"span-types"}},
		{`{ } | avg(span.app.missing) > 0`, nil},
		{`{ kind = client } | by(resource.service.name) | count() > 1`, []string{"db", "siblings"}},
		{`{ rootServiceName = "gateway" } | { status = error }`, []string{"siblings"}},
		{`({ kind = client } | count() > 2) && { status = error }`, []string{"siblings"}},
		{`{ } | by(kind) | count() > 2 | coalesce()`, []string{"checkout", "db", "missing-root", "siblings", "deep"}},
		{`{ status = error } | select(span.http.route)`, []string{"checkout", "siblings", "deep"}},
		{`{ status = error } with (most_recent=true)`, []string{"checkout", "siblings", "deep"}},
	} {
		t.Run(tc.query, func(t *testing.T) {
			q, err := traceql.Parse(tc.query)
			require.NoError(t, err)
			var got []string
			for _, c := range corpus() {
				if sets := q.Eval(c.td); len(sets) > 0 {
					got = append(got, c.name)
					for _, s := range sets {
						require.NotEmpty(t, s.Spans, "an empty span set")
						require.Equal(t, len(s.Spans), s.Matched)
					}
				}
			}
			require.Equal(t, tc.want, got)
		})
	}
}

// TestEvalSpanSets checks the matched spans, span sets and their values.
func TestEvalSpanSets(t *testing.T) {
	for _, tc := range []struct {
		query string
		trace string
		want  []string // per span set: "by=value: span, span" or "span[attr=value], span"
	}{
		{`{ .process.pid = 4242 }`, "resource-types", []string{"write output[process.pid=4242]"}}, // the span's own process.pid shadows the resource's
		{`{ .process.pid = "span-level" }`, "resource-types", []string{`process batch[process.pid="span-level"]`}},
		{`{ status = error }`, "checkout", []string{`chargeCard[status=error], oteldemo.PaymentService/Charge[status=error]`}},
		{`{ kind = client } > { kind = server }`, "zipkin", []string{"get[kind=server]"}},
		{`{ name = "level 2" } &>> { status = error }`, "deep", []string{"level 2[status=unset], level 4[status=error]"}},
		{`{ name = "GET /feed" } &> { status = error }`, "siblings", []string{"GET /feed[status=unset], fetch posts[status=error]"}},
		{`{ name = "fetch user" } &~ { kind = client }`, "siblings", []string{"fetch user[kind=client], fetch posts[kind=client], fetch ads[kind=client]"}},
		{`{ } !< { resource.service.name = "product-catalog" }`, "db", []string{
			`SELECT products[service.name="product-catalog"], SELECT products[service.name="product-catalog"], cache GET[service.name="product-catalog"]`}},
		{`{ status = error } !< { status = error }`, "checkout", []string{"oteldemo.PaymentService/Charge[status=error]"}},
		{`{ resource.service.name = "frontend" } >> { }`, "checkout", []string{
			`checkout.PlaceOrder[service.name="frontend"], oteldemo.CheckoutService/PlaceOrder[service.name="checkout"], chargeCard[service.name="checkout"], ` +
				`oteldemo.PaymentService/Charge[service.name="payment"], sendOrderConfirmation[service.name="checkout"]`}},
		{`{ name = "level 5" } << { }`, "deep", []string{"level 1, level 2, level 3, level 4"}},
		{`{ name = "HGET" } << { }`, "zipkin", []string{"GET /cart, get, get"}},
		{`{ } | by(resource.service.name)`, "checkout", []string{
			`by(resource.service.name)="frontend": POST /api/checkout[service.name="frontend"], checkout.PlaceOrder[service.name="frontend"]`,
			`by(resource.service.name)="checkout": oteldemo.CheckoutService/PlaceOrder[service.name="checkout"], chargeCard[service.name="checkout"], sendOrderConfirmation[service.name="checkout"]`,
			`by(resource.service.name)="payment": oteldemo.PaymentService/Charge[service.name="payment"]`,
		}},
		{`{ } | by(span.app.count) | count() = 1`, "span-types", []string{
			`by(span.app.count)=3: GET /items[app.count=3]`,
			`by(span.app.count)=7: auth[app.count=7]`,
		}},
		{`{ .db.system != nil } | by(.db.system) | count() > 1 | select(span.db.rows, resource.service.name)`, "db", []string{
			`by(.db.system)="postgresql": SELECT products[db.system="postgresql", db.rows=42, service.name="product-catalog"], ` +
				`SELECT products[db.system="postgresql", db.rows=0, service.name="product-catalog"]`,
		}},
		{`{ } | by(kind) | coalesce()`, "zipkin", []string{"GET /cart[kind=server], get[kind=client], get[kind=server], HGET[kind=client]"}},
		{`{ name = "chargeCard" } | select(span:statusMessage, span:id, trace:rootName, instrumentation:name)`, "checkout", []string{
			`chargeCard[statusMessage="rpc error: code = Unavailable", span:id="0000000000000104", rootName="POST /api/checkout", instrumentation:name="grpc"]`}},
		{`{ span.app.tags = "blue" }`, "span-types", []string{`GET /items[app.tags=["blue", "green"]]`}},
		{`{ duration > 500ms } && { name = "sendOrderConfirmation" }`, "checkout", []string{
			"POST /api/checkout, checkout.PlaceOrder, oteldemo.CheckoutService/PlaceOrder, chargeCard, oteldemo.PaymentService/Charge, sendOrderConfirmation"}},
	} {
		t.Run(tc.query, func(t *testing.T) {
			q, err := traceql.Parse(tc.query)
			require.NoError(t, err)
			var got []string
			for _, s := range q.Eval(traceByName(t, tc.trace)) {
				got = append(got, describe(s))
			}
			require.Equal(t, tc.want, got)
		})
	}
}

func traceByName(t testing.TB, name string) *tracev1.TracesData {
	for _, c := range corpus() {
		if c.name == name {
			return c.td
		}
	}
	t.Fatalf("no trace %q in the corpus", name)
	return nil
}

func describe(s traceql.SpanSet) string {
	var by []string
	for _, kv := range s.By {
		by = append(by, kv.Key+"="+kv.Value.String())
	}
	var spans []string
	for _, sp := range s.Spans {
		var kvs []string
		for _, kv := range sp.Attributes {
			kvs = append(kvs, kv.Key+"="+kv.Value.String())
		}
		if len(kvs) > 0 {
			spans = append(spans, sp.Name+"["+strings.Join(kvs, ", ")+"]")
		} else {
			spans = append(spans, sp.Name)
		}
	}
	out := strings.Join(spans, ", ")
	if len(by) > 0 {
		out = strings.Join(by, ", ") + ": " + out
	}
	return out
}

func TestEvalSpanFields(t *testing.T) {
	q, err := traceql.Parse(`{ name = "oteldemo.PaymentService/Charge" }`)
	require.NoError(t, err)
	sets := q.Eval(checkoutTrace())
	require.Len(t, sets, 1)
	require.Equal(t, []traceql.Span{{
		SpanID:        spanID(1, 5),
		Name:          "oteldemo.PaymentService/Charge",
		StartUnixNano: t0 + uint64(110*time.Millisecond),
		DurationNanos: uint64(580 * time.Millisecond),
		ServiceName:   "payment",
	}}, sets[0].Spans)
	require.Equal(t, 1, sets[0].Matched)
	require.Empty(t, sets[0].By)
}

func TestEvalEmptyTrace(t *testing.T) {
	q, err := traceql.Parse(`{}`)
	require.NoError(t, err)
	require.Empty(t, q.Eval(nil))
	require.Empty(t, q.Eval(td()))
	require.Empty(t, q.Eval(td(rs(res("x"), ss(nil)))))
}

// TestEvalParentCycle: bad data with a parent loop must not hang the
// structural operators.
func TestEvalParentCycle(t *testing.T) {
	a := span(12, 1, 2, "a", server, 0, 10)
	b := span(12, 2, 1, "b", server, 0, 10)
	self := span(12, 3, 3, "self", server, 0, 10)
	trace := td(rs(res("loop"), ss(nil, a, b, self)))
	for _, query := range []string{`{} >> {}`, `{} << {}`, `{} ~ {}`, `{} !> {}`, `{ nestedSetLeft > 0 }`, `{ span:childCount >= 0 }`} {
		q, err := traceql.Parse(query)
		require.NoError(t, err)
		q.Eval(trace) // must return
	}
}

// TestEvalConcurrent: one Query serves many searches at once (run with -race).
func TestEvalConcurrent(t *testing.T) {
	q, err := traceql.Parse(`{ name =~ "level.*" } >> { status = error } | by(resource.service.name) | select(span:childCount, nestedSetParent)`)
	require.NoError(t, err)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for _, c := range corpus() {
				q.Eval(c.td)
			}
		})
	}
	wg.Wait()
}

func TestSummarize(t *testing.T) {
	for _, tc := range []struct {
		trace   string
		want    traceql.TraceSummary
		traceID string
	}{
		{"checkout", traceql.TraceSummary{RootServiceName: "frontend", RootSpanName: "POST /api/checkout", HasRoot: true, StartUnixNano: t0, DurationNanos: uint64(900 * time.Millisecond)}, "1"},
		{"missing-root", traceql.TraceSummary{RootServiceName: "inventory", RootSpanName: "orphan early", StartUnixNano: t0 + uint64(10*time.Millisecond), DurationNanos: uint64(90 * time.Millisecond)}, "4"},
		{"long", traceql.TraceSummary{RootServiceName: "orders", RootSpanName: "POST /orders", HasRoot: true, StartUnixNano: t0, DurationNanos: uint64(5 * time.Second)}, "7"},
	} {
		t.Run(tc.trace, func(t *testing.T) {
			id, err := model.ParseTraceID(tc.traceID)
			require.NoError(t, err)
			tc.want.TraceID = id
			require.Equal(t, tc.want, traceql.Summarize(traceByName(t, tc.trace)))
		})
	}
	require.Equal(t, traceql.TraceSummary{}, traceql.Summarize(td()))
}

// TestEvalModeltest runs queries over realistic generated traces and checks
// them against a direct computation.
func TestEvalModeltest(t *testing.T) {
	_, traces := modeltest.Traces(rand.New(rand.NewPCG(1, 2)), 200, 30)
	errorSpans := func(q string) int {
		parsed, err := traceql.Parse(q)
		require.NoError(t, err)
		n := 0
		for _, tr := range traces {
			for _, s := range parsed.Eval(tr) {
				n += s.Matched
			}
		}
		return n
	}
	want := 0
	for _, tr := range traces {
		for _, r := range tr.ResourceSpans {
			for _, s := range r.ScopeSpans {
				for _, sp := range s.Spans {
					if sp.Status.GetCode() == statusError {
						want++
					}
				}
			}
		}
	}
	require.Positive(t, want)
	require.Equal(t, want, errorSpans(`{ status = error }`))
	require.Equal(t, want, errorSpans(`{ status = error } | by(resource.service.name)`))
	require.Equal(t, want, errorSpans(`{ status = error } | by(resource.service.name) | coalesce()`))
	require.Equal(t, want, errorSpans(`{ } | { status = error }`))
	// Every non-root span descends from the root.
	require.Equal(t, errorSpans(`{ span:parentID != nil && status = error }`), errorSpans(`{ span:parentID = nil } >> { status = error }`))
}

func ExampleQuery_Eval() {
	q, err := traceql.Parse(`{ resource.service.name = "checkout" } >> { status = error } | select(span:statusMessage)`)
	if err != nil {
		panic(err)
	}
	for _, set := range q.Eval(checkoutTrace()) {
		for _, s := range set.Spans {
			fmt.Println(s.ServiceName, s.Name)
			for _, kv := range s.Attributes {
				fmt.Printf("  %s = %s\n", kv.Key, kv.Value)
			}
		}
	}
	// Output:
	// checkout chargeCard
	//   service.name = "checkout"
	//   status = error
	//   statusMessage = "rpc error: code = Unavailable"
	// payment oteldemo.PaymentService/Charge
	//   service.name = "payment"
	//   status = error
	//   statusMessage = "payment declined: insufficient funds"
}
