package block

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/vivace-dev/vivace/internal/model"
	"github.com/vivace-dev/vivace/storage"
)

// maxSmallObject bounds how much of an index or bloom shard a reader loads.
const maxSmallObject = 64 << 20

// Reader reads one block. It loads the index and the parquet footer on first
// use and keeps them, and keeps each bloom shard it reads (at most
// BloomShards × bloom_shard_max_bytes); row groups are read per lookup. A
// Reader is safe for concurrent use.
type Reader struct {
	bkt          storage.Bucket
	meta         *Meta
	minID, maxID model.TraceID
	metaErr      error

	mu     sync.Mutex // guards loaded and blooms
	loaded *loaded    // nil until the first successful load
	blooms map[int]*bloomFilter
}

// loaded is what a Reader reads once and keeps.
type loaded struct {
	idx    *blockIndex
	footer *metadata.FileMetaData
	tail   []byte // data.parquet from idx.TailOffset to the footer's end: page indexes and footer
}

// NewReader returns a reader of the block that meta describes (as returned
// by ReadMeta or Writer.Finish). It reads nothing yet.
func NewReader(bkt storage.Bucket, meta *Meta) *Reader {
	r := &Reader{bkt: bkt, meta: meta}
	r.minID, r.maxID, r.metaErr = meta.idRange()
	return r
}

// Meta returns the block's meta.json.
func (r *Reader) Meta() *Meta { return r.meta }

// FindTraceByID returns the trace with the given ID, or (nil, nil) if the
// block does not hold it: FindEncoded's answer, decoded.
func (r *Reader) FindTraceByID(ctx context.Context, id model.TraceID) (*tracev1.TracesData, error) {
	b, err := r.FindEncoded(ctx, id, nil)
	if err != nil || b == nil {
		return nil, err
	}
	td := &tracev1.TracesData{}
	if err := proto.Unmarshal(b, td); err != nil {
		return nil, fmt.Errorf("find trace %s in block %s: %w: %v", id, r.meta.BlockID, ErrCorrupt, err)
	}
	return td, nil
}

// FindEncoded appends to dst the trace with the given ID as an encoded
// TracesData, each span once (as model.Combine keeps it), and returns it; or
// nil if the block does not hold the trace. It costs at most one bloom shard
// read and the index and footer (each once per Reader), and one ranged read
// of one row group.
func (r *Reader) FindEncoded(ctx context.Context, id model.TraceID, dst []byte) ([]byte, error) {
	b, err := r.findEncoded(ctx, id, dst)
	if err != nil {
		return nil, fmt.Errorf("find trace %s in block %s: %w", id, r.meta.BlockID, err)
	}
	return b, nil
}

func (r *Reader) findEncoded(ctx context.Context, id model.TraceID, dst []byte) ([]byte, error) {
	if r.metaErr != nil {
		return nil, r.metaErr
	}
	if id.Compare(r.minID) < 0 || id.Compare(r.maxID) > 0 {
		return nil, nil
	}
	if r.meta.BloomShards < 1 {
		return nil, fmt.Errorf("%w: meta.json has %d bloom shards", ErrCorrupt, r.meta.BloomShards)
	}
	h := bloomHash(id)
	bf, err := r.bloom(ctx, bloomShardOf(h, r.meta.BloomShards))
	if err != nil {
		return nil, err
	}
	if !bf.mayContain(h) {
		return nil, nil
	}

	l, err := r.load(ctx)
	if err != nil {
		return nil, err
	}
	rg := l.idx.find(id)
	if rg < 0 {
		return nil, nil
	}
	rgr, closeRG, err := r.openRowGroup(ctx, l, rg)
	if err != nil {
		return nil, err
	}
	defer closeRG()
	return findInRowGroup(rgr, id, dst)
}

// bloom returns one shard of the bloom filter, read once per Reader: a lookup
// of an absent trace then costs no object-store call at all.
func (r *Reader) bloom(ctx context.Context, shard int) (*bloomFilter, error) {
	r.mu.Lock()
	bf := r.blooms[shard]
	r.mu.Unlock()
	if bf != nil {
		return bf, nil
	}
	b, err := r.getAll(ctx, storage.BloomKey(r.meta.TenantID, r.meta.BlockID, shard))
	if err != nil {
		return nil, err
	}
	if bf, err = decodeBloom(b); err != nil {
		return nil, fmt.Errorf("bloom-%d: %w", shard, err)
	}
	r.mu.Lock()
	if r.blooms == nil {
		r.blooms = map[int]*bloomFilter{}
	}
	r.blooms[shard] = bf
	r.mu.Unlock()
	return bf, nil
}

// Iterate calls fn for every trace of the block in ascending ID order,
// reading one row group at a time. It stops at the first error fn returns
// and returns it.
func (r *Reader) Iterate(ctx context.Context, fn func(id model.TraceID, td *tracev1.TracesData) error) error {
	l, err := r.load(ctx)
	if err != nil {
		return fmt.Errorf("iterate block %s: %w", r.meta.BlockID, err)
	}
	for i := range l.idx.RowGroups {
		if err := ctx.Err(); err != nil {
			return err
		}
		rgr, closeRG, err := r.openRowGroup(ctx, l, i)
		if err != nil {
			return fmt.Errorf("iterate block %s: %w", r.meta.BlockID, err)
		}
		err = iterateRowGroup(rgr, fn)
		closeRG()
		if err != nil {
			return err
		}
	}
	return nil
}

// load returns the index, the parquet footer and the tail, reading them on
// first use. A failed load is not cached.
func (r *Reader) load(ctx context.Context) (*loaded, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.loaded != nil {
		return r.loaded, nil
	}
	b, err := r.getAll(ctx, storage.IndexKey(r.meta.TenantID, r.meta.BlockID))
	if err != nil {
		return nil, err
	}
	idx, err := decodeIndex(b, r.meta.Size)
	if err != nil {
		return nil, err
	}
	if len(idx.RowGroups) != r.meta.RowGroups {
		return nil, fmt.Errorf("%w: index has %d row groups, meta.json %d", ErrCorrupt, len(idx.RowGroups), r.meta.RowGroups)
	}
	tail, err := r.getRange(ctx, storage.DataKey(r.meta.TenantID, r.meta.BlockID), idx.TailOffset, idx.FooterOffset+idx.FooterLength-idx.TailOffset)
	if err != nil {
		return nil, err
	}
	footer, err := decodeFooter(tail[idx.FooterOffset-idx.TailOffset:], idx, r.meta.Size)
	if err != nil {
		return nil, err
	}
	r.loaded = &loaded{idx: idx, footer: footer, tail: tail}
	return r.loaded, nil
}

// decodeFooter parses the parquet footer and checks it against the index.
func decodeFooter(b []byte, idx *blockIndex, size int64) (md *metadata.FileMetaData, err error) {
	defer func() {
		if p := recover(); p != nil {
			md, err = nil, fmt.Errorf("%w: data.parquet footer: %v", ErrCorrupt, p)
		}
	}()
	md, err = metadata.NewFileMetaData(b, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: data.parquet footer: %v", ErrCorrupt, err)
	}
	md.SetSourceFileSize(size)
	if err := checkSchema(md); err != nil {
		return nil, err
	}
	if md.NumRowGroups() != len(idx.RowGroups) {
		return nil, fmt.Errorf("%w: data.parquet has %d row groups, index %d", ErrCorrupt, md.NumRowGroups(), len(idx.RowGroups))
	}
	for i, e := range idx.RowGroups {
		off, length, err := rowGroupRange(md, i)
		if err != nil {
			return nil, fmt.Errorf("%w: data.parquet: %v", ErrCorrupt, err)
		}
		if off != e.Offset || length != e.Length {
			return nil, fmt.Errorf("%w: row group %d is at %d+%d in data.parquet, %d+%d in the index", ErrCorrupt, i, off, length, e.Offset, e.Length)
		}
		if md.RowGroup(i).NumRows() < 1 {
			return nil, fmt.Errorf("%w: row group %d is empty", ErrCorrupt, i)
		}
	}
	return md, nil
}

// openRowGroup fetches row group i with one ranged read and opens it over
// the fetched bytes.
func (r *Reader) openRowGroup(ctx context.Context, l *loaded, i int) (*file.RowGroupReader, func(), error) {
	e := l.idx.RowGroups[i]
	buf := getRowGroupBuf(e.Length)
	b := *buf
	if err := r.readRange(ctx, storage.DataKey(r.meta.TenantID, r.meta.BlockID), e.Offset, b); err != nil {
		rowGroupBufs.Put(buf)
		return nil, nil, err
	}
	src := &rangeReaderAt{size: r.meta.Size, segments: []segment{{off: e.Offset, buf: b}, {off: l.idx.TailOffset, buf: l.tail}}}
	pr, err := file.NewParquetReader(src, file.WithMetadata(l.footer), file.WithReadProps(readProps()))
	if err != nil {
		rowGroupBufs.Put(buf)
		return nil, nil, fmt.Errorf("%w: open row group %d: %v", ErrCorrupt, i, err)
	}
	// Everything decoded from the row group is copied out of buf (ReadBatch
	// clones values, proto.Unmarshal copies bytes), so buf is reused once
	// the caller is done.
	return pr.RowGroup(i), func() { _ = pr.Close(); rowGroupBufs.Put(buf) }, nil
}

// rowGroupBufs recycles the buffers row groups are fetched into.
var rowGroupBufs sync.Pool // of *[]byte

func getRowGroupBuf(n int64) *[]byte {
	if p, ok := rowGroupBufs.Get().(*[]byte); ok && int64(cap(*p)) >= n {
		*p = (*p)[:n]
		return p
	}
	b := make([]byte, n)
	return &b
}

func (r *Reader) getAll(ctx context.Context, key string) ([]byte, error) {
	rc, err := r.bkt.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxSmallObject+1))
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	if len(b) > maxSmallObject {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrCorrupt, key, maxSmallObject)
	}
	return b, nil
}

func (r *Reader) getRange(ctx context.Context, key string, off, length int64) ([]byte, error) {
	b := make([]byte, length)
	return b, r.readRange(ctx, key, off, b)
}

// readRange fills b with the object's bytes from off. An object that ends
// before off+len(b) is ErrCorrupt: meta.json promised more.
func (r *Reader) readRange(ctx context.Context, key string, off int64, b []byte) error {
	rc, err := r.bkt.GetRange(ctx, key, off, int64(len(b)))
	if errors.Is(err, storage.ErrOutOfRange) {
		return fmt.Errorf("%w: %s ends before byte %d: %v", ErrCorrupt, key, off, err)
	}
	if err != nil {
		return fmt.Errorf("get %s bytes %d+%d: %w", key, off, len(b), err)
	}
	defer rc.Close()
	n, err := io.ReadFull(rc, b)
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		// A short body is a short object, or a connection cut mid-body:
		// only the store can tell which.
		if probe, perr := r.bkt.GetRange(ctx, key, off+int64(n), 1); errors.Is(perr, storage.ErrOutOfRange) {
			return fmt.Errorf("%w: %s ends at byte %d, before %d", ErrCorrupt, key, off+int64(n), off+int64(len(b)))
		} else if perr == nil {
			_ = probe.Close()
		}
	}
	if err != nil {
		return fmt.Errorf("get %s bytes %d+%d: %w", key, off, len(b), err)
	}
	return nil
}

// readProps are the parquet reader settings: stream pages out of the fetched
// range rather than copy each column chunk first (a lookup decodes only a few
// pages of each), and refuse absurd page sizes from a corrupt file.
func readProps() *parquet.ReaderProperties {
	p := parquet.NewReaderProperties(pageAlloc)
	p.BufferedStreamEnabled = true
	p.BufferSize = 4 << 10
	p.MaxCompressedPageSize = 64 << 20
	p.MaxUncompressedPageSize = 256 << 20
	return p
}

// rangeReaderAt serves a parquet reader from fetched ranges of data.parquet
// (a row group, and the cached tail); reading outside them is an error (the
// index and footer disagree), never another request.
type rangeReaderAt struct {
	segments []segment
	size     int64 // size of data.parquet
	pos      int64 // for Seek
}

type segment struct {
	off int64 // offset of buf in data.parquet
	buf []byte
}

func (r *rangeReaderAt) ReadAt(p []byte, off int64) (int, error) {
	for _, s := range r.segments {
		if off >= s.off && off-s.off <= int64(len(s.buf)) && int64(len(p)) <= int64(len(s.buf))-(off-s.off) {
			return copy(p, s.buf[off-s.off:]), nil
		}
	}
	return 0, fmt.Errorf("%w: read of data.parquet bytes %d+%d outside the fetched ranges", ErrCorrupt, off, len(p))
}

func (r *rangeReaderAt) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += r.pos
	case io.SeekEnd:
		offset += r.size
	default:
		return 0, fmt.Errorf("seek: bad whence %d", whence)
	}
	if offset < 0 {
		return 0, fmt.Errorf("seek to %d", offset)
	}
	r.pos = offset
	return offset, nil
}

// findInRowGroup appends the trace id of a row group to dst, encoded (see
// rows.appendTracesData): the trace_id column locates its rows (rows are
// sorted, a trace's rows are adjacent), then the other columns are read for
// just those rows.
func findInRowGroup(rgr *file.RowGroupReader, id model.TraceID, dst []byte) (out []byte, err error) {
	defer func() {
		if p := recover(); p != nil {
			out, err = nil, fmt.Errorf("%w: decode row group: %v", ErrCorrupt, p)
		}
	}()
	lo, n, err := locate(rgr, id)
	if err != nil || n == 0 {
		return nil, err
	}
	var rs rows
	if err := readRows(rgr, &rs, lo, n); err != nil {
		return nil, err
	}
	return rs.appendTracesData(dst, id)
}

// locate returns the first row of trace id in a row group and its number of
// rows (0 if absent), reading the trace_id column only as far as the trace.
func locate(rgr *file.RowGroupReader, id model.TraceID) (first, n int64, err error) {
	cr, err := rgr.Column(colTraceID)
	if err != nil {
		return 0, 0, fmt.Errorf("%w: column trace_id: %v", ErrCorrupt, err)
	}
	defer cr.Close()
	fr, ok := cr.(*file.FixedLenByteArrayColumnChunkReader)
	if !ok {
		return 0, 0, fmt.Errorf("%w: column trace_id has type %s", ErrCorrupt, cr.Type())
	}
	rowsIn := rgr.NumRows()
	var batch [256]parquet.FixedLenByteArray
	for read := int64(0); read < rowsIn; {
		// Values alias the page until the next call: compared at once.
		total, _, err := fr.ReadBatchInPage(min(rowsIn-read, int64(len(batch))), batch[:], nil, nil)
		if err != nil {
			return 0, 0, fmt.Errorf("%w: column trace_id: %v", ErrCorrupt, err)
		}
		if total == 0 {
			return 0, 0, fmt.Errorf("%w: column trace_id has %d values, want %d: %v", ErrCorrupt, read, rowsIn, cr.Err())
		}
		for i, v := range batch[:total] {
			if len(v) != 16 {
				return 0, 0, fmt.Errorf("%w: trace ID of %d bytes", ErrCorrupt, len(v))
			}
			switch c := model.TraceID(v).Compare(id); {
			case c < 0:
				continue
			case c == 0:
				if n == 0 {
					first = read + int64(i)
				}
				n++
			default:
				return first, n, nil
			}
		}
		read += total
	}
	return first, n, nil
}

// readIDs reads a row group's whole trace_id column into one slice.
func readIDs(rgr *file.RowGroupReader) ([]model.TraceID, error) {
	cr, err := rgr.Column(colTraceID)
	if err != nil {
		return nil, fmt.Errorf("%w: column trace_id: %v", ErrCorrupt, err)
	}
	defer cr.Close()
	fr, ok := cr.(*file.FixedLenByteArrayColumnChunkReader)
	if !ok {
		return nil, fmt.Errorf("%w: column trace_id has type %s", ErrCorrupt, cr.Type())
	}
	n := rgr.NumRows()
	ids := make([]model.TraceID, n)
	batch := make([]parquet.FixedLenByteArray, min(n, 1024))
	for read := int64(0); read < n; {
		// Values alias reader buffers until the next call: copy them out.
		total, _, err := fr.ReadBatchInPage(min(n-read, int64(len(batch))), batch, nil, nil)
		if err != nil {
			return nil, fmt.Errorf("%w: column trace_id: %v", ErrCorrupt, err)
		}
		if total == 0 {
			return nil, fmt.Errorf("%w: column trace_id has %d values, want %d: %v", ErrCorrupt, read, n, cr.Err())
		}
		for i, v := range batch[:total] {
			if len(v) != 16 {
				return nil, fmt.Errorf("%w: trace ID of %d bytes", ErrCorrupt, len(v))
			}
			copy(ids[read+int64(i)][:], v)
		}
		read += total
	}
	return ids, nil
}

// iterateRowGroup calls fn for each trace of a row group.
func iterateRowGroup(rgr *file.RowGroupReader, fn func(id model.TraceID, td *tracev1.TracesData) error) error {
	var (
		all rows
		ids []model.TraceID
	)
	err := func() (err error) {
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("%w: decode row group: %v", ErrCorrupt, p)
			}
		}()
		if ids, err = readIDs(rgr); err != nil {
			return err
		}
		return readRows(rgr, &all, 0, int64(len(ids)))
	}()
	if err != nil {
		return err
	}
	for lo := 0; lo < len(ids); {
		if lo > 0 && ids[lo-1].Compare(ids[lo]) >= 0 {
			return fmt.Errorf("%w: trace IDs out of order in a row group", ErrCorrupt)
		}
		hi := lo + 1
		for hi < len(ids) && ids[hi] == ids[lo] {
			hi++
		}
		sub := all.slice(lo, hi)
		td, err := sub.rebuild(ids[lo])
		if err != nil {
			return err
		}
		if err := fn(ids[lo], td); err != nil {
			return err
		}
		lo = hi
	}
	return nil
}

// slice returns rows [lo, hi) of the columns readRows reads (sharing memory).
func (r *rows) slice(lo, hi int) *rows {
	return &rows{
		spanID: r.spanID[lo:hi], parentID: r.parentID[lo:hi], start: r.start[lo:hi], duration: r.duration[lo:hi],
		name: r.name[lo:hi], kind: r.kind[lo:hi], resource: r.resource[lo:hi], scope: r.scope[lo:hi], span: r.span[lo:hi],
	}
}

// readRows reads n rows from row skip of every column but trace_id. The
// search-only columns (status_code, service_name) are not needed to rebuild
// spans and are not read.
func readRows(rgr *file.RowGroupReader, r *rows, skip, n int64) error {
	var err error
	if r.spanID, err = readColumn[parquet.ByteArray](rgr, colSpanID, skip, n); err != nil {
		return err
	}
	if r.parentID, err = readColumn[parquet.ByteArray](rgr, colParentSpanID, skip, n); err != nil {
		return err
	}
	if r.start, err = readColumn[int64](rgr, colStartUnixNano, skip, n); err != nil {
		return err
	}
	if r.duration, err = readColumn[int64](rgr, colDurationNano, skip, n); err != nil {
		return err
	}
	if r.name, err = readColumn[parquet.ByteArray](rgr, colName, skip, n); err != nil {
		return err
	}
	if r.kind, err = readColumn[int32](rgr, colKind, skip, n); err != nil {
		return err
	}
	if r.resource, err = readColumn[parquet.ByteArray](rgr, colResource, skip, n); err != nil {
		return err
	}
	if r.scope, err = readColumn[parquet.ByteArray](rgr, colScope, skip, n); err != nil {
		return err
	}
	if r.span, err = readColumn[parquet.ByteArray](rgr, colSpan, skip, n); err != nil {
		return err
	}
	return nil
}

// batchReader is what the typed column chunk readers of arrow-go offer.
type batchReader[T any] interface {
	file.ColumnChunkReader
	Skip(nvalues int64) (int64, error)
	ReadBatch(batchSize int64, values []T, defLvls, repLvls []int16) (total int64, valuesRead int, err error)
}

// readColumn reads n values of column col after skipping skip.
func readColumn[T any](rgr *file.RowGroupReader, col int, skip, n int64) ([]T, error) {
	cr, err := rgr.Column(col)
	if err != nil {
		return nil, fmt.Errorf("%w: column %s: %v", ErrCorrupt, columns[col].name, err)
	}
	defer cr.Close()
	br, ok := cr.(batchReader[T])
	if !ok {
		return nil, fmt.Errorf("%w: column %s has type %s", ErrCorrupt, columns[col].name, cr.Type())
	}
	if skip > 0 {
		// Jump to the page holding row skip through the offset index; a
		// dictionary-encoded column needs its dictionary page read first,
		// which HasNext does (with the first data page).
		cc, err := rgr.MetaData().ColumnChunk(col)
		if err != nil {
			return nil, fmt.Errorf("%w: column %s: %v", ErrCorrupt, columns[col].name, err)
		}
		if cc.HasDictionaryPage() && !cr.HasNext() {
			return nil, fmt.Errorf("%w: column %s is empty: %v", ErrCorrupt, columns[col].name, cr.Err())
		}
		if err := cr.SeekToRow(skip); err != nil {
			return nil, fmt.Errorf("%w: column %s: seek to row %d: %v", ErrCorrupt, columns[col].name, skip, err)
		}
	}
	out := make([]T, n)
	for read := int64(0); read < n; {
		total, _, err := br.ReadBatch(n-read, out[read:], nil, nil)
		if err != nil {
			return nil, fmt.Errorf("%w: column %s: %v", ErrCorrupt, columns[col].name, err)
		}
		if total == 0 {
			if err := cr.Err(); err != nil {
				return nil, fmt.Errorf("%w: column %s: %v", ErrCorrupt, columns[col].name, err)
			}
			return nil, fmt.Errorf("%w: column %s has %d values, want %d", ErrCorrupt, columns[col].name, skip+read, skip+n)
		}
		read += total
	}
	return out, nil
}
