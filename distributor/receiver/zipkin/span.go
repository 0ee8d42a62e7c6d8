package zipkin

import (
	"fmt"
	"net/netip"
	"strconv"
	"unicode/utf8"

	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
)

// batch is one request's spans in Zipkin's v2 model, as every decoder
// (JSON v2, protobuf, JSON v1) produces it. Tags and annotations of all spans
// share two arenas, so a request costs a handful of allocations, not a few per
// span; strings point into the request body where no unescaping was needed.
type batch struct {
	spans []span
	tags  []tag
	annos []annotation

	tagIndex     map[string]int // key → index in tags, for spans with many tags
	tagIndexFrom int            // the first tag of the span tagIndex is about
}

// span is a Zipkin v2 span. Zero means absent for the timestamps.
type span struct {
	traceID   [16]byte // 64-bit IDs left-padded with zeros
	id        [8]byte
	parentID  [8]byte
	hasParent bool
	name      string
	kind      tracev1.Span_SpanKind // UNSPECIFIED when Zipkin's kind is absent
	timestamp uint64                // µs since the epoch
	duration  uint64                // µs
	debug     bool
	shared    bool
	local     endpoint
	remote    endpoint

	tagsFrom, tagsTo   int // tags of this span: batch.tags[tagsFrom:tagsTo]
	annosFrom, annosTo int
}

// endpoint is a Zipkin endpoint; ip4 and ip6 are canonical text, port 0 is absent.
type endpoint struct {
	serviceName string
	ip4, ip6    string
	port        uint16
}

// address is the endpoint's address attribute: IPv6 when it has both.
func (e *endpoint) address() string {
	if e.ip6 != "" {
		return e.ip6
	}
	return e.ip4
}

func (e *endpoint) empty() bool {
	return e.serviceName == "" && e.ip4 == "" && e.ip6 == "" && e.port == 0
}

type tag struct{ k, v string }

type annotation struct {
	ts    uint64 // µs
	value string
}

// addTag appends a tag to the span being built, whose tags start at
// batch.tags[from], replacing an earlier value of the same key as Zipkin's
// putTag does.
func (b *batch) addTag(from int, k, v string) {
	cur := b.tags[from:]
	if len(cur) < 32 { // small sets: a scan is cheaper than a map
		for i := range cur {
			if cur[i].k == k {
				cur[i].v = v
				return
			}
		}
		b.tags = append(b.tags, tag{k, v})
		return
	}
	// A span with many tags: index them, so that a hostile body cannot
	// make this quadratic.
	if b.tagIndexFrom != from || b.tagIndex == nil {
		if b.tagIndex == nil {
			b.tagIndex = make(map[string]int, 64)
		}
		clear(b.tagIndex)
		b.tagIndexFrom = from
		for i := range cur {
			b.tagIndex[cur[i].k] = from + i
		}
	}
	if i, ok := b.tagIndex[k]; ok {
		b.tags[i].v = v
		return
	}
	b.tagIndex[k] = len(b.tags)
	b.tags = append(b.tags, tag{k, v})
}

// Zipkin's ID rules (zipkin2.Span.Builder): lower or upper hex, at most 32
// digits for a trace ID and 16 for a span ID, shorter ones left-padded with
// zeros; all zeros is invalid.

func parseTraceID(s string) ([16]byte, error) {
	var id [16]byte
	if err := parseHexID(id[:], s); err != nil {
		return id, err
	}
	return id, nil
}

func parseSpanID(s string) ([8]byte, error) {
	var id [8]byte
	if err := parseHexID(id[:], s); err != nil {
		return id, err
	}
	return id, nil
}

// parseHexID decodes s right-aligned into dst.
func parseHexID(dst []byte, s string) error {
	max := 2 * len(dst)
	switch {
	case s == "":
		return fmt.Errorf("is empty")
	case len(s) > max:
		return fmt.Errorf("%s has %d hex digits, at most %d allowed", quote(s), len(s), max)
	}
	zero := true
	for i := 0; i < len(s); i++ {
		n, ok := unhex(s[len(s)-1-i])
		if !ok {
			return fmt.Errorf("%s is not hex", quote(s))
		}
		if n != 0 {
			zero = false
		}
		if i%2 == 0 {
			dst[len(dst)-1-i/2] = n
		} else {
			dst[len(dst)-1-i/2] |= n << 4
		}
	}
	if zero {
		return fmt.Errorf("%s is all zeros", quote(s))
	}
	return nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// canonicalIP returns s as canonical text, or "" if it is not an IP
// address: Zipkin ignores an unparsable endpoint address rather than failing.
// It allocates only if s was not canonical already.
func canonicalIP(s string) string {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return ""
	}
	var buf [48]byte
	if c := a.AppendTo(buf[:0]); string(c) != s {
		return string(c)
	}
	return s
}

// quote quotes a client's value for an error message, cut to a sane length.
func quote(s string) string {
	const max = 64
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		return strconv.Quote(s[:cut]) + "..."
	}
	return strconv.Quote(s)
}
