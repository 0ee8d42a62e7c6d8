package model_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vivace-dev/vivace/internal/model"
)

func TestReadTraceID(t *testing.T) {
	type reading struct{ id, form string }
	hex := func(id string) reading { return reading{id, "hex"} }
	dec := func(id string) reading { return reading{id, "decimal"} }
	for _, tc := range []struct {
		name    string
		in      string
		want    []reading
		wantErr string // substring of the error
	}{
		{name: "32 hex digits", in: "4bf92f3577b34da6a3ce929d0e0e4736", want: []reading{hex("4bf92f3577b34da6a3ce929d0e0e4736")}},
		{name: "upper case", in: "4BF92F3577B34DA6A3CE929D0E0E4736", want: []reading{hex("4bf92f3577b34da6a3ce929d0e0e4736")}},
		{name: "16 hex digits, left-padded", in: "a3ce929d0e0e4736", want: []reading{hex("0000000000000000a3ce929d0e0e4736")}},
		{name: "odd number of hex digits", in: "abc", want: []reading{hex("00000000000000000000000000000abc")}},
		{name: "surrounding white space", in: " \tabc\n", want: []reading{hex("00000000000000000000000000000abc")}},
		{
			name: "Datadog decimal is also hex: both readings, hex first",
			in:   "11803532876627986230",
			want: []reading{hex("00000000000011803532876627986230"), dec("0000000000000000a3ce929d0e0e4736")},
		},
		{name: "short decimal", in: "12", want: []reading{hex("00000000000000000000000000000012"), dec("0000000000000000000000000000000c")}},
		{name: "one digit reads the same both ways", in: "7", want: []reading{hex("00000000000000000000000000000007")}},
		{name: "max uint64", in: "18446744073709551615", want: []reading{hex("00000000000018446744073709551615"), dec("0000000000000000ffffffffffffffff")}},
		{name: "decimal over 64 bits is hex only", in: "18446744073709551616", want: []reading{hex("00000000000018446744073709551616")}},
		{name: "32 decimal digits are hex only", in: "12345678901234567890123456789012", want: []reading{hex("12345678901234567890123456789012")}},
		{
			name: "decimal with leading zeros",
			in:   "00000000000000000000000000000000000000000012",
			want: []reading{dec("0000000000000000000000000000000c")},
		},
		{name: "UUID", in: "4bf92f35-77b3-4da6-a3ce-929d0e0e4736", want: []reading{{"4bf92f3577b34da6a3ce929d0e0e4736", "UUID"}}},
		{name: "UUID upper case", in: "4BF92F35-77B3-4DA6-A3CE-929D0E0E4736", want: []reading{{"4bf92f3577b34da6a3ce929d0e0e4736", "UUID"}}},
		{
			name: "traceparent",
			in:   "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
			want: []reading{{"4bf92f3577b34da6a3ce929d0e0e4736", "traceparent"}},
		},
		{
			name: "traceparent of a later version, with more fields",
			in:   "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09-what-comes-next",
			want: []reading{{"4bf92f3577b34da6a3ce929d0e0e4736", "traceparent"}},
		},
		{
			name: "traceparent of a 64-bit tracer",
			in:   "00-0000000000000000a3ce929d0e0e4736-00f067aa0ba902b7-00",
			want: []reading{{"0000000000000000a3ce929d0e0e4736", "traceparent"}},
		},

		{name: "empty", in: "", wantErr: "empty"},
		{name: "only white space", in: "  ", wantErr: "empty"},
		{name: "garbage", in: "xyz", wantErr: `"xyz" has 'x' at position 1, only hex digits are allowed`},
		{name: "hex then garbage", in: "abcg", wantErr: `has 'g' at position 4`},
		{name: "33 hex digits", in: strings.Repeat("a", 33), wantErr: "has 33 characters, at most 32 hex digits"},
		{name: "longer than any form", in: strings.Repeat("1", 129), wantErr: "has 129 characters, at most 128 are allowed"},
		{name: "all zeros", in: "0000", wantErr: "all zeros"},
		{name: "one zero", in: "0", wantErr: "all zeros"},
		{name: "negative decimal", in: "-42", wantErr: "neither a UUID (8-4-4-4-12 hex digits) nor a traceparent"},
		{name: "dashes of no known shape", in: "0123-4567", wantErr: `"0123-4567" has dashes but is neither a UUID`},
		{name: "UUID with a short group", in: "4bf92f35-77b3-4da6-a3ce-929d0e0e473", wantErr: "is not a UUID: its groups have 8-4-4-4-11 characters"},
		{name: "UUID with a non-hex digit", in: "4bf92f35-77b3-4da6-a3ce-929d0e0e473x", wantErr: `is not a UUID: 'x' at position 36 is not a hex digit`},
		{name: "nil UUID", in: "00000000-0000-0000-0000-000000000000", wantErr: "the trace ID is all zeros"},
		{name: "traceparent with a short trace-id", in: "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01", wantErr: `trace-id "4bf92f3577b34da6a3ce929d0e0e473" is not 32 hex digits`},
		{name: "traceparent with a bad parent-id", in: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902bz-01", wantErr: `parent-id "00f067aa0ba902bz" is not 16 hex digits`},
		{name: "traceparent with bad flags", in: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1", wantErr: `trace-flags "1" is not 2 hex digits`},
		{name: "traceparent version ff", in: "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", wantErr: "version ff is invalid"},
		{name: "traceparent version 00 with 5 fields", in: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x", wantErr: "version 00 has 4 fields, this has 5"},
		{name: "traceparent with a bad version", in: "0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", wantErr: `version "0g" is not 2 hex digits`},
		{name: "traceparent with a zero trace-id", in: "00-00000000000000000000000000000000-00f067aa0ba902b7-01", wantErr: "all zeros"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := model.ReadTraceID(tc.in)
			if tc.wantErr != "" {
				require.ErrorIs(t, err, model.ErrInvalidTraceID)
				require.ErrorContains(t, err, tc.wantErr)
				require.Nil(t, got)
				return
			}
			require.NoError(t, err)
			var readings []reading
			for _, r := range got {
				readings = append(readings, reading{r.ID.String(), r.Form.String()})
			}
			require.Equal(t, tc.want, readings)
		})
	}
}

func TestReadTraceIDLongInputTruncatedInMessage(t *testing.T) {
	for _, in := range []string{strings.Repeat("c", 10_000), strings.Repeat("c-", 60), strings.Repeat("9", 100)} {
		_, err := model.ReadTraceID(in)
		require.Error(t, err)
		require.Less(t, len(err.Error()), 200, "a long input is not echoed whole")
	}
}

func TestTraceIDHalves(t *testing.T) {
	id, err := model.ParseTraceID("4bf92f3577b34da6a3ce929d0e0e4736")
	require.NoError(t, err)
	require.False(t, id.Is64Bit())
	require.Equal(t, uint64(11803532876627986230), id.Low64())
	low, err := model.ParseTraceID("a3ce929d0e0e4736")
	require.NoError(t, err)
	require.True(t, low.Is64Bit())
	require.Equal(t, id.Low64(), low.Low64())
}

// FuzzReadTraceID: any input gives readings or an ErrInvalidTraceID error,
// never a panic, and readings agree with the input.
func FuzzReadTraceID(f *testing.F) {
	for _, s := range []string{"", "0", "7", "abc", "11803532876627986230", "4bf92f35-77b3-4da6-a3ce-929d0e0e4736",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "-", "--", "ff-", " 1 "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := model.ReadTraceID(s)
		if err != nil {
			require.ErrorIs(t, err, model.ErrInvalidTraceID)
			require.Nil(t, got)
			// Inputs are quoted cut to 40 bytes (each up to 4 characters once quoted).
			require.Less(t, len(err.Error()), 600, "a long input is not echoed whole")
			return
		}
		require.NotEmpty(t, got)
		require.LessOrEqual(t, len(got), 2)
		trimmed := strings.TrimSpace(s)
		require.LessOrEqual(t, len(trimmed), model.MaxPastedTraceID)
		for i, r := range got {
			require.False(t, r.ID.IsZero())
			// The canonical form of every reading reads back as that ID, in hex.
			again, err := model.ReadTraceID(r.ID.String())
			require.NoError(t, err)
			require.Equal(t, model.TraceIDReading{ID: r.ID, Form: model.FormHex}, again[0])
			switch r.Form {
			case model.FormHex:
				require.Zero(t, i, "the hex reading comes first")
				id, err := model.ParseTraceID(trimmed)
				require.NoError(t, err)
				require.Equal(t, id, r.ID)
			case model.FormDecimal:
				require.True(t, r.ID.Is64Bit())
				n, err := strconv.ParseUint(trimmed, 10, 64)
				require.NoError(t, err)
				require.Equal(t, n, r.ID.Low64())
			case model.FormUUID, model.FormTraceparent:
				require.Len(t, got, 1)
				require.Contains(t, strings.ToLower(strings.ReplaceAll(trimmed, "-", "")), r.ID.String())
			default:
				t.Fatalf("unknown form %v", r.Form)
			}
		}
		if len(got) == 2 {
			require.NotEqual(t, got[0].ID, got[1].ID)
		}
	})
}
