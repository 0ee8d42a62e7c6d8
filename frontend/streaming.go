package frontend

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/vivace-dev/vivace/internal/model"
	"github.com/vivace-dev/vivace/internal/vivacepb"
)

// streamInterval is the least time between two partial answers of a
// streamed search; the first and the final answer are sent at once.
const streamInterval = 500 * time.Millisecond

// RegisterStreaming serves Tempo's StreamingQuerier on s: what Grafana's
// Tempo data source calls with streaming on. It answers as the HTTP search
// and tag endpoints do, with the tenant in the x-scope-orgid metadata.
func (f *Frontend) RegisterStreaming(s grpc.ServiceRegistrar) {
	vivacepb.RegisterStreamingQuerierServer(s, &streamingQuerier{f: f})
}

// ServeGRPC makes hs, before it serves, also serve gs's gRPC services:
// it speaks cleartext HTTP/2 with prior knowledge (h2c, as gRPC clients
// do) besides HTTP/1.1 and HTTP/2 over TLS, and GRPCOrHTTP routes its
// requests.
func ServeGRPC(hs *http.Server, gs *grpc.Server) {
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetHTTP2(true)
	p.SetUnencryptedHTTP2(true)
	hs.Protocols = &p
	hs.Handler = GRPCOrHTTP(gs, hs.Handler)
}

// GRPCOrHTTP sends gRPC requests (HTTP/2 with a Content-Type of
// application/grpc...) to gs and every other request to h.
func GRPCOrHTTP(gs http.Handler, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor != 2 || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") {
			h.ServeHTTP(w, r)
			return
		}
		// A stream lasts as long as its search, which the client may end:
		// the server's write timeout, meant for one HTTP answer, would cut
		// long searches off mid-stream.
		_ = http.NewResponseController(w).SetWriteDeadline(time.Time{})
		gs.ServeHTTP(w, r)
	})
}

type streamingQuerier struct {
	vivacepb.UnimplementedStreamingQuerierServer
	f *Frontend
}

// Search streams the combined answer so far as jobs complete, at most one
// every streamInterval, and then always the final answer, whose
// completedJobs is totalJobs.
func (s *streamingQuerier) Search(req *vivacepb.SearchRequest, stream grpc.ServerStreamingServer[vivacepb.SearchResponse]) error {
	start := time.Now()
	ctx := stream.Context()
	err := func() error {
		tenant, err := s.f.streamTenant(ctx)
		if err != nil {
			return err
		}
		p, err := searchRequestParams(req)
		if err != nil {
			return err
		}
		job, err := s.f.searchJob(p)
		if err != nil {
			return err
		}
		var sent time.Time
		progress := func(resp *vivacepb.SearchResponse) error {
			if now := time.Now(); now.Sub(sent) >= streamInterval {
				sent = now
				return stream.Send(resp)
			}
			return nil
		}
		resp, err := s.f.Search(ctx, tenant, job, progress)
		if err != nil {
			return err
		}
		return stream.Send(resp)
	}()
	return s.f.streamDone(ctx, "stream_search", start, err)
}

func (s *streamingQuerier) SearchTags(req *vivacepb.SearchTagsRequest, stream grpc.ServerStreamingServer[vivacepb.SearchTagsResponse]) error {
	return streamTags(s.f, "stream_search_tags", stream, tagsRequestJob(req), nil, tagNames)
}

func (s *streamingQuerier) SearchTagsV2(req *vivacepb.SearchTagsRequest, stream grpc.ServerStreamingServer[vivacepb.SearchTagsV2Response]) error {
	return streamTags(s.f, "stream_search_tags_v2", stream, tagsRequestJob(req), nil, tagNamesV2)
}

func (s *streamingQuerier) SearchTagValues(req *vivacepb.SearchTagValuesRequest, stream grpc.ServerStreamingServer[vivacepb.SearchTagValuesResponse]) error {
	job, err := tagValuesRequestJob(req)
	return streamTags(s.f, "stream_search_tag_values", stream, job, err, tagValues)
}

func (s *streamingQuerier) SearchTagValuesV2(req *vivacepb.SearchTagValuesRequest, stream grpc.ServerStreamingServer[vivacepb.SearchTagValuesV2Response]) error {
	job, err := tagValuesRequestJob(req)
	return streamTags(s.f, "stream_search_tag_values_v2", stream, job, err, tagValuesV2)
}

// tagsRequestJob reads a SearchTagsRequest as the HTTP parameters it
// stands for; limit is maxTagsPerScope. Vivace keeps no stale-value counts,
// so staleValuesThreshold has nothing to bound.
func tagsRequestJob(req *vivacepb.SearchTagsRequest) *vivacepb.TagsJob {
	return &vivacepb.TagsJob{Scope: req.Scope, Query: req.Query, Start: int64(req.Start), End: int64(req.End), Limit: req.MaxTagsPerScope}
}

// tagValuesRequestJob reads a SearchTagValuesRequest as the HTTP parameters
// it stands for, the tag being the path's; limit is maxTagValues.
func tagValuesRequestJob(req *vivacepb.SearchTagValuesRequest) (*vivacepb.TagsJob, error) {
	if req.TagName == "" {
		return nil, badRequest("tagName is required")
	}
	return &vivacepb.TagsJob{Tag: req.TagName, Query: req.Query, Start: int64(req.Start), End: int64(req.End), Limit: req.MaxTagValues}, nil
}

// streamTags runs a tags job, or fails with jobErr, and sends its one answer.
func streamTags[T any](f *Frontend, endpoint string, stream grpc.ServerStreamingServer[T], job *vivacepb.TagsJob, jobErr error, answer func(*vivacepb.TagsResult) *T) error {
	start := time.Now()
	ctx := stream.Context()
	err := func() error {
		tenant, err := f.streamTenant(ctx)
		if err != nil {
			return err
		}
		if jobErr != nil {
			return jobErr
		}
		if err := checkTagsJob(job); err != nil {
			return err
		}
		res, err := f.Tags(ctx, tenant, job)
		if err != nil {
			return err
		}
		return stream.Send(answer(res))
	}()
	return f.streamDone(ctx, endpoint, start, err)
}

// streamTenant is the tenant of a stream, from its x-scope-orgid metadata.
func (f *Frontend) streamTenant(ctx context.Context) (string, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	var header string
	if v := md.Get(model.TenantHeader); len(v) > 0 {
		header = v[0]
	}
	return f.resolveTenant(header)
}

// streamDone counts a stream that ended with err and returns err as a gRPC
// status with the code that matches the HTTP one: 400 InvalidArgument, 401
// Unauthenticated, 429 ResourceExhausted, and so on.
func (f *Frontend) streamDone(ctx context.Context, endpoint string, start time.Time, err error) error {
	if err != nil && ctx.Err() != nil {
		err = ctx.Err() // the client went away or gave up; what failed then does not matter
	}
	code := f.observe(endpoint, start, err)
	if err == nil {
		return nil
	}
	var c codes.Code
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		c = codes.DeadlineExceeded
	case code == statusClientClosed:
		c = codes.Canceled
	case code == http.StatusBadRequest:
		c = codes.InvalidArgument
	case code == http.StatusUnauthorized:
		c = codes.Unauthenticated
	case code == http.StatusNotFound:
		c = codes.NotFound
	case code == http.StatusTooManyRequests:
		c = codes.ResourceExhausted
	case code == http.StatusServiceUnavailable:
		c = codes.Unavailable
	case code >= 400 && code <= 499:
		c = codes.FailedPrecondition
	default:
		c = codes.Internal
	}
	return status.Error(c, err.Error())
}
