package block

import (
	"fmt"
	"slices"

	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/apache/arrow-go/v18/parquet/schema"
	commonv1 "go.opentelemetry.io/proto/otlp/common/v1"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/vivace-dev/vivace/internal/model"
)

// The v1 schema of data.parquet, and the only code that turns OTLP into
// columns and back. FORMAT.md ("data.parquet") is the reference.

// Columns of data.parquet, in file order.
const (
	colTraceID = iota
	colSpanID
	colParentSpanID
	colStartUnixNano
	colDurationNano
	colName
	colKind
	colStatusCode
	colServiceName
	colResource
	colScope
	colSpan
	numColumns
)

// column describes one column of the v1 schema.
type column struct {
	name     string
	physical parquet.Type
	utf8     bool
	dict     bool // dictionary encoded
	stats    bool // min/max statistics in the footer (kept for search)
}

var columns = [numColumns]column{
	colTraceID:       {name: "trace_id", physical: parquet.Types.FixedLenByteArray, dict: true, stats: true},
	colSpanID:        {name: "span_id", physical: parquet.Types.ByteArray},
	colParentSpanID:  {name: "parent_span_id", physical: parquet.Types.ByteArray},
	colStartUnixNano: {name: "start_unix_nano", physical: parquet.Types.Int64, stats: true},
	colDurationNano:  {name: "duration_nano", physical: parquet.Types.Int64, stats: true},
	colName:          {name: "name", physical: parquet.Types.ByteArray, utf8: true, dict: true, stats: true},
	colKind:          {name: "kind", physical: parquet.Types.Int32, stats: true},
	colStatusCode:    {name: "status_code", physical: parquet.Types.Int32, stats: true},
	colServiceName:   {name: "service_name", physical: parquet.Types.ByteArray, utf8: true, dict: true, stats: true},
	colResource:      {name: "resource", physical: parquet.Types.ByteArray, dict: true},
	colScope:         {name: "scope", physical: parquet.Types.ByteArray, dict: true},
	colSpan:          {name: "span", physical: parquet.Types.ByteArray},
}

// Span fields that live in their own columns and are cleared from the span
// blob: trace_id, span_id, parent_span_id, name, kind, start and end time.
var spanColumnFields = [...]protowire.Number{1, 2, 4, 5, 6, 7, 8}

// dataPageSize is the target size of a data page before compression; see
// FORMAT.md "Sizing" for the measurement. A variable only so that the sizing
// benchmark can try others.
var dataPageSize int64 = 256 << 10

// writeBatchSize is how many values the parquet writer takes between two
// checks of the page size.
const writeBatchSize = 32

// zstdLevel is the ZSTD level of every column (arrow-go's zstd levels map
// onto klauspost/compress's speed presets).
var zstdLevel = 3

// spanSchema is the v1 parquet schema; every column is REQUIRED.
func spanSchema() (*schema.GroupNode, error) {
	fields := make(schema.FieldList, 0, numColumns)
	for _, c := range columns {
		var (
			n   schema.Node
			err error
		)
		switch {
		case c.physical == parquet.Types.FixedLenByteArray:
			n = schema.NewFixedLenByteArrayNode(c.name, parquet.Repetitions.Required, 16, -1)
		case c.utf8:
			n, err = schema.NewPrimitiveNodeLogical(c.name, parquet.Repetitions.Required, schema.StringLogicalType{}, c.physical, -1, -1)
		default:
			n, err = schema.NewPrimitiveNode(c.name, parquet.Repetitions.Required, c.physical, -1, -1)
		}
		if err != nil {
			return nil, fmt.Errorf("column %s: %w", c.name, err)
		}
		fields = append(fields, n)
	}
	return schema.NewGroupNode("span", parquet.Repetitions.Required, fields, -1)
}

// writerProperties are the parquet writer settings of the v1 format.
func writerProperties() *parquet.WriterProperties {
	opts := []parquet.WriterProperty{
		parquet.WithCompression(compress.Codecs.Zstd),
		parquet.WithCompressionLevel(zstdLevel),
		parquet.WithDataPageSize(dataPageSize),
		// The page size is checked after each batch of values; span blobs are
		// ~700 bytes uncompressed, so the default batch of 1024 values would
		// make every page ~700 KiB whatever the page size.
		parquet.WithBatchSize(writeBatchSize),
		parquet.WithDataPageVersion(parquet.DataPageV1),
		parquet.WithVersion(parquet.V2_6),
		parquet.WithDictionaryDefault(false),
		parquet.WithStats(false),
		// The offset index lets a lookup decode only the pages holding its
		// rows; it is cached per Reader with the footer.
		parquet.WithPageIndexEnabled(true),
		parquet.WithBloomFilterEnabled(false),
	}
	for _, c := range columns {
		if c.dict {
			opts = append(opts, parquet.WithDictionaryFor(c.name, true))
		}
		if c.stats {
			opts = append(opts, parquet.WithStatsFor(c.name, true))
		}
	}
	return parquet.NewWriterProperties(opts...)
}

// checkSchema verifies that a footer's schema is the v1 schema.
func checkSchema(md *metadata.FileMetaData) error {
	sc := md.Schema
	if sc.NumColumns() != numColumns {
		return fmt.Errorf("%w: data.parquet has %d columns, want %d", ErrCorrupt, sc.NumColumns(), numColumns)
	}
	for i, c := range columns {
		d := sc.Column(i)
		if d.Name() != c.name || d.PhysicalType() != c.physical || d.MaxDefinitionLevel() != 0 || d.MaxRepetitionLevel() != 0 ||
			(c.physical == parquet.Types.FixedLenByteArray && d.TypeLength() != 16) {
			return fmt.Errorf("%w: data.parquet column %d is %s %s, want required %s %s", ErrCorrupt, i, d.Name(), d.PhysicalType(), c.name, c.physical)
		}
	}
	return nil
}

// rows holds columns of spans, one slice per column, in file order.
type rows struct {
	traceID   []parquet.FixedLenByteArray
	spanID    []parquet.ByteArray
	parentID  []parquet.ByteArray
	start     []int64
	duration  []int64
	name      []parquet.ByteArray
	kind      []int32
	status    []int32
	service   []parquet.ByteArray
	resource  []parquet.ByteArray
	scope     []parquet.ByteArray
	span      []parquet.ByteArray
	arena     []byte // backing store of the byte columns written by appendTrace
	marshaled []byte // scratch
}

func (r *rows) len() int { return len(r.span) }

// truncate drops rows from n on (undoing a failed appendTrace).
func (r *rows) truncate(n int) {
	r.traceID, r.spanID, r.parentID = r.traceID[:n], r.spanID[:n], r.parentID[:n]
	r.start, r.duration, r.name, r.kind = r.start[:n], r.duration[:n], r.name[:n], r.kind[:n]
	r.status, r.service, r.resource = r.status[:n], r.service[:n], r.resource[:n]
	r.scope, r.span = r.scope[:n], r.span[:n]
}

// reset empties r, keeping its capacity; the arena is dropped since written
// rows may still be referenced.
func (r *rows) reset() {
	r.truncate(0)
	r.arena = nil
}

// store copies b into the arena and returns the copy.
func (r *rows) store(b []byte) []byte {
	if len(b) == 0 {
		return []byte{}
	}
	if cap(r.arena)-len(r.arena) < len(b) {
		r.arena = make([]byte, 0, max(1<<20, len(b)))
	}
	n := len(r.arena)
	r.arena = append(r.arena, b...)
	return r.arena[n:len(r.arena):len(r.arena)]
}

var marshalOpts = proto.MarshalOptions{Deterministic: true}

// traceStats is what appendTrace learned about a trace.
type traceStats struct {
	spans      int
	start, end uint64 // earliest start, latest end
}

// appendTrace appends one row per span of td, in the order of td. On error it
// leaves r as it was.
func (r *rows) appendTrace(id model.TraceID, idBytes []byte, td *tracev1.TracesData) (st traceStats, err error) {
	n0 := r.len()
	defer func() {
		if err != nil {
			r.truncate(n0)
		}
	}()
	first := true
	for _, rs := range td.GetResourceSpans() {
		resBytes, err := marshalOpts.Marshal(&tracev1.ResourceSpans{Resource: rs.GetResource(), SchemaUrl: rs.GetSchemaUrl()})
		if err != nil {
			return st, fmt.Errorf("marshal resource: %w", err)
		}
		service := []byte(serviceName(rs))
		for _, ss := range rs.GetScopeSpans() {
			scopeBytes, err := marshalOpts.Marshal(&tracev1.ScopeSpans{Scope: ss.GetScope(), SchemaUrl: ss.GetSchemaUrl()})
			if err != nil {
				return st, fmt.Errorf("marshal scope: %w", err)
			}
			for _, s := range ss.GetSpans() {
				if s == nil {
					return st, fmt.Errorf("%w: nil span", ErrInvalidTrace)
				}
				if string(s.TraceId) != string(id[:]) {
					return st, fmt.Errorf("%w: span %x has trace ID %x, want %s", ErrInvalidTrace, s.SpanId, s.TraceId, id)
				}
				r.marshaled, err = marshalOpts.MarshalAppend(r.marshaled[:0], s)
				if err != nil {
					return st, fmt.Errorf("marshal span %x: %w", s.SpanId, err)
				}
				blob, err := r.storeStripped(r.marshaled)
				if err != nil {
					return st, err
				}
				start, end := s.StartTimeUnixNano, s.EndTimeUnixNano
				r.traceID = append(r.traceID, idBytes)
				r.spanID = append(r.spanID, r.store(s.SpanId))
				r.parentID = append(r.parentID, r.store(s.ParentSpanId))
				r.start = append(r.start, int64(start))
				r.duration = append(r.duration, int64(end-start)) // wraps: end = start + duration, mod 2^64
				r.name = append(r.name, r.store([]byte(s.Name)))
				r.kind = append(r.kind, int32(s.Kind))
				r.status = append(r.status, int32(s.GetStatus().GetCode()))
				r.service = append(r.service, service)
				r.resource = append(r.resource, resBytes)
				r.scope = append(r.scope, scopeBytes)
				r.span = append(r.span, blob)
				if first || start < st.start {
					st.start = start
				}
				if first || end > st.end {
					st.end = end
				}
				first = false
				st.spans++
			}
		}
	}
	if st.spans == 0 {
		return st, fmt.Errorf("%w: trace %s has no spans", ErrInvalidTrace, id)
	}
	return st, nil
}

// storeStripped appends the span encoding b to the arena without the fields
// that have their own columns and returns the stored bytes.
func (r *rows) storeStripped(b []byte) ([]byte, error) {
	if cap(r.arena)-len(r.arena) < len(b) {
		r.arena = make([]byte, 0, max(1<<20, len(b)))
	}
	n := len(r.arena)
	out, err := stripSpanColumns(r.arena, b)
	if err != nil {
		return nil, err
	}
	r.arena = out
	return r.arena[n:len(r.arena):len(r.arena)], nil
}

// stripSpanColumns appends to dst the fields of the encoded span b except
// those in spanColumnFields, in their order in b.
func stripSpanColumns(dst, b []byte) ([]byte, error) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return dst, fmt.Errorf("parse span: %w", protowire.ParseError(n))
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			return dst, fmt.Errorf("parse span: %w", protowire.ParseError(m))
		}
		if !slices.Contains(spanColumnFields[:], num) {
			dst = append(dst, b[:n+m]...)
		}
		b = b[n+m:]
	}
	return dst, nil
}

// serviceName is the resource attribute service.name, or "".
func serviceName(rs *tracev1.ResourceSpans) string {
	for _, kv := range rs.GetResource().GetAttributes() {
		if kv.GetKey() == "service.name" {
			if v, ok := kv.GetValue().GetValue().(*commonv1.AnyValue_StringValue); ok {
				return v.StringValue
			}
		}
	}
	return ""
}

// rebuild turns the rows of one trace back into OTLP: rows with the same
// resource bytes go to one ResourceSpans, and within it rows with the same
// scope bytes to one ScopeSpans, both in order of first appearance; spans keep
// their row order.
func (r *rows) rebuild(id model.TraceID) (*tracev1.TracesData, error) {
	type rsEntry struct {
		rs     *tracev1.ResourceSpans
		scopes map[string]*tracev1.ScopeSpans
	}
	td := &tracev1.TracesData{}
	byResource := make(map[string]*rsEntry)
	for i := 0; i < r.len(); i++ {
		re := byResource[string(r.resource[i])]
		if re == nil {
			rs := &tracev1.ResourceSpans{}
			if err := proto.Unmarshal(r.resource[i], rs); err != nil {
				return nil, fmt.Errorf("%w: trace %s row %d: resource: %v", ErrCorrupt, id, i, err)
			}
			rs.ScopeSpans = nil // only Resource and SchemaUrl belong here
			re = &rsEntry{rs: rs, scopes: make(map[string]*tracev1.ScopeSpans)}
			byResource[string(r.resource[i])] = re
			td.ResourceSpans = append(td.ResourceSpans, rs)
		}
		ss := re.scopes[string(r.scope[i])]
		if ss == nil {
			ss = &tracev1.ScopeSpans{}
			if err := proto.Unmarshal(r.scope[i], ss); err != nil {
				return nil, fmt.Errorf("%w: trace %s row %d: scope: %v", ErrCorrupt, id, i, err)
			}
			ss.Spans = nil
			re.scopes[string(r.scope[i])] = ss
			re.rs.ScopeSpans = append(re.rs.ScopeSpans, ss)
		}
		s := &tracev1.Span{}
		if err := proto.Unmarshal(r.span[i], s); err != nil {
			return nil, fmt.Errorf("%w: trace %s row %d: span: %v", ErrCorrupt, id, i, err)
		}
		s.TraceId = append([]byte(nil), id[:]...)
		s.SpanId = nonEmpty(r.spanID[i])
		s.ParentSpanId = nonEmpty(r.parentID[i])
		s.Name = string(r.name[i])
		s.Kind = tracev1.Span_SpanKind(r.kind[i])
		s.StartTimeUnixNano = uint64(r.start[i])
		s.EndTimeUnixNano = uint64(r.start[i]) + uint64(r.duration[i])
		ss.Spans = append(ss.Spans, s)
	}
	return td, nil
}

func nonEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}
