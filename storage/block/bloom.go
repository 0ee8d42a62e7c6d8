package block

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"

	"github.com/cespare/xxhash/v2"

	"github.com/vivace-dev/vivace/internal/model"
)

// The bloom filter over a block's trace IDs, split into shards so that one
// lookup reads one small object. FORMAT.md ("bloom-<shard>") is the
// reference; this file is its only implementation.

const (
	bloomMagic      = "VBLM"
	bloomVersion    = 1
	bloomHeaderLen  = 16 // magic, version, k, words
	bloomTrailerLen = 4  // CRC-32C
	maxBloomShards  = 1 << 16
	maxBloomK       = 32
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// bloomHash is the 64-bit hash every bloom decision starts from: xxHash64
// (seed 0) of the 16 ID bytes.
func bloomHash(id model.TraceID) uint64 { return xxhash.Sum64(id[:]) }

// bloomShardOf picks the shard of a hash: h mod shards.
func bloomShardOf(h uint64, shards int) int { return int(h % uint64(shards)) }

// bloomProbes derives the two double-hashing values from h, through the
// MurmurHash3 64-bit finalizer so that they are independent of the shard
// choice (h mod shards): h1 is the low 32 bits, h2 the high 32 bits with the
// lowest bit set (odd, so that probes never collapse onto one bit).
func bloomProbes(h uint64) (h1, h2 uint64) {
	x := h
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x & 0xffffffff, x>>32 | 1
}

// bloomShape is the geometry of a block's filter: shards of words 64-bit
// words each, and k probes per ID.
type bloomShape struct {
	shards, words, k int
}

// bloomShapeFor sizes a filter for n IDs at false-positive rate p: the
// optimal m = -n·ln(p)/ln(2)² bits and k = round(m/n·ln 2) probes, cut into the
// fewest shards of at most maxBytes each (at most maxBloomShards shards).
func bloomShapeFor(n int, p float64, maxBytes int) bloomShape {
	n = max(n, 1)
	bits := math.Ceil(-float64(n) * math.Log(p) / (math.Ln2 * math.Ln2))
	k := int(math.Round(bits / float64(n) * math.Ln2))
	k = min(max(k, 1), maxBloomK)
	totalWords := max(int(math.Ceil(bits/64)), 1)
	maxWords := max(maxBytes/8, 1)
	shards := min((totalWords+maxWords-1)/maxWords, maxBloomShards)
	words := (totalWords + shards - 1) / shards
	return bloomShape{shards: shards, words: words, k: k}
}

// bloomFilter is one shard: a bit array of len(bits)*64 bits and k probes.
type bloomFilter struct {
	k    int
	bits []uint64
}

func newBloomFilter(words, k int) *bloomFilter {
	return &bloomFilter{k: k, bits: make([]uint64, words)}
}

// add sets the k bits (h1 + i·h2) mod m, i = 0..k-1, of the hash.
func (f *bloomFilter) add(h uint64) {
	h1, h2 := bloomProbes(h)
	m := uint64(len(f.bits)) * 64
	for i := uint64(0); i < uint64(f.k); i++ {
		bit := (h1 + i*h2) % m
		f.bits[bit/64] |= 1 << (bit % 64)
	}
}

// mayContain reports whether all k bits of the hash are set.
func (f *bloomFilter) mayContain(h uint64) bool {
	h1, h2 := bloomProbes(h)
	m := uint64(len(f.bits)) * 64
	for i := uint64(0); i < uint64(f.k); i++ {
		bit := (h1 + i*h2) % m
		if f.bits[bit/64]&(1<<(bit%64)) == 0 {
			return false
		}
	}
	return true
}

// marshal encodes the shard as FORMAT.md describes.
func (f *bloomFilter) marshal() []byte {
	b := make([]byte, 0, bloomHeaderLen+8*len(f.bits)+bloomTrailerLen)
	b = append(b, bloomMagic...)
	b = binary.LittleEndian.AppendUint32(b, bloomVersion)
	b = binary.LittleEndian.AppendUint32(b, uint32(f.k))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(f.bits)))
	for _, w := range f.bits {
		b = binary.LittleEndian.AppendUint64(b, w)
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// decodeBloom decodes and checks one shard.
func decodeBloom(b []byte) (*bloomFilter, error) {
	if len(b) < bloomHeaderLen+8+bloomTrailerLen {
		return nil, fmt.Errorf("%w: bloom shard of %d bytes is too short", ErrCorrupt, len(b))
	}
	if string(b[:4]) != bloomMagic {
		return nil, fmt.Errorf("%w: bloom shard magic %q", ErrCorrupt, b[:4])
	}
	if v := binary.LittleEndian.Uint32(b[4:]); v != bloomVersion {
		return nil, fmt.Errorf("%w: bloom shard version %d", ErrCorrupt, v)
	}
	k := binary.LittleEndian.Uint32(b[8:])
	words := uint64(binary.LittleEndian.Uint32(b[12:]))
	if k < 1 || k > maxBloomK {
		return nil, fmt.Errorf("%w: bloom shard has %d probes", ErrCorrupt, k)
	}
	if want := bloomHeaderLen + 8*words + bloomTrailerLen; words == 0 || uint64(len(b)) != want {
		return nil, fmt.Errorf("%w: bloom shard of %d words has %d bytes", ErrCorrupt, words, len(b))
	}
	body := b[:len(b)-bloomTrailerLen]
	if got, want := crc32.Checksum(body, castagnoli), binary.LittleEndian.Uint32(b[len(body):]); got != want {
		return nil, fmt.Errorf("%w: bloom shard checksum %08x, want %08x", ErrCorrupt, got, want)
	}
	f := &bloomFilter{k: int(k), bits: make([]uint64, words)}
	for i := range f.bits {
		f.bits[i] = binary.LittleEndian.Uint64(body[bloomHeaderLen+8*i:])
	}
	return f, nil
}
