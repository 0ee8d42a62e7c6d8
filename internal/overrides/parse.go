package overrides

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sort"

	"gopkg.in/yaml.v3"
)

// MaxFileBytes bounds the runtime overrides file: a larger one is refused
// before it is parsed.
const MaxFileBytes = 10 << 20

// Wildcard is the tenant of the entry that applies to every tenant without
// one of its own, as in Tempo.
const Wildcard = "*"

// ParseFile decodes a runtime overrides file in Tempo's format,
//
//	overrides:
//	  <tenant>:
//	    ingestion: {rate_limit_bytes: ...}
//
// into the limits of each tenant it names. Each entry is decoded over
// defaults: a key it leaves out keeps the default (an entry in Tempo's
// non-legacy format starts from zero instead, so that overriding one key
// silently removes the others' defaults). Unknown keys and invalid limits fail.
func ParseFile(b []byte, defaults Limits) (map[string]*Limits, error) {
	if len(b) > MaxFileBytes {
		return nil, fmt.Errorf("%w: %d bytes, over the limit of %d", ErrFileTooLarge, len(b), MaxFileBytes)
	}
	var file struct {
		Overrides map[string]yaml.Node `yaml:"overrides"`
	}
	if err := decodeStrict(b, &file); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidFile, err)
	}
	tenants := make([]string, 0, len(file.Overrides))
	for t := range file.Overrides {
		tenants = append(tenants, t)
	}
	sort.Strings(tenants) // the first error is the same at every reload
	out := make(map[string]*Limits, len(tenants))
	for _, t := range tenants {
		node := file.Overrides[t]
		l := defaults
		if node.Kind != 0 && node.ShortTag() != "!!null" {
			// Node.Decode is not strict: decode its text with unknown keys refused.
			raw, err := yaml.Marshal(&node)
			if err != nil {
				return nil, fmt.Errorf("%w: tenant %q (line %d): %v", ErrInvalidFile, t, node.Line, err)
			}
			if err := decodeStrict(raw, &l); err != nil {
				return nil, fmt.Errorf("%w: tenant %q (line %d): %v", ErrInvalidFile, t, node.Line, err)
			}
		}
		if err := l.Validate(); err != nil {
			return nil, fmt.Errorf("%w: tenant %q (line %d): %v", ErrInvalidFile, t, node.Line, err)
		}
		out[t] = &l
	}
	return out, nil
}

// MarshalFile encodes limits per tenant in the format ParseFile reads.
func MarshalFile(tenants map[string]*Limits) ([]byte, error) {
	return yaml.Marshal(struct {
		Overrides map[string]*Limits `yaml:"overrides"`
	}{tenants})
}

func decodeStrict(b []byte, v any) error {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	// An empty document decodes to io.EOF: it overrides nothing.
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	// A second document would be ignored silently: refuse it.
	var more yaml.Node
	if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
		if err == nil {
			err = errors.New("more than one YAML document")
		}
		return err
	}
	return nil
}
