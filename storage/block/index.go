package block

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"sort"

	"github.com/vivace-dev/vivace/internal/model"
)

// The index: where the parquet footer is and, per row group, which trace IDs
// it holds and which bytes of data.parquet hold its column chunks. FORMAT.md
// ("index") is the reference.

const (
	indexMagic      = "VIDX"
	indexVersion    = 1
	indexHeaderLen  = 4 + 4 + 8 + 8 + 8 + 4 // magic, version, tail offset, footer offset, footer length, row groups
	indexEntryLen   = 16 + 16 + 8 + 8       // min ID, max ID, offset, length
	indexTrailerLen = 4                     // CRC-32C
)

// rowGroupEntry locates one row group.
type rowGroupEntry struct {
	MinID, MaxID   model.TraceID
	Offset, Length int64 // bytes of data.parquet covering all its column chunks
}

// blockIndex is the decoded index object.
type blockIndex struct {
	// TailOffset is where the row groups end and the page indexes start:
	// bytes [TailOffset, FooterOffset+FooterLength) are what a reader caches.
	TailOffset int64
	// FooterOffset and FooterLength locate the thrift FileMetaData (without
	// the 4-byte length and "PAR1" that follow it).
	FooterOffset, FooterLength int64
	RowGroups                  []rowGroupEntry
}

func (x *blockIndex) marshal() []byte {
	b := make([]byte, 0, indexHeaderLen+indexEntryLen*len(x.RowGroups)+indexTrailerLen)
	b = append(b, indexMagic...)
	b = binary.LittleEndian.AppendUint32(b, indexVersion)
	b = binary.LittleEndian.AppendUint64(b, uint64(x.TailOffset))
	b = binary.LittleEndian.AppendUint64(b, uint64(x.FooterOffset))
	b = binary.LittleEndian.AppendUint64(b, uint64(x.FooterLength))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(x.RowGroups)))
	for _, rg := range x.RowGroups {
		b = append(b, rg.MinID[:]...)
		b = append(b, rg.MaxID[:]...)
		b = binary.LittleEndian.AppendUint64(b, uint64(rg.Offset))
		b = binary.LittleEndian.AppendUint64(b, uint64(rg.Length))
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// decodeIndex decodes and checks an index against the size of data.parquet:
// row groups are non-empty, ordered, non-overlapping in IDs and bytes, and
// inside the file before the footer.
func decodeIndex(b []byte, dataSize int64) (*blockIndex, error) {
	if len(b) < indexHeaderLen+indexTrailerLen {
		return nil, fmt.Errorf("%w: index of %d bytes is too short", ErrCorrupt, len(b))
	}
	if string(b[:4]) != indexMagic {
		return nil, fmt.Errorf("%w: index magic %q", ErrCorrupt, b[:4])
	}
	if v := binary.LittleEndian.Uint32(b[4:]); v != indexVersion {
		return nil, fmt.Errorf("%w: index version %d", ErrCorrupt, v)
	}
	n := uint64(binary.LittleEndian.Uint32(b[32:]))
	if want := indexHeaderLen + indexEntryLen*n + indexTrailerLen; uint64(len(b)) != want || n == 0 {
		return nil, fmt.Errorf("%w: index of %d row groups has %d bytes", ErrCorrupt, n, len(b))
	}
	body := b[:len(b)-indexTrailerLen]
	if got, want := crc32.Checksum(body, castagnoli), binary.LittleEndian.Uint32(b[len(body):]); got != want {
		return nil, fmt.Errorf("%w: index checksum %08x, want %08x", ErrCorrupt, got, want)
	}
	x := &blockIndex{
		TailOffset:   int64(binary.LittleEndian.Uint64(b[8:])),
		FooterOffset: int64(binary.LittleEndian.Uint64(b[16:])),
		FooterLength: int64(binary.LittleEndian.Uint64(b[24:])),
		RowGroups:    make([]rowGroupEntry, n),
	}
	// The footer sits between the last row group and the 8-byte tail.
	if x.FooterOffset < 4 || x.FooterLength < 1 || x.FooterOffset > dataSize-8 || x.FooterLength != dataSize-8-x.FooterOffset {
		return nil, fmt.Errorf("%w: index puts the footer at %d+%d in %d bytes", ErrCorrupt, x.FooterOffset, x.FooterLength, dataSize)
	}
	if x.TailOffset < 4 || x.TailOffset > x.FooterOffset {
		return nil, fmt.Errorf("%w: index puts the tail at %d, footer at %d", ErrCorrupt, x.TailOffset, x.FooterOffset)
	}
	pos := int64(4) // after the leading "PAR1"
	for i := range x.RowGroups {
		e := body[indexHeaderLen+indexEntryLen*i:]
		rg := &x.RowGroups[i]
		copy(rg.MinID[:], e[0:16])
		copy(rg.MaxID[:], e[16:32])
		rg.Offset = int64(binary.LittleEndian.Uint64(e[32:]))
		rg.Length = int64(binary.LittleEndian.Uint64(e[40:]))
		switch {
		case rg.MinID.Compare(rg.MaxID) > 0:
			return nil, fmt.Errorf("%w: index row group %d: min ID %s above max ID %s", ErrCorrupt, i, rg.MinID, rg.MaxID)
		case i > 0 && x.RowGroups[i-1].MaxID.Compare(rg.MinID) >= 0:
			return nil, fmt.Errorf("%w: index row group %d: IDs overlap the previous row group", ErrCorrupt, i)
		case rg.Offset < pos || rg.Length < 1 || rg.Length > x.TailOffset-rg.Offset:
			return nil, fmt.Errorf("%w: index row group %d: bytes %d+%d outside %d..%d", ErrCorrupt, i, rg.Offset, rg.Length, pos, x.TailOffset)
		}
		pos = rg.Offset + rg.Length
	}
	return x, nil
}

// find returns the row group whose ID range holds id, or -1.
func (x *blockIndex) find(id model.TraceID) int {
	i := sort.Search(len(x.RowGroups), func(i int) bool { return x.RowGroups[i].MaxID.Compare(id) >= 0 })
	if i == len(x.RowGroups) || x.RowGroups[i].MinID.Compare(id) > 0 {
		return -1
	}
	return i
}
