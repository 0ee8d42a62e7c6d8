// Package block is Vivace's block format: how a set of traces is laid out
// in the object store, written, and read back. FORMAT.md in this folder
// describes every object byte by byte; this package is its only
// implementation (schema.go: the parquet schema and the only OTLP↔column
// code; wire.go: the checks of an encoded trace that Writer.AddEncoded
// stores without decoding; bloom.go, index.go, meta.go: the other objects).
//
// A block is written by a Writer (traces in ascending ID order, then Finish
// uploads data.parquet, the bloom shards, the index and, last, meta.json)
// and read by a Reader, which finds one trace with at most one bloom shard
// read and one ranged read of one row group, after loading the index and
// the parquet footer once.
package block
