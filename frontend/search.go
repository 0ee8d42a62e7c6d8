package frontend

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/gorilla/mux"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/vivace-dev/vivace/internal/model"
	"github.com/vivace-dev/vivace/internal/search"
	"github.com/vivace-dev/vivace/internal/traceql"
	"github.com/vivace-dev/vivace/internal/vivacepb"
)

// search answers GET /api/search with Tempo's SearchResponse JSON.
func (f *Frontend) search(w http.ResponseWriter, r *http.Request) error {
	tenant, err := f.tenant(r)
	if err != nil {
		return err
	}
	job, err := f.parseSearch(r.URL.Query())
	if err != nil {
		return err
	}
	resp, err := f.Search(r.Context(), tenant, job, nil)
	if err != nil {
		return err
	}
	return writeMessage(w, r, resp)
}

func (f *Frontend) tenant(r *http.Request) (string, error) {
	tenant, err := model.ResolveTenant(f.multitenancy, r.Header.Get(model.TenantHeader))
	if err != nil {
		return "", &httpError{http.StatusUnauthorized, err.Error()}
	}
	return tenant, nil
}

// parseSearch reads Tempo's search parameters: q (TraceQL), or the older
// tags (logfmt) with minDuration and maxDuration; limit, spss, start, end.
func (f *Frontend) parseSearch(v url.Values) (*vivacepb.SearchJob, error) {
	job := &vivacepb.SearchJob{Limit: uint32(f.cfg.Search.DefaultResultLimit), SpansPerSpanSet: search.DefaultSpansPerSpanSet}
	var err error
	if job.Start, err = unixSeconds(v, "start"); err != nil {
		return nil, err
	}
	if job.End, err = unixSeconds(v, "end"); err != nil {
		return nil, err
	}
	if job.Start > 0 && job.End > 0 && job.End < job.Start {
		return nil, badRequest("end (%d) is before start (%d)", job.End, job.Start)
	}
	if job.Limit, err = positive(v, "limit", job.Limit); err != nil {
		return nil, err
	}
	if job.SpansPerSpanSet, err = positive(v, "spss", job.SpansPerSpanSet); err != nil {
		return nil, err
	}
	if q := v.Get("q"); q != "" {
		if _, err := traceql.Parse(q); err != nil {
			return nil, badRequest("invalid TraceQL query: %v", err)
		}
		job.Query = q
		return job, nil
	}
	minDur, err := duration(v, "minDuration")
	if err != nil {
		return nil, err
	}
	maxDur, err := duration(v, "maxDuration")
	if err != nil {
		return nil, err
	}
	q, err := traceql.FromTags(v.Get("tags"), minDur, maxDur)
	if err != nil {
		return nil, badRequest("%v", err)
	}
	job.Query = q.String()
	return job, nil
}

func positive(v url.Values, name string, def uint32) (uint32, error) {
	s := v.Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n == 0 {
		return 0, badRequest("%s=%q is not a positive integer", name, s)
	}
	return uint32(n), nil
}

func duration(v url.Values, name string) (time.Duration, error) {
	s := v.Get(name)
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, badRequest("%s=%q is not a duration such as 100ms: %v", name, s, err)
	}
	return d, nil
}

// Search splits a search into one job for the ingesters and
// search.query_shards jobs over block-ID ranges, runs them in parallel on
// the queriers and combines their answers, stopping once limit traces are
// found. With progress set, it is called with the combined answer so far
// after each job (for streaming). The job must have been validated.
func (f *Frontend) Search(ctx context.Context, tenant string, job *vivacepb.SearchJob, progress func(*vivacepb.SearchResponse) error) (*vivacepb.SearchResponse, error) {
	jobs := []*vivacepb.Job{{Search: withMode(job, "ingesters", [2]string{})}}
	for _, br := range blockRanges(f.cfg.Search.QueryShards) {
		jobs = append(jobs, &vivacepb.Job{Search: withMode(job, "blocks", br)})
	}
	res := search.NewResults(int(job.Limit), int(job.SpansPerSpanSet))
	completed := 0
	response := func() *vivacepb.SearchResponse {
		resp := res.Response()
		resp.Metrics.TotalJobs = uint32(len(jobs))
		resp.Metrics.CompletedJobs = uint32(completed)
		return resp
	}
	err := f.runJobs(ctx, tenant, jobs, func(r *vivacepb.JobResult) (bool, error) {
		res.Add(r.GetSearch())
		completed++
		if progress != nil {
			if err := progress(response()); err != nil {
				return true, err
			}
		}
		return res.Full(), nil
	})
	if err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	return response(), nil
}

func withMode(job *vivacepb.SearchJob, mode string, blocks [2]string) *vivacepb.SearchJob {
	j := proto.CloneOf(job)
	j.QueryMode, j.BlockStart, j.BlockEnd = mode, blocks[0], blocks[1]
	return j
}

// runJobs queues jobs for the workers and hands each answer to each as it
// comes; it returns at the first failed job, or when each says stop. The
// jobs still queued or running then are dropped.
func (f *Frontend) runJobs(ctx context.Context, tenant string, jobs []*vivacepb.Job, each func(*vivacepb.JobResult) (stop bool, err error)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		f.queue.dropCancelled(tenant)
	}()
	results := make(chan result, len(jobs))
	reqs := make([]*request, len(jobs))
	for i, job := range jobs {
		reqs[i] = &request{ctx: ctx, tenant: tenant, job: job, index: i, results: results}
	}
	if err := f.queue.enqueue(tenant, reqs); err != nil {
		return err
	}
	for range jobs {
		select {
		case r := <-results:
			if r.err != nil {
				return r.err
			}
			stop, err := each(r.resp)
			if stop || err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// Tags runs a tags job split like a search, and merges the answers.
func (f *Frontend) Tags(ctx context.Context, tenant string, job *vivacepb.TagsJob) (*vivacepb.TagsResult, error) {
	tags, err := search.NewTags(job)
	if err != nil {
		return nil, badRequest("%v", err)
	}
	jobs := []*vivacepb.Job{{Tags: tagsWithMode(job, "ingesters", [2]string{})}}
	for _, br := range blockRanges(f.cfg.Search.QueryShards) {
		jobs = append(jobs, &vivacepb.Job{Tags: tagsWithMode(job, "blocks", br)})
	}
	err = f.runJobs(ctx, tenant, jobs, func(r *vivacepb.JobResult) (bool, error) {
		tags.AddResult(r.GetTags())
		return tags.Full(), nil
	})
	if err != nil {
		return nil, fmt.Errorf("search tags: %w", err)
	}
	return tags.Result(), nil
}

func tagsWithMode(job *vivacepb.TagsJob, mode string, blocks [2]string) *vivacepb.TagsJob {
	j := proto.CloneOf(job)
	j.QueryMode, j.BlockStart, j.BlockEnd = mode, blocks[0], blocks[1]
	return j
}

// parseTags reads the parameters of the tag endpoints: scope, q, start, end,
// limit, and the tag of the values endpoints.
func (f *Frontend) parseTags(r *http.Request) (string, *vivacepb.TagsJob, error) {
	tenant, err := f.tenant(r)
	if err != nil {
		return "", nil, err
	}
	v := r.URL.Query()
	job := &vivacepb.TagsJob{Scope: v.Get("scope"), Tag: mux.Vars(r)["tag"], Query: v.Get("q")}
	if job.Start, err = unixSeconds(v, "start"); err != nil {
		return "", nil, err
	}
	if job.End, err = unixSeconds(v, "end"); err != nil {
		return "", nil, err
	}
	if job.Limit, err = positive(v, "limit", 0); err != nil {
		return "", nil, err
	}
	if job.Query != "" {
		if _, err := traceql.Parse(job.Query); err != nil {
			return "", nil, badRequest("invalid TraceQL query: %v", err)
		}
	}
	return tenant, job, nil
}

// tagsFor runs the tag request r: the four tag endpoints differ only in
// how they write the answer.
func (f *Frontend) tagsFor(r *http.Request) (*vivacepb.TagsResult, error) {
	tenant, job, err := f.parseTags(r)
	if err != nil {
		return nil, err
	}
	return f.Tags(r.Context(), tenant, job)
}

// searchTags answers GET /api/search/tags: the attribute names of every
// scope, in one list.
func (f *Frontend) searchTags(w http.ResponseWriter, r *http.Request) error {
	res, err := f.tagsFor(r)
	if err != nil {
		return err
	}
	resp := &vivacepb.SearchTagsResponse{TagNames: []string{}}
	for _, s := range res.Scopes {
		if s.Name != search.ScopeIntrinsic {
			resp.TagNames = append(resp.TagNames, s.Tags...)
		}
	}
	slices.Sort(resp.TagNames)
	resp.TagNames = slices.Compact(resp.TagNames)
	return writeMessage(w, r, resp)
}

// searchTagsV2 answers GET /api/v2/search/tags: names by scope.
func (f *Frontend) searchTagsV2(w http.ResponseWriter, r *http.Request) error {
	res, err := f.tagsFor(r)
	if err != nil {
		return err
	}
	return writeMessage(w, r, &vivacepb.SearchTagsV2Response{Scopes: res.Scopes})
}

// searchTagValues answers GET /api/search/tag/<tag>/values: the values as text.
func (f *Frontend) searchTagValues(w http.ResponseWriter, r *http.Request) error {
	res, err := f.tagsFor(r)
	if err != nil {
		return err
	}
	resp := &vivacepb.SearchTagValuesResponse{TagValues: []string{}}
	for _, v := range res.Values {
		resp.TagValues = append(resp.TagValues, v.Value)
	}
	slices.Sort(resp.TagValues)
	resp.TagValues = slices.Compact(resp.TagValues)
	return writeMessage(w, r, resp)
}

// searchTagValuesV2 answers GET /api/v2/search/tag/<tag>/values: typed values.
func (f *Frontend) searchTagValuesV2(w http.ResponseWriter, r *http.Request) error {
	res, err := f.tagsFor(r)
	if err != nil {
		return err
	}
	return writeMessage(w, r, &vivacepb.SearchTagValuesV2Response{TagValues: res.Values})
}

// writeMessage answers with protobuf when asked, else protobuf JSON with
// Tempo's field names. Empty lists are written as [] rather than left out,
// as Tempo does, for scripts that index them.
func writeMessage(w http.ResponseWriter, r *http.Request, m proto.Message) error {
	if acceptsProtobuf(r) {
		b, err := proto.Marshal(m)
		if err != nil {
			return err
		}
		return write(w, contentTypeProtobuf, b)
	}
	b, err := protojson.Marshal(m)
	if err != nil {
		return err
	}
	b = emptyLists(m, b)
	return write(w, contentTypeJSON, b)
}

// emptyLists puts back the one top-level list each response has when it is
// empty; protobuf JSON leaves empty lists out.
func emptyLists(m proto.Message, b []byte) []byte {
	var field string
	switch m := m.(type) {
	case *vivacepb.SearchResponse:
		if len(m.Traces) == 0 {
			field = "traces"
		}
	case *vivacepb.SearchTagsResponse:
		if len(m.TagNames) == 0 {
			field = "tagNames"
		}
	case *vivacepb.SearchTagsV2Response:
		if len(m.Scopes) == 0 {
			field = "scopes"
		}
	case *vivacepb.SearchTagValuesResponse:
		if len(m.TagValues) == 0 {
			field = "tagValues"
		}
	case *vivacepb.SearchTagValuesV2Response:
		if len(m.TagValues) == 0 {
			field = "tagValues"
		}
	}
	if field == "" {
		return b
	}
	b = bytes.TrimSpace(b)
	if len(b) <= 2 {
		return []byte(`{"` + field + `":[]}`)
	}
	return append([]byte(`{"`+field+`":[],`), b[1:]...)
}
