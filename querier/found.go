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

// part is what one source holds of a trace: decoded, or as a block answers,
// encoded with each span once. A trace found in one block alone is answered
// with the block's bytes, never decoded.
type part struct {
	td      *tracev1.TracesData
	encoded []byte
}

func (f *found) add(id model.TraceID, td *tracev1.TracesData) {
	f.parts[id] = append(f.parts[id], part{td: td})
}

// addEncoded adds a block's answer (see block.Reader.FindEncoded).
func (f *found) addEncoded(id model.TraceID, b []byte) {
	f.parts[id] = append(f.parts[id], part{encoded: b})
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
		if resp.Trace, err = appendCombined(resp.Trace, f.parts[id]); err != nil {
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
func appendCombined(dst []byte, parts []part) ([]byte, error) {
	if len(parts) == 1 && parts[0].encoded != nil {
		return append(dst, parts[0].encoded...), nil
	}
	tds := make([]*tracev1.TracesData, len(parts))
	for i, p := range parts {
		tds[i] = p.td
		if p.encoded != nil {
			tds[i] = &tracev1.TracesData{}
			if err := proto.Unmarshal(p.encoded, tds[i]); err != nil {
				return nil, fmt.Errorf("decode block answer: %w", err)
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
