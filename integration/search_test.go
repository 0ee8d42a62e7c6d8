package integration

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// searchResponse mirrors what Grafana's Tempo data source reads of a search;
// decoding with DisallowUnknownFields fails on any field Tempo does not send.
type searchResponse struct {
	Traces []struct {
		TraceID           string     `json:"traceID"`
		RootServiceName   string     `json:"rootServiceName"`
		RootTraceName     string     `json:"rootTraceName"`
		StartTimeUnixNano string     `json:"startTimeUnixNano"`
		DurationMs        int        `json:"durationMs"`
		SpanSet           *spanSet   `json:"spanSet"`
		SpanSets          []*spanSet `json:"spanSets"`
	} `json:"traces"`
	Metrics struct {
		InspectedTraces int    `json:"inspectedTraces"`
		InspectedBytes  string `json:"inspectedBytes"`
		InspectedSpans  string `json:"inspectedSpans"`
		TotalBlocks     int    `json:"totalBlocks"`
		CompletedJobs   int    `json:"completedJobs"`
		TotalJobs       int    `json:"totalJobs"`
		TotalBlockBytes string `json:"totalBlockBytes"`
	} `json:"metrics"`
}

type spanSet struct {
	Spans []struct {
		SpanID            string `json:"spanID"`
		Name              string `json:"name"`
		StartTimeUnixNano string `json:"startTimeUnixNano"`
		DurationNanos     string `json:"durationNanos"`
		Attributes        []struct {
			Key   string          `json:"key"`
			Value json.RawMessage `json:"value"`
		} `json:"attributes"`
	} `json:"spans"`
	Matched    int               `json:"matched"`
	Attributes []json.RawMessage `json:"attributes"`
}

func decodeStrict(t testing.TB, b []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(v), "%s", b)
}

// TestSearch: TraceQL and tag search, and tag discovery, find traces while
// they are live in the WAL and, after a flush, from the blocks alone.
func TestSearch(t *testing.T) {
	v := startVivace(t, "", nil)
	sendSDK(t, v, "grpc", "", 5)
	sendSDK(t, v, "http", "", 3)
	window := url.Values{
		"start": {strconv.FormatInt(time.Now().Add(-time.Hour).Unix(), 10)},
		"end":   {strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10)},
	}

	searchFor := func(params url.Values) *searchResponse {
		t.Helper()
		for k, vs := range window {
			params[k] = vs
		}
		code, body, hdr := v.get("/api/search?" + params.Encode())
		require.Equal(t, http.StatusOK, code, "%s", body)
		require.Equal(t, "application/json", hdr.Get("Content-Type"))
		var resp searchResponse
		decodeStrict(t, body, &resp)
		return &resp
	}
	check := func(phase string) {
		t.Run(phase, func(t *testing.T) {
			resp := searchFor(url.Values{"q": {`{ resource.service.name = "checkout-grpc" }`}, "limit": {"20"}, "spss": {"3"}})
			require.Len(t, resp.Traces, 5)
			for _, tr := range resp.Traces {
				require.Len(t, tr.TraceID, 32)
				require.Equal(t, "checkout-grpc", tr.RootServiceName)
				require.True(t, strings.HasPrefix(tr.RootTraceName, "GET /orders/"), tr.RootTraceName)
				require.NotEmpty(t, tr.StartTimeUnixNano)
				require.Len(t, tr.SpanSets, 1)
				require.Equal(t, tr.SpanSets[0], tr.SpanSet)
				require.Equal(t, 4, tr.SpanSets[0].Matched)
				require.Len(t, tr.SpanSets[0].Spans, 3, "spss")
				require.Len(t, tr.SpanSets[0].Spans[0].SpanID, 16)
			}
			require.Equal(t, resp.Metrics.TotalJobs, resp.Metrics.CompletedJobs)

			resp = searchFor(url.Values{"q": {`{ status = error && span.http.request.method = nil } >> { }`}})
			require.Empty(t, resp.Traces, "an error span has no children")
			resp = searchFor(url.Values{"q": {`{ span.http.request.method = "GET" } > { status = error }`}})
			require.Len(t, resp.Traces, 8)
			require.Equal(t, "child-2", resp.Traces[0].SpanSets[0].Spans[0].Name)

			resp = searchFor(url.Values{"tags": {"service.name=checkout-http"}, "minDuration": {"0ms"}})
			require.Len(t, resp.Traces, 3)
			resp = searchFor(url.Values{"q": {"{}"}, "limit": {"2"}})
			require.Len(t, resp.Traces, 2)

			code, body, _ := v.get("/api/search?q=" + url.QueryEscape(`{ .a = }`))
			require.Equal(t, http.StatusBadRequest, code)
			require.Contains(t, string(body), "line 1, col 8")

			var tags struct {
				Scopes []struct {
					Name string   `json:"name"`
					Tags []string `json:"tags"`
				} `json:"scopes"`
			}
			code, body, _ = v.get("/api/v2/search/tags?limit=5000&" + window.Encode())
			require.Equal(t, http.StatusOK, code, "%s", body)
			decodeStrict(t, body, &tags)
			byScope := map[string][]string{}
			for _, s := range tags.Scopes {
				byScope[s.Name] = s.Tags
			}
			require.Subset(t, byScope["resource"], []string{"service.name", "k8s.namespace.name", "host.cpus"})
			require.Subset(t, byScope["span"], []string{"http.request.method", "http.response.status_code", "app.cached"})
			require.Contains(t, byScope["intrinsic"], "status")

			var values struct {
				TagValues []struct {
					Type  string `json:"type"`
					Value string `json:"value"`
				} `json:"tagValues"`
			}
			code, body, _ = v.get("/api/v2/search/tag/resource.service.name/values?q=" + url.QueryEscape("{}") + "&" + window.Encode())
			require.Equal(t, http.StatusOK, code, "%s", body)
			decodeStrict(t, body, &values)
			require.Len(t, values.TagValues, 2)
			require.Equal(t, "checkout-grpc", values.TagValues[0].Value)
			require.Equal(t, "string", values.TagValues[0].Type)

			code, body, _ = v.get("/api/v2/search/tag/span.http.response.status_code/values")
			require.Equal(t, http.StatusOK, code, "%s", body)
			decodeStrict(t, body, &values)
			require.Len(t, values.TagValues, 1)
			require.Equal(t, "int", values.TagValues[0].Type)
			require.Equal(t, "200", values.TagValues[0].Value)

			var v1 struct {
				TagValues []string `json:"tagValues"`
			}
			code, body, _ = v.get("/api/search/tag/service.name/values")
			require.Equal(t, http.StatusOK, code, "%s", body)
			decodeStrict(t, body, &v1)
			require.Equal(t, []string{"checkout-grpc", "checkout-http"}, v1.TagValues)
		})
	}
	check("live")

	v.flushAndWait(1)
	v.stop()
	require.NoError(t, os.RemoveAll(filepath.Join(v.dataDir, "wal")))
	v.start()
	check("blocks")
}
