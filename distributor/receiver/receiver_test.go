package receiver_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vivace-dev/vivace/distributor/receiver"
)

func TestPushErrorStatus(t *testing.T) {
	limit := &receiver.LimitError{Reason: "rate_limited", Msg: "ingestion rate limit (1 bytes/s, burst 2 bytes) exceeded for tenant a; retry later", RetryAfter: 1200 * time.Millisecond}
	for _, tc := range []struct {
		name       string
		err        error
		httpCode   int
		grpcCode   codes.Code
		retryAfter string
		outcome    string
	}{
		{name: "bad input", err: fmt.Errorf("%w: trace_id has 8 bytes", receiver.ErrBadInput), httpCode: http.StatusBadRequest, grpcCode: codes.InvalidArgument, outcome: "error"},
		{name: "server", err: errors.New("no ingesters"), httpCode: http.StatusServiceUnavailable, grpcCode: codes.Unavailable, outcome: "error"},
		{name: "limit", err: limit, httpCode: http.StatusTooManyRequests, grpcCode: codes.ResourceExhausted, retryAfter: "2", outcome: "limited"},
		{name: "wrapped limit", err: fmt.Errorf("push: %w", limit), httpCode: http.StatusTooManyRequests, grpcCode: codes.ResourceExhausted, retryAfter: "2", outcome: "limited"},
		{name: "limit without a hint", err: &receiver.LimitError{Msg: "over"}, httpCode: http.StatusTooManyRequests, grpcCode: codes.ResourceExhausted, retryAfter: "1", outcome: "limited"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.httpCode, receiver.HTTPStatus(tc.err))
			require.Equal(t, tc.grpcCode, receiver.GRPCCode(tc.err))
			require.Equal(t, tc.outcome, receiver.Outcome(tc.err))

			w := httptest.NewRecorder()
			receiver.WriteHTTPError(w, tc.err)
			require.Equal(t, tc.httpCode, w.Code)
			require.Equal(t, tc.retryAfter, w.Header().Get("Retry-After"))
			require.Equal(t, tc.err.Error()+"\n", w.Body.String())

			st := status.Convert(receiver.GRPCStatus(tc.err))
			require.Equal(t, tc.grpcCode, st.Code())
			require.Equal(t, tc.err.Error(), st.Message())
			if tc.retryAfter == "" {
				require.Empty(t, st.Details())
				return
			}
			require.Len(t, st.Details(), 1)
			require.GreaterOrEqual(t, st.Details()[0].(*errdetails.RetryInfo).GetRetryDelay().AsDuration(), time.Second)
		})
	}
}
