package frontend

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/gorilla/mux"

	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/vivace-dev/vivace/internal/model"
	"github.com/vivace-dev/vivace/internal/otlpjson"
	"github.com/vivace-dev/vivace/internal/vivacepb"
	"github.com/vivace-dev/vivace/storage/block"
)

const (
	contentTypeJSON     = "application/json"
	contentTypeProtobuf = "application/protobuf"
)

// traceByIDV1 answers GET /api/traces/<id> as Tempo does: a bare Trace
// ({"batches": [...]} in JSON), and 422 for a trace over max_bytes_per_trace.
// The ID may be written in any form model.ReadTraceID reads. When it names
// several traces (see lookup), they are returned together and the message
// v2 would carry is in a Warning header, v1's only place for it.
func (f *Frontend) traceByIDV1(w http.ResponseWriter, r *http.Request) error {
	l, err := f.parseTraceLookup(r)
	if err != nil {
		return err
	}
	res, err := f.lookup(r.Context(), l)
	if err != nil {
		return err
	}
	t, msg, _ := res.combined(l)
	if t == nil {
		return res.notFound(l)
	}
	encoded, err := t.marshal()
	if err != nil {
		return err
	}
	if max := f.limits.MaxBytesPerTrace(l.tenant); max > 0 && len(encoded) > max {
		return &httpError{http.StatusUnprocessableEntity, fmt.Sprintf("trace exceeds max size (max bytes: %d)", max)}
	}
	if msg != "" {
		w.Header().Set("Warning", "299 - "+strconv.QuoteToASCII(msg))
	}
	if l.proto {
		// tempopb.Trace and OTLP TracesData share one wire form.
		return write(w, contentTypeProtobuf, encoded)
	}
	td, err := t.decoded()
	if err != nil {
		return err
	}
	return write(w, contentTypeJSON, batchesJSON(td))
}

// traceByIDV2 answers GET /api/v2/traces/<id> with Tempo's
// TraceByIDResponse; a trace over max_bytes_per_trace is cut to what fits
// and marked PARTIAL. So is an answer that holds several traces (a pasted ID
// that reads two ways, both of which exist) or lacks what corrupt blocks
// hold: Grafana shows PARTIAL as a "Partial trace" badge whose tooltip is the
// message, the one place a Grafana user sees it.
func (f *Frontend) traceByIDV2(w http.ResponseWriter, r *http.Request) error {
	l, err := f.parseTraceLookup(r)
	if err != nil {
		return err
	}
	res, err := f.lookup(r.Context(), l)
	if err != nil {
		return err
	}
	t, msg, partial := res.combined(l)
	if t == nil {
		return res.notFound(l)
	}
	resp := &vivacepb.TraceByIDResponse{Metrics: &vivacepb.TraceByIDMetrics{InspectedBytes: res.inspected}, Message: msg}
	if partial {
		resp.Status = vivacepb.PartialStatus_PARTIAL
	}
	if max := f.limits.MaxBytesPerTrace(l.tenant); max > 0 && (t.encoded == nil || len(t.encoded) > max) {
		td, err := t.decoded()
		if err != nil {
			return err
		}
		if td, cut := model.Truncate(td, max); cut {
			t = &answerTrace{td: td}
			resp.Status = vivacepb.PartialStatus_PARTIAL
			resp.Message = joinMessages(fmt.Sprintf("Trace exceeds maximum size of %d bytes, a partial trace is returned", max), resp.Message)
		}
	}
	if msg != "" {
		w.Header().Set("Warning", "299 - "+strconv.QuoteToASCII(msg))
	}
	if l.proto {
		if resp.Trace, err = t.marshal(); err != nil {
			return err
		}
		b, err := proto.Marshal(resp)
		if err != nil {
			return err
		}
		return write(w, contentTypeProtobuf, b)
	}
	td, err := t.decoded()
	if err != nil {
		return err
	}
	body, err := v2JSON(td, resp)
	if err != nil {
		return err
	}
	return write(w, contentTypeJSON, body)
}

// traceLookup is a parsed trace-by-ID request: the pasted ID with its
// readings, most likely first, and the request's options.
type traceLookup struct {
	traceRequest // id is the first reading's
	pasted       string
	readings     []model.TraceIDReading
}

func (f *Frontend) parseTraceLookup(r *http.Request) (*traceLookup, error) {
	tenant, err := model.ResolveTenant(f.multitenancy, r.Header.Get(model.TenantHeader))
	if err != nil {
		return nil, &httpError{http.StatusUnauthorized, err.Error()}
	}
	pasted := mux.Vars(r)["traceID"]
	readings, err := model.ReadTraceID(pasted)
	if err != nil {
		return nil, badRequest("%v", err)
	}
	l := &traceLookup{
		traceRequest: traceRequest{tenant: tenant, id: readings[0].ID, proto: acceptsProtobuf(r)},
		pasted:       strings.TrimSpace(pasted),
		readings:     readings,
	}
	q := r.URL.Query()
	if l.start, err = unixSeconds(q, "start"); err != nil {
		return nil, err
	}
	if l.end, err = unixSeconds(q, "end"); err != nil {
		return nil, err
	}
	if l.start > 0 && l.end > 0 && l.end < l.start {
		return nil, badRequest("end (%d) is before start (%d)", l.end, l.start)
	}
	return l, nil
}

// name is how errors name the lookup: the ID, or the pasted text when it
// reads several ways.
func (l *traceLookup) name() string {
	if len(l.readings) == 1 {
		return l.readings[0].ID.String()
	}
	return strconv.Quote(l.pasted)
}

// foundTrace is one trace a lookup found, and how.
type foundTrace struct {
	id      model.TraceID
	reading model.TraceIDReading // the reading that found it
	answerTrace
}

// answerTrace is a trace to answer with, decoded or encoded: when one
// querier's answer holds the whole trace, its bytes are passed on as they
// are (a querier combines what it found), and decoded only for JSON or to
// be cut to max_bytes_per_trace.
type answerTrace struct {
	td      *tracev1.TracesData
	encoded []byte
}

func (t *answerTrace) decoded() (*tracev1.TracesData, error) {
	if t.td == nil {
		td, err := decodeAnswer(t.encoded)
		if err != nil {
			return nil, err
		}
		t.td = td
	}
	return t.td, nil
}

func (t *answerTrace) marshal() ([]byte, error) {
	if t.encoded != nil {
		return t.encoded, nil
	}
	return proto.Marshal(t.td)
}

// byLowHalf tells whether the trace was found by the low half of a reading.
func (t foundTrace) byLowHalf() bool { return t.id != t.reading.ID }

func (t foundTrace) how() string {
	if t.byLowHalf() {
		return fmt.Sprintf("%s (its low 64 bits are the %s reading)", t.id, t.reading.Form)
	}
	return fmt.Sprintf("%s (read as %s)", t.id, t.reading.Form)
}

// lookupResult is what a lookup found.
type lookupResult struct {
	traces    []foundTrace
	inspected uint64
	partial   []string // messages of queriers whose answer is PARTIAL (corrupt blocks skipped)
}

// lookup finds the traces a pasted ID names, in two rounds:
//  1. every reading's exact ID (a decimal string reads two ways), all jobs
//     queued at once; each reading that exists is found;
//  2. only when none exists, every 64-bit reading by the low 64 bits of
//     128-bit IDs (low_half jobs), for tracers and logs that keep only the
//     low half. That scans every ingester and every block's trace_id
//     column, so it never runs when an exact ID exists; and it runs as its
//     own round because a job sees only part of the data: one job's exact
//     match must hide another job's low-half matches.
func (f *Frontend) lookup(ctx context.Context, l *traceLookup) (*lookupResult, error) {
	res := &lookupResult{}
	var jobs []*vivacepb.TraceByIDRequest
	var of []int // reading of each job
	for k, r := range l.readings {
		tr := l.traceRequest
		tr.id = r.ID
		for _, j := range f.jobs(&tr) {
			jobs, of = append(jobs, j), append(of, k)
		}
	}
	answers, err := f.runTraceJobs(ctx, l, jobs)
	if err != nil {
		return nil, err
	}
	parts := make([][][]byte, len(l.readings))
	for i, a := range answers {
		if b := res.add(a); b != nil {
			parts[of[i]] = append(parts[of[i]], b)
		}
	}
	for k, r := range l.readings {
		switch len(parts[k]) {
		case 0:
			continue
		case 1:
			// A querier's answer is combined already.
			res.traces = append(res.traces, foundTrace{r.ID, r, answerTrace{encoded: parts[k][0]}})
		default:
			b, err := block.AppendCombined(nil, r.ID, parts[k]...)
			if err != nil {
				return nil, fmt.Errorf("combine querier answers: %w", err)
			}
			if len(b) > 0 {
				res.traces = append(res.traces, foundTrace{r.ID, r, answerTrace{encoded: b}})
			}
		}
	}
	if len(res.traces) > 1 {
		// A decimal ID that reads as two traces that both exist: rare,
		// and combined decoded.
		for i := range res.traces {
			if _, err := res.traces[i].decoded(); err != nil {
				return nil, err
			}
		}
	}
	if len(res.traces) > 0 {
		return res, nil
	}

	var low []model.TraceIDReading
	var lowJobs []*vivacepb.TraceByIDRequest
	for _, r := range l.readings {
		if !r.ID.Is64Bit() {
			continue
		}
		low = append(low, r)
		tr := l.traceRequest
		tr.id = r.ID
		for _, j := range f.jobs(&tr) {
			j.LowHalf = true
			lowJobs = append(lowJobs, j)
		}
	}
	if len(lowJobs) == 0 {
		return res, nil
	}
	if answers, err = f.runTraceJobs(ctx, l, lowJobs); err != nil {
		return nil, err
	}
	byID := map[model.TraceID][]*tracev1.TracesData{}
	for _, a := range answers {
		if b := res.add(a); b != nil {
			td, err := decodeAnswer(b)
			if err != nil {
				return nil, err
			}
			splitByTrace(td, byID)
		}
	}
	ids := slices.SortedFunc(maps.Keys(byID), model.TraceID.Compare)
	for _, r := range low {
		if _, exact := byID[r.ID]; exact {
			// Written meanwhile: the exact ID hides the low-half matches.
			ids = []model.TraceID{r.ID}
			break
		}
	}
	for _, id := range ids {
		for _, r := range low {
			if id.Low64() == r.ID.Low64() {
				res.traces = append(res.traces, foundTrace{id, r, answerTrace{td: model.Combine(byID[id]...)}})
				break
			}
		}
	}
	return res, nil
}

// add notes what an answer reports and returns its trace, encoded (nil
// when empty).
func (res *lookupResult) add(a *vivacepb.TraceByIDResponse) []byte {
	res.inspected += a.GetMetrics().GetInspectedBytes()
	if a.GetStatus() == vivacepb.PartialStatus_PARTIAL && a.GetMessage() != "" && !slices.Contains(res.partial, a.GetMessage()) {
		res.partial = append(res.partial, a.GetMessage())
	}
	if len(a.GetTrace()) == 0 {
		return nil
	}
	return a.Trace
}

func decodeAnswer(b []byte) (*tracev1.TracesData, error) {
	td := &tracev1.TracesData{}
	if err := proto.Unmarshal(b, td); err != nil {
		return nil, fmt.Errorf("decode querier answer: %w", err)
	}
	return td, nil
}

// combined is the answer: the traces found, one after the other (each
// combined on its own: two traces may share span IDs), with the message that
// says what the client sees, and whether that is not exactly one whole trace.
func (res *lookupResult) combined(l *traceLookup) (t *answerTrace, msg string, partial bool) {
	switch n := len(res.traces); {
	case n == 0:
		return nil, "", false
	case n == 1:
		t = &res.traces[0].answerTrace
		if t := res.traces[0]; t.byLowHalf() {
			msg = fmt.Sprintf("no trace has the ID %s; this is trace %s, whose low 64 bits match", t.reading.ID, t.id)
		}
	default:
		td := &tracev1.TracesData{}
		hows := make([]string, n)
		for i, t := range res.traces {
			td.ResourceSpans = append(td.ResourceSpans, t.td.ResourceSpans...) // decoded by lookup
			hows[i] = t.how()
		}
		t = &answerTrace{td: td}
		msg = fmt.Sprintf("trace ID %q matches %d traces, shown together: %s. Open one by its 32-digit ID to see it alone",
			l.pasted, n, strings.Join(hows, ", "))
		partial = true
	}
	if len(res.partial) > 0 {
		msg, partial = joinMessages(msg, strings.Join(res.partial, "; ")), true
	}
	return t, msg, partial
}

// notFound is the 404 of a lookup that found nothing: the plain "trace not
// found" of Tempo, with what was looked up when the ID read several ways or
// was looked up by its low half, and the corrupt blocks that were skipped.
func (res *lookupResult) notFound(l *traceLookup) error {
	var tried []string
	lowHalf := false
	for _, r := range l.readings {
		tried = append(tried, fmt.Sprintf("%s (read as %s)", r.ID, r.Form))
		lowHalf = lowHalf || r.ID.Is64Bit()
	}
	var msg string
	if len(l.readings) > 1 || l.readings[0].Form != model.FormHex {
		msg = "looked up " + strings.Join(tried, " and ")
		if lowHalf {
			msg += ", and 128-bit IDs by their low 64 bits"
		}
	}
	msg = joinMessages(msg, strings.Join(res.partial, "; "))
	if msg == "" {
		return errTraceNotFound
	}
	return &httpError{http.StatusNotFound, "trace not found: " + msg}
}

func joinMessages(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "; " + b
}

// splitByTrace adds the spans of td to into by their trace ID, under their
// resource and scope: an answer by low half may hold several traces.
func splitByTrace(td *tracev1.TracesData, into map[model.TraceID][]*tracev1.TracesData) {
	for _, rs := range td.GetResourceSpans() {
		for _, ss := range rs.ScopeSpans {
			var order []model.TraceID
			spans := map[model.TraceID][]*tracev1.Span{}
			for _, s := range ss.Spans {
				id, err := model.TraceIDFromBytes(s.TraceId)
				if err != nil {
					continue // not one of the traces asked for
				}
				if _, ok := spans[id]; !ok {
					order = append(order, id)
				}
				spans[id] = append(spans[id], s)
			}
			for _, id := range order {
				into[id] = append(into[id], &tracev1.TracesData{ResourceSpans: []*tracev1.ResourceSpans{{
					Resource: rs.Resource, SchemaUrl: rs.SchemaUrl,
					ScopeSpans: []*tracev1.ScopeSpans{{Scope: ss.Scope, SchemaUrl: ss.SchemaUrl, Spans: spans[id]}},
				}}})
			}
		}
	}
}

// runTraceJobs queues the jobs for the workers and returns their answers in
// job order. It returns at the first failed job; the jobs still queued are
// dropped.
func (f *Frontend) runTraceJobs(ctx context.Context, l *traceLookup, jobs []*vivacepb.TraceByIDRequest) ([]*vivacepb.TraceByIDResponse, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		f.queue.dropCancelled(l.tenant)
	}()
	results := make(chan result, len(jobs))
	reqs := make([]*request, len(jobs))
	for i, job := range jobs {
		reqs[i] = &request{ctx: ctx, tenant: l.tenant, job: &vivacepb.Job{TraceById: job}, index: i, results: results}
	}
	if err := f.queue.enqueue(l.tenant, reqs); err != nil {
		return nil, err
	}
	answers := make([]*vivacepb.TraceByIDResponse, len(jobs))
	for range jobs {
		select {
		case r := <-results:
			if r.err != nil {
				return nil, fmt.Errorf("find trace %s: %w", l.name(), r.err)
			}
			answers[r.index] = r.resp.GetTraceById()
		case <-ctx.Done():
			return nil, fmt.Errorf("find trace %s: %w", l.name(), ctx.Err())
		}
	}
	return answers, nil
}

func write(w http.ResponseWriter, contentType string, body []byte) error {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	_, err := w.Write(body)
	return err
}

// batchesJSON renders Tempo's v1 trace JSON: {"batches":[<ResourceSpans>...]},
// each ResourceSpans in protobuf JSON (base64 IDs, enum names, int64 strings)
// as protojson writes it, by internal/otlpjson.
func batchesJSON(td *tracev1.TracesData) []byte {
	b := append(make([]byte, 0, jsonSizeHint(td)), `{"batches":[`...)
	for i, rs := range td.ResourceSpans {
		if i > 0 {
			b = append(b, ',')
		}
		b = otlpjson.AppendResourceSpans(b, rs)
	}
	return append(b, "]}"...)
}

// v2JSON renders Tempo's TraceByIDResponse JSON:
// {"trace":{"resourceSpans":[...]},"metrics":{...},"status":"PARTIAL","message":"..."},
// with zero-valued fields left out as protobuf JSON does.
func v2JSON(td *tracev1.TracesData, resp *vivacepb.TraceByIDResponse) ([]byte, error) {
	// The rest of the envelope is a TraceByIDResponse without its trace:
	// small, and protojson keeps it in step with the proto.
	j, err := protojson.Marshal(resp)
	if err != nil {
		return nil, err
	}
	// Without the random spaces protojson adds, so that answers are stable.
	var compact bytes.Buffer
	if err := json.Compact(&compact, j); err != nil {
		return nil, err
	}
	rest := compact.Bytes()
	b := append(make([]byte, 0, jsonSizeHint(td)+len(rest)), `{"trace":`...)
	b = otlpjson.AppendTracesData(b, td)
	if len(rest) > 2 {
		b = append(b, ',')
		b = append(b, rest[1:]...) // "metrics":...}, after the opening brace
	} else {
		b = append(b, '}')
	}
	return b, nil
}

// jsonSizeHint guesses the size of td in protobuf JSON from its span count,
// so that most answers are allocated once rather than grown by appending
// (modeltest's spans, rich in attributes, take 1.85 KiB each).
func jsonSizeHint(td *tracev1.TracesData) int {
	spans := 0
	for _, rs := range td.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			spans += len(ss.GetSpans())
		}
	}
	return 1024 + 2048*spans
}
