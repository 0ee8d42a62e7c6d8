package model

import (
	"fmt"

	"github.com/grafana/dskit/tenant"
)

// SingleTenant is the tenant of every request when multitenancy is off.
const SingleTenant = "single-tenant"

// TenantHeader carries the tenant on HTTP requests; its lower-case form is
// the gRPC metadata key.
const TenantHeader = "X-Scope-OrgID"

// ResolveTenant returns the tenant for a request whose tenant header is
// header: always SingleTenant without multitenancy, else the validated header.
func ResolveTenant(multitenancy bool, header string) (string, error) {
	if !multitenancy {
		return SingleTenant, nil
	}
	if header == "" {
		return "", fmt.Errorf("no tenant: the %s header is required when multitenancy is enabled", TenantHeader)
	}
	if err := tenant.ValidTenantID(header); err != nil {
		return "", fmt.Errorf("tenant %q: %w", header, err)
	}
	return header, nil
}
