package model_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vivace-dev/vivace/internal/model"
)

func TestParseTraceID(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      string
		want    string // 32-digit lower-case form, when no error
		wantErr string // substring of the error, when an error is expected
	}{
		{name: "32 hex digits", in: "0123456789abcdef0123456789abcdef", want: "0123456789abcdef0123456789abcdef"},
		{name: "upper case", in: "0123456789ABCDEF0123456789ABCDEF", want: "0123456789abcdef0123456789abcdef"},
		{name: "mixed case", in: "aBcDeF", want: "00000000000000000000000000abcdef"},
		{name: "64-bit ID padded left", in: "463ac35c9f6413ad", want: "0000000000000000463ac35c9f6413ad"},
		{name: "odd length padded left", in: "abc", want: "00000000000000000000000000000abc"},
		{name: "1 digit", in: "1", want: "00000000000000000000000000000001"},
		{name: "leading zeros kept", in: "00000000000000000000000000000001", want: "00000000000000000000000000000001"},
		{name: "33 characters", in: strings.Repeat("a", 33), wantErr: "has 33 characters, at most 32"},
		{name: "very long is quoted truncated", in: strings.Repeat("b", 100), wantErr: "has 100 characters"},
		{name: "non-hex first", in: "x123", wantErr: `has 'x' at position 1`},
		{name: "non-hex in the middle", in: "0123456789abcdeg", wantErr: `has 'g' at position 16`},
		{name: "non-hex last of 32", in: "0123456789abcdef0123456789abcde-", wantErr: `has '-' at position 32`},
		{name: "dashes of a UUID", in: "01234567-89ab-cdef", wantErr: `has '-' at position 9`},
		{name: "0x prefix", in: "0x1", wantErr: `has 'x' at position 2`},
		{name: "space", in: " 1", wantErr: `has ' ' at position 1`},
		{name: "empty", in: "", wantErr: "empty"},
		{name: "all zeros", in: strings.Repeat("0", 32), wantErr: "all zeros"},
		{name: "one zero", in: "0", wantErr: "all zeros"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, err := model.ParseTraceID(tc.in)
			if tc.wantErr != "" {
				require.ErrorIs(t, err, model.ErrInvalidTraceID)
				require.ErrorContains(t, err, tc.wantErr)
				require.True(t, id.IsZero(), "no ID on error")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, id.String())
			// The canonical form parses back to the same ID.
			again, err := model.ParseTraceID(id.String())
			require.NoError(t, err)
			require.Equal(t, id, again)
		})
	}
}

func TestParseTraceIDLongInputTruncatedInMessage(t *testing.T) {
	_, err := model.ParseTraceID(strings.Repeat("c", 10_000))
	require.Error(t, err)
	require.Less(t, len(err.Error()), 200, "a huge input is not echoed whole")
}

func TestTraceIDFromBytes(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      []byte
		want    string
		wantErr string
	}{
		{name: "16 bytes", in: []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}, want: "0102030405060708090a0b0c0d0e0f10"},
		{name: "8 bytes padded left", in: []byte{0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 1}, want: "0000000000000000deadbeef00000001"},
		{name: "1 byte", in: []byte{0xff}, want: "000000000000000000000000000000ff"},
		{name: "empty", in: nil, wantErr: "0 bytes, want 1 to 16"},
		{name: "17 bytes", in: make([]byte, 17), wantErr: "17 bytes, want 1 to 16"},
		{name: "all zeros", in: make([]byte, 16), wantErr: "all zeros"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, err := model.TraceIDFromBytes(tc.in)
			if tc.wantErr != "" {
				require.ErrorIs(t, err, model.ErrInvalidTraceID)
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, id.String())
		})
	}
}

func TestTraceIDCompare(t *testing.T) {
	a, b := model.TraceID{0: 1}, model.TraceID{15: 0xff}
	require.Equal(t, 1, a.Compare(b), "big-endian: the first byte weighs most")
	require.Equal(t, -1, b.Compare(a))
	require.Equal(t, 0, a.Compare(a))
}
