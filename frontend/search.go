package frontend

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/gorilla/mux"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/vivace-dev/vivace/internal/model"
	"github.com/vivace-dev/vivace/internal/search"
	"github.com/vivace-dev/vivace/internal/vivacepb"
)

// search answers GET /api/search with Tempo's SearchResponse JSON.
func (f *Frontend) search(w http.ResponseWriter, r *http.Request) error {
	tenant, err := f.resolveTenant(r.Header.Get(model.TenantHeader))
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

// resolveTenant is the tenant of a request whose X-Scope-OrgID header (or
// gRPC metadata) is header; a missing or bad one is answered 401.
func (f *Frontend) resolveTenant(header string) (string, error) {
	tenant, err := model.ResolveTenant(f.multitenancy, header)
	if err != nil {
		return "", &httpError{http.StatusUnauthorized, err.Error()}
	}
	return tenant, nil
}

// Search splits a search into one job for the ingesters and
// search.query_shards jobs over block-ID ranges, runs them in parallel on
// the queriers and combines their answers, stopping once limit traces are
// found. With progress set, it is called with the combined answer so far
// after each job but the last (for streaming); the answer returned is the
// final one, with every job counted as completed: those left out once limit
// traces were found are done too. The job must have been validated.
func (f *Frontend) Search(ctx context.Context, tenant string, job *vivacepb.SearchJob, progress func(*vivacepb.SearchResponse) error) (*vivacepb.SearchResponse, error) {
	if err := f.limitSearchRange(tenant, job, time.Now()); err != nil {
		return nil, err
	}
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
		if res.Full() || completed == len(jobs) {
			return true, nil
		}
		if progress != nil {
			return false, progress(response())
		}
		return false, nil
	})
	if err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	completed = len(jobs)
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

// tagsFor runs the tag request r: the four tag endpoints differ only in
// how they write the answer.
func (f *Frontend) tagsFor(r *http.Request) (*vivacepb.TagsResult, error) {
	tenant, err := f.resolveTenant(r.Header.Get(model.TenantHeader))
	if err != nil {
		return nil, err
	}
	job, err := parseTags(r.URL.Query(), mux.Vars(r)["tag"])
	if err != nil {
		return nil, err
	}
	return f.Tags(r.Context(), tenant, job)
}

// searchTags answers GET /api/search/tags.
func (f *Frontend) searchTags(w http.ResponseWriter, r *http.Request) error {
	res, err := f.tagsFor(r)
	if err != nil {
		return err
	}
	return writeMessage(w, r, tagNames(res))
}

// searchTagsV2 answers GET /api/v2/search/tags.
func (f *Frontend) searchTagsV2(w http.ResponseWriter, r *http.Request) error {
	res, err := f.tagsFor(r)
	if err != nil {
		return err
	}
	return writeMessage(w, r, tagNamesV2(res))
}

// searchTagValues answers GET /api/search/tag/<tag>/values.
func (f *Frontend) searchTagValues(w http.ResponseWriter, r *http.Request) error {
	res, err := f.tagsFor(r)
	if err != nil {
		return err
	}
	return writeMessage(w, r, tagValues(res))
}

// searchTagValuesV2 answers GET /api/v2/search/tag/<tag>/values.
func (f *Frontend) searchTagValuesV2(w http.ResponseWriter, r *http.Request) error {
	res, err := f.tagsFor(r)
	if err != nil {
		return err
	}
	return writeMessage(w, r, tagValuesV2(res))
}

// tagNames is Tempo's v1 answer: the attribute names of every scope, in one list.
func tagNames(res *vivacepb.TagsResult) *vivacepb.SearchTagsResponse {
	resp := &vivacepb.SearchTagsResponse{TagNames: []string{}}
	for _, s := range res.Scopes {
		if s.Name != search.ScopeIntrinsic {
			resp.TagNames = append(resp.TagNames, s.Tags...)
		}
	}
	slices.Sort(resp.TagNames)
	resp.TagNames = slices.Compact(resp.TagNames)
	return resp
}

// tagNamesV2 is Tempo's v2 answer: names by scope.
func tagNamesV2(res *vivacepb.TagsResult) *vivacepb.SearchTagsV2Response {
	return &vivacepb.SearchTagsV2Response{Scopes: res.Scopes}
}

// tagValues is Tempo's v1 answer: the values as text.
func tagValues(res *vivacepb.TagsResult) *vivacepb.SearchTagValuesResponse {
	resp := &vivacepb.SearchTagValuesResponse{TagValues: []string{}}
	for _, v := range res.Values {
		resp.TagValues = append(resp.TagValues, v.Value)
	}
	slices.Sort(resp.TagValues)
	resp.TagValues = slices.Compact(resp.TagValues)
	return resp
}

// tagValuesV2 is Tempo's v2 answer: typed values.
func tagValuesV2(res *vivacepb.TagsResult) *vivacepb.SearchTagValuesV2Response {
	return &vivacepb.SearchTagValuesV2Response{TagValues: res.Values}
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

// limitSearchRange enforces the tenant's max_search_duration: a longer
// start-end range is refused, and a search without one covers the last
// max_search_duration (as far as it is open) instead of everything.
func (f *Frontend) limitSearchRange(tenant string, job *vivacepb.SearchJob, now time.Time) error {
	limit := f.limits.MaxSearchDuration(tenant)
	if limit <= 0 {
		return nil
	}
	if job.End == 0 {
		job.End = now.Unix()
	}
	if job.Start == 0 {
		job.Start = max(1, job.End-int64(limit/time.Second))
	}
	if d := time.Duration(job.End-job.Start) * time.Second; d > limit {
		return badRequest("range from start to end (%s) exceeds the max search duration of tenant %s (%s)", d, tenant, limit)
	}
	return nil
}
