package frontend

import (
	"errors"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/vivace-dev/vivace/internal/traceql"
	"github.com/vivace-dev/vivace/internal/vivacepb"
)

// The search and tag parameter parsers turn any input into a valid job or
// a 400 that names the bad parameter; nothing longer than MaxParamBytes
// gets through. Seeds are in testdata/fuzz/<name>/, which plain go test replays.

func FuzzParseSearch(f *testing.F) {
	fr := fuzzFrontend(f)
	f.Fuzz(func(t *testing.T, rawQuery string) {
		v, _ := url.ParseQuery(rawQuery) // as r.URL.Query(): what parses
		job, err := fr.parseSearch(v)
		if err != nil {
			requireBadRequest(t, err)
			return
		}
		for _, name := range []string{"q", "tags", "minDuration", "maxDuration", "start", "end", "limit", "spss"} {
			require.LessOrEqual(t, len(v.Get(name)), MaxParamBytes, name)
		}
		requireValidSearchJob(t, job)
		if q := v.Get("q"); q != "" {
			require.Equal(t, q, job.Query, "a TraceQL query is passed on as it is")
		}
	})
}

func FuzzSearchRequest(f *testing.F) {
	fr := fuzzFrontend(f)
	f.Fuzz(func(t *testing.T, query, tagKey, tagValue string, minMs, maxMs, limit, spss, start, end uint32) {
		req := &vivacepb.SearchRequest{Query: query, MinDurationMs: minMs, MaxDurationMs: maxMs, Limit: limit, SpansPerSpanSet: spss, Start: start, End: end}
		if tagKey != "" || tagValue != "" {
			req.Tags = map[string]string{tagKey: tagValue}
		}
		p, err := searchRequestParams(req)
		if err != nil {
			requireBadRequest(t, err)
			return
		}
		job, err := fr.searchJob(p)
		if err != nil {
			requireBadRequest(t, err)
			return
		}
		require.LessOrEqual(t, len(query), MaxParamBytes)
		requireValidSearchJob(t, job)
		if limit > 0 {
			require.Equal(t, limit, job.Limit)
		}
		if spss > 0 {
			require.Equal(t, spss, job.SpansPerSpanSet)
		}
	})
}

func FuzzParseTags(f *testing.F) {
	f.Fuzz(func(t *testing.T, rawQuery, tag string) {
		v, _ := url.ParseQuery(rawQuery)
		job, err := parseTags(v, tag)
		if err != nil {
			requireBadRequest(t, err)
			return
		}
		for _, s := range []string{job.Scope, job.Tag, job.Query} {
			require.LessOrEqual(t, len(s), MaxParamBytes)
		}
		require.Equal(t, tag, job.Tag)
		if job.Start > 0 && job.End > 0 {
			require.LessOrEqual(t, job.Start, job.End)
		}
		if job.Query != "" {
			_, err := traceql.Parse(job.Query)
			require.NoError(t, err)
		}
	})
}

func fuzzFrontend(tb testing.TB) *Frontend {
	var cfg Config
	cfg.RegisterFlagsAndApplyDefaults("query-frontend", flag.NewFlagSet("", flag.PanicOnError))
	f, err := New(cfg, nil, false, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	require.NoError(tb, err)
	return f
}

// requireBadRequest: a bad parameter is the request's fault, and the
// message quoting it stays bounded.
func requireBadRequest(t *testing.T, err error) {
	t.Helper()
	var he *httpError
	require.True(t, errors.As(err, &he), "%T %v", err, err)
	require.Equal(t, http.StatusBadRequest, he.code, he.msg)
	require.LessOrEqual(t, len(he.msg), 4*MaxParamBytes+1024)
}

// requireValidSearchJob: what the queriers get parses, has a limit, and a
// time range in order.
func requireValidSearchJob(t *testing.T, job *vivacepb.SearchJob) {
	t.Helper()
	require.GreaterOrEqual(t, job.Limit, uint32(1))
	require.GreaterOrEqual(t, job.SpansPerSpanSet, uint32(1))
	if job.Start > 0 && job.End > 0 {
		require.LessOrEqual(t, job.Start, job.End)
	}
	_, err := traceql.Parse(job.Query)
	require.NoError(t, err, "job query %q", job.Query)
}
