package secrets

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/joinery/joinery/connectors"
)

// AppRoleOptions configures an AppRole role for a non-human joiner. Zero
// values leave Vault's defaults (mount/system TTLs, unlimited uses, no CIDR
// binding) in place.
type AppRoleOptions struct {
	// TokenPolicies are the ACL policies of tokens issued to the role.
	TokenPolicies []string
	// TokenTTL and TokenMaxTTL bound the issued tokens' lifetime.
	TokenTTL, TokenMaxTTL time.Duration
	// SecretIDNumUses limits logins per SecretID (0 = unlimited).
	SecretIDNumUses int
	// SecretIDTTL bounds a SecretID's lifetime.
	SecretIDTTL time.Duration
	// TokenBoundCIDRs and SecretIDBoundCIDRs restrict where tokens may be
	// used and from where SecretIDs may log in.
	TokenBoundCIDRs, SecretIDBoundCIDRs []string
	// TokenNoDefaultPolicy issues tokens without Vault's default policy
	// (token_no_default_policy), so the role's policies must grant
	// everything the token needs, renew-self and lookup-self included.
	TokenNoDefaultPolicy bool
}

// WritePolicy creates or replaces the ACL policy name (sys/policies/acl).
// It is an operator operation (the bootstrap installs the workload policies
// with it): the worker's own policy does not allow it, because writing
// policy text of one's choosing is the way to root.
func (c *Client) WritePolicy(ctx context.Context, name, hcl string) error {
	const op = "policy-write"
	if err := checkSegment(name); err != nil {
		return invalid(op, "invalid policy name: "+err.Error())
	}
	if strings.TrimSpace(hcl) == "" {
		return invalid(op, "empty ACL policy "+name)
	}
	apiPath := "sys/policies/acl/" + name
	return c.call(ctx, op, apiPath, func(ctx context.Context, vc *vault.Client) error {
		_, err := vc.Logical().WriteWithContext(ctx, apiPath, map[string]any{"policy": hcl})
		return err
	})
}

// DeletePolicy deletes the ACL policy name; an absent policy counts as deleted.
// The worker may delete only the per-joiner policies (joinery-nhi-*) that
// workloads provisioned before the workload catalogue existed still use.
func (c *Client) DeletePolicy(ctx context.Context, name string) error {
	const op = "policy-delete"
	if err := checkSegment(name); err != nil {
		return invalid(op, "invalid policy name: "+err.Error())
	}
	apiPath := "sys/policies/acl/" + name
	return c.call(ctx, op, apiPath, func(ctx context.Context, vc *vault.Client) error {
		return ignoreNotFound(vc.Logical().DeleteWithContext(ctx, apiPath))
	})
}

// CreateAppRole creates or updates the AppRole role name with opts (an
// update replaces every option set here) and returns its RoleID, which is an
// identifier, not a secret.
func (c *Client) CreateAppRole(ctx context.Context, name string, opts AppRoleOptions) (string, error) {
	const op = "approle-create"
	if err := checkSegment(name); err != nil {
		return "", invalid(op, "invalid role name: "+err.Error())
	}
	for _, p := range opts.TokenPolicies {
		if err := checkSegment(p); err != nil {
			return "", invalid(op, "invalid token policy name: "+err.Error())
		}
	}
	rolePath := c.rolePath(name)
	body := map[string]any{
		"token_policies":        nonNil(opts.TokenPolicies),
		"token_ttl":             seconds(opts.TokenTTL),
		"token_max_ttl":         seconds(opts.TokenMaxTTL),
		"secret_id_num_uses":    opts.SecretIDNumUses,
		"secret_id_ttl":         seconds(opts.SecretIDTTL),
		"token_bound_cidrs":     nonNil(opts.TokenBoundCIDRs),
		"secret_id_bound_cidrs": nonNil(opts.SecretIDBoundCIDRs),
	}
	if opts.TokenNoDefaultPolicy {
		// Sent only when set: the worker's policy does not list this
		// parameter for workload roles, and Vault refuses an unlisted
		// parameter even at its default value.
		body["token_no_default_policy"] = true
	}
	err := c.call(ctx, op, rolePath, func(ctx context.Context, vc *vault.Client) error {
		_, err := vc.Logical().WriteWithContext(ctx, rolePath, body)
		return err
	})
	if err != nil {
		return "", err
	}
	var roleID string
	idPath := rolePath + "/role-id"
	err = c.call(ctx, op, idPath, func(ctx context.Context, vc *vault.Client) error {
		sec, err := vc.Logical().ReadWithContext(ctx, idPath)
		if err != nil {
			return err
		}
		if sec != nil {
			roleID, _ = sec.Data["role_id"].(string)
		}
		if roleID == "" {
			return connectors.Transient(system, op, TypeUnavailable, "Vault returned no role ID from "+idPath, nil)
		}
		return nil
	})
	return roleID, err
}

// WrappedSecretID issues a new SecretID for role, response-wrapped for ttl,
// so that only the non-human joiner's bootstrap (whoever unwraps first) ever
// sees it. The Handover's Path is the role's secret-id API path. It carries
// no metadata, so a workload-policy role gets nothing from it: use
// IssueWorkload for workloads.
func (c *Client) WrappedSecretID(ctx context.Context, role string, ttl time.Duration) (string, Handover, error) {
	const op = "approle-secret-id"
	if err := checkSegment(role); err != nil {
		return "", Handover{}, invalid(op, "invalid role name: "+err.Error())
	}
	if err := checkWrapTTL(ttl); err != nil {
		return "", Handover{}, invalid(op, err.Error())
	}
	return c.wrappedSecretID(ctx, role, ttl, nil)
}

// DeleteAppRole deletes the role (and with it every SecretID issued for it);
// an absent role counts as deleted.
func (c *Client) DeleteAppRole(ctx context.Context, name string) error {
	const op = "approle-delete"
	if err := checkSegment(name); err != nil {
		return invalid(op, "invalid role name: "+err.Error())
	}
	rolePath := c.rolePath(name)
	return c.call(ctx, op, rolePath, func(ctx context.Context, vc *vault.Client) error {
		return ignoreNotFound(vc.Logical().DeleteWithContext(ctx, rolePath))
	})
}

func (c *Client) rolePath(name string) string {
	return "auth/" + c.cfg.AppRoleMount + "/role/" + name
}

// ignoreNotFound drops the secret of a delete and treats 404 as success.
func ignoreNotFound(_ *vault.Secret, err error) error {
	if statusCode(err) == http.StatusNotFound {
		return nil
	}
	return err
}

// seconds formats a duration for Vault's TTL fields ("0s" = default).
func seconds(d time.Duration) string {
	return fmt.Sprintf("%ds", int64(d/time.Second))
}

// nonNil turns a nil slice into an empty one, so that an update clears the
// field instead of sending JSON null.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
