package model_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vivace-dev/vivace/internal/model"
)

func TestResolveTenant(t *testing.T) {
	for _, tc := range []struct {
		name         string
		multitenancy bool
		header       string
		want         string
		wantErr      string
	}{
		{name: "single tenant ignores the header", header: "team-a", want: model.SingleTenant},
		{name: "single tenant without header", want: model.SingleTenant},
		{name: "multitenancy with header", multitenancy: true, header: "team-a", want: "team-a"},
		{name: "multitenancy without header", multitenancy: true, wantErr: "X-Scope-OrgID header is required"},
		{name: "multitenancy with a slash", multitenancy: true, header: "a/b", wantErr: `tenant "a/b"`},
		{name: "multitenancy with dot-dot", multitenancy: true, header: "..", wantErr: `tenant ".."`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := model.ResolveTenant(tc.multitenancy, tc.header)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}
