package integration

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vivace-dev/vivace/internal/model"
	"github.com/vivace-dev/vivace/internal/vivacepb"
)

// TestCorruptBlock: with one of two blocks damaged on disk, the process
// keeps serving: traces of the other block are found, search answers with
// them, the damaged block's traces are reported missing with the block
// named, and vivace_querier_corrupt_blocks_total counts it.
func TestCorruptBlock(t *testing.T) {
	v := startVivace(t, "", nil)
	good := []string{"0000000000000000000000000000a001", "0000000000000000000000000000a002", "7a00000000000000000000000000a003"}
	bad := []string{"0000000000000000000000000000b001", "7b00000000000000000000000000b002"}
	sentGood := sendIDs(t, v, good...)
	v.flushAndWait(1)
	sentBad := sendIDs(t, v, bad...)
	v.flushAndWait(2)
	v.stop()
	require.NoError(t, os.RemoveAll(filepath.Join(v.dataDir, "wal")))

	// Find the block holding the bad traces and damage its data.parquet:
	// the first page and the footer.
	metas, err := filepath.Glob(filepath.Join(v.dataDir, "blocks", model.SingleTenant, "*", "meta.json"))
	require.NoError(t, err)
	require.Len(t, metas, 2)
	var badBlock string
	for _, m := range metas {
		b, err := os.ReadFile(m)
		require.NoError(t, err)
		if strings.Contains(string(b), `"minID": "`+bad[0]+`"`) {
			badBlock = filepath.Dir(m)
		}
	}
	require.NotEmpty(t, badBlock)
	data := filepath.Join(badBlock, "data.parquet")
	b, err := os.ReadFile(data)
	require.NoError(t, err)
	for _, at := range []int{4, len(b) - 40} {
		for k := at; k < at+16; k++ {
			b[k] ^= 0xa5
		}
	}
	require.NoError(t, os.WriteFile(data, b, 0o644))
	v.start()

	for id, td := range sentGood {
		for _, api := range []string{"v1", "v2"} {
			got := getByPastedID(t, v, api, true, id)
			require.Equal(t, http.StatusOK, got.code, "%s %s: %s", id, api, got.body)
			require.Equal(t, flatten(t, td), flatten(t, got.td))
		}
	}
	for id := range sentBad {
		got := getByPastedID(t, v, "v2", false, id)
		require.Equal(t, http.StatusNotFound, got.code, got.body)
		require.Contains(t, got.body, "corrupt block "+filepath.Base(badBlock))
	}
	// A low-half lookup scans every block, the damaged one too.
	got := getByPastedID(t, v, "v2", false, "a003")
	require.Equal(t, http.StatusOK, got.code, got.body)
	require.Equal(t, flatten(t, sentGood["7a00000000000000000000000000a003"]), flatten(t, got.td))
	require.Equal(t, vivacepb.PartialStatus_PARTIAL, got.status)
	require.Contains(t, got.message, filepath.Base(badBlock))

	params := url.Values{
		"q":     {"{}"},
		"start": {strconv.FormatInt(time.Now().Add(-time.Hour).Unix(), 10)},
		"end":   {strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10)},
	}
	code, body, _ := v.get("/api/search?" + params.Encode())
	require.Equal(t, http.StatusOK, code, "%s", body)
	var res searchResponse
	decodeStrict(t, body, &res)
	var found []string
	for _, tr := range res.Traces {
		id, err := model.ParseTraceID(tr.TraceID)
		require.NoError(t, err)
		found = append(found, id.String())
	}
	require.ElementsMatch(t, good, found)

	require.Positive(t, v.metric("vivace_querier_corrupt_blocks_total"))
	require.True(t, v.running())
}
