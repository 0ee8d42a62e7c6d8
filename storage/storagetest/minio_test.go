package storagetest

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMinIOBinary(t *testing.T) {
	tests := []struct {
		name             string
		minio, xdg, home string
		want             string
	}{
		{"explicit", "/opt/minio", "/xdg", "/home/u", "/opt/minio"},
		{"xdg cache", "", "/xdg", "/home/u", "/xdg/vivace/bin/minio"},
		{"home cache", "", "", "/home/u", "/home/u/.cache/vivace/bin/minio"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("VIVACE_MINIO", tc.minio)
			t.Setenv("XDG_CACHE_HOME", tc.xdg)
			t.Setenv("HOME", tc.home)
			require.Equal(t, filepath.FromSlash(tc.want), MinIOBinary())
		})
	}
}

func TestBucketPolicy(t *testing.T) {
	doc, err := bucketPolicy([]string{"b1", "b2"})
	require.NoError(t, err)
	var got map[string]any
	require.NoError(t, json.Unmarshal(doc, &got))
	want := map[string]any{
		"Version": "2012-10-17",
		"Statement": []any{
			map[string]any{
				"Effect":   "Allow",
				"Action":   []any{"s3:ListBucket"},
				"Resource": []any{"arn:aws:s3:::b1", "arn:aws:s3:::b2"},
			},
			map[string]any{
				"Effect":   "Allow",
				"Action":   []any{"s3:PutObject", "s3:GetObject", "s3:DeleteObject", "s3:GetObjectTagging", "s3:PutObjectTagging"},
				"Resource": []any{"arn:aws:s3:::b1/*", "arn:aws:s3:::b2/*"},
			},
		},
	}
	require.Equal(t, want, got)
}
