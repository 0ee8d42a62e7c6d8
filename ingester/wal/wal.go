// Package wal is the ingester's write-ahead log: segment files holding pushed
// trace bytes exactly as the distributor sent them. A push is appended with
// one write before it is acknowledged, so a killed process loses nothing it
// acknowledged; replay rebuilds the index of what each segment holds.
//
// Segment file: an 8-byte magic "VVWAL\x00\x00\x01", a 16-byte random segment
// ID, then records. Record: uint32 payload length, uint32 CRC-32C (Castagnoli)
// of the payload, payload; all integers little-endian. Payload: uint16 tenant
// length, tenant, uint32 trace count, then per trace a 16-byte trace ID,
// uint32 length and that many bytes of an encoded OTLP TracesData.
package wal

import (
	"bufio"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/vivace-dev/vivace/internal/model"
)

const (
	magic      = "VVWAL\x00\x00\x01"
	headerSize = len(magic) + 16
	suffix     = ".wal"
	// maxRecord bounds one record so a corrupt length cannot make replay allocate gigabytes.
	maxRecord = 1 << 30
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrClosed is returned for reads from a segment that was closed or removed.
var ErrClosed = errors.New("WAL segment is closed")

// ErrCorrupt is wrapped by replay errors about damaged records.
var ErrCorrupt = errors.New("corrupt WAL record")

// Ref locates one trace's bytes inside a segment.
type Ref struct {
	Offset int64
	Len    uint32
}

// Segment is one WAL file. Append and ReadAt are safe for concurrent use.
type Segment struct {
	Seq  int
	ID   [16]byte
	path string

	mu   sync.Mutex
	f    *os.File
	size int64
	buf  []byte
}

// Segments lists the sequence numbers of the segments in dir, ascending.
func Segments(dir string) ([]int, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read WAL dir: %w", err)
	}
	var seqs []int
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), suffix)
		if !ok || e.IsDir() {
			continue
		}
		seq, err := strconv.Atoi(name)
		if err != nil {
			continue
		}
		seqs = append(seqs, seq)
	}
	slices.Sort(seqs)
	return seqs, nil
}

func segmentPath(dir string, seq int) string {
	return filepath.Join(dir, fmt.Sprintf("%08d%s", seq, suffix))
}

// Create makes a new, empty segment with a fresh random ID.
func Create(dir string, seq int) (*Segment, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create WAL dir: %w", err)
	}
	s := &Segment{Seq: seq, path: segmentPath(dir, seq)}
	if _, err := rand.Read(s.ID[:]); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(s.path, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("create segment: %w", err)
	}
	hdr := append([]byte(magic), s.ID[:]...)
	if _, err := f.Write(hdr); err != nil {
		f.Close()
		return nil, fmt.Errorf("write segment header: %w", err)
	}
	// The header must be durable before any record depends on it.
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, fmt.Errorf("sync segment header: %w", err)
	}
	s.f, s.size = f, int64(headerSize)
	return s, nil
}

// Append writes one record with the traces of one push and returns where
// each trace's bytes are. The data is in the kernel when Append returns, so
// it survives the death of the process.
func (s *Segment) Append(tenant string, ids []model.TraceID, traces [][]byte) ([]Ref, error) {
	if len(tenant) > 0xffff {
		return nil, fmt.Errorf("tenant of %d bytes is too long", len(tenant))
	}
	if len(ids) != len(traces) {
		// The size below counts traces, the record holds ids: a mismatch
		// would write a record that fails its own checksum.
		return nil, fmt.Errorf("%d trace IDs for %d traces", len(ids), len(traces))
	}
	size := 2 + len(tenant) + 4
	for _, t := range traces {
		size += 16 + 4 + len(t)
	}
	if size > maxRecord {
		return nil, fmt.Errorf("push of %d bytes is over the WAL record limit of %d", size, maxRecord)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil, ErrClosed
	}
	b := s.buf[:0]
	b = binary.LittleEndian.AppendUint32(b, uint32(size))
	b = binary.LittleEndian.AppendUint32(b, 0) // CRC, set below
	b = binary.LittleEndian.AppendUint16(b, uint16(len(tenant)))
	b = append(b, tenant...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(ids)))
	refs := make([]Ref, len(ids))
	for i, id := range ids {
		b = append(b, id[:]...)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(traces[i])))
		refs[i] = Ref{Offset: s.size + int64(len(b)), Len: uint32(len(traces[i]))}
		b = append(b, traces[i]...)
	}
	binary.LittleEndian.PutUint32(b[4:], crc32.Checksum(b[8:], castagnoli))
	if _, err := s.f.Write(b); err != nil {
		// A partial write leaves a torn record that replay stops at; later
		// records would be behind it, so this segment takes no more.
		s.f.Close()
		s.f = nil
		return nil, fmt.Errorf("append to WAL: %w", err)
	}
	s.size += int64(len(b))
	if cap(b) <= 4<<20 {
		s.buf = b
	}
	return refs, nil
}

// ReadAt reads the bytes of one trace.
func (s *Segment) ReadAt(ref Ref) ([]byte, error) {
	return s.AppendAt(nil, ref)
}

// AppendAt appends the bytes of one trace to dst.
func (s *Segment) AppendAt(dst []byte, ref Ref) ([]byte, error) {
	s.mu.Lock()
	f := s.f
	s.mu.Unlock()
	if f == nil {
		return dst, ErrClosed
	}
	n := len(dst)
	dst = slices.Grow(dst, int(ref.Len))[:n+int(ref.Len)]
	if _, err := f.ReadAt(dst[n:], ref.Offset); err != nil {
		if errors.Is(err, os.ErrClosed) {
			// Closed or removed after f was taken: the same as before.
			return dst[:n], ErrClosed
		}
		return dst[:n], fmt.Errorf("read WAL segment %d at %d: %w", s.Seq, ref.Offset, err)
	}
	return dst, nil
}

// Size is the number of bytes in the segment file.
func (s *Segment) Size() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.size
}

// Sync flushes the segment to stable storage.
func (s *Segment) Sync() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	return s.f.Sync()
}

// Remove closes and deletes the segment file.
func (s *Segment) Remove() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f != nil {
		s.f.Close()
		s.f = nil
	}
	if err := os.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// Close closes the segment file and keeps it on disk.
func (s *Segment) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}

// Replay opens an existing segment and calls fn for every trace of every
// intact record, in order. A damaged record (a write torn by a crash leaves
// one at the tail; a disk may flip bits anywhere) is skipped: replay resumes
// at the next intact record, if any, so that one bad record costs only its
// own traces. Each damaged stretch is reported in the returned error, which
// comes alongside the segment, usable for reading what was intact.
func Replay(dir string, seq int, fn func(tenant string, id model.TraceID, ref Ref)) (*Segment, error) {
	path := segmentPath(dir, seq)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("open segment: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("stat segment: %w", err)
	}
	fileSize := st.Size()
	s := &Segment{Seq: seq, path: path, f: f}
	r := bufio.NewReaderSize(f, 1<<20)
	hdr := make([]byte, headerSize)
	if _, err := io.ReadFull(r, hdr); err != nil || string(hdr[:len(magic)]) != magic {
		f.Close()
		return nil, fmt.Errorf("%w: segment %d has no valid header", ErrCorrupt, seq)
	}
	copy(s.ID[:], hdr[len(magic):])
	pos := int64(headerSize) // of the next record
	s.size = pos
	var damage []error
	var payload []byte
	for pos < fileSize {
		var rec int64 // length of the record at pos, 0 if damaged
		rec, payload, err = readRecord(r, payload, pos, fileSize)
		if err == nil {
			err = parsePayload(payload, pos+8, fn)
		}
		if err == nil {
			pos += rec
			s.size = pos
			continue
		}
		next, found := resync(f, pos, fileSize)
		if !found {
			damage = append(damage, fmt.Errorf("%w: segment %d at %d: %v (and no intact record after it)", ErrCorrupt, seq, pos, err))
			break
		}
		damage = append(damage, fmt.Errorf("%w: segment %d at %d: %v (skipped %d bytes)", ErrCorrupt, seq, pos, err, next-pos))
		if _, err := f.Seek(next, io.SeekStart); err != nil {
			return s, errors.Join(append(damage, err)...)
		}
		r.Reset(f)
		pos = next
	}
	return s, errors.Join(damage...)
}

// readRecord reads the record at pos from r into payload and returns its
// length with its header, or what is wrong with it.
func readRecord(r io.Reader, payload []byte, pos, fileSize int64) (int64, []byte, error) {
	var lenCRC [8]byte
	if _, err := io.ReadFull(r, lenCRC[:]); err != nil {
		return 0, payload, errors.New("torn record header")
	}
	size := binary.LittleEndian.Uint32(lenCRC[:4])
	if size > maxRecord {
		return 0, payload, fmt.Errorf("length %d", size)
	}
	if int64(size) > fileSize-pos-8 {
		// Checked before allocating: a corrupt length must not cost its size in memory.
		return 0, payload, fmt.Errorf("torn record (length %d, %d bytes left)", size, fileSize-pos-8)
	}
	payload = slices.Grow(payload[:0], int(size))[:size]
	if _, err := io.ReadFull(r, payload); err != nil {
		return 0, payload, errors.New("torn record")
	}
	if crc32.Checksum(payload, castagnoli) != binary.LittleEndian.Uint32(lenCRC[4:]) {
		return 0, payload, errors.New("checksum mismatch")
	}
	return 8 + int64(size), payload, nil
}

// resync finds the first intact record after the damaged one at pos. Its
// own length field is tried first (a flipped payload bit leaves it right);
// then every offset, cheaply ruled out by the payload's tenant header before
// the checksum is computed.
func resync(f *os.File, pos, fileSize int64) (int64, bool) {
	var lenCRC [8]byte
	if _, err := f.ReadAt(lenCRC[:], pos); err == nil {
		if next := pos + 8 + int64(binary.LittleEndian.Uint32(lenCRC[:4])); next < fileSize && recordAt(f, next, fileSize) {
			return next, true
		}
	}
	const window = 1 << 20
	buf := make([]byte, window+8+2+maxTenantLen)
	for base := pos + 1; base+8 < fileSize; base += window {
		n, _ := f.ReadAt(buf[:min(int64(len(buf)), fileSize-base)], base)
		for i := 0; i < window && i+8+2 <= n; i++ {
			size := int64(binary.LittleEndian.Uint32(buf[i:]))
			if size < 2+4 || size > fileSize-base-int64(i)-8 {
				continue
			}
			if tl := int(binary.LittleEndian.Uint16(buf[i+8:])); tl > maxTenantLen {
				continue
			}
			if recordAt(f, base+int64(i), fileSize) {
				return base + int64(i), true
			}
		}
	}
	return 0, false
}

// maxTenantLen is the longest tenant ID (dskit's limit).
const maxTenantLen = 150

// recordAt tells whether an intact, well-formed record starts at off.
func recordAt(f *os.File, off, fileSize int64) bool {
	r := bufio.NewReaderSize(io.NewSectionReader(f, off, fileSize-off), 64<<10)
	_, payload, err := readRecord(r, nil, off, fileSize)
	return err == nil && parsePayload(payload, off+8, func(string, model.TraceID, Ref) {}) == nil
}

func parsePayload(p []byte, base int64, fn func(string, model.TraceID, Ref)) error {
	if len(p) < 2 {
		return errors.New("short payload")
	}
	tl := int(binary.LittleEndian.Uint16(p))
	if len(p) < 2+tl+4 {
		return errors.New("short tenant")
	}
	tenant := string(p[2 : 2+tl])
	n := binary.LittleEndian.Uint32(p[2+tl:])
	off := 2 + tl + 4
	type entry struct {
		id  model.TraceID
		ref Ref
	}
	entries := make([]entry, 0, min(int(n), len(p)/20))
	for range n {
		if len(p)-off < 20 {
			return errors.New("short trace header")
		}
		var id model.TraceID
		copy(id[:], p[off:])
		l := binary.LittleEndian.Uint32(p[off+16:])
		off += 20
		if uint64(len(p)-off) < uint64(l) {
			return errors.New("short trace")
		}
		entries = append(entries, entry{id, Ref{Offset: base + int64(off), Len: l}})
		off += int(l)
	}
	if off != len(p) {
		return errors.New("trailing bytes")
	}
	// The record is valid as a whole: only now is it reported.
	for _, e := range entries {
		fn(tenant, e.id, e.ref)
	}
	return nil
}
