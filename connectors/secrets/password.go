package secrets

import (
	"context"
	"strings"

	vault "github.com/hashicorp/vault/api"

	"github.com/joinery/joinery/connectors"
)

// InitialPasswordPolicyHCL is the Vault password policy for joiners' initial
// credentials: 20 characters with at least one lower-case letter, upper-case
// letter, digit and symbol, which satisfies Active Directory's complexity rule
// and common LDAP ppolicy settings. The symbols leave out quotes, backslash
// and whitespace, the characters most often mangled when a password is pasted
// from a message or passed through LDAP tooling.
const InitialPasswordPolicyHCL = `length = 20
rule "charset" {
  charset   = "abcdefghijklmnopqrstuvwxyz"
  min-chars = 1
}
rule "charset" {
  charset   = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
  min-chars = 1
}
rule "charset" {
  charset   = "0123456789"
  min-chars = 1
}
rule "charset" {
  charset   = "!@#$%^&*-_=+"
  min-chars = 1
}
`

// GeneratePassword asks Vault for a password from the configured policy
// (sys/policies/password/<policy>/generate). The value is returned to the
// caller only; it is never logged or put in an error.
func (c *Client) GeneratePassword(ctx context.Context) (string, error) {
	const op = "password-generate"
	apiPath := "sys/policies/password/" + c.cfg.PasswordPolicy + "/generate"
	var pw string
	err := c.call(ctx, op, apiPath, func(ctx context.Context, vc *vault.Client) error {
		sec, err := vc.Logical().ReadWithContext(ctx, apiPath)
		if err != nil {
			return err
		}
		if sec == nil {
			return connectors.Permanent(system, op, TypeNotFound, "password policy "+c.cfg.PasswordPolicy+" does not exist", nil)
		}
		s, _ := sec.Data["password"].(string)
		if s == "" {
			return connectors.Transient(system, op, TypeUnavailable, "Vault returned no password from "+apiPath, nil)
		}
		pw = s
		return nil
	})
	return pw, err
}

// EnsurePasswordPolicy makes the password policy name hold hcl. It reads
// first and writes only when the policy is absent or different, so a worker
// whose Vault policy grants read but not write on an already-correct password
// policy still starts. Running it again changes nothing.
func (c *Client) EnsurePasswordPolicy(ctx context.Context, name, hcl string) error {
	const op = "password-policy"
	if err := checkSegment(name); err != nil {
		return invalid(op, "invalid password policy name: "+err.Error())
	}
	if strings.TrimSpace(hcl) == "" {
		return invalid(op, "empty password policy "+name)
	}
	apiPath := "sys/policies/password/" + name
	var current string
	err := c.call(ctx, op, apiPath, func(ctx context.Context, vc *vault.Client) error {
		sec, err := vc.Logical().ReadWithContext(ctx, apiPath)
		if sec != nil {
			current, _ = sec.Data["policy"].(string)
		}
		return err
	})
	if err != nil {
		return err
	}
	if strings.TrimSpace(current) == strings.TrimSpace(hcl) {
		return nil
	}
	// Vault validates the policy on write (it must be able to generate a
	// password from it), so a bad policy surfaces here as VaultRejected.
	return c.call(ctx, op, apiPath, func(ctx context.Context, vc *vault.Client) error {
		_, err := vc.Logical().WriteWithContext(ctx, apiPath, map[string]any{"policy": hcl})
		return err
	})
}
