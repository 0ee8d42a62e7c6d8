package frontend

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/vivace-dev/vivace/internal/vivacepb"
)

// request is one job of a lookup, from the queue until its answer.
type request struct {
	ctx     context.Context // the lookup's; once done, nobody waits for the answer
	tenant  string
	job     *vivacepb.Job // without id and tenant, which the sender sets
	index   int           // of the job in its lookup
	results chan<- result // the lookup's, with room for all its jobs

	enqueued time.Time
	retries  int // owned by whoever holds the request: the queue or one worker
}

type result struct {
	index int
	resp  *vivacepb.JobResult
	err   error
}

// done answers the request; each request is answered once, so the send never
// blocks, and the select keeps a worker from hanging should that ever break.
func (r *request) done(resp *vivacepb.JobResult, err error) {
	select {
	case r.results <- result{r.index, resp, err}:
	default:
	}
}

// queue holds the jobs waiting for a worker: a FIFO per tenant, and the
// tenants with waiting jobs taken in turn, so a tenant with many jobs delays
// another tenant's job by at most one round.
type queue struct {
	max int
	m   *metrics

	mu      sync.Mutex
	cond    *sync.Cond // signalled when a job arrives, the queue closes or a dequeuer's ctx ends
	tenants map[string][]*request
	order   []string // tenants with waiting jobs, round-robin; in order ⇔ a non-empty FIFO
	next    int      // index in order of the tenant served next
	closed  bool
	stopped chan struct{} // closed with the queue
}

func newQueue(maxPerTenant int, m *metrics) *queue {
	q := &queue{max: maxPerTenant, m: m, tenants: map[string][]*request{}, stopped: make(chan struct{})}
	q.cond = sync.NewCond(&q.mu)
	return q
}

// enqueue adds all the jobs of one lookup, or none of them when the tenant's
// queue has no room for all.
func (q *queue) enqueue(tenant string, reqs []*request) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return errStopping
	}
	waiting := len(q.tenants[tenant])
	if waiting+len(reqs) > q.max {
		q.m.discarded.WithLabelValues(tenant, reasonQueueFull).Add(float64(len(reqs)))
		return &httpError{http.StatusTooManyRequests, fmt.Sprintf(
			"too many outstanding requests: tenant %q has %d jobs queued, and query_frontend.max_outstanding_per_tenant is %d",
			tenant, waiting, q.max)}
	}
	if waiting == 0 {
		q.order = append(q.order, tenant)
	}
	now := time.Now()
	for _, r := range reqs {
		r.enqueued = now
		q.cond.Signal()
	}
	q.tenants[tenant] = append(q.tenants[tenant], reqs...)
	q.m.queueLength.WithLabelValues(tenant).Set(float64(len(q.tenants[tenant])))
	return nil
}

// requeue puts back, first in its tenant's line, a job whose worker went away.
// It may exceed the tenant's bound: the job was counted when it came in.
func (q *queue) requeue(r *request) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return errStopping
	}
	if r.ctx.Err() != nil {
		q.m.discarded.WithLabelValues(r.tenant, reasonCancelled).Inc()
		return nil
	}
	if len(q.tenants[r.tenant]) == 0 {
		q.order = append(q.order, r.tenant)
	}
	r.enqueued = time.Now()
	q.tenants[r.tenant] = slices.Insert(q.tenants[r.tenant], 0, r)
	q.m.queueLength.WithLabelValues(r.tenant).Set(float64(len(q.tenants[r.tenant])))
	q.cond.Signal()
	return nil
}

// dequeue waits for the next job whose lookup still waits; it fails when
// ctx ends or the queue closes.
func (q *queue) dequeue(ctx context.Context) (*request, error) {
	stop := context.AfterFunc(ctx, func() {
		q.mu.Lock()
		defer q.mu.Unlock()
		q.cond.Broadcast()
	})
	defer stop()
	q.mu.Lock()
	defer q.mu.Unlock()
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if q.closed {
			return nil, errStopping
		}
		if r := q.pop(); r != nil {
			q.m.queueDuration.Observe(time.Since(r.enqueued).Seconds())
			return r, nil
		}
		q.cond.Wait()
	}
}

// pop takes the first live job of the next tenant in turn; q.mu is held.
func (q *queue) pop() *request {
	for len(q.order) > 0 {
		if q.next >= len(q.order) {
			q.next = 0
		}
		tenant := q.order[q.next]
		waiting := q.tenants[tenant]
		r := waiting[0]
		waiting[0] = nil // let the answered request be collected
		q.setWaiting(tenant, waiting[1:])
		if len(waiting) > 1 {
			q.next++ // the tenant stays in line; the turn passes on (had it left, the next one moved up)
		}
		if r.ctx.Err() != nil {
			q.m.discarded.WithLabelValues(tenant, reasonCancelled).Inc()
			continue
		}
		return r
	}
	return nil
}

// dropCancelled removes the tenant's jobs whose lookups ended, so they no
// longer count against its bound.
func (q *queue) dropCancelled(tenant string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	waiting := q.tenants[tenant]
	n := len(waiting)
	waiting = slices.DeleteFunc(waiting, func(r *request) bool { return r.ctx.Err() != nil })
	if dropped := n - len(waiting); dropped > 0 {
		q.m.discarded.WithLabelValues(tenant, reasonCancelled).Add(float64(dropped))
		q.setWaiting(tenant, waiting)
	}
}

// setWaiting sets the tenant's FIFO, taking the tenant out of line when it
// is empty; q.mu is held.
func (q *queue) setWaiting(tenant string, waiting []*request) {
	if len(waiting) > 0 {
		q.tenants[tenant] = waiting
		q.m.queueLength.WithLabelValues(tenant).Set(float64(len(waiting)))
		return
	}
	delete(q.tenants, tenant)
	q.m.queueLength.DeleteLabelValues(tenant)
	i := slices.Index(q.order, tenant)
	if i < 0 {
		return
	}
	q.order = slices.Delete(q.order, i, i+1)
	if i < q.next {
		q.next-- // the tenants after it moved up one
	}
}

// close fails every waiting job and ends every dequeue, now and later.
func (q *queue) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return
	}
	q.closed = true
	close(q.stopped)
	for tenant, waiting := range q.tenants {
		for _, r := range waiting {
			r.done(nil, errStopping)
		}
		q.m.queueLength.DeleteLabelValues(tenant)
	}
	q.tenants = map[string][]*request{}
	q.order = nil
	q.cond.Broadcast()
}
