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
// onto klauspost/compress's speed presets): level 1, SpeedFastest, writes
// blocks 25% faster than level 3 for 7% more bytes (BenchmarkWriteBlock), and
// block writing is most of the CPU a span costs. A variable only so that a
// benchmark can try others.
var zstdLevel = 1

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

// traceStats is what appendTrace or appendEncoded learned about a trace.
type traceStats struct {
	spans      int
	start, end uint64 // earliest start, latest end
}

func (st *traceStats) add(start, end uint64) {
	if st.spans == 0 || start < st.start {
		st.start = start
	}
	if st.spans == 0 || end > st.end {
		st.end = end
	}
	st.spans++
}

// spanRow is one row but its trace_id and span blob. Its byte slices are
// stored as they are: appendRow copies none of them.
type spanRow struct {
	spanID, parentID, name      []byte
	start, end                  uint64
	kind, status                int32
	service, resource, scopeCol []byte
}

func (r *rows) appendRow(idBytes, blob []byte, s *spanRow) {
	r.traceID = append(r.traceID, idBytes)
	r.spanID = append(r.spanID, s.spanID)
	r.parentID = append(r.parentID, s.parentID)
	r.start = append(r.start, int64(s.start))
	r.duration = append(r.duration, int64(s.end-s.start)) // wraps: end = start + duration, mod 2^64
	r.name = append(r.name, s.name)
	r.kind = append(r.kind, s.kind)
	r.status = append(r.status, s.status)
	r.service = append(r.service, s.service)
	r.resource = append(r.resource, s.resource)
	r.scope = append(r.scope, s.scopeCol)
	r.span = append(r.span, blob)
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
				r.appendRow(idBytes, blob, &spanRow{
					spanID:   r.store(s.SpanId),
					parentID: r.store(s.ParentSpanId),
					name:     r.store([]byte(s.Name)),
					start:    s.StartTimeUnixNano,
					end:      s.EndTimeUnixNano,
					kind:     int32(s.Kind),
					status:   int32(s.GetStatus().GetCode()),
					service:  service,
					resource: resBytes,
					scopeCol: scopeBytes,
				})
				st.add(s.StartTimeUnixNano, s.EndTimeUnixNano)
			}
		}
	}
	if st.spans == 0 {
		return st, fmt.Errorf("%w: trace %s has no spans", ErrInvalidTrace, id)
	}
	return st, nil
}

// appendEncoded appends the rows of the trace p has parsed, the rows
// appendTrace makes of the decoded trace but for span blobs, which hold the
// same fields in the order they were received. On error it leaves r as it was.
func (r *rows) appendEncoded(idBytes []byte, p *encodedTrace) (st traceStats, err error) {
	n0 := r.len()
	defer func() {
		if err != nil {
			r.truncate(n0)
		}
	}()
	for i := range p.spans {
		s := &p.spans[i]
		blob, err := r.storeStripped(s.b)
		if err != nil {
			return st, fmt.Errorf("%w: %v", ErrInvalidTrace, err)
		}
		res, scope := &p.resources[s.resource], &p.scopes[s.scope]
		r.appendRow(idBytes, blob, &spanRow{
			spanID:   r.store(s.spanID),
			parentID: r.store(s.parentID),
			name:     r.store(s.name),
			start:    s.start,
			end:      s.end,
			kind:     s.kind,
			status:   s.status,
			service:  res.service,
			resource: res.bytes,
			scopeCol: scope.bytes,
		})
		st.add(s.start, s.end)
	}
	return st, nil
}

// OTLP field numbers that appendEncoded reads (opentelemetry/proto/trace/v1/
// trace.proto; TracesData and ExportTraceServiceRequest share field 1).
const (
	fieldTracesResourceSpans = 1 // TracesData.resource_spans
	fieldRSResource          = 1 // ResourceSpans.resource
	fieldRSScopeSpans        = 2 // ResourceSpans.scope_spans
	fieldRSSchemaURL         = 3 // ResourceSpans.schema_url
	fieldSSScope             = 1 // ScopeSpans.scope
	fieldSSSpans             = 2 // ScopeSpans.spans
	fieldSSSchemaURL         = 3 // ScopeSpans.schema_url
	fieldSpanTraceID         = 1
	fieldSpanSpanID          = 2
	fieldSpanParentSpanID    = 4
	fieldSpanName            = 5
	fieldSpanKind            = 6
	fieldSpanStart           = 7
	fieldSpanEnd             = 8
	fieldSpanStatus          = 15
	fieldStatusCode          = 3 // Status.code
)

// encodedTrace is a trace parsed from its encoding by parse, the input of
// appendEncoded; its slices alias the encoding. A Writer keeps one to reuse
// its memory and its canonical cache.
type encodedTrace struct {
	spans     []encodedSpan
	resources []canonical // per ResourceSpans, in order
	scopes    []canonical // per ScopeSpans, in order
	scopeRes  []int       // per ScopeSpans, its ResourceSpans' index into resources
	resKey    []byte      // scratch: the raw resource and schema_url records of a ResourceSpans
	scopeKey  []byte      // scratch: the same of a ScopeSpans
	cache     canonicalCache
}

// encodedSpan is one span of an encodedTrace: its encoding and the values of
// its column fields, as proto.Unmarshal would decode them.
type encodedSpan struct {
	b                               []byte
	resource, scope                 int // into encodedTrace.resources, .scopes
	traceID, spanID, parentID, name []byte
	start, end                      uint64
	kind, status                    int32
}

// parse finds the spans of td, which model.CheckTracesData accepts, in
// order. It fails, wrapping ErrInvalidTrace, when a span's trace_id is not id
// (Add's checks of the decoded trace).
func (p *encodedTrace) parse(id model.TraceID, td []byte) error {
	p.reset()
	// td is known to decode: a parse error is a bug, reported all the same.
	return forEachRecord(td, func(num protowire.Number, typ protowire.Type, _, rs []byte) error {
		if num != fieldTracesResourceSpans || typ != protowire.BytesType {
			return nil // an unknown field: Add never sees it
		}
		return p.parseResourceSpans(id, rs)
	})
}

// reset forgets the last trace, keeping memory and cache.
func (p *encodedTrace) reset() {
	clear(p.spans) // do not keep the caller's bytes alive
	p.spans, p.resources, p.scopes, p.scopeRes = p.spans[:0], p.resources[:0], p.scopes[:0], p.scopeRes[:0]
}

func (p *encodedTrace) parseResourceSpans(id model.TraceID, rs []byte) error {
	// A ResourceSpans' resource and schema_url are known only at its end
	// (schema_url comes after the spans), so its spans take the index its
	// canonical resource is about to get.
	res := len(p.resources)
	p.resKey = p.resKey[:0]
	err := forEachRecord(rs, func(num protowire.Number, typ protowire.Type, raw, ss []byte) error {
		if typ != protowire.BytesType {
			return nil
		}
		switch num {
		case fieldRSResource, fieldRSSchemaURL:
			p.resKey = append(p.resKey, raw...)
		case fieldRSScopeSpans:
			return p.parseScopeSpans(id, res, ss)
		}
		return nil
	})
	if err != nil {
		return err
	}
	c, err := p.cache.resource(p.resKey)
	if err != nil {
		return err
	}
	p.resources = append(p.resources, c)
	return nil
}

func (p *encodedTrace) parseScopeSpans(id model.TraceID, res int, ss []byte) error {
	scope := len(p.scopes)
	p.scopeKey = p.scopeKey[:0]
	err := forEachRecord(ss, func(num protowire.Number, typ protowire.Type, raw, span []byte) error {
		if typ != protowire.BytesType {
			return nil
		}
		switch num {
		case fieldSSScope, fieldSSSchemaURL:
			p.scopeKey = append(p.scopeKey, raw...)
		case fieldSSSpans:
			s, err := parseSpan(span)
			if err != nil {
				return err
			}
			if string(s.traceID) != string(id[:]) {
				return fmt.Errorf("%w: span %x has trace ID %x, want %s", ErrInvalidTrace, s.spanID, s.traceID, id)
			}
			s.resource, s.scope = res, scope
			p.spans = append(p.spans, s)
		}
		return nil
	})
	if err != nil {
		return err
	}
	c, err := p.cache.scope(p.scopeKey)
	if err != nil {
		return err
	}
	p.scopes = append(p.scopes, c)
	p.scopeRes = append(p.scopeRes, res)
	return nil
}

// parseSpan reads the column fields of an encoded span the way the decoder
// does: a record whose wire type is not the field's is an unknown field, the
// last record of a scalar field wins, and the records of a message field
// (status) merge.
func parseSpan(b []byte) (encodedSpan, error) {
	s := encodedSpan{b: b}
	err := forEachRecord(b, func(num protowire.Number, typ protowire.Type, _, v []byte) error {
		switch {
		case typ == protowire.BytesType:
			switch num {
			case fieldSpanTraceID:
				s.traceID = v
			case fieldSpanSpanID:
				s.spanID = v
			case fieldSpanParentSpanID:
				s.parentID = v
			case fieldSpanName:
				s.name = v
			case fieldSpanStatus:
				return forEachRecord(v, func(num protowire.Number, typ protowire.Type, _, v []byte) error {
					if num == fieldStatusCode && typ == protowire.VarintType {
						code, _ := protowire.ConsumeVarint(v)
						s.status = int32(code)
					}
					return nil
				})
			}
		case typ == protowire.VarintType && num == fieldSpanKind:
			kind, _ := protowire.ConsumeVarint(v)
			s.kind = int32(kind)
		case typ == protowire.Fixed64Type && (num == fieldSpanStart || num == fieldSpanEnd):
			t, _ := protowire.ConsumeFixed64(v)
			if num == fieldSpanStart {
				s.start = t
			} else {
				s.end = t
			}
		}
		return nil
	})
	return s, err
}

// forEachRecord calls fn for each record of an encoded message with the
// record's bytes (tag included) and its value: the contents of a
// length-delimited record, else the bytes after the tag.
func forEachRecord(b []byte, fn func(num protowire.Number, typ protowire.Type, raw, val []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("%w: malformed OTLP: %v", ErrInvalidTrace, protowire.ParseError(n))
		}
		var (
			val []byte
			m   int
		)
		if typ == protowire.BytesType {
			val, m = protowire.ConsumeBytes(b[n:])
		} else {
			m = protowire.ConsumeFieldValue(num, typ, b[n:])
			val = b[n : n+max(m, 0)]
		}
		if m < 0 {
			return fmt.Errorf("%w: malformed OTLP: field %d: %v", ErrInvalidTrace, num, protowire.ParseError(m))
		}
		if err := fn(num, typ, b[:n+m], val); err != nil {
			return err
		}
		b = b[n+m:]
	}
	return nil
}

// canonical is the resource (or scope) column value of a ResourceSpans (or
// ScopeSpans), as appendTrace makes it from the decoded message.
type canonical struct {
	bytes   []byte // deterministic encoding of ResourceSpans{Resource, SchemaUrl} (ScopeSpans{Scope, SchemaUrl})
	service []byte // a resource's service.name
}

// maxCanonicalCache bounds the bytes a canonicalCache holds. A variable only
// so that a test can fill it.
var maxCanonicalCache = 16 << 20

// canonicalCache maps the raw resource (scope) and schema_url records of a
// ResourceSpans (ScopeSpans) to their column value. The column holds
// appendTrace's deterministic encoding, not the received bytes, so that the
// dictionary and the rebuild's merging see equal resources as equal bytes
// whatever encoder sent them; resources and scopes repeat from trace to trace,
// so each is decoded and encoded about once per block.
type canonicalCache struct {
	resources, scopes map[string]canonical
	size              int
}

// resource returns the column values of a ResourceSpans whose resource and
// schema_url records are key.
func (c *canonicalCache) resource(key []byte) (canonical, error) {
	if v, ok := c.resources[string(key)]; ok {
		return v, nil
	}
	rs := &tracev1.ResourceSpans{}
	if err := proto.Unmarshal(key, rs); err != nil {
		return canonical{}, fmt.Errorf("%w: resource: %v", ErrInvalidTrace, err)
	}
	b, err := marshalOpts.Marshal(rs) // holds only Resource and SchemaUrl
	if err != nil {
		return canonical{}, fmt.Errorf("marshal resource: %w", err)
	}
	v := canonical{bytes: b, service: []byte(serviceName(rs))}
	c.resources = c.put(c.resources, key, v)
	return v, nil
}

// scope returns the column value of a ScopeSpans whose scope and schema_url
// records are key.
func (c *canonicalCache) scope(key []byte) (canonical, error) {
	if v, ok := c.scopes[string(key)]; ok {
		return v, nil
	}
	ss := &tracev1.ScopeSpans{}
	if err := proto.Unmarshal(key, ss); err != nil {
		return canonical{}, fmt.Errorf("%w: scope: %v", ErrInvalidTrace, err)
	}
	b, err := marshalOpts.Marshal(ss) // holds only Scope and SchemaUrl
	if err != nil {
		return canonical{}, fmt.Errorf("marshal scope: %w", err)
	}
	v := canonical{bytes: b}
	c.scopes = c.put(c.scopes, key, v)
	return v, nil
}

func (c *canonicalCache) put(m map[string]canonical, key []byte, v canonical) map[string]canonical {
	n := len(key) + len(v.bytes) + len(v.service) + 64
	if c.size+n > maxCanonicalCache {
		// Rows already written keep their values; later ones get new copies.
		clear(c.resources)
		clear(c.scopes)
		c.size = 0
	}
	c.size += n
	if m == nil {
		m = make(map[string]canonical)
	}
	m[string(key)] = v
	return m
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
