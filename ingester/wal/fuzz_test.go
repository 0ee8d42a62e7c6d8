package wal_test

import (
	"errors"
	"os"
	"testing"

	"github.com/vivace-dev/vivace/ingester/wal"
	"github.com/vivace-dev/vivace/internal/model"
)

// FuzzReplay feeds arbitrary bytes after a valid segment header to Replay.
// Replay must not panic, must return the segment, and every trace it reports
// must lie inside the intact prefix and read back. Seeds are in
// testdata/fuzz/FuzzReplay: intact, torn, bit-flipped and zero-filled bodies.
func FuzzReplay(f *testing.F) {
	hdrDir := f.TempDir()
	seg, err := wal.Create(hdrDir, 0)
	if err != nil {
		f.Fatal(err)
	}
	seg.Close()
	header, err := os.ReadFile(segmentFile(hdrDir, 0))
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte{})
	f.Add(rawRecord(rawPayload("t", 1, []byte("abc"))))

	// One file, rewritten for every input: a worker runs inputs one at a time.
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, body []byte) {
		if err := os.WriteFile(segmentFile(dir, 0), append(append([]byte(nil), header...), body...), 0o644); err != nil {
			t.Fatal(err)
		}
		var refs []wal.Ref
		seg, err := wal.Replay(dir, 0, func(_ string, _ model.TraceID, ref wal.Ref) {
			refs = append(refs, ref)
		})
		if seg == nil {
			t.Fatalf("no segment after a valid header: %v", err)
		}
		defer seg.Close()
		if err != nil && !errors.Is(err, wal.ErrCorrupt) {
			t.Fatalf("error does not wrap ErrCorrupt: %v", err)
		}
		size := seg.Size()
		switch {
		case size < headerSize || size > int64(headerSize+len(body)):
			t.Fatalf("size %d outside [%d, %d]", size, headerSize, headerSize+len(body))
		case err == nil && size != int64(headerSize+len(body)):
			t.Fatalf("no error but only %d of %d bytes replayed", size, headerSize+len(body))
		}
		for _, ref := range refs {
			if ref.Offset < headerSize || ref.Offset+int64(ref.Len) > size {
				t.Fatalf("ref %+v outside the intact prefix of %d bytes", ref, size)
			}
			b, err := seg.ReadAt(ref)
			if err != nil {
				t.Fatalf("read %+v: %v", ref, err)
			}
			if len(b) != int(ref.Len) {
				t.Fatalf("read %d bytes for %+v", len(b), ref)
			}
		}
	})
}
