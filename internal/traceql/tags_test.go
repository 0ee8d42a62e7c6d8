package traceql_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vivace-dev/vivace/internal/traceql"
)

func TestFromTags(t *testing.T) {
	for _, tc := range []struct {
		tags     string
		min, max time.Duration
		want     string   // canonical query
		matches  []string // corpus traces it finds
	}{
		{tags: "", want: `{}`, matches: allTraces},
		{tags: "  ", min: 1 * time.Second, want: `{ trace:duration >= 1s }`, matches: []string{"resource-types", "long"}},
		{tags: "", min: 5 * time.Second, max: 5 * time.Second, want: `{ trace:duration >= 5s && trace:duration <= 5s }`, matches: []string{"long"}},
		{tags: "service.name=payment", want: `{ .service.name = "payment" }`, matches: []string{"checkout"}},
		{tags: "service.name=payment", min: time.Second, want: `{ .service.name = "payment" && trace:duration >= 1s }`},
		{tags: "service.name=payment", min: 500 * time.Millisecond, max: time.Second,
			want: `{ .service.name = "payment" && trace:duration >= 500ms && trace:duration <= 1s }`, matches: []string{"checkout"}},
		{tags: "http.response.status_code=404", want: `{ .http.response.status_code = "404" || .http.response.status_code = 404 }`, matches: []string{"span-types"}},
		{tags: "app.code_str=404", want: `{ .app.code_str = "404" || .app.code_str = 404 }`, matches: []string{"span-types"}},
		{tags: "app.ratio=0.5", want: `{ .app.ratio = "0.5" || .app.ratio = 0.5 }`, matches: []string{"span-types"}},
		{tags: "app.retry=true", want: `{ .app.retry = "true" || .app.retry = true }`, matches: []string{"span-types"}},
		{tags: `name="GET /cart" root.service.name=frontend`, want: `{ span:name = "GET /cart" } && { trace:rootService = "frontend" }`, matches: []string{"zipkin"}},
		{tags: "status=error", max: 450 * time.Millisecond, want: `{ span:status = error && trace:duration <= 450ms }`, matches: []string{"siblings"}},
		{tags: "status.code=ok root.name=\"GET /api/products\"", want: `{ span:status = ok } && { trace:rootName = "GET /api/products" }`, matches: []string{"db"}},
		{tags: "kind=producer", want: `{ span:kind = producer }`, matches: []string{"long"}},
		{tags: `statusMessage="payment declined: insufficient funds"`, want: `{ span:statusMessage = "payment declined: insufficient funds" }`, matches: []string{"checkout"}},
		// Different tags may hold on different spans, as in Tempo.
		{tags: "db.system=postgresql db.system2=x", want: `{ .db.system = "postgresql" } && { .db.system2 = "x" }`},
		{tags: "db.system=postgresql app.cache.hit=true", want: `{ .db.system = "postgresql" } && { .app.cache.hit = "true" || .app.cache.hit = true }`, matches: []string{"db"}},
		{tags: "x.{y}=\"a \\\"b\\\"\"", want: `{ ."x.{y}" = "a \"b\"" }`},
		{tags: "über=unicode", want: `{ .über = "unicode" }`, matches: []string{"quoted"}},
		{tags: "empty=", want: `{ .empty = "" }`},
	} {
		t.Run(tc.tags, func(t *testing.T) {
			q, err := traceql.FromTags(tc.tags, tc.min, tc.max)
			require.NoError(t, err)
			require.Equal(t, tc.want, q.String())
			var got []string
			for _, c := range corpus() {
				if len(q.Eval(c.td)) > 0 {
					got = append(got, c.name)
				}
			}
			require.Equal(t, tc.matches, got)
		})
	}
}

func TestFromTagsErrors(t *testing.T) {
	for _, tc := range []struct {
		tags     string
		min, max time.Duration
		want     string
	}{
		{tags: "service.name", want: `invalid tags: tag "service.name" has no value: write service.name=<value>`},
		{tags: "=x", want: `invalid tags: expected a key at position 1`},
		{tags: `a=1 "quoted"=1`, want: `invalid tags: expected a key at position 5`},
		{tags: `a=1 a=2`, want: `invalid tags: tag "a" given twice`},
		{tags: `a="unterminated`, want: `invalid tags: value of "a": missing closing quote`},
		{tags: `a="bad \q"`, want: `invalid tags: value of "a": bad escape in "bad \q"`},
		{tags: `a=b"c`, want: `invalid tags: value of "a": unexpected '"' at position 4; quote values with spaces, quotes or =`},
		{tags: `a=b=c`, want: `invalid tags: value of "a": unexpected '=' at position 4; quote values with spaces, quotes or =`},
		{tags: "status=broken", want: `invalid tags: status="broken": want error, ok or unset`},
		{tags: "kind=remote", want: `invalid tags: kind="remote": want unspecified, internal, server, client, producer or consumer`},
		{min: -time.Second, want: `invalid minDuration -1s: must not be negative`},
		{max: -time.Second, want: `invalid maxDuration -1s: must not be negative`},
		{min: 2 * time.Second, max: time.Second, want: `invalid maxDuration 1s: must not be less than minDuration 2s`},
	} {
		t.Run(tc.tags, func(t *testing.T) {
			_, err := traceql.FromTags(tc.tags, tc.min, tc.max)
			require.EqualError(t, err, tc.want)
		})
	}
}
