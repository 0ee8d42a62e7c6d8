package opencensus

import (
	tracepb "github.com/census-instrumentation/opencensus-proto/gen-go/trace/v1"
	commonv1 "go.opentelemetry.io/proto/otlp/common/v1"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
)

// arena hands out the many small messages of one Export message's
// translation from blocks, so a span's attributes and events cost a few
// allocations instead of three or more each. What it hands out lives as
// long as the request it is part of.
type arena struct {
	spans  block[tracev1.Span]
	events block[tracev1.Span_Event]
	ptrs   block[*commonv1.KeyValue]
	kvs    block[commonv1.KeyValue]
	vals   block[commonv1.AnyValue]
	strs   block[commonv1.AnyValue_StringValue]
	ints   block[commonv1.AnyValue_IntValue]
}

// block is a run of free Ts; a new one is twice the last, up to maxBlock.
type block[T any] struct {
	free []T
	size int
}

const maxBlock = 1024

func (b *block[T]) grow(n int) {
	b.size = min(max(2*b.size, 16), maxBlock)
	b.free = make([]T, max(b.size, n))
}

func (b *block[T]) take() *T {
	if len(b.free) == 0 {
		b.grow(1)
	}
	p := &b.free[0]
	b.free = b.free[1:]
	return p
}

// slice is an empty slice with room for n, which appends cannot overrun.
func (b *block[T]) slice(n int) []T {
	if n == 0 {
		return nil
	}
	if len(b.free) < n {
		b.grow(n)
	}
	s := b.free[:0:n]
	b.free = b.free[n:]
	return s
}

// kv is a KeyValue with key and an empty value to set.
func (a *arena) kv(key string) (*commonv1.KeyValue, *commonv1.AnyValue) {
	kv, v := a.kvs.take(), a.vals.take()
	kv.Key, kv.Value = key, v
	return kv, v
}

func (a *arena) str(key, s string) *commonv1.KeyValue {
	kv, v := a.kv(key)
	w := a.strs.take()
	w.StringValue = s
	v.Value = w
	return kv
}

func (a *arena) int(key string, i int64) *commonv1.KeyValue {
	kv, v := a.kv(key)
	w := a.ints.take()
	w.IntValue = i
	v.Value = w
	return kv
}

// attr translates an OpenCensus attribute; false if it has no value.
func (a *arena) attr(key string, v *tracepb.AttributeValue) (*commonv1.KeyValue, bool) {
	switch v := v.GetValue().(type) {
	case *tracepb.AttributeValue_StringValue:
		return a.str(key, v.StringValue.GetValue()), true
	case *tracepb.AttributeValue_IntValue:
		return a.int(key, v.IntValue), true
	case *tracepb.AttributeValue_BoolValue:
		kv, val := a.kv(key)
		val.Value = &commonv1.AnyValue_BoolValue{BoolValue: v.BoolValue}
		return kv, true
	case *tracepb.AttributeValue_DoubleValue:
		kv, val := a.kv(key)
		val.Value = &commonv1.AnyValue_DoubleValue{DoubleValue: v.DoubleValue}
		return kv, true
	}
	return nil, false
}
