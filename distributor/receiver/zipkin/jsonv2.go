package zipkin

import (
	"errors"
	"fmt"
	"math"
	"strconv"

	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
)

// maxMicros is the largest time in µs whose nanoseconds fit an int64 (2262).
const maxMicros = math.MaxInt64 / 1000

// decodeJSONV2 appends the spans of a Zipkin v2 JSON list (zipkin2-api.yaml,
// the model of openzipkin/zipkin-go's model.SpanModel) to b. It returns the
// number of spans seen: all of them when the body is well-formed JSON, even
// if some span is invalid, so that a refused request counts its spans.
//
// Zipkin's own reader sets the rules followed here: field names are exact,
// unknown fields are skipped, a null field is absent, IDs are hex (shorter
// ones left-padded), and an annotation needs a timestamp and a value.
func decodeJSONV2(body string, b *batch) (int, error) {
	d := &scanner{s: body}
	if d.peek() == 0 {
		return 0, errEmptyBody
	}
	if d.peek() != '[' {
		return 0, fmt.Errorf("the body must be a JSON array of spans, not %s", d.kind())
	}
	var (
		n   int
		bad error // the first invalid span; reading goes on to count the rest
	)
	err := d.array(func(i int) error {
		n = i + 1
		err := decodeSpanV2(d, b, i)
		if err == nil {
			return nil
		}
		se := &spanError{i, err}
		var invalid *invalidSpan
		if errors.As(err, &invalid) {
			if bad == nil {
				bad = &spanError{i, invalid.err}
			}
			return nil
		}
		return se
	})
	if err == nil {
		err = d.end()
	}
	if err != nil {
		return n, err
	}
	return n, bad
}

// invalidSpan is a span whose JSON was read in full but that is not valid
// Zipkin, so that reading can go on with the next span.
type invalidSpan struct{ err error }

func (e *invalidSpan) Error() string { return e.err.Error() }

func decodeSpanV2(d *scanner, b *batch, index int) error {
	if d.peek() != '{' {
		return fmt.Errorf("must be an object, not %s", d.kind())
	}
	sp := span{tagsFrom: len(b.tags), annosFrom: len(b.annos)}
	var (
		traceID, id, parentID string
		bad                   error // first problem that does not stop reading
	)
	invalid := func(err error) {
		if bad == nil {
			bad = err
		}
	}
	err := d.object(func(key string) error {
		if d.null() { // null is absent, as in Zipkin's reader
			return nil
		}
		var err error
		switch key {
		case "traceId":
			traceID, err = strField(d, key)
		case "id":
			id, err = strField(d, key)
		case "parentId":
			parentID, err = strField(d, key)
		case "name":
			sp.name, err = strField(d, key)
		case "kind":
			var k string
			if k, err = strField(d, key); err == nil {
				sp.kind = zipkinKind(k)
			}
		case "timestamp":
			sp.timestamp, err = uintField(d, key, invalid)
		case "duration":
			sp.duration, err = uintField(d, key, invalid)
		case "debug":
			sp.debug, err = boolField(d, key)
		case "shared":
			sp.shared, err = boolField(d, key)
		case "localEndpoint":
			err = endpointV2(d, key, &sp.local)
		case "remoteEndpoint":
			err = endpointV2(d, key, &sp.remote)
		case "annotations":
			err = annotationsV2(d, b, invalid)
		case "tags":
			err = tagsV2(d, b, sp.tagsFrom, invalid)
		default:
			err = d.skip()
		}
		return err
	})
	if err != nil {
		return err
	}
	sp.tagsTo, sp.annosTo = len(b.tags), len(b.annos)
	if err := sp.setIDs(traceID, id, parentID); err != nil {
		invalid(err)
	}
	if err := sp.checkTimes(b); err != nil {
		invalid(err)
	}
	if bad != nil {
		return &invalidSpan{bad}
	}
	b.spans = append(b.spans, sp)
	return nil
}

// setIDs parses and sets the span's hex IDs.
func (sp *span) setIDs(traceID, id, parentID string) error {
	var err error
	if traceID == "" {
		return errors.New("traceId is missing")
	}
	if sp.traceID, err = parseTraceID(traceID); err != nil {
		return fmt.Errorf("traceId %w", err)
	}
	if id == "" {
		return errors.New("id is missing")
	}
	if sp.id, err = parseSpanID(id); err != nil {
		return fmt.Errorf("id %w", err)
	}
	if parentID != "" {
		if sp.parentID, err = parseSpanID(parentID); err != nil {
			if allZeroHex(parentID) { // Zipkin reads an all-zero parent as none
				return nil
			}
			return fmt.Errorf("parentId %w", err)
		}
		sp.hasParent = true
	}
	return nil
}

func allZeroHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != '0' {
			return false
		}
	}
	return s != ""
}

// checkTimes refuses times whose nanoseconds overflow.
func (sp *span) checkTimes(b *batch) error {
	switch {
	case sp.timestamp > maxMicros:
		return fmt.Errorf("timestamp %d is out of range", sp.timestamp)
	case sp.duration > maxMicros-sp.timestamp:
		return fmt.Errorf("duration %d is out of range", sp.duration)
	}
	for i, a := range b.annos[sp.annosFrom:sp.annosTo] {
		if a.ts > maxMicros {
			return fmt.Errorf("annotation %d: timestamp %d is out of range", i, a.ts)
		}
	}
	return nil
}

func zipkinKind(k string) tracev1.Span_SpanKind {
	switch k {
	case "CLIENT":
		return tracev1.Span_SPAN_KIND_CLIENT
	case "SERVER":
		return tracev1.Span_SPAN_KIND_SERVER
	case "PRODUCER":
		return tracev1.Span_SPAN_KIND_PRODUCER
	case "CONSUMER":
		return tracev1.Span_SPAN_KIND_CONSUMER
	}
	return tracev1.Span_SPAN_KIND_UNSPECIFIED // absent or unknown: Zipkin's null
}

func strField(d *scanner, field string) (string, error) {
	if d.peek() != '"' {
		return "", fieldError(d, field, "a string")
	}
	return d.str()
}

func boolField(d *scanner, field string) (bool, error) {
	if c := d.peek(); c != 't' && c != 'f' {
		return false, fieldError(d, field, "a boolean")
	}
	return d.boolean()
}

// uintField reads a µs time; a number that is no unsigned integer is
// reported through invalid, and reading goes on.
func uintField(d *scanner, field string, invalid func(error)) (uint64, error) {
	if c := d.peek(); c != '-' && (c < '0' || c > '9') {
		return 0, fieldError(d, field, "a number")
	}
	n, err := d.uint()
	if errors.Is(err, errRange) {
		invalid(fmt.Errorf("%s %w", field, err))
		return 0, nil
	}
	return n, err
}

func endpointV2(d *scanner, field string, e *endpoint) error {
	if d.peek() != '{' {
		return fieldError(d, field, "an object")
	}
	return d.object(func(key string) error {
		if d.null() {
			return nil
		}
		var (
			s   string
			err error
		)
		switch key {
		case "serviceName":
			e.serviceName, err = strField(d, field+".serviceName")
		case "ipv4":
			if s, err = strField(d, field+".ipv4"); err == nil {
				e.ip4 = canonicalIP(s)
			}
		case "ipv6":
			if s, err = strField(d, field+".ipv6"); err == nil {
				e.ip6 = canonicalIP(s)
			}
		case "port":
			if c := d.peek(); c != '-' && (c < '0' || c > '9') {
				return fieldError(d, field+".port", "a number")
			}
			if s, err = d.number(); err == nil {
				e.port = port(s)
			}
		default:
			err = d.skip()
		}
		return err
	})
}

// port returns a valid port number, or 0 (absent) as Zipkin does for
// anything outside 1-65535.
func port(s string) uint16 {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil {
		return 0
	}
	return uint16(n)
}

func annotationsV2(d *scanner, b *batch, invalid func(error)) error {
	if d.peek() != '[' {
		return fieldError(d, "annotations", "an array")
	}
	return d.array(func(j int) error {
		if d.peek() != '{' {
			return fieldError(d, fmt.Sprintf("annotation %d", j), "an object")
		}
		var (
			a        annotation
			hasValue bool
		)
		err := d.object(func(key string) error {
			if d.null() {
				return nil
			}
			var err error
			switch key {
			case "timestamp":
				a.ts, err = uintField(d, fmt.Sprintf("annotation %d: timestamp", j), invalid)
			case "value":
				a.value, err = strField(d, fmt.Sprintf("annotation %d: value", j))
				hasValue = true
			default:
				err = d.skip()
			}
			return err
		})
		switch {
		case err != nil:
			return err
		case a.ts == 0:
			invalid(fmt.Errorf("annotation %d has no timestamp", j))
		case !hasValue:
			invalid(fmt.Errorf("annotation %d has no value", j))
		}
		b.annos = append(b.annos, a)
		return nil
	})
}

func tagsV2(d *scanner, b *batch, from int, invalid func(error)) error {
	if d.peek() != '{' {
		return fieldError(d, "tags", "an object")
	}
	return d.object(func(key string) error {
		if d.null() { // Zipkin refuses it; dropping the tag loses nothing
			return nil
		}
		v, err := d.scalarText()
		if errors.Is(err, errNotScalar) {
			invalid(fieldError(d, "tag "+quote(key), "a string"))
			return d.skip()
		}
		if err != nil {
			return err
		}
		b.addTag(from, key, v)
		return nil
	})
}
