package zipkin

import (
	"errors"
	"fmt"
	"strings"

	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
)

// Zipkin v1 (zipkin-api.yaml): a span holds annotations and binary
// annotations that each name the endpoint that logged them, and one v1 span
// may hold both sides of an RPC. decodeJSONV1 reads them and converts them to
// v2 spans with Zipkin's own rules (zipkin2.v1.V1SpanConverter): the core
// annotations cs/cr, sr/ss and ms/mr (with ws/wr) set the kind and the
// timing of the span logged by their endpoint, "ca", "sa" and "ma" binary
// annotations become remote endpoints, other binary annotations become tags
// ("lc" with an empty value is a marker and dropped), and a v1 span with both
// a client and a server side becomes two v2 spans, the server one shared.

type v1Span struct {
	traceID, id, parentID string
	name                  string
	timestamp, duration   uint64
	debug                 bool
	annos                 []v1Annotation
	bins                  []v1Binary
}

type v1Annotation struct {
	ts    uint64
	value string
	ep    *endpoint
}

type v1Binary struct {
	key   string
	value string
	str   bool // value is a string (a tag); otherwise a true boolean (an address)
	ep    *endpoint
}

// decodeJSONV1 appends the v2 spans of a Zipkin v1 JSON list to b and
// returns the number of v1 spans seen.
func decodeJSONV1(body string, b *batch) (int, error) {
	d := &scanner{s: body}
	if d.peek() == 0 {
		return 0, errEmptyBody
	}
	if d.peek() != '[' {
		return 0, fmt.Errorf("the body must be a JSON array of spans, not %s", d.kind())
	}
	var (
		n   int
		bad error
		c   v1Converter
	)
	err := d.array(func(i int) error {
		n = i + 1
		var src v1Span
		err := decodeSpanV1(d, &src)
		var invalid *invalidSpan
		switch {
		case errors.As(err, &invalid):
			if bad == nil {
				bad = &spanError{i, invalid.err}
			}
			return nil
		case err != nil:
			return &spanError{i, err}
		}
		if err := c.convert(&src, b); err != nil && bad == nil {
			bad = &spanError{i, err}
		}
		return nil
	})
	if err == nil {
		err = d.end()
	}
	if err != nil {
		return n, err
	}
	return n, bad
}

func decodeSpanV1(d *scanner, sp *v1Span) error {
	if d.peek() != '{' {
		return fmt.Errorf("must be an object, not %s", d.kind())
	}
	var bad error
	invalid := func(err error) {
		if bad == nil {
			bad = err
		}
	}
	err := d.object(func(key string) error {
		if d.null() {
			return nil
		}
		var err error
		switch key {
		case "traceId":
			sp.traceID, err = strField(d, key)
		case "id":
			sp.id, err = strField(d, key)
		case "parentId":
			sp.parentID, err = strField(d, key)
		case "name":
			sp.name, err = strField(d, key)
		case "timestamp":
			sp.timestamp, err = uintField(d, key, invalid)
		case "duration":
			sp.duration, err = uintField(d, key, invalid)
		case "debug":
			sp.debug, err = boolField(d, key)
		case "annotations":
			if d.peek() != '[' {
				return fieldError(d, key, "an array")
			}
			err = d.array(func(j int) error { return annotationV1(d, sp, j, invalid) })
		case "binaryAnnotations":
			if d.peek() != '[' {
				return fieldError(d, key, "an array")
			}
			err = d.array(func(j int) error { return binaryAnnotationV1(d, sp, j, invalid) })
		default:
			err = d.skip()
		}
		return err
	})
	if err != nil {
		return err
	}
	if bad != nil {
		return &invalidSpan{bad}
	}
	return nil
}

func annotationV1(d *scanner, sp *v1Span, j int, invalid func(error)) error {
	field := fmt.Sprintf("annotation %d", j)
	if d.peek() != '{' {
		return fieldError(d, field, "an object")
	}
	var (
		a        v1Annotation
		hasValue bool
	)
	err := d.object(func(key string) error {
		if d.null() {
			return nil
		}
		var err error
		switch key {
		case "timestamp":
			a.ts, err = uintField(d, field+": timestamp", invalid)
		case "value":
			a.value, err = strField(d, field+": value")
			hasValue = true
		case "endpoint":
			a.ep, err = endpointV1(d, field+": endpoint")
		default:
			err = d.skip()
		}
		return err
	})
	switch {
	case err != nil:
		return err
	case a.ts == 0:
		invalid(fmt.Errorf("%s has no timestamp", field))
	case a.ts > maxMicros:
		invalid(fmt.Errorf("%s: timestamp %d is out of range", field, a.ts))
	case !hasValue:
		invalid(fmt.Errorf("%s has no value", field))
	}
	sp.annos = append(sp.annos, a)
	return nil
}

func binaryAnnotationV1(d *scanner, sp *v1Span, j int, invalid func(error)) error {
	field := fmt.Sprintf("binaryAnnotation %d", j)
	if d.peek() != '{' {
		return fieldError(d, field, "an object")
	}
	var (
		ba       v1Binary
		hasKey   bool
		hasValue bool
	)
	err := d.object(func(key string) error {
		if d.null() {
			return nil
		}
		var err error
		switch key {
		case "key":
			ba.key, err = strField(d, field+": key")
			hasKey = true
		case "value":
			// A string is a tag; true on "ca", "sa" or "ma" marks an
			// address. Numbers and other booleans become tags as text.
			switch d.peek() {
			case '"':
				ba.value, err = d.str()
				ba.str, hasValue = true, true
			case 't', 'f':
				var v bool
				if v, err = d.boolean(); err == nil {
					ba.value, ba.str, hasValue = fmt.Sprint(v), !v, true
				}
			case '{', '[':
				err = d.skip() // not a Zipkin value: dropped
			default:
				ba.value, err = d.number()
				ba.str, hasValue = true, true
			}
		case "endpoint":
			ba.ep, err = endpointV1(d, field+": endpoint")
		default:
			err = d.skip()
		}
		return err
	})
	switch {
	case err != nil:
		return err
	case !hasKey:
		invalid(fmt.Errorf("%s has no key", field))
	case !hasValue:
	case !ba.str && !isAddressKey(ba.key):
		ba.str = true // a true boolean that marks no address: a tag
		sp.bins = append(sp.bins, ba)
	default:
		sp.bins = append(sp.bins, ba)
	}
	return nil
}

func isAddressKey(k string) bool { return k == "ca" || k == "sa" || k == "ma" }

// endpointV1 reads an endpoint; an empty one is none.
func endpointV1(d *scanner, field string) (*endpoint, error) {
	var e endpoint
	if err := endpointV2(d, field, &e); err != nil {
		return nil, err
	}
	if e.empty() {
		return nil, nil
	}
	return &e, nil
}

// v1Converter is Zipkin's V1SpanConverter, kept close to it so the two can
// be compared rule by rule.
type v1Converter struct {
	src                            *v1Span
	spans                          []*v1Builder // spans[0] is Zipkin's "first"
	cs, sr, ss, cr, ms, mr, ws, wr *v1Annotation
}

// v1Builder is a v2 span being built. Zero times are absent.
type v1Builder struct {
	local, remote *endpoint
	kind          tracev1.Span_SpanKind
	ts, dur       uint64
	shared        bool
	annos         []annotation
	tags          []tag
	tagIndex      map[string]int // key → index in tags, once there are many
}

// putTag sets a tag, replacing an earlier value of the key.
func (b *v1Builder) putTag(k, v string) {
	if b.tagIndex == nil && len(b.tags) >= 32 { // many tags: index them, not quadratic
		b.tagIndex = make(map[string]int, 2*len(b.tags))
		for i, t := range b.tags {
			b.tagIndex[t.k] = i
		}
	}
	if b.tagIndex != nil {
		if i, ok := b.tagIndex[k]; ok {
			b.tags[i].v = v
			return
		}
		b.tagIndex[k] = len(b.tags)
		b.tags = append(b.tags, tag{k, v})
		return
	}
	for i := range b.tags {
		if b.tags[i].k == k {
			b.tags[i].v = v
			return
		}
	}
	b.tags = append(b.tags, tag{k, v})
}

// duration sets end-begin, or none when end is not after begin.
func (b *v1Builder) duration(begin, end uint64) {
	b.dur = 0
	if end > begin {
		b.dur = end - begin
	}
}

func (c *v1Converter) convert(src *v1Span, out *batch) error {
	var common span
	if err := common.setIDs(src.traceID, src.id, src.parentID); err != nil {
		return err
	}
	common.name, common.debug = src.name, src.debug

	*c = v1Converter{src: src, spans: c.spans[:0]}
	c.spans = append(c.spans, &v1Builder{})
	c.processAnnotations()
	c.processBinaryAnnotations()

	for _, bl := range c.spans {
		sp := common
		sp.kind, sp.timestamp, sp.duration, sp.shared = bl.kind, bl.ts, bl.dur, bl.shared
		if bl.local != nil {
			sp.local = *bl.local
		}
		if bl.remote != nil {
			sp.remote = *bl.remote
		}
		sp.tagsFrom, sp.annosFrom = len(out.tags), len(out.annos)
		out.tags = append(out.tags, bl.tags...)
		out.annos = append(out.annos, bl.annos...)
		sp.tagsTo, sp.annosTo = len(out.tags), len(out.annos)
		if err := sp.checkTimes(out); err != nil {
			return err
		}
		out.spans = append(out.spans, sp)
	}
	return nil
}

func (c *v1Converter) processAnnotations() {
	src := c.src
	for i := range src.annos {
		a := &src.annos[i]
		cur := c.forEndpoint(a.ep)
		// Core annotations need an endpoint; without one they are plain.
		if len(a.value) == 2 && a.ep != nil {
			switch a.value {
			case "cs":
				cur.kind, c.cs = tracev1.Span_SPAN_KIND_CLIENT, a
			case "sr":
				cur.kind, c.sr = tracev1.Span_SPAN_KIND_SERVER, a
			case "ss":
				cur.kind, c.ss = tracev1.Span_SPAN_KIND_SERVER, a
			case "cr":
				cur.kind, c.cr = tracev1.Span_SPAN_KIND_CLIENT, a
			case "ms":
				cur.kind, c.ms = tracev1.Span_SPAN_KIND_PRODUCER, a
			case "mr":
				cur.kind, c.mr = tracev1.Span_SPAN_KIND_CONSUMER, a
			case "ws":
				c.ws = a
			case "wr":
				c.wr = a
			default:
				cur.annos = append(cur.annos, annotation{a.ts, a.value})
			}
			continue
		}
		cur.annos = append(cur.annos, annotation{a.ts, a.value})
	}

	// Bridging from the event model can leave out the start annotation.
	if c.cs == nil && c.endReflectsDuration(c.cr) {
		c.cs = &v1Annotation{ts: src.timestamp, value: "cs", ep: c.cr.ep}
	}
	if c.sr == nil && c.endReflectsDuration(c.ss) {
		c.sr = &v1Annotation{ts: src.timestamp, value: "sr", ep: c.ss.ep}
	}

	switch {
	case c.cs != nil && c.sr != nil:
		// In a shared span the client side owns the span's timing.
		c.maybeTimestampDuration(c.cs, c.cr)
		client := c.forEndpoint(c.cs.ep)
		var server *v1Builder
		if sameService(c.cs.ep, c.sr.ep) { // loopback: fork the server side
			client.kind = tracev1.Span_SPAN_KIND_CLIENT
			server = c.newSpan(c.sr.ep)
			server.kind = tracev1.Span_SPAN_KIND_SERVER
		} else {
			server = c.forEndpoint(c.sr.ep)
		}
		server.shared, server.ts = true, c.sr.ts
		if c.ss != nil {
			server.duration(c.sr.ts, c.ss.ts)
		}
		if c.cr == nil && src.duration == 0 {
			client.dur = 0 // one-way: no duration
		}
	case c.cs != nil && c.cr != nil:
		c.maybeTimestampDuration(c.cs, c.cr)
	case c.sr != nil && c.ss != nil:
		c.maybeTimestampDuration(c.sr, c.ss)
	default: // an incomplete RPC
		for _, next := range c.spans {
			switch next.kind {
			case tracev1.Span_SPAN_KIND_CLIENT:
				if c.cs != nil {
					next.ts = c.cs.ts
				}
				if c.cr != nil {
					next.annos = append(next.annos, annotation{c.cr.ts, c.cr.value})
				}
			case tracev1.Span_SPAN_KIND_SERVER:
				if c.sr != nil {
					next.ts = c.sr.ts
				}
				if c.ss != nil {
					next.annos = append(next.annos, annotation{c.ss.ts, c.ss.value})
				}
			}
		}
		if src.timestamp != 0 {
			c.spans[0].ts, c.spans[0].dur = src.timestamp, src.duration
		}
	}

	// v1 had no shared flag: by convention an absent timestamp meant shared.
	if c.cs == nil && c.sr != nil && (src.timestamp == 0 || (c.ss != nil && src.duration == 0)) {
		c.forEndpoint(c.sr.ep).shared = true
	}

	switch {
	case c.ms != nil && c.mr != nil: // not meant to share a span, but they may
		producer := c.forEndpoint(c.ms.ep)
		var consumer *v1Builder
		if sameService(c.ms.ep, c.mr.ep) {
			producer.kind = tracev1.Span_SPAN_KIND_PRODUCER
			consumer = c.newSpan(c.mr.ep)
			consumer.kind = tracev1.Span_SPAN_KIND_CONSUMER
		} else {
			consumer = c.forEndpoint(c.mr.ep)
		}
		consumer.shared = true
		if c.wr != nil {
			consumer.ts = c.wr.ts
			consumer.duration(c.wr.ts, c.mr.ts)
		} else {
			consumer.ts = c.mr.ts
		}
		producer.ts, producer.dur = c.ms.ts, 0
		if c.ws != nil {
			producer.duration(c.ms.ts, c.ws.ts)
		}
	case c.ms != nil:
		c.maybeTimestampDuration(c.ms, c.ws)
	case c.mr != nil:
		if c.wr != nil {
			c.maybeTimestampDuration(c.wr, c.mr)
		} else {
			c.maybeTimestampDuration(c.mr, nil)
		}
	default:
		if c.ws != nil {
			b := c.forEndpoint(c.ws.ep)
			b.annos = append(b.annos, annotation{c.ws.ts, c.ws.value})
		}
		if c.wr != nil {
			b := c.forEndpoint(c.wr.ep)
			b.annos = append(b.annos, annotation{c.wr.ts, c.wr.value})
		}
	}
}

func (c *v1Converter) endReflectsDuration(end *v1Annotation) bool {
	src := c.src
	return end != nil && src.timestamp != 0 && src.duration != 0 && src.timestamp+src.duration == end.ts
}

func (c *v1Converter) maybeTimestampDuration(begin, end *v1Annotation) {
	b := c.forEndpoint(begin.ep)
	if c.src.timestamp != 0 && c.src.duration != 0 {
		b.ts, b.dur = c.src.timestamp, c.src.duration
		return
	}
	b.ts = begin.ts
	if end != nil {
		b.duration(begin.ts, end.ts)
	}
}

func (c *v1Converter) processBinaryAnnotations() {
	var ca, sa, ma *endpoint
	for i := range c.src.bins {
		ba := &c.src.bins[i]
		if !ba.str {
			switch ba.key {
			case "ca":
				ca = ba.ep
			case "sa":
				sa = ba.ep
			case "ma":
				ma = ba.ep
			}
			continue
		}
		cur := c.forEndpoint(ba.ep)
		if ba.key == "lc" && ba.value == "" { // a marker, not a tag
			continue
		}
		cur.putTag(ba.key, ba.value)
	}

	noCore := c.cs == nil && c.cr == nil && c.ss == nil && c.sr == nil
	if noCore && (ca != nil || sa != nil) {
		switch {
		case ca != nil && sa != nil:
			c.forEndpoint(ca).remote = sa
		case sa != nil: // a default remote address: not a client span
			c.forEndpoint(nil).remote = sa
		default: // ca alone: treat it like a server
			b := c.forEndpoint(nil)
			b.kind, b.remote = tracev1.Span_SPAN_KIND_SERVER, ca
		}
		return
	}

	server := c.sr
	if server == nil {
		server = c.ss
	}
	if ca != nil && server != nil && *ca != *server.ep {
		// Finagle logs "ca" on server spans with the server's own service
		// name; dropping it avoids a loopback link.
		if sameService(ca, server.ep) {
			cp := *ca
			cp.serviceName = ""
			ca = &cp
		}
		c.forEndpoint(server.ep).remote = ca
	}
	if sa != nil {
		if c.cs != nil {
			c.forEndpoint(c.cs.ep).remote = sa
		} else if c.cr != nil {
			c.forEndpoint(c.cr.ep).remote = sa
		}
	}
	if ma != nil {
		if c.ms != nil {
			c.forEndpoint(c.ms.ep).remote = ma
		}
		if c.mr != nil {
			c.forEndpoint(c.mr.ep).remote = ma
		}
	}
}

// forEndpoint returns the span logged by e: the first without a local
// endpoint (which takes e), the first with e's service name, or a new one.
// Data without an endpoint goes to the first span.
func (c *v1Converter) forEndpoint(e *endpoint) *v1Builder {
	if e == nil {
		return c.spans[0]
	}
	for _, b := range c.spans {
		if b.local == nil {
			b.local = e
			return b
		}
		if sameService(b.local, e) {
			return b
		}
	}
	return c.newSpan(e)
}

func (c *v1Converter) newSpan(e *endpoint) *v1Builder {
	b := &v1Builder{local: e}
	c.spans = append(c.spans, b)
	return b
}

// sameService compares service names as Zipkin does, which lower-cases them.
func sameService(a, b *endpoint) bool {
	return strings.EqualFold(a.serviceName, b.serviceName)
}
