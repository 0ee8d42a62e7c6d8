package frontend

import (
	"context"
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/vivace-dev/vivace/internal/vivacepb"
)

// lookup is n jobs of one tenant, named <name>.<i>.
type lookup struct {
	tenant, name string
	n            int
	cancelled    bool
}

func (l lookup) requests() []*request {
	ctx := context.Background()
	if l.cancelled {
		ctx = canceledCtx()
	}
	results := make(chan result, l.n)
	reqs := make([]*request, l.n)
	for i := range reqs {
		name := fmt.Sprintf("%s.%d", l.name, i)
		reqs[i] = &request{ctx: ctx, tenant: l.tenant, job: &vivacepb.Job{TraceById: &vivacepb.TraceByIDRequest{QueryMode: name}}, index: i, results: results}
	}
	return reqs
}

func newTestQueue(max int) *queue {
	return newQueue(max, newMetrics(prometheus.NewPedanticRegistry()))
}

// drain takes every job, by name, in order.
func drain(q *queue) []string {
	var got []string
	for {
		q.mu.Lock()
		r := q.pop()
		q.mu.Unlock()
		if r == nil {
			return got
		}
		got = append(got, r.job.TraceById.QueryMode)
	}
}

func TestQueueOrder(t *testing.T) {
	tests := []struct {
		name    string
		lookups []lookup
		want    []string // the first jobs dequeued
	}{
		{
			name:    "one job behind a thousand waits one round at most",
			lookups: []lookup{{tenant: "a", name: "a", n: 1000}, {tenant: "b", name: "b", n: 1}},
			want:    []string{"a.0", "b.0", "a.1", "a.2"},
		},
		{
			name:    "tenants take turns",
			lookups: []lookup{{tenant: "a", name: "a", n: 3}, {tenant: "b", name: "b", n: 2}, {tenant: "c", name: "c", n: 1}},
			want:    []string{"a.0", "b.0", "c.0", "a.1", "b.1", "a.2"},
		},
		{
			name:    "first in, first out within a tenant",
			lookups: []lookup{{tenant: "a", name: "x", n: 2}, {tenant: "a", name: "y", n: 1}, {tenant: "b", name: "z", n: 1}},
			want:    []string{"x.0", "z.0", "x.1", "y.0"},
		},
		{
			name: "cancelled lookups are skipped",
			lookups: []lookup{
				{tenant: "a", name: "gone", n: 2, cancelled: true}, {tenant: "a", name: "x", n: 1},
				{tenant: "b", name: "gone-too", n: 1, cancelled: true},
			},
			want: []string{"x.0"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := newTestQueue(2000)
			for _, l := range tt.lookups {
				require.NoError(t, q.enqueue(l.tenant, l.requests()))
			}
			got := drain(q)
			require.GreaterOrEqual(t, len(got), len(tt.want))
			require.Equal(t, tt.want, got[:len(tt.want)])
			require.Empty(t, q.order)
			require.Empty(t, q.tenants)
		})
	}
}

func TestQueueBound(t *testing.T) {
	q := newTestQueue(5)
	require.NoError(t, q.enqueue("a", lookup{tenant: "a", n: 3}.requests()))
	err := q.enqueue("a", lookup{tenant: "a", n: 3}.requests())
	var he *httpError
	require.ErrorAs(t, err, &he)
	require.Equal(t, 429, he.code)
	require.Len(t, q.tenants["a"], 3, "a lookup is queued whole or not at all")
	require.NoError(t, q.enqueue("b", lookup{tenant: "b", n: 5}.requests()), "the bound is per tenant")

	// Requeued jobs go first and may exceed the bound: they were counted.
	r, err := q.dequeue(context.Background())
	require.NoError(t, err)
	require.NoError(t, q.enqueue("a", lookup{tenant: "a", name: "late", n: 3}.requests()))
	require.NoError(t, q.requeue(r))
	require.Len(t, q.tenants["a"], 6)
	require.Same(t, r, q.tenants["a"][0])
}

func TestQueueDropCancelled(t *testing.T) {
	q := newTestQueue(4)
	gone := lookup{tenant: "a", name: "gone", n: 3}.requests()
	require.NoError(t, q.enqueue("a", gone))
	require.NoError(t, q.enqueue("b", lookup{tenant: "b", name: "b", n: 1}.requests()))
	ctx := canceledCtx()
	for _, r := range gone {
		r.ctx = ctx
	}
	q.dropCancelled("a")
	require.NotContains(t, q.tenants, "a")
	require.Equal(t, []string{"b"}, q.order)
	require.NoError(t, q.enqueue("a", lookup{tenant: "a", name: "x", n: 4}.requests()), "dropped jobs leave room")
	require.Equal(t, []string{"b.0", "x.0", "x.1", "x.2", "x.3"}, drain(q))
}

func canceledCtx() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

func TestQueueDequeueWaits(t *testing.T) {
	t.Run("for a job", func(t *testing.T) {
		q := newTestQueue(10)
		got := make(chan *request)
		go func() {
			r, _ := q.dequeue(context.Background())
			got <- r
		}()
		reqs := lookup{tenant: "a", name: "a", n: 1}.requests()
		require.NoError(t, q.enqueue("a", reqs))
		require.Same(t, reqs[0], <-got)
	})
	t.Run("until its ctx ends", func(t *testing.T) {
		q := newTestQueue(10)
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error)
		go func() {
			_, err := q.dequeue(ctx)
			errc <- err
		}()
		cancel()
		require.ErrorIs(t, <-errc, context.Canceled)
	})
	t.Run("until the queue closes, which fails the waiting jobs", func(t *testing.T) {
		q := newTestQueue(10)
		errc := make(chan error)
		go func() {
			_, err := q.dequeue(context.Background())
			errc <- err
		}()
		q.close()
		require.ErrorIs(t, <-errc, errStopping)
		_, err := q.dequeue(context.Background())
		require.ErrorIs(t, err, errStopping)
		require.ErrorIs(t, q.enqueue("a", lookup{tenant: "a", n: 1}.requests()), errStopping)
	})
	t.Run("closing answers the queued jobs", func(t *testing.T) {
		q := newTestQueue(10)
		results := make(chan result, 2)
		reqs := []*request{
			{ctx: context.Background(), tenant: "a", results: results, index: 0},
			{ctx: context.Background(), tenant: "b", results: results, index: 1},
		}
		require.NoError(t, q.enqueue("a", reqs[:1]))
		require.NoError(t, q.enqueue("b", reqs[1:]))
		r, err := q.dequeue(context.Background())
		require.NoError(t, err)
		q.close()
		require.ErrorIs(t, (<-results).err, errStopping)
		require.Empty(t, results, "only the queued job is answered")
		require.ErrorIs(t, q.requeue(r), errStopping)
	})
}
