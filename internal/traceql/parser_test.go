package traceql_test

import (
	"errors"
	"flag"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/vivace-dev/vivace/internal/model/modeltest"
	"github.com/vivace-dev/vivace/internal/traceql"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/parse")

// A golden file holds cases separated by blank lines: optional "#" comment
// lines, the query (one or more lines), a "---" line, and what is expected:
// the canonical query for valid.txt, the error for invalid.txt.
type goldenCase struct {
	comment []string
	query   string
	want    string
}

func readGolden(t testing.TB, path string) []goldenCase {
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	var cases []goldenCase
	for _, block := range strings.Split(strings.TrimSpace(string(data)), "\n\n") {
		var c goldenCase
		lines := strings.Split(block, "\n")
		for len(lines) > 0 && strings.HasPrefix(lines[0], "#") {
			c.comment = append(c.comment, lines[0])
			lines = lines[1:]
		}
		sep := len(lines)
		for i, l := range lines {
			if l == "---" {
				sep = i
				break
			}
		}
		require.NotZerof(t, sep, "%s: a case without query: %q", path, block)
		c.query = strings.Join(lines[:sep], "\n")
		if sep < len(lines) {
			c.want = strings.Join(lines[sep+1:], "\n")
		}
		cases = append(cases, c)
	}
	return cases
}

func writeGolden(t testing.TB, path string, cases []goldenCase) {
	var b strings.Builder
	for i, c := range cases {
		if i > 0 {
			b.WriteString("\n")
		}
		for _, l := range c.comment {
			b.WriteString(l + "\n")
		}
		b.WriteString(c.query + "\n---\n" + c.want + "\n")
	}
	require.NoError(t, os.WriteFile(path, []byte(b.String()), 0o644))
}

func TestParseValidGolden(t *testing.T) {
	path := filepath.Join("testdata", "parse", "valid.txt")
	cases := readGolden(t, path)
	require.GreaterOrEqual(t, len(cases), 60)
	for i, c := range cases {
		q, err := traceql.Parse(c.query)
		require.NoErrorf(t, err, "query %q", c.query)
		got := q.String()
		if *update {
			cases[i].want = got
			continue
		}
		require.Equalf(t, c.want, got, "query %q", c.query)
		again, err := traceql.Parse(got)
		require.NoErrorf(t, err, "canonical form %q", got)
		require.Equal(t, got, again.String(), "canonical form is stable")
	}
	if *update {
		writeGolden(t, path, cases)
	}
}

func TestParseInvalidGolden(t *testing.T) {
	path := filepath.Join("testdata", "parse", "invalid.txt")
	cases := readGolden(t, path)
	require.GreaterOrEqual(t, len(cases), 30)
	for i, c := range cases {
		_, err := traceql.Parse(c.query)
		require.Errorf(t, err, "query %q", c.query)
		var perr *traceql.ParseError
		require.True(t, errors.As(err, &perr))
		require.LessOrEqual(t, perr.Pos, len(c.query))
		line := 1 + strings.Count(c.query[:perr.Pos], "\n")
		col := 1 + utf8.RuneCountInString(c.query[strings.LastIndex(c.query[:perr.Pos], "\n")+1:perr.Pos])
		require.Equal(t, []int{line, col}, []int{perr.Line, perr.Col}, "line and column agree with the offset")
		if *update {
			cases[i].want = err.Error()
			continue
		}
		require.Equalf(t, c.want, err.Error(), "query %q", c.query)
	}
	if *update {
		writeGolden(t, path, cases)
	}
}

func TestParseEmpty(t *testing.T) {
	for _, q := range []string{"", " ", "\n\t  \r\n"} {
		parsed, err := traceql.Parse(q)
		require.NoError(t, err)
		require.Equal(t, "{}", parsed.String())
		require.Empty(t, parsed.Fields())
	}
}

// TestParseLimits: big queries are refused or stay cheap, whatever their
// shape.
func TestParseLimits(t *testing.T) {
	_, err := traceql.Parse("{" + strings.Repeat(" ", traceql.MaxQueryBytes) + "}")
	require.EqualError(t, err, "parse error at line 1, col 131073: query is longer than 131072 bytes")

	// A chain as long as the limit allows parses, prints and evaluates in
	// linear time.
	for _, chain := range []string{
		"{}" + strings.Repeat(" > {}", (traceql.MaxQueryBytes-2)/5),
		"{ .a" + strings.Repeat(" && .a", (traceql.MaxQueryBytes-6)/6) + " }",
		"({} | by(span:id))" + strings.Repeat(" && ({} | by(span:id))", (traceql.MaxQueryBytes-18)/22),
	} {
		start := time.Now()
		q, err := traceql.Parse(chain)
		require.NoError(t, err)
		require.Equal(t, chain, q.String())
		q.Eval(checkoutTrace())
		require.Less(t, time.Since(start), 5*time.Second)
	}
}

func TestFields(t *testing.T) {
	q, err := traceql.Parse(`{ span.http.method = "GET" && .db.system != nil && name = "x" } >> { resource.service.name = "a" && span:name = "y" }` +
		` | avg(duration) > 1s | by(trace:rootService) | select(instrumentation.lib, span.http.method)`)
	require.NoError(t, err)
	require.Equal(t, []traceql.Attribute{
		{Scope: traceql.ScopeSpan, Name: "http.method"},
		{Scope: traceql.ScopeNone, Name: "db.system"},
		{Scope: traceql.ScopeSpan, Name: "span:name", Intrinsic: traceql.IntrinsicName},
		{Scope: traceql.ScopeResource, Name: "service.name"},
		{Scope: traceql.ScopeSpan, Name: "span:duration", Intrinsic: traceql.IntrinsicDuration},
		{Scope: traceql.ScopeTrace, Name: "trace:rootService", Intrinsic: traceql.IntrinsicRootService},
		{Scope: traceql.ScopeInstrumentation, Name: "lib"},
	}, q.Fields())
}

func TestConditions(t *testing.T) {
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{`{}`, nil},
		{`{ .a = 1 && (span.b > 2 || span.c < 3) && 5 <= resource.d && name =~ "x.*" && .e }`,
			[]string{`.a = 1`, `resource.d >= 5`, `span:name =~ "x.*"`, `.e = true`}},
		{`{ .a = 1 } && { .b != nil } > { .c = "x" }`, []string{`.a = 1`, `.b != nil`, `.c = "x"`}},
		{`{ .a = 1 } || { .b = 2 }`, nil},
		{`{ .a = 1 } !> { .b = 2 }`, []string{`.b = 2`}},
		{`{ .a = 1 } &>> { .b = 2 } | count() > 1`, []string{`.a = 1`, `.b = 2`}},
		{`{ !(.a = 1) && .b + 1 = 2 && .c = .d }`, nil},
		{`{ trace:duration > 1s && duration < 5ms }`, []string{`trace:duration > 1s`, `span:duration < 5ms`}},
	} {
		t.Run(tc.query, func(t *testing.T) {
			q, err := traceql.Parse(tc.query)
			require.NoError(t, err)
			var got []string
			for _, c := range q.Conditions() {
				got = append(got, c.Attribute.String()+" "+c.Op.String()+" "+c.Value.String())
			}
			require.Equal(t, tc.want, got)
		})
	}
}

// FuzzParse: Parse never panics, what parses prints to a canonical form that
// parses to itself, and evaluating it does not panic. Seeds: testdata/fuzz
// and the golden queries.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"valid.txt", "invalid.txt"} {
		for _, c := range readGolden(f, filepath.Join("testdata", "parse", name)) {
			f.Add(c.query)
		}
	}
	traces := []*tracev1.TracesData{checkoutTrace(), zipkinTrace(), spanTypesTrace(), resourceTypesTrace()}
	f.Fuzz(func(t *testing.T, query string) {
		q, err := traceql.Parse(query)
		if err != nil {
			var perr *traceql.ParseError
			if !errors.As(err, &perr) || perr.Pos < 0 || perr.Pos > len(query) {
				t.Fatalf("%q: bad error %#v", query, err)
			}
			return
		}
		canonical := q.String()
		again, err := traceql.Parse(canonical)
		if err != nil {
			t.Fatalf("%q: canonical form %q does not parse: %v", query, canonical, err)
		}
		if again.String() != canonical {
			t.Fatalf("%q: canonical form %q prints as %q", query, canonical, again.String())
		}
		for _, td := range traces {
			q.Eval(td)
		}
	})
}

var benchQueries = []string{
	`{}`,
	`{ resource.service.name = "frontend" && span.http.request.method = "GET" && status = error && duration > 100ms }`,
	`{ span.http.response.status_code >= 500 } >> { .db.system =~ "postgres.*" } | count() > 2`,
	`{ resource.service.name = "checkout" } && { kind = client } | by(resource.service.name) | avg(duration) > 20ms | select(span.http.route)`,
}

func BenchmarkParse(b *testing.B) {
	bytes := 0
	for _, q := range benchQueries {
		bytes += len(q)
	}
	b.SetBytes(int64(bytes))
	b.ReportAllocs()
	start := time.Now()
	for b.Loop() {
		for _, q := range benchQueries {
			if _, err := traceql.Parse(q); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.N*len(benchQueries))/time.Since(start).Seconds(), "queries/s")
}

func BenchmarkEval(b *testing.B) {
	_, traces := modeltest.Traces(rand.New(rand.NewPCG(7, 7)), 200, 40)
	spans := 0
	for _, td := range traces {
		for _, rs := range td.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				spans += len(ss.Spans)
			}
		}
	}
	for _, query := range []string{
		`{ resource.service.name = "cart" && span.http.response.status_code >= 500 }`,
		`{ status = error } >> { kind = client }`,
		`{ } | by(resource.service.name) | count() > 2`,
	} {
		q, err := traceql.Parse(query)
		require.NoError(b, err)
		b.Run(query, func(b *testing.B) {
			b.ReportAllocs()
			start := time.Now()
			for b.Loop() {
				for _, td := range traces {
					q.Eval(td)
				}
			}
			b.ReportMetric(float64(b.N*spans)/time.Since(start).Seconds(), "spans/s")
		})
	}
}
