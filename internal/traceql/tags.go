package traceql

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// FromTags turns Tempo's older search parameters into a query: tags is logfmt
// (`service.name=cart http.status_code=500 name="GET /"`), and minDuration
// and maxDuration, when not zero, bound the trace's duration inclusively (as
// Tempo's documentation and its parquet search do).
//
// Each tag must hold on some span of the trace, not necessarily the same span
// for all tags (Tempo joins tag conditions at trace level). Values match
// exactly. The keys name, status (or status.code), kind and statusMessage are
// the span's intrinsics, root.name and root.service.name the trace's root;
// any other key is an attribute of the span or, failing that, its resource.
// A value that reads as a number or a boolean also matches an attribute of
// that type, so http.status_code=500 finds the integer 500 and the string.
func FromTags(tags string, minDuration, maxDuration time.Duration) (*Query, error) {
	pairs, err := parseLogfmt(tags)
	if err != nil {
		return nil, fmt.Errorf("invalid tags: %w", err)
	}
	switch {
	case minDuration < 0:
		return nil, fmt.Errorf("invalid minDuration %s: must not be negative", minDuration)
	case maxDuration < 0:
		return nil, fmt.Errorf("invalid maxDuration %s: must not be negative", maxDuration)
	case maxDuration > 0 && minDuration > maxDuration:
		return nil, fmt.Errorf("invalid maxDuration %s: must not be less than minDuration %s", maxDuration, minDuration)
	}
	var durations []string
	if minDuration > 0 {
		durations = append(durations, "trace:duration >= "+DurationValue(minDuration).String())
	}
	if maxDuration > 0 {
		durations = append(durations, "trace:duration <= "+DurationValue(maxDuration).String())
	}
	var spansets []string
	for _, kv := range pairs {
		cond, err := tagCondition(kv[0], kv[1])
		if err != nil {
			return nil, fmt.Errorf("invalid tags: %w", err)
		}
		spansets = append(spansets, "{ "+strings.Join(append([]string{cond}, durations...), " && ")+" }")
	}
	if len(spansets) == 0 && len(durations) > 0 {
		spansets = append(spansets, "{ "+strings.Join(durations, " && ")+" }")
	}
	q, err := Parse(strings.Join(spansets, " && "))
	if err != nil {
		return nil, fmt.Errorf("tags as TraceQL: %w", err)
	}
	return q, nil
}

func tagCondition(key, value string) (string, error) {
	str := StringValue(value).String()
	switch key {
	case "name":
		return "span:name = " + str, nil
	case "statusMessage":
		return "span:statusMessage = " + str, nil
	case "root.name":
		return "trace:rootName = " + str, nil
	case "root.service.name":
		return "trace:rootService = " + str, nil
	case "status", "status.code":
		if !slices.Contains(statusKeywords, value) {
			return "", fmt.Errorf("%s=%q: want error, ok or unset", key, value)
		}
		return "span:status = " + value, nil
	case "kind":
		if !slices.Contains(kindKeywords, value) {
			return "", fmt.Errorf("kind=%q: want unspecified, internal, server, client, producer or consumer", value)
		}
		return "span:kind = " + value, nil
	}
	attr := (&Attribute{Scope: ScopeNone, Name: key}).String()
	cond := attr + " = " + str
	if n, err := strconv.ParseInt(value, 10, 64); err == nil {
		return "(" + cond + " || " + attr + " = " + IntValue(n).String() + ")", nil
	}
	if f, err := strconv.ParseFloat(value, 64); err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
		return "(" + cond + " || " + attr + " = " + FloatValue(f).String() + ")", nil
	}
	if b, err := strconv.ParseBool(value); err == nil && (value == "true" || value == "false") {
		return "(" + cond + " || " + attr + " = " + BoolValue(b).String() + ")", nil
	}
	return cond, nil
}

// parseLogfmt reads key=value pairs separated by spaces; a value may be
// double-quoted with Go escapes. Keys must be unique.
func parseLogfmt(s string) ([][2]string, error) {
	var pairs [][2]string
	seen := map[string]bool{}
	i := 0
	for {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
			i++
		}
		if i >= len(s) {
			return pairs, nil
		}
		start := i
		for i < len(s) && s[i] != '=' && s[i] != ' ' && s[i] != '"' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r' {
			i++
		}
		key := s[start:i]
		switch {
		case key == "":
			return nil, fmt.Errorf("expected a key at position %d", i+1)
		case i >= len(s) || s[i] != '=':
			return nil, fmt.Errorf("tag %q has no value: write %s=<value>", key, key)
		case seen[key]:
			return nil, fmt.Errorf("tag %q given twice", key)
		}
		seen[key] = true
		i++ // =
		var value string
		if i < len(s) && s[i] == '"' {
			end := i + 1
			for end < len(s) && s[end] != '"' {
				if s[end] == '\\' {
					end++
				}
				end++
			}
			if end >= len(s) {
				return nil, fmt.Errorf("value of %q: missing closing quote", key)
			}
			v, err := strconv.Unquote(s[i : end+1])
			if err != nil {
				return nil, fmt.Errorf("value of %q: bad escape in %s", key, s[i:end+1])
			}
			value, i = v, end+1
		} else {
			vstart := i
			for i < len(s) && s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r' {
				if s[i] == '"' || s[i] == '=' {
					return nil, fmt.Errorf("value of %q: unexpected %q at position %d; quote values with spaces, quotes or =", key, s[i], i+1)
				}
				i++
			}
			value = s[vstart:i]
		}
		pairs = append(pairs, [2]string{key, value})
	}
}
