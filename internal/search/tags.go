package search

import (
	"bytes"
	"cmp"
	"slices"

	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/vivace-dev/vivace/internal/traceql"
	"github.com/vivace-dev/vivace/internal/vivacepb"
)

// Tag scopes of /api/v2/search/tags.
const (
	ScopeResource  = "resource"
	ScopeSpan      = "span"
	ScopeIntrinsic = "intrinsic"
)

// Intrinsics are the intrinsic tags listed in the intrinsic scope: those
// Vivace searches, in the spelling Tempo lists them.
var Intrinsics = []string{
	"duration", "kind", "name", "rootName", "rootServiceName", "span:duration", "span:id", "span:kind",
	"span:name", "span:status", "span:statusMessage", "status", "statusMessage", "trace:duration",
	"trace:id", "trace:rootName", "trace:rootService", "traceDuration",
}

// Tags collects tag names, or one tag's values, from traces.
type Tags struct {
	job    *vivacepb.TagsJob
	filter *traceql.Query // nil: every span counts
	tag    *traceql.Attribute
	names  map[string]map[string]bool // scope → names
	values map[[2]string]bool         // (type, value)
}

// NewTags checks the job: its scope, tag and filter query.
func NewTags(job *vivacepb.TagsJob) (*Tags, error) {
	t := &Tags{job: job, names: map[string]map[string]bool{}, values: map[[2]string]bool{}}
	switch job.Scope {
	case "", "all", ScopeResource, ScopeSpan, ScopeIntrinsic:
	default:
		return nil, &InvalidError{"scope " + job.Scope + " is not one of resource, span, intrinsic"}
	}
	if job.Tag != "" {
		a, err := traceql.ParseAttribute(job.Tag)
		if err != nil {
			return nil, &InvalidError{err.Error()}
		}
		t.tag = &a
	}
	if job.Query != "" {
		q, err := traceql.Parse(job.Query)
		if err != nil {
			return nil, err
		}
		if q.String() != "{ }" && q.String() != "{}" {
			t.filter = q
		}
	}
	return t, nil
}

// InvalidError is a bad tags request.
type InvalidError struct{ Msg string }

func (e *InvalidError) Error() string { return e.Msg }

// Full tells whether limit names or values were collected.
func (t *Tags) Full() bool {
	if t.job.Limit == 0 {
		return false
	}
	if t.tag != nil {
		return len(t.values) >= int(t.job.Limit)
	}
	n := 0
	for _, names := range t.names {
		n += len(names)
	}
	return n >= int(t.job.Limit)
}

// Add collects from one whole trace.
func (t *Tags) Add(td *tracev1.TracesData) {
	keep := t.keep(td)
	if t.tag != nil {
		traceql.SpanValues(td, *t.tag, keep, func(v traceql.Value) {
			if v.Type == traceql.TypeArray {
				return
			}
			s := v.S
			if v.Type != traceql.TypeString {
				s = v.String()
			}
			t.values[[2]string{v.TypeName(), s}] = true
		})
		return
	}
	for _, rs := range td.GetResourceSpans() {
		resourceSeen := false
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				if keep != nil && !keep(s) {
					continue
				}
				if !resourceSeen {
					resourceSeen = true
					for _, kv := range rs.GetResource().GetAttributes() {
						t.addName(ScopeResource, kv.Key)
					}
				}
				for _, kv := range s.GetAttributes() {
					t.addName(ScopeSpan, kv.Key)
				}
			}
		}
	}
}

// keep is nil, or tells the spans that the filter matched.
func (t *Tags) keep(td *tracev1.TracesData) func(*tracev1.Span) bool {
	if t.filter == nil {
		return nil
	}
	var ids [][]byte
	for _, set := range t.filter.Eval(td) {
		for _, s := range set.Spans {
			ids = append(ids, s.SpanID)
		}
	}
	return func(s *tracev1.Span) bool {
		return slices.ContainsFunc(ids, func(id []byte) bool { return bytes.Equal(id, s.SpanId) })
	}
}

func (t *Tags) addName(scope, name string) {
	if t.job.Scope != "" && t.job.Scope != "all" && t.job.Scope != scope {
		return
	}
	if t.names[scope] == nil {
		t.names[scope] = map[string]bool{}
	}
	t.names[scope][name] = true
}

// AddResult merges another job's answer.
func (t *Tags) AddResult(r *vivacepb.TagsResult) {
	for _, s := range r.GetScopes() {
		for _, name := range s.Tags {
			t.addName(s.Name, name)
		}
	}
	for _, v := range r.GetValues() {
		t.values[[2]string{v.Type, v.Value}] = true
	}
}

// Result returns what was collected, sorted, cut to the job's limit. The
// intrinsic scope is always complete.
func (t *Tags) Result() *vivacepb.TagsResult {
	res := &vivacepb.TagsResult{}
	limit := int(t.job.Limit)
	if t.tag != nil {
		for v := range t.values {
			res.Values = append(res.Values, &vivacepb.TagValue{Type: v[0], Value: v[1]})
		}
		slices.SortFunc(res.Values, func(a, b *vivacepb.TagValue) int {
			return cmp.Or(cmp.Compare(a.Type, b.Type), cmp.Compare(a.Value, b.Value))
		})
		if limit > 0 && len(res.Values) > limit {
			res.Values = res.Values[:limit]
		}
		return res
	}
	for _, scope := range []string{ScopeResource, ScopeSpan} {
		if t.job.Scope != "" && t.job.Scope != "all" && t.job.Scope != scope {
			continue
		}
		names := make([]string, 0, len(t.names[scope]))
		for n := range t.names[scope] {
			names = append(names, n)
		}
		slices.Sort(names)
		if limit > 0 && len(names) > limit {
			names = names[:limit]
		}
		res.Scopes = append(res.Scopes, &vivacepb.SearchTagsV2Scope{Name: scope, Tags: names})
	}
	if t.job.Scope == "" || t.job.Scope == "all" || t.job.Scope == ScopeIntrinsic {
		res.Scopes = append(res.Scopes, &vivacepb.SearchTagsV2Scope{Name: ScopeIntrinsic, Tags: slices.Clone(Intrinsics)})
	}
	return res
}
