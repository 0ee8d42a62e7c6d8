// Package ingester keeps recent traces: it appends every push to a WAL before
// acknowledging it, serves lookups from the WAL, cuts the head by size or age
// and writes each cut as a block per tenant to the backend.
package ingester

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/grafana/dskit/backoff"
	"github.com/grafana/dskit/ring"
	"github.com/grafana/dskit/services"
	"github.com/grafana/dskit/user"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vivace-dev/vivace/ingester/wal"
	"github.com/vivace-dev/vivace/internal/logging"
	"github.com/vivace-dev/vivace/internal/model"
	"github.com/vivace-dev/vivace/internal/overrides"
	"github.com/vivace-dev/vivace/internal/vivacepb"
	"github.com/vivace-dev/vivace/storage"
	"github.com/vivace-dev/vivace/storage/block"
)

// generation is the content of one WAL segment: the head while it takes
// pushes, then, once cut, a block-to-be until it is flushed and its
// complete_block_timeout has passed. Its index is immutable once cut.
type generation struct {
	seg      *wal.Segment
	traces   map[string]map[model.TraceID][]wal.Ref // tenant → trace → parts
	created  time.Time
	flushed  time.Time // zero until every tenant's block is in the backend
	flushing bool      // a flush worker holds it
}

func newGeneration(seg *wal.Segment) *generation {
	return &generation{seg: seg, traces: map[string]map[model.TraceID][]wal.Ref{}, created: time.Now()}
}

func (g *generation) add(tenant string, id model.TraceID, ref wal.Ref) {
	t := g.traces[tenant]
	if t == nil {
		t = map[model.TraceID][]wal.Ref{}
		g.traces[tenant] = t
	}
	t[id] = append(t[id], ref)
}

// Ingester is the ingester role. It serves vivacepb's Pusher and Querier.
type Ingester struct {
	services.Service
	vivacepb.UnimplementedPusherServer
	vivacepb.UnimplementedQuerierServer

	cfg        Config
	bkt        storage.Bucket
	limits     *overrides.Overrides
	logger     *slog.Logger
	m          *metrics
	lifecycler *ring.Lifecycler

	mu      sync.RWMutex
	head    *generation
	older   []*generation // cut, oldest first
	nextSeq int
	closing bool // stopping: pushes are refused

	// Under mu too: the traces that count towards max_traces_per_user.
	live       map[string]*liveTraces // by tenant
	liveRotate time.Time              // when live was last rotated

	wake chan struct{} // a generation waits to be flushed
}

// New makes an ingester writing blocks to bkt, holding each tenant's
// traces within its limits.
func New(cfg Config, bkt storage.Bucket, limits *overrides.Overrides, logger *slog.Logger, reg prometheus.Registerer) (*Ingester, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	i := &Ingester{
		cfg:    cfg,
		bkt:    bkt,
		limits: limits,
		logger: logger.With("component", "ingester"),
		m:      newMetrics(reg),
		live:   map[string]*liveTraces{},
		wake:   make(chan struct{}, 1),
	}
	var err error
	i.lifecycler, err = ring.NewLifecycler(cfg.Lifecycler, shutdownFlusher{i}, "ingester", RingKey, true, logging.GoKit(i.logger), reg)
	if err != nil {
		return nil, fmt.Errorf("ingester lifecycler: %w", err)
	}
	i.Service = services.NewBasicService(i.starting, i.running, i.stopping)
	return i, nil
}

// RingKey is the key of the ingester ring in the KV store, as in Tempo.
const RingKey = "ring"

// InstanceID is this ingester's ID in the ring.
func (i *Ingester) InstanceID() string { return i.lifecycler.ID }

// CheckReady tells whether the ingester is in the ring and may take writes.
func (i *Ingester) CheckReady(ctx context.Context) error {
	if i.State() != services.Running {
		return fmt.Errorf("ingester is %s", i.State())
	}
	return i.lifecycler.CheckReady(ctx)
}

// shutdownFlusher flushes everything when the ingester leaves the ring, so a
// graceful stop leaves no data only in this ingester's WAL.
type shutdownFlusher struct{ i *Ingester }

func (f shutdownFlusher) Flush() { f.i.flushAll() }

func (shutdownFlusher) TransferOut(context.Context) error { return ring.ErrTransferDisabled }

func (i *Ingester) tempDir() string { return filepath.Join(i.cfg.WALPath, "tmp") }

// starting replays the WAL: every old segment becomes a generation waiting to
// be flushed, readable at once, and a new segment becomes the head.
func (i *Ingester) starting(ctx context.Context) error {
	if err := os.MkdirAll(i.cfg.WALPath, 0o755); err != nil {
		return fmt.Errorf("create WAL dir: %w", err)
	}
	// Half-written blocks of a previous run are rebuilt from the WAL.
	if err := os.RemoveAll(i.tempDir()); err != nil {
		return fmt.Errorf("clean temp dir: %w", err)
	}
	if err := os.MkdirAll(i.tempDir(), 0o755); err != nil {
		return fmt.Errorf("create temp dir: %w", err)
	}
	seqs, err := wal.Segments(i.cfg.WALPath)
	if err != nil {
		return err
	}
	// Built aside and published under the lock: lookups, pushes and flushes
	// can arrive while the replay runs.
	var older []*generation
	for _, seq := range seqs {
		start := time.Now()
		g := newGeneration(nil)
		n := 0
		seg, err := wal.Replay(i.cfg.WALPath, seq, func(tenant string, id model.TraceID, ref wal.Ref) {
			g.add(tenant, id, ref)
			n++
		})
		if seg == nil {
			// An unreadable header: nothing in it was ever acknowledged.
			i.logger.Error("skipping unreadable WAL segment", "segment", seq, "err", err)
			continue
		}
		if err != nil {
			damaged := 1
			if u, ok := err.(interface{ Unwrap() []error }); ok {
				damaged = len(u.Unwrap())
			}
			i.m.damagedRecords.Add(float64(damaged))
			i.logger.Warn("WAL segment has damaged records; skipped them and kept every intact one", "segment", seq, "damaged", damaged, "err", err)
		}
		if n == 0 {
			// Nothing acknowledged lives here (a head cut before any push).
			if err := seg.Remove(); err != nil {
				i.logger.Error("remove empty WAL segment", "segment", seq, "err", err)
			}
			continue
		}
		g.seg = seg
		older = append(older, g)
		i.m.replayedTraces.Add(float64(n))
		i.m.walBytes.Add(float64(seg.Size()))
		i.m.replaySeconds.Observe(time.Since(start).Seconds())
		i.logger.Info("replayed WAL segment", "segment", seq, "trace_parts", n, "bytes", seg.Size(), "duration", time.Since(start))
	}
	i.mu.Lock()
	i.older = older
	if len(seqs) > 0 {
		i.nextSeq = seqs[len(seqs)-1] + 1
	}
	err = i.newHead()
	i.mu.Unlock()
	if err != nil {
		return err
	}
	i.signal()
	// Join the ring only now: a restarted ingester that is back in the ring
	// must answer for what its WAL holds.
	if err := services.StartAndAwaitRunning(ctx, i.lifecycler); err != nil {
		return fmt.Errorf("join the ingester ring: %w", err)
	}
	return nil
}

// newHead starts a new head generation; i.mu must be held or unneeded.
func (i *Ingester) newHead() error {
	seg, err := wal.Create(i.cfg.WALPath, i.nextSeq)
	if err != nil {
		return err
	}
	i.nextSeq++
	i.head = newGeneration(seg)
	i.m.walBytes.Add(float64(seg.Size()))
	i.m.generations.Set(float64(len(i.older) + 1))
	return nil
}

func (i *Ingester) signal() {
	select {
	case i.wake <- struct{}{}:
	default:
	}
}

func (i *Ingester) running(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		defer close(done)
		i.flushLoop(ctx)
	}()
	defer func() { <-done }()
	tick := time.NewTicker(i.cfg.FlushCheckPeriod)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			i.mu.RLock()
			due := len(i.head.traces) > 0 &&
				(uint64(i.head.seg.Size()) >= i.cfg.MaxBlockBytes || time.Since(i.head.created) >= i.cfg.MaxBlockDuration)
			i.mu.RUnlock()
			if due {
				if err := i.cut(); err != nil {
					i.logger.Error("cut head block", "err", err)
				}
			}
			i.dropExpired()
			i.rotateLive()
		}
	}
}

// stopping flushes what is left so a graceful stop leaves nothing only in
// the WAL. Whatever fails to flush is replayed at the next start.
func (i *Ingester) stopping(error) error {
	// Leaving the ring flushes (shutdownFlusher) while distributors still
	// see this ingester; whatever arrives meanwhile is flushed below.
	if err := services.StopAndAwaitTerminated(context.Background(), i.lifecycler); err != nil {
		i.logger.Error("leave the ingester ring", "err", err)
	}
	i.mu.Lock()
	i.closing = true
	i.mu.Unlock()
	i.flushAll()
	i.mu.Lock()
	defer i.mu.Unlock()
	for _, g := range append(i.older, i.head) {
		g.seg.Close()
	}
	return nil
}

// flushAll cuts the head and writes every unflushed generation now.
func (i *Ingester) flushAll() {
	if err := i.cut(); err != nil {
		i.logger.Error("cut head block at shutdown", "err", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for g := i.takeUnflushed(); g != nil && ctx.Err() == nil; g = i.takeUnflushed() {
		err := i.flush(ctx, g)
		i.release(g)
		if err != nil {
			i.logger.Error("flush at shutdown; the WAL keeps the data", "segment", g.seg.Seq, "err", err)
			return
		}
	}
}

// Flush cuts the head now; the block is written in the background.
func (i *Ingester) Flush() error { return i.cut() }

func (i *Ingester) cut() error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.head == nil || len(i.head.traces) == 0 {
		// Not started yet (a /flush during the replay), or nothing to cut.
		return nil
	}
	old := i.head
	if err := i.newHead(); err != nil {
		return err
	}
	i.older = append(i.older, old)
	i.m.generations.Set(float64(len(i.older) + 1))
	i.signal()
	return nil
}

// takeUnflushed returns the oldest generation not yet in the backend that
// no flush worker holds, and holds it; release gives it back.
func (i *Ingester) takeUnflushed() *generation {
	i.mu.Lock()
	defer i.mu.Unlock()
	for _, g := range i.older {
		if g.flushed.IsZero() && !g.flushing {
			g.flushing = true
			return g
		}
	}
	return nil
}

func (i *Ingester) release(g *generation) {
	i.mu.Lock()
	g.flushing = false
	i.mu.Unlock()
}

// flushLoop runs the flush workers: generations are independent, so several
// are written into blocks at once when the ingest rate outruns one core.
func (i *Ingester) flushLoop(ctx context.Context) {
	workers := i.cfg.ConcurrentFlushes
	if workers == 0 {
		workers = max(1, runtime.GOMAXPROCS(0)/2)
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() { i.flushWorker(ctx) })
	}
	wg.Wait()
}

func (i *Ingester) flushWorker(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-i.wake:
		}
		for g := i.takeUnflushed(); g != nil; g = i.takeUnflushed() {
			i.signal() // an idle worker may take the next one meanwhile
			b := backoff.New(ctx, backoff.Config{MinBackoff: time.Second, MaxBackoff: 30 * time.Second})
			for b.Ongoing() {
				err := i.flush(ctx, g)
				if err == nil {
					break
				}
				i.m.flushFailures.Inc()
				i.logger.Error("flush block; will retry", "segment", g.seg.Seq, "err", err)
				b.Wait()
			}
			i.release(g)
			if ctx.Err() != nil {
				return
			}
		}
	}
}

// blockID is derived from the segment's random ID and the tenant, so that
// flushing a replayed segment again finds the block it already wrote.
func blockID(g *generation, tenant string) uuid.UUID {
	return uuid.NewSHA1(uuid.UUID(g.seg.ID), []byte(tenant))
}

// flush writes one block per tenant of g, skipping blocks already there.
func (i *Ingester) flush(ctx context.Context, g *generation) error {
	tenants := make([]string, 0, len(g.traces))
	for t := range g.traces {
		tenants = append(tenants, t)
	}
	slices.Sort(tenants)
	for _, tenant := range tenants {
		id := blockID(g, tenant)
		_, err := block.ReadMeta(ctx, i.bkt, tenant, id.String())
		switch {
		case err == nil:
			i.m.blocksSkipped.Inc()
			continue
		case !errors.Is(err, storage.ErrNotFound):
			return fmt.Errorf("check block %s: %w", id, err)
		}
		if err := i.writeBlock(ctx, tenant, id, g.seg, g.traces[tenant]); err != nil {
			return err
		}
	}
	i.mu.Lock()
	g.flushed = time.Now()
	i.mu.Unlock()
	return nil
}

func (i *Ingester) writeBlock(ctx context.Context, tenant string, id uuid.UUID, seg *wal.Segment, traces map[model.TraceID][]wal.Ref) error {
	start := time.Now()
	ids := make([]model.TraceID, 0, len(traces))
	for tid := range traces {
		ids = append(ids, tid)
	}
	slices.SortFunc(ids, model.TraceID.Compare)
	w, err := block.NewWriter(i.cfg.Block, i.tempDir(), tenant, id)
	if err != nil {
		return err
	}
	var buf []byte
	added := 0
	for _, tid := range ids {
		buf = buf[:0]
		for _, ref := range traces[tid] {
			if buf, err = seg.AppendAt(buf, ref); err != nil {
				w.Abort()
				return err
			}
		}
		// The parts are encoded TracesData as the distributor cut them from
		// requests it checked; concatenated, they are one. AddChecked builds
		// the rows from the bytes, without decoding or checking them again.
		if err := w.AddChecked(tid, buf); err != nil {
			if errors.Is(err, block.ErrInvalidTrace) {
				// Undecodable, or not storable: no retry can fix it, and
				// failing here would stop every later flush.
				i.logger.Error("skipping invalid trace in WAL", "tenant", tenant, "trace_id", tid.String(), "err", err)
				continue
			}
			w.Abort()
			return fmt.Errorf("add trace %s: %w", tid, err)
		}
		added++
	}
	if added == 0 {
		w.Abort()
		i.logger.Error("no valid trace to flush; no block written", "tenant", tenant, "block_id", id.String())
		return nil
	}
	meta, err := w.Finish(ctx, i.bkt)
	if err != nil {
		return fmt.Errorf("write block %s: %w", id, err)
	}
	i.m.blocksFlushed.Inc()
	i.m.flushedSpans.Add(float64(meta.TotalSpans))
	i.m.flushSeconds.Observe(time.Since(start).Seconds())
	i.logger.Info("flushed block", "tenant", tenant, "block_id", id.String(), "traces", meta.TotalTraces, "spans", meta.TotalSpans, "bytes", meta.Size, "duration", time.Since(start))
	return nil
}

// dropExpired deletes the segments of generations flushed longer ago than
// complete_block_timeout: by then every querier lists their blocks.
func (i *Ingester) dropExpired() {
	i.mu.Lock()
	var drop []*generation
	i.older = slices.DeleteFunc(i.older, func(g *generation) bool {
		if !g.flushed.IsZero() && time.Since(g.flushed) >= i.cfg.CompleteBlockTimeout {
			drop = append(drop, g)
			return true
		}
		return false
	})
	i.m.generations.Set(float64(len(i.older) + 1))
	i.mu.Unlock()
	for _, g := range drop {
		i.m.walBytes.Sub(float64(g.seg.Size()))
		if err := g.seg.Remove(); err != nil {
			i.logger.Error("remove flushed WAL segment", "segment", g.seg.Seq, "err", err)
		}
	}
}

// Push appends the traces of one request to the WAL; when it returns
// without error, the spans survive a crash of this process. Traces over the
// tenant's limits are left out and named in the response's errors_by_trace;
// the others are stored.
func (i *Ingester) Push(ctx context.Context, req *vivacepb.PushRequest) (*vivacepb.PushResponse, error) {
	tenant, err := user.ExtractOrgID(ctx)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	if len(req.Ids) != len(req.Traces) {
		return nil, status.Errorf(codes.InvalidArgument, "%d trace IDs for %d traces", len(req.Ids), len(req.Traces))
	}
	ids := make([]model.TraceID, len(req.Ids))
	bytes := 0
	for k, b := range req.Ids {
		if len(b) != 16 {
			return nil, status.Errorf(codes.InvalidArgument, "trace ID %d has %d bytes, want 16", k, len(b))
		}
		ids[k] = model.TraceID(b)
		bytes += len(req.Traces[k])
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.head == nil || i.closing {
		return nil, status.Error(codes.Unavailable, "ingester is not running")
	}
	traces := req.Traces
	errs := i.checkLimits(tenant, ids, traces)
	if errs != nil {
		ids, traces, bytes = acceptedOnly(ids, traces, errs)
		if len(ids) == 0 {
			return &vivacepb.PushResponse{ErrorsByTrace: errs}, nil
		}
	}
	refs, err := i.head.seg.Append(tenant, ids, traces)
	if err != nil {
		// The segment took no partial record we could serve; start a new one.
		i.logger.Error("WAL append failed", "err", err)
		if len(i.head.traces) > 0 {
			i.older = append(i.older, i.head)
			i.signal()
		}
		if herr := i.newHead(); herr != nil {
			i.logger.Error("new WAL segment", "err", herr)
		}
		return nil, status.Errorf(codes.Unavailable, "write-ahead log: %v", err)
	}
	live := i.live[tenant]
	if live == nil {
		live = newLiveTraces()
		i.live[tenant] = live
	}
	for k, id := range ids {
		i.head.add(tenant, id, refs[k])
		live.touch(id)
	}
	i.m.pushedTraces.Add(float64(len(ids)))
	i.m.pushedBytes.Add(float64(bytes))
	i.m.walBytes.Add(float64(bytes + 20*len(ids)))
	return &vivacepb.PushResponse{ErrorsByTrace: errs}, nil
}

// checkLimits tells which traces of a push would take tenant over its
// limits: a new trace beyond ingestion.max_traces_per_user live traces (that
// got a part within trace_idle_period), or a part that would make the trace's unflushed bytes (in the
// head and the cut generations not yet flushed) more than
// global.max_bytes_per_trace. It returns nil when every trace fits, else a
// reason per trace, and counts the refusals. i.mu must be held.
func (i *Ingester) checkLimits(tenant string, ids []model.TraceID, traces [][]byte) []vivacepb.PushErrorReason {
	maxTraces, maxBytes := i.limits.MaxTracesPerUser(tenant), i.limits.MaxBytesPerTrace(tenant)
	if maxTraces <= 0 && maxBytes <= 0 {
		return nil
	}
	live := i.live[tenant] // nil-safe
	count := live.count()
	// The common case, far from both limits, needs no per-trace accounting:
	// even if every trace of the push were new, and every part went to one
	// trace, they would fit.
	fits := maxTraces <= 0 || count+len(ids) <= maxTraces
	if fits && maxBytes > 0 {
		total := 0
		for _, t := range traces {
			total += len(t)
		}
		for _, id := range ids {
			if i.unflushedBytes(tenant, id)+total > maxBytes {
				fits = false
				break
			}
		}
	}
	if fits {
		return nil
	}
	var (
		errs []vivacepb.PushErrorReason
		seen map[model.TraceID]int // bytes taken so far by a trace this push repeats
	)
	if len(ids) > 1 {
		seen = make(map[model.TraceID]int, len(ids))
	}
	refuse := func(k int, reason vivacepb.PushErrorReason, label string) {
		if errs == nil {
			errs = make([]vivacepb.PushErrorReason, len(ids))
		}
		errs[k] = reason
		i.m.refusedTraces.WithLabelValues(tenant, label).Inc()
	}
	for k, id := range ids {
		taken, again := seen[id]
		isNew := !again && !live.has(id)
		if maxTraces > 0 && isNew && count >= maxTraces {
			refuse(k, vivacepb.PushErrorReason_MAX_LIVE_TRACES, "live_traces_exceeded")
			continue
		}
		if maxBytes > 0 && i.unflushedBytes(tenant, id)+taken+len(traces[k]) > maxBytes {
			refuse(k, vivacepb.PushErrorReason_TRACE_TOO_LARGE, "trace_too_large")
			continue
		}
		if isNew {
			count++
		}
		if seen != nil {
			seen[id] = taken + len(traces[k])
		}
	}
	return errs
}

// rotateLive ages the live traces every half trace_idle_period, and updates
// their gauge.
func (i *Ingester) rotateLive() {
	i.mu.Lock()
	defer i.mu.Unlock()
	rotate := time.Since(i.liveRotate) >= i.cfg.TraceIdlePeriod/2
	if rotate {
		i.liveRotate = time.Now()
	}
	for tenant, live := range i.live {
		if rotate {
			live.rotate()
		}
		if n := live.count(); n > 0 {
			i.m.liveTraces.WithLabelValues(tenant).Set(float64(n))
			continue
		}
		delete(i.live, tenant)
		i.m.liveTraces.DeleteLabelValues(tenant)
	}
}

// liveTraces are a tenant's traces that received a part lately: in the
// current half trace_idle_period or the one before. A trace stops being
// live at most trace_idle_period after its last part (half that at the
// earliest). Rotating costs nothing per trace.
type liveTraces struct {
	current, previous map[model.TraceID]struct{}
}

func newLiveTraces() *liveTraces {
	return &liveTraces{current: map[model.TraceID]struct{}{}, previous: map[model.TraceID]struct{}{}}
}

// touch marks id live in the current period.
func (l *liveTraces) touch(id model.TraceID) {
	if _, ok := l.current[id]; ok {
		return
	}
	delete(l.previous, id) // no-op when absent: the two sets stay disjoint
	l.current[id] = struct{}{}
}

func (l *liveTraces) has(id model.TraceID) bool {
	if l == nil {
		return false
	}
	_, inCurrent := l.current[id]
	_, inPrevious := l.previous[id]
	return inCurrent || inPrevious
}

func (l *liveTraces) count() int {
	if l == nil {
		return 0
	}
	return len(l.current) + len(l.previous)
}

// rotate starts a new period: traces not touched in the last two are dropped.
func (l *liveTraces) rotate() {
	l.previous, l.current = l.current, map[model.TraceID]struct{}{}
}

// unflushedBytes is the size of the parts of a trace held in the head and
// in the cut generations not yet in the backend. i.mu must be held.
func (i *Ingester) unflushedBytes(tenant string, id model.TraceID) int {
	n := partsBytes(i.head.traces[tenant][id])
	for _, g := range i.older {
		if g.flushed.IsZero() {
			n += partsBytes(g.traces[tenant][id])
		}
	}
	return n
}

func partsBytes(refs []wal.Ref) int {
	n := 0
	for _, ref := range refs {
		n += int(ref.Len)
	}
	return n
}

// acceptedOnly keeps the traces errs does not refuse, and their bytes.
func acceptedOnly(ids []model.TraceID, traces [][]byte, errs []vivacepb.PushErrorReason) ([]model.TraceID, [][]byte, int) {
	keptIDs := make([]model.TraceID, 0, len(ids))
	keptTraces := make([][]byte, 0, len(ids))
	bytes := 0
	for k, e := range errs {
		if e == vivacepb.PushErrorReason_NO_ERROR {
			keptIDs, keptTraces = append(keptIDs, ids[k]), append(keptTraces, traces[k])
			bytes += len(traces[k])
		}
	}
	return keptIDs, keptTraces, bytes
}

// FindTraceByID returns every part of the trace held in the WAL, as one
// encoded TracesData (the parts concatenated), not decoded here. With
// req.LowHalf and no trace of exactly that ID, it returns the parts of every
// trace whose low 64 bits match the 64-bit ID instead (several traces, then).
func (i *Ingester) FindTraceByID(ctx context.Context, req *vivacepb.TraceByIDRequest) (*vivacepb.TraceByIDResponse, error) {
	tenant, err := user.ExtractOrgID(ctx)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	id, err := model.TraceIDFromBytes(req.TraceId)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	if req.LowHalf && !id.Is64Bit() {
		return nil, status.Errorf(codes.InvalidArgument, "low_half asks for a 64-bit ID, not %s", id)
	}
	parts, err := i.exactParts(tenant, id)
	if err != nil {
		return nil, err
	}
	buf, err := readParts(parts)
	if err != nil {
		return nil, err
	}
	if len(buf) == 0 && req.LowHalf {
		if parts, err = i.lowHalfParts(tenant, id.Low64()); err != nil {
			return nil, err
		}
		if buf, err = readParts(parts); err != nil {
			return nil, err
		}
	}
	return &vivacepb.TraceByIDResponse{Trace: buf, Metrics: &vivacepb.TraceByIDMetrics{InspectedBytes: uint64(len(buf))}}, nil
}
