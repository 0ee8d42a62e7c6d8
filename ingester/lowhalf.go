package ingester

import (
	"errors"
	"slices"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vivace-dev/vivace/ingester/wal"
	"github.com/vivace-dev/vivace/internal/model"
)

// walPart is where one generation holds parts of one trace.
type walPart struct {
	seg  *wal.Segment
	refs []wal.Ref
}

var errStarting = status.Error(codes.Unavailable, "ingester is starting")

// exactParts returns the parts of trace id in every generation, oldest first.
func (i *Ingester) exactParts(tenant string, id model.TraceID) ([]walPart, error) {
	i.mu.RLock()
	defer i.mu.RUnlock()
	if i.head == nil {
		// Still replaying the WAL: an empty answer would hide what it holds.
		return nil, errStarting
	}
	var parts []walPart
	for _, g := range append(i.older[:len(i.older):len(i.older)], i.head) {
		if refs := g.traces[tenant][id]; len(refs) > 0 {
			parts = append(parts, walPart{g.seg, refs})
		}
	}
	return parts, nil
}

// lowHalfParts returns the parts of every trace of the tenant whose low 64
// bits are low, generation by generation (oldest first), by ID within one.
//
// It scans the live index rather than keeping a second index by low half: a
// scan of 1M live traces takes a few milliseconds and runs only for lookups
// that found no exact match, while a second map would cost memory and time on
// every push (see BenchmarkLowHalf). Generations already cut are immutable and
// are scanned without the lock; only the head's scan holds it, so pushes wait
// at most for a scan of the head.
func (i *Ingester) lowHalfParts(tenant string, low uint64) ([]walPart, error) {
	i.mu.RLock()
	if i.head == nil {
		i.mu.RUnlock()
		return nil, errStarting
	}
	older := slices.Clone(i.older)
	headSeg, head := i.head.seg, i.head.lowHalf(tenant, low)
	i.mu.RUnlock()
	var parts []walPart
	for _, g := range older {
		for _, m := range g.lowHalf(tenant, low) {
			parts = append(parts, walPart{g.seg, m.refs})
		}
	}
	for _, m := range head {
		parts = append(parts, walPart{headSeg, m.refs})
	}
	return parts, nil
}

// lowHalfMatch is one trace of a generation whose low half matched.
type lowHalfMatch struct {
	id   model.TraceID
	refs []wal.Ref
}

// lowHalf returns the tenant's traces in g whose low 64 bits are low, by ID.
// In the head, call it with i.mu held; the refs it returns may be read after
// (a push appends past their length).
func (g *generation) lowHalf(tenant string, low uint64) []lowHalfMatch {
	var out []lowHalfMatch
	for id, refs := range g.traces[tenant] {
		if id.Low64() == low {
			out = append(out, lowHalfMatch{id, refs})
		}
	}
	slices.SortFunc(out, func(a, b lowHalfMatch) int { return a.id.Compare(b.id) })
	return out
}

// readParts concatenates the bytes of parts: encoded TracesData, which
// concatenated are one. A segment dropped meanwhile (its block flushed and
// listed by now) is skipped: the blocks answer for it.
func readParts(parts []walPart) ([]byte, error) {
	var buf []byte
	for _, p := range parts {
		for _, ref := range p.refs {
			n := len(buf)
			var err error
			if buf, err = p.seg.AppendAt(buf, ref); err != nil {
				if errors.Is(err, wal.ErrClosed) {
					buf = buf[:n]
					break
				}
				return nil, status.Error(codes.Internal, err.Error())
			}
		}
	}
	return buf, nil
}
