package frontend

import (
	"cmp"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vivace-dev/vivace/internal/search"
	"github.com/vivace-dev/vivace/internal/traceql"
	"github.com/vivace-dev/vivace/internal/vivacepb"
)

// MaxParamBytes bounds each parameter of a search or tags request: a URL
// parameter, or a string field of a gRPC request (for tags, all of them
// written as logfmt). It is half of what the TraceQL parser takes, so that
// tags turned into TraceQL still fit.
const MaxParamBytes = 64 << 10

// searchParams are a search's parameters as the HTTP query string and
// Tempo's gRPC SearchRequest both give them; searchJob checks them once for both.
type searchParams struct {
	query          string // TraceQL; when empty, tags and the durations are
	tags           string // logfmt
	minDur, maxDur time.Duration
	start, end     int64  // unix seconds; 0 is open
	limit, spss    uint32 // 0 is the default
}

// searchJob checks p and turns it into a job: the older tags and durations
// become TraceQL.
func (f *Frontend) searchJob(p searchParams) (*vivacepb.SearchJob, error) {
	if err := maxLen("q", p.query); err != nil {
		return nil, err
	}
	if err := maxLen("tags", p.tags); err != nil {
		return nil, err
	}
	if err := timeRange(p.start, p.end); err != nil {
		return nil, err
	}
	job := &vivacepb.SearchJob{
		Start: p.start, End: p.end,
		Limit:           cmp.Or(p.limit, uint32(f.cfg.Search.DefaultResultLimit)),
		SpansPerSpanSet: cmp.Or(p.spss, uint32(search.DefaultSpansPerSpanSet)),
	}
	if p.query != "" {
		if _, err := traceql.Parse(p.query); err != nil {
			return nil, badRequest("invalid TraceQL query: %v", err)
		}
		job.Query = p.query
		return job, nil
	}
	q, err := traceql.FromTags(p.tags, p.minDur, p.maxDur)
	if err != nil {
		return nil, badRequest("%v", err)
	}
	job.Query = q.String()
	return job, nil
}

// checkTagsJob checks a tags job, from HTTP or gRPC, before it is split.
func checkTagsJob(job *vivacepb.TagsJob) error {
	for _, p := range [][2]string{{"scope", job.Scope}, {"tag", job.Tag}, {"q", job.Query}} {
		if err := maxLen(p[0], p[1]); err != nil {
			return err
		}
	}
	if err := timeRange(job.Start, job.End); err != nil {
		return err
	}
	if job.Query != "" {
		if _, err := traceql.Parse(job.Query); err != nil {
			return badRequest("invalid TraceQL query: %v", err)
		}
	}
	if _, err := search.NewTags(job); err != nil {
		return badRequest("%v", err)
	}
	return nil
}

func maxLen(name, value string) error {
	if len(value) > MaxParamBytes {
		return badRequest("%s is %d bytes long, over the limit of %d bytes", name, len(value), MaxParamBytes)
	}
	return nil
}

func timeRange(start, end int64) error {
	if start > 0 && end > 0 && end < start {
		return badRequest("end (%d) is before start (%d)", end, start)
	}
	return nil
}

// parseSearch reads Tempo's HTTP search parameters: q (TraceQL), or the
// older tags (logfmt) with minDuration and maxDuration; limit, spss, start, end.
func (f *Frontend) parseSearch(v url.Values) (*vivacepb.SearchJob, error) {
	ps := params{v: v}
	p := searchParams{
		query: ps.str("q"), tags: ps.str("tags"),
		minDur: ps.duration("minDuration"), maxDur: ps.duration("maxDuration"),
		start: ps.unix("start"), end: ps.unix("end"),
		limit: ps.positive("limit"), spss: ps.positive("spss"),
	}
	if ps.err != nil {
		return nil, ps.err
	}
	return f.searchJob(p)
}

// parseTags reads the parameters of the HTTP tag endpoints: scope, q,
// start, end, limit; tag is the path's tag, empty for tag names.
func parseTags(v url.Values, tag string) (*vivacepb.TagsJob, error) {
	ps := params{v: v}
	job := &vivacepb.TagsJob{
		Scope: ps.str("scope"), Tag: tag, Query: ps.str("q"),
		Start: ps.unix("start"), End: ps.unix("end"), Limit: ps.positive("limit"),
	}
	if ps.err != nil {
		return nil, ps.err
	}
	if err := checkTagsJob(job); err != nil {
		return nil, err
	}
	return job, nil
}

// params reads URL parameters; err is the first bad one. Each is bounded
// by MaxParamBytes, so an error message never quotes more than that.
type params struct {
	v   url.Values
	err error
}

func (p *params) str(name string) string {
	s := p.v.Get(name)
	if p.err == nil {
		p.err = maxLen(name, s)
	}
	if p.err != nil {
		return ""
	}
	return s
}

func (p *params) unix(name string) int64 {
	if p.str(name) == "" {
		return 0
	}
	n, err := unixSeconds(p.v, name)
	p.err = err
	return n
}

// positive reads a positive integer; 0 when absent.
func (p *params) positive(name string) uint32 {
	s := p.str(name)
	if s == "" {
		return 0
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n == 0 {
		p.err = badRequest("%s=%q is not a positive integer", name, s)
	}
	return uint32(n)
}

func (p *params) duration(name string) time.Duration {
	s := p.str(name)
	if s == "" {
		return 0
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		p.err = badRequest("%s=%q is not a duration such as 100ms: %v", name, s, err)
	}
	return d
}

// searchRequestParams reads Tempo's gRPC SearchRequest as the HTTP
// parameters it stands for.
func searchRequestParams(req *vivacepb.SearchRequest) (searchParams, error) {
	tags, err := logfmt(req.Tags)
	if err != nil {
		return searchParams{}, err
	}
	return searchParams{
		query: req.Query, tags: tags,
		minDur: time.Duration(req.MinDurationMs) * time.Millisecond,
		maxDur: time.Duration(req.MaxDurationMs) * time.Millisecond,
		start:  int64(req.Start), end: int64(req.End),
		limit: req.Limit, spss: req.SpansPerSpanSet,
	}, nil
}

// logfmt writes tags as the HTTP tags parameter, in key order.
func logfmt(tags map[string]string) (string, error) {
	keys := make([]string, 0, len(tags))
	for k := range tags {
		if k == "" || strings.ContainsAny(k, "= \"\t\r\n") {
			return "", badRequest("tag key %.100q: a key must be non-empty, without =, quotes or spaces", k)
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(strconv.Quote(tags[k]))
		if b.Len() > MaxParamBytes {
			return "", badRequest("tags are over the limit of %d bytes", MaxParamBytes)
		}
	}
	return b.String(), nil
}
