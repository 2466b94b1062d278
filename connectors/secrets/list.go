package secrets

import (
	"context"
	"strings"

	vault "github.com/hashicorp/vault/api"
)

// AppRoleExists reports whether the AppRole role exists, by reading its
// role ID (the worker's policy may read its own roles' sub-paths; it may not
// list roles, so the reconciler asks by name). Only roles under
// WorkloadRolePrefix are asked about: any other name is refused before it
// reaches Vault, like the other role operations refuse an invalid segment.
func (c *Client) AppRoleExists(ctx context.Context, role string) (bool, error) {
	const op = "approle-exists"
	if err := checkSegment(role); err != nil {
		return false, invalid(op, "invalid role name: "+err.Error())
	}
	if !strings.HasPrefix(role, WorkloadRolePrefix) {
		return false, invalid(op, "role "+role+" is not a workload role ("+WorkloadRolePrefix+"*)")
	}
	rolePath := c.rolePath(role) + "/role-id"
	var found bool
	err := c.call(ctx, op, rolePath, func(ctx context.Context, vc *vault.Client) error {
		s, err := vc.Logical().ReadWithContext(ctx, rolePath)
		if err != nil {
			return ignoreNotFound(nil, err)
		}
		found = s != nil && s.Data["role_id"] != nil
		return nil
	})
	return found, err
}
