package block

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"time"

	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/google/uuid"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/vivace-dev/vivace/internal/model"
	"github.com/vivace-dev/vivace/storage"
)

// Writer writes one block: Add (or AddEncoded, or AddRows) traces in
// ascending ID order, then Finish uploads it, or Abort drops it. data.parquet
// is written to a temporary file as traces come; a Writer holds in memory
// only the row group being built, 8 bytes per trace for the bloom filter and,
// after AddEncoded, up to 16 MiB of resources and scopes it has seen. A
// Writer is not safe for concurrent use.
type Writer struct {
	cfg     WriterConfig
	tenant  string
	blockID uuid.UUID

	f  *os.File
	pw *file.Writer

	rows    rows
	enc     encodedTrace  // AddEncoded's scratch and canonical cache
	comb    rowCombiner   // AddRows' scratch
	rgMin   model.TraceID // first trace of the row group being built
	rgSpans int

	last     model.TraceID
	hasLast  bool
	minID    model.TraceID
	hashes   []uint64 // bloomHash of every trace ID
	spans    int64
	start    uint64
	end      uint64
	rgMaxIDs []model.TraceID // per written row group: its last trace ID
	rgMinIDs []model.TraceID

	compactionLevel int

	closed bool
	err    error // a failed write of data.parquet: the Writer is unusable
}

// SetCompactionLevel sets the level recorded in meta.json (0, the default,
// for a block cut by an ingester; the compactor sets higher levels).
func (w *Writer) SetCompactionLevel(level int) { w.compactionLevel = level }

// NewWriter starts a block for tenant with the given ID, keeping its
// data.parquet in a temporary file under tempDir (os.TempDir() if empty).
// Zero fields of cfg take the defaults of DefaultWriterConfig.
func NewWriter(cfg WriterConfig, tempDir, tenant string, blockID uuid.UUID) (*Writer, error) {
	def := DefaultWriterConfig()
	if cfg.RowGroupSpans == 0 {
		cfg.RowGroupSpans = def.RowGroupSpans
	}
	if cfg.BloomFalsePositive == 0 {
		cfg.BloomFalsePositive = def.BloomFalsePositive
	}
	if cfg.BloomShardMaxBytes == 0 {
		cfg.BloomShardMaxBytes = def.BloomShardMaxBytes
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("new block writer: %w", err)
	}
	if tenant == "" {
		return nil, errors.New("new block writer: empty tenant")
	}
	sc, err := spanSchema()
	if err != nil {
		return nil, fmt.Errorf("new block writer: schema: %w", err)
	}
	f, err := os.CreateTemp(tempDir, "vivace-block-"+blockID.String()+"-*.parquet")
	if err != nil {
		return nil, fmt.Errorf("new block writer: %w", err)
	}
	pw, err := file.NewParquetWriterWithError(f, sc, file.WithWriterProps(writerProperties()))
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, fmt.Errorf("new block writer: %w", err)
	}
	return &Writer{cfg: cfg, tenant: tenant, blockID: blockID, f: f, pw: pw}, nil
}

// Add appends one trace. IDs must be strictly ascending across calls; every
// span's trace_id must be the 16 bytes of id. A trace Add rejects leaves the
// block as it was, but an I/O error makes the Writer unusable.
func (w *Writer) Add(id model.TraceID, td *tracev1.TracesData) error {
	if err := w.checkNext(id); err != nil {
		return err
	}
	spans := 0
	for _, rs := range td.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			spans += len(ss.GetSpans())
		}
	}
	if spans == 0 {
		return fmt.Errorf("add trace %s: %w: no spans", id, ErrInvalidTrace)
	}
	if err := w.cutBefore(spans); err != nil {
		return err
	}
	idBytes := append([]byte(nil), id[:]...)
	st, err := w.rows.appendTrace(id, idBytes, td)
	if err != nil {
		return fmt.Errorf("add trace %s: %w", id, err)
	}
	w.added(id, st)
	return nil
}

// AddEncoded appends one trace given as an encoded OTLP TracesData (or
// ExportTraceServiceRequest, or several of them concatenated) and stores the
// same rows as Add(id, td) of the decoded trace, without decoding it: span
// blobs keep the span's bytes as received, less the column fields. It fails
// with ErrInvalidTrace exactly when proto.Unmarshal of td fails or Add of
// the decoded trace would (and with Add's other errors otherwise). td is not
// retained.
func (w *Writer) AddEncoded(id model.TraceID, td []byte) error {
	if err := w.checkNext(id); err != nil {
		return err
	}
	if err := model.CheckTracesData(td); err != nil {
		return fmt.Errorf("add trace %s: %w: %v", id, ErrInvalidTrace, err)
	}
	return w.addChecked(id, td)
}

// AddChecked is AddEncoded of a td that model.CheckTracesData accepted
// before: the ingester's WAL holds only such traces, checked by the
// distributor on receipt, so the writer does not check them again.
func (w *Writer) AddChecked(id model.TraceID, td []byte) error {
	if err := w.checkNext(id); err != nil {
		return err
	}
	return w.addChecked(id, td)
}

func (w *Writer) addChecked(id model.TraceID, td []byte) error {
	defer w.enc.reset()
	if err := w.enc.parse(id, td); err != nil {
		return fmt.Errorf("add trace %s: %w", id, err)
	}
	spans := len(w.enc.spans)
	if spans == 0 {
		return fmt.Errorf("add trace %s: %w: no spans", id, ErrInvalidTrace)
	}
	if err := w.cutBefore(spans); err != nil {
		return err
	}
	idBytes := append([]byte(nil), id[:]...)
	st, err := w.rows.appendEncoded(idBytes, &w.enc)
	if err != nil {
		return fmt.Errorf("add trace %s: %w", id, err)
	}
	w.added(id, st)
	return nil
}

// checkNext returns why id cannot be the next trace, if it cannot.
func (w *Writer) checkNext(id model.TraceID) error {
	if w.closed {
		return ErrWriterClosed
	}
	if w.err != nil {
		return w.err
	}
	if id.IsZero() {
		return fmt.Errorf("add trace: %w: zero trace ID", ErrInvalidTrace)
	}
	if w.hasLast && id.Compare(w.last) <= 0 {
		return fmt.Errorf("add trace %s after %s: %w", id, w.last, ErrOutOfOrder)
	}
	return nil
}

// cutBefore cuts the row group before a trace of spans spans that would
// take it past the target, so that a trace is never split and a row group
// outgrows the target only when one trace alone does.
func (w *Writer) cutBefore(spans int) error {
	if w.rgSpans > 0 && w.rgSpans+spans > w.cfg.RowGroupSpans {
		return w.flushRowGroup()
	}
	return nil
}

// added records a trace whose rows were appended.
func (w *Writer) added(id model.TraceID, st traceStats) {
	if w.rgSpans == 0 {
		w.rgMin = id
	}
	w.rgSpans += st.spans
	if !w.hasLast {
		w.minID, w.start, w.end = id, st.start, st.end
	}
	w.start, w.end = min(w.start, st.start), max(w.end, st.end)
	w.last, w.hasLast = id, true
	w.hashes = append(w.hashes, bloomHash(id))
	w.spans += int64(st.spans)
}

// flushRowGroup writes the buffered rows as one row group.
func (w *Writer) flushRowGroup() error {
	if err := w.writeRowGroup(); err != nil {
		w.err = fmt.Errorf("write row group %d: %w", len(w.rgMaxIDs), err)
		return w.err
	}
	w.rgMinIDs = append(w.rgMinIDs, w.rgMin)
	w.rgMaxIDs = append(w.rgMaxIDs, w.last)
	w.rows.reset()
	w.rgSpans = 0
	return nil
}

func (w *Writer) writeRowGroup() (err error) {
	defer func() {
		// arrow-go panics on some internal invariant failures; never let
		// them take the process down.
		if p := recover(); p != nil {
			err = fmt.Errorf("parquet writer panic: %v", p)
		}
	}()
	rgw, err := w.pw.AppendRowGroupChecked()
	if err != nil {
		return err
	}
	r := &w.rows
	for col := 0; col < numColumns; col++ {
		cw, err := rgw.NextColumn()
		if err != nil {
			return fmt.Errorf("column %s: %w", columns[col].name, err)
		}
		switch col {
		case colTraceID:
			_, err = cw.(*file.FixedLenByteArrayColumnChunkWriter).WriteBatch(r.traceID, nil, nil)
		case colSpanID:
			_, err = cw.(*file.ByteArrayColumnChunkWriter).WriteBatch(r.spanID, nil, nil)
		case colParentSpanID:
			_, err = cw.(*file.ByteArrayColumnChunkWriter).WriteBatch(r.parentID, nil, nil)
		case colStartUnixNano:
			_, err = cw.(*file.Int64ColumnChunkWriter).WriteBatch(r.start, nil, nil)
		case colDurationNano:
			_, err = cw.(*file.Int64ColumnChunkWriter).WriteBatch(r.duration, nil, nil)
		case colName:
			_, err = cw.(*file.ByteArrayColumnChunkWriter).WriteBatch(r.name, nil, nil)
		case colKind:
			_, err = cw.(*file.Int32ColumnChunkWriter).WriteBatch(r.kind, nil, nil)
		case colStatusCode:
			_, err = cw.(*file.Int32ColumnChunkWriter).WriteBatch(r.status, nil, nil)
		case colServiceName:
			_, err = cw.(*file.ByteArrayColumnChunkWriter).WriteBatch(r.service, nil, nil)
		case colResource:
			_, err = cw.(*file.ByteArrayColumnChunkWriter).WriteBatch(r.resource, nil, nil)
		case colScope:
			_, err = cw.(*file.ByteArrayColumnChunkWriter).WriteBatch(r.scope, nil, nil)
		case colSpan:
			_, err = cw.(*file.ByteArrayColumnChunkWriter).WriteBatch(r.span, nil, nil)
		}
		if err != nil {
			return fmt.Errorf("column %s: %w", columns[col].name, err)
		}
	}
	return rgw.Close()
}

// Finish writes the rest of the block and uploads it to bkt: data.parquet,
// bloom-0..N-1, index, and meta.json last. It removes the temporary file
// whatever happens; on error the objects already uploaded are deleted (best
// effort: without meta.json they are invisible anyway).
func (w *Writer) Finish(ctx context.Context, bkt storage.Bucket) (*Meta, error) {
	if w.closed {
		return nil, ErrWriterClosed
	}
	defer w.Abort()
	if w.err != nil {
		return nil, w.err
	}
	if !w.hasLast {
		return nil, ErrEmptyBlock
	}
	blockID := w.blockID.String()
	fail := func(err error) (*Meta, error) {
		return nil, fmt.Errorf("finish block %s: %w", blockID, err)
	}

	if w.rgSpans > 0 {
		if err := w.flushRowGroup(); err != nil {
			return fail(err)
		}
	}
	if err := w.closeParquet(); err != nil {
		return fail(fmt.Errorf("close data.parquet: %w", err))
	}
	size, footerLen, err := parquetTail(w.f)
	if err != nil {
		return fail(err)
	}
	idx, err := w.buildIndex(size, footerLen)
	if err != nil {
		return fail(err)
	}

	shape := bloomShapeFor(len(w.hashes), w.cfg.BloomFalsePositive, w.cfg.BloomShardMaxBytes)
	filters := make([]*bloomFilter, shape.shards)
	for i := range filters {
		filters[i] = newBloomFilter(shape.words, shape.k)
	}
	for _, h := range w.hashes {
		filters[bloomShardOf(h, shape.shards)].add(h)
	}

	meta := &Meta{
		Version:         VersionV1,
		BlockID:         blockID,
		TenantID:        w.tenant,
		StartTime:       time.Unix(0, int64(w.start)).UTC(),
		EndTime:         time.Unix(0, int64(w.end)).UTC(),
		MinID:           w.minID.String(),
		MaxID:           w.last.String(),
		TotalTraces:     int64(len(w.hashes)),
		TotalSpans:      w.spans,
		Size:            size,
		CompactionLevel: w.compactionLevel,
		BloomShards:     shape.shards,
		RowGroups:       len(idx.RowGroups),
	}
	metaJSON, err := json.MarshalIndent(meta, "", "  ")
	if err != nil {
		return fail(err)
	}

	var uploaded []string
	put := func(key string, r io.Reader, size int64) error {
		uploaded = append(uploaded, key)
		if err := bkt.Put(ctx, key, r, size); err != nil {
			return fmt.Errorf("put %s: %w", key, err)
		}
		return nil
	}
	err = func() error {
		if _, err := w.f.Seek(0, io.SeekStart); err != nil {
			return err
		}
		if err := put(storage.DataKey(w.tenant, blockID), w.f, size); err != nil {
			return err
		}
		for i, f := range filters {
			b := f.marshal()
			if err := put(storage.BloomKey(w.tenant, blockID, i), bytes.NewReader(b), int64(len(b))); err != nil {
				return err
			}
		}
		b := idx.marshal()
		if err := put(storage.IndexKey(w.tenant, blockID), bytes.NewReader(b), int64(len(b))); err != nil {
			return err
		}
		return put(storage.MetaKey(w.tenant, blockID), bytes.NewReader(metaJSON), int64(len(metaJSON)))
	}()
	if err != nil {
		for _, key := range uploaded {
			_ = bkt.Delete(ctx, key)
		}
		return fail(err)
	}
	return meta, nil
}

// closeParquet writes the footer. The parquet writer closes its sink, which
// is the temporary file, so reopen it for reading.
func (w *Writer) closeParquet() (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("parquet writer panic: %v", p)
		}
	}()
	if err := w.pw.Close(); err != nil {
		return err
	}
	w.pw = nil
	w.f, err = os.Open(w.f.Name())
	return err
}

// parquetTail returns the size of the parquet file f and the length of its
// footer, from its last 8 bytes (footer length, "PAR1").
func parquetTail(f *os.File) (size, footerLen int64, err error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, 0, err
	}
	size = fi.Size()
	var tail [8]byte
	if size < 12 {
		return 0, 0, fmt.Errorf("data.parquet of %d bytes", size)
	}
	if _, err := f.ReadAt(tail[:], size-8); err != nil {
		return 0, 0, fmt.Errorf("read data.parquet footer: %w", err)
	}
	if string(tail[4:]) != "PAR1" {
		return 0, 0, fmt.Errorf("data.parquet ends in %q", tail[4:])
	}
	return size, int64(binary.LittleEndian.Uint32(tail[:4])), nil
}

// buildIndex locates each row group's column chunks from the written footer.
func (w *Writer) buildIndex(size, footerLen int64) (*blockIndex, error) {
	md, err := w.writtenFooter(size, footerLen)
	if err != nil {
		return nil, err
	}
	if md.NumRowGroups() != len(w.rgMaxIDs) {
		return nil, fmt.Errorf("data.parquet has %d row groups, wrote %d", md.NumRowGroups(), len(w.rgMaxIDs))
	}
	idx := &blockIndex{FooterOffset: size - 8 - footerLen, FooterLength: footerLen}
	idx.TailOffset = idx.FooterOffset
	for i := range w.rgMaxIDs {
		off, length, err := rowGroupRange(md, i)
		if err != nil {
			return nil, err
		}
		idx.RowGroups = append(idx.RowGroups, rowGroupEntry{MinID: w.rgMinIDs[i], MaxID: w.rgMaxIDs[i], Offset: off, Length: length})
		idx.TailOffset = min(idx.TailOffset, pageIndexStart(md, i))
	}
	// What the reader will check, checked before anything is uploaded.
	if _, err := decodeIndex(idx.marshal(), size); err != nil {
		return nil, err
	}
	return idx, nil
}

// writtenFooter reads back the footer just written.
func (w *Writer) writtenFooter(size, footerLen int64) (*metadata.FileMetaData, error) {
	buf := make([]byte, footerLen)
	if _, err := w.f.ReadAt(buf, size-8-footerLen); err != nil {
		return nil, fmt.Errorf("read data.parquet footer: %w", err)
	}
	return metadata.NewFileMetaData(buf, nil)
}

// rowGroupRange returns the bytes of data.parquet holding row group i's
// column chunks: from the first chunk's first page (dictionary page if any)
// to the end of its last chunk.
func rowGroupRange(md *metadata.FileMetaData, i int) (off, length int64, err error) {
	rg := md.RowGroup(i)
	start, end := int64(-1), int64(-1)
	for c := 0; c < rg.NumColumns(); c++ {
		cc, err := rg.ColumnChunk(c)
		if err != nil {
			return 0, 0, err
		}
		s := cc.DataPageOffset()
		if cc.HasDictionaryPage() && cc.DictionaryPageOffset() > 0 && cc.DictionaryPageOffset() < s {
			s = cc.DictionaryPageOffset()
		}
		e := s + cc.TotalCompressedSize()
		if s < 0 || cc.TotalCompressedSize() <= 0 {
			return 0, 0, fmt.Errorf("row group %d column %d at %d+%d", i, c, s, cc.TotalCompressedSize())
		}
		if start < 0 || s < start {
			start = s
		}
		end = max(end, e)
	}
	return start, end - start, nil
}

// pageIndexStart returns the smallest offset of row group i's column and
// offset indexes (or a large number if it has none).
func pageIndexStart(md *metadata.FileMetaData, i int) int64 {
	rg := md.RowGroup(i)
	start := int64(math.MaxInt64)
	for c := 0; c < rg.NumColumns(); c++ {
		if loc, ok := rg.ColumnIndexLocation(c); ok {
			start = min(start, loc.Offset)
		}
		if loc, ok := rg.OffsetIndexLocation(c); ok {
			start = min(start, loc.Offset)
		}
	}
	return start
}

// Abort drops the block: it closes and removes the temporary file. It is safe
// to call more than once and after Finish.
func (w *Writer) Abort() {
	if w.closed {
		return
	}
	w.closed = true
	if w.pw != nil {
		func() {
			defer func() { _ = recover() }()
			_ = w.pw.Close() // closes w.f
		}()
		w.pw = nil
	}
	if w.f != nil {
		_ = w.f.Close()
		_ = os.Remove(w.f.Name())
	}
	w.rows = rows{}
	w.enc = encodedTrace{}
	w.comb = rowCombiner{}
	w.hashes = nil
}
