package querier

import (
	"fmt"
	"slices"
	"strings"
	"sync"

	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/vivace-dev/vivace/internal/model"
	"github.com/vivace-dev/vivace/internal/vivacepb"
	"github.com/vivace-dev/vivace/storage/block"
)

// found gathers what one lookup found: the parts of each trace, and the
// corrupt blocks it skipped.
type found struct {
	id        model.TraceID // what was asked for
	parts     map[model.TraceID][]part
	inspected uint64

	mu      sync.Mutex // guards corrupt
	corrupt []string   // IDs of the blocks skipped as corrupt
}

func newFound(id model.TraceID) *found {
	return &found{id: id, parts: map[model.TraceID][]part{}}
}

// part is what one source holds of a trace: decoded (a low-half match), or
// encoded as an ingester or a block answers. A block's answer holds each
// span once already, so a trace found in one block alone is answered with
// the block's bytes; encoded parts are otherwise combined without decoding
// their spans (block.AppendCombined).
type part struct {
	td       *tracev1.TracesData
	encoded  []byte
	combined bool // encoded holds each span once
}

func (f *found) add(id model.TraceID, td *tracev1.TracesData) {
	f.parts[id] = append(f.parts[id], part{td: td})
}

// addEncoded adds an encoded answer: an ingester's, or a block's
// (combined, see block.Reader.FindEncoded).
func (f *found) addEncoded(id model.TraceID, b []byte, combined bool) {
	f.parts[id] = append(f.parts[id], part{encoded: b, combined: combined})
}

// skip records a corrupt block; safe for concurrent use.
func (f *found) skip(blockID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.corrupt = append(f.corrupt, blockID)
}

// response combines each trace's parts on its own (spans of different
// traces may share span IDs) and puts the traces one after the other, by ID.
// The exact ID, when found, hides traces found by their low half only.
func (f *found) response() (*vivacepb.TraceByIDResponse, error) {
	resp := &vivacepb.TraceByIDResponse{Metrics: &vivacepb.TraceByIDMetrics{InspectedBytes: f.inspected}}
	ids := make([]model.TraceID, 0, len(f.parts))
	for id := range f.parts {
		ids = append(ids, id)
	}
	if _, ok := f.parts[f.id]; ok {
		ids = []model.TraceID{f.id}
	}
	slices.SortFunc(ids, model.TraceID.Compare)
	// TracesData is one repeated field: traces encoded one after the other
	// are the encoding of all of them.
	for _, id := range ids {
		var err error
		if resp.Trace, err = appendCombined(resp.Trace, id, f.parts[id]); err != nil {
			return nil, err
		}
	}
	if len(f.corrupt) > 0 {
		slices.Sort(f.corrupt)
		resp.Status = vivacepb.PartialStatus_PARTIAL
		resp.Message = corruptMessage(f.corrupt)
	}
	return resp, nil
}

// appendCombined appends the encoding of parts combined into one trace.
func appendCombined(dst []byte, id model.TraceID, parts []part) ([]byte, error) {
	if len(parts) == 1 && parts[0].combined {
		return append(dst, parts[0].encoded...), nil
	}
	if !slices.ContainsFunc(parts, func(p part) bool { return p.td != nil }) {
		encoded := make([][]byte, len(parts))
		for i, p := range parts {
			encoded[i] = p.encoded
		}
		b, err := block.AppendCombined(dst, id, encoded...)
		if err != nil {
			return nil, fmt.Errorf("combine answers: %w", err)
		}
		return b, nil
	}
	tds := make([]*tracev1.TracesData, len(parts))
	for i, p := range parts {
		tds[i] = p.td
		if p.td == nil {
			tds[i] = &tracev1.TracesData{}
			if err := proto.Unmarshal(p.encoded, tds[i]); err != nil {
				return nil, fmt.Errorf("decode answer: %w", err)
			}
		}
	}
	td := model.Combine(tds...)
	if td == nil {
		return dst, nil
	}
	return proto.MarshalOptions{}.MarshalAppend(dst, td)
}

// corruptMessage says that the blocks were skipped as corrupt, naming at
// most a few of them.
func corruptMessage(blockIDs []string) string {
	const show = 3
	names := strings.Join(blockIDs[:min(len(blockIDs), show)], ", ")
	if len(blockIDs) > show {
		names += fmt.Sprintf(" and %d more", len(blockIDs)-show)
	}
	s := ""
	if len(blockIDs) > 1 {
		s = "s"
	}
	return fmt.Sprintf("corrupt block%s %s skipped: spans held there are missing", s, names)
}
