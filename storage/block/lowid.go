package block

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"

	"github.com/vivace-dev/vivace/internal/model"
	"github.com/vivace-dev/vivace/storage"
)

// FindLow64 returns, in ascending order, the IDs of the block's traces whose
// low 64 bits are low: the traces that a tracer keeping only the low half of
// a 128-bit ID, or a log printing it, names by low.
//
// The bloom filter, the index and meta.json's ID range are all keyed on whole
// IDs and cannot help, so this reads every row group's trace_id column chunk
// (one ranged read each) and no other column. Of a dictionary-encoded chunk
// only the dictionary page is decoded: it holds each ID of the chunk once.
// It costs about a sixteenth of the block's spans in bytes; callers use it
// only after an exact lookup found nothing.
func (r *Reader) FindLow64(ctx context.Context, low uint64) ([]model.TraceID, error) {
	ids, err := r.findLow64(ctx, low)
	if err != nil {
		return nil, fmt.Errorf("find low half %016x in block %s: %w", low, r.meta.BlockID, err)
	}
	return ids, nil
}

func (r *Reader) findLow64(ctx context.Context, low uint64) ([]model.TraceID, error) {
	if r.metaErr != nil {
		return nil, r.metaErr
	}
	l, err := r.load(ctx)
	if err != nil {
		return nil, err
	}
	var out []model.TraceID
	for i := range l.idx.RowGroups {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if out, err = r.rowGroupLow64(ctx, l, i, low, out); err != nil {
			return nil, err
		}
	}
	// A trace whose rows straddle two row groups is in both.
	slices.SortFunc(out, model.TraceID.Compare)
	return slices.Compact(out), nil
}

// rowGroupLow64 appends to ids the IDs of row group i whose low half is low,
// fetching only its trace_id column chunk.
func (r *Reader) rowGroupLow64(ctx context.Context, l *loaded, i int, low uint64, ids []model.TraceID) ([]model.TraceID, error) {
	cc, err := l.footer.RowGroup(i).ColumnChunk(colTraceID)
	if err != nil {
		return nil, fmt.Errorf("%w: row group %d: column trace_id: %v", ErrCorrupt, i, err)
	}
	off := cc.DataPageOffset()
	if cc.HasDictionaryPage() && cc.DictionaryPageOffset() > 0 && cc.DictionaryPageOffset() < off {
		off = cc.DictionaryPageOffset()
	}
	length := cc.TotalCompressedSize()
	if e := l.idx.RowGroups[i]; off < e.Offset || length <= 0 || off+length > e.Offset+e.Length {
		return nil, fmt.Errorf("%w: row group %d: column trace_id at %d+%d is outside the row group at %d+%d", ErrCorrupt, i, off, length, e.Offset, e.Length)
	}
	buf := getRowGroupBuf(length)
	defer rowGroupBufs.Put(buf)
	if err := r.readRange(ctx, storage.DataKey(r.meta.TenantID, r.meta.BlockID), off, *buf); err != nil {
		return nil, err
	}
	src := &rangeReaderAt{size: r.meta.Size, segments: []segment{{off: off, buf: *buf}, {off: l.idx.TailOffset, buf: l.tail}}}
	pr, err := file.NewParquetReader(src, file.WithMetadata(l.footer), file.WithReadProps(readProps()))
	if err != nil {
		return nil, fmt.Errorf("%w: open row group %d: %v", ErrCorrupt, i, err)
	}
	defer pr.Close()
	return scanLow64(pr.RowGroup(i), low, ids)
}

// errUnusualEncoding: a trace_id page this scan does not read directly.
var errUnusualEncoding = errors.New("unusual encoding")

// scanLow64 appends the IDs of a trace_id column chunk whose low half is
// low, reading its pages raw: values of the dictionary page and of PLAIN data
// pages (written after a dictionary grew too big), skipping data pages of
// dictionary indexes, whose IDs the dictionary holds. A chunk in any other
// encoding (not one Vivace writes) is decoded value by value instead.
func scanLow64(rgr *file.RowGroupReader, low uint64, ids []model.TraceID) (out []model.TraceID, err error) {
	defer func() {
		if p := recover(); p != nil {
			out, err = nil, fmt.Errorf("%w: decode column trace_id: %v", ErrCorrupt, p)
		}
	}()
	out, err = scanLow64Pages(rgr, low, ids)
	if !errors.Is(err, errUnusualEncoding) {
		return out, err
	}
	all, err := readIDs(rgr)
	if err != nil {
		return nil, err
	}
	out = ids
	for _, id := range all {
		if id.Low64() == low {
			out = append(out, id)
		}
	}
	return out, nil
}

func scanLow64Pages(rgr *file.RowGroupReader, low uint64, ids []model.TraceID) ([]model.TraceID, error) {
	pages, err := rgr.GetColumnPageReader(colTraceID)
	if err != nil {
		return nil, fmt.Errorf("%w: column trace_id: %v", ErrCorrupt, err)
	}
	defer pages.Close()
	dictionary := false
	for pages.Next() {
		var values []byte
		var n int32
		switch p := pages.Page().(type) {
		case *file.DictionaryPage:
			dictionary = true
			values, n = p.Data(), p.NumValues()
		case *file.DataPageV1:
			switch parquet.Encoding(p.Encoding()) {
			case parquet.Encodings.RLEDict, parquet.Encodings.PlainDict:
				if !dictionary {
					return nil, fmt.Errorf("%w: column trace_id: dictionary indexes without a dictionary", ErrCorrupt)
				}
				continue
			case parquet.Encodings.Plain:
				// REQUIRED and not nested: a V1 page holds no levels.
				values, n = p.Data(), p.NumValues()
			default:
				return nil, errUnusualEncoding
			}
		default: // data page V2, which Vivace does not write
			return nil, errUnusualEncoding
		}
		if n < 0 || len(values) < 16*int(n) {
			return nil, fmt.Errorf("%w: column trace_id: page of %d bytes for %d IDs", ErrCorrupt, len(values), n)
		}
		for v := values[:16*int(n)]; len(v) > 0; v = v[16:] {
			if binary.BigEndian.Uint64(v[8:16]) == low {
				ids = append(ids, model.TraceID(v[:16]))
			}
		}
	}
	if err := pages.Err(); err != nil {
		return nil, fmt.Errorf("%w: column trace_id: %v", ErrCorrupt, err)
	}
	return ids, nil
}
