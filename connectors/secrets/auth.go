package secrets

import (
	"context"
	"time"

	"github.com/joinery/joinery/connectors"
)

// minTokenTTL is the remaining lifetime below which renewing is pointless
// (the token is at its max TTL) and the client logs in again instead.
const minTokenTTL = 30 * time.Second

// freshToken renews or replaces an AppRole token that is two thirds through
// its lifetime, and returns the login generation the caller's request runs
// under. Token auth is left alone: the operator owns that token's lifecycle.
func (c *Client) freshToken(ctx context.Context) (uint64, error) {
	if c.login == nil {
		return 0, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.renewAt.IsZero() || c.now().Before(c.renewAt) {
		return c.gen, nil
	}
	if c.renewable && c.expiresAt.Sub(c.now()) > minTokenTTL {
		sec, err := c.vc.Auth().Token().RenewSelfWithContext(ctx, 0)
		if err == nil && sec != nil && sec.Auth != nil {
			ttl := time.Duration(sec.Auth.LeaseDuration) * time.Second
			if ttl > minTokenTTL {
				c.setLeaseLocked(ttl, sec.Auth.Renewable)
				return c.gen, nil
			}
		}
		// Renewal failed or the token reached its max TTL: fall through to a
		// fresh login, which is what renewal was buying time for anyway.
	}
	if err := c.loginLocked(ctx); err != nil {
		return 0, err
	}
	return c.gen, nil
}

// relogin logs in again after a 403, unless another request already did so
// since gen was observed.
func (c *Client) relogin(ctx context.Context, gen uint64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return nil
	}
	return c.loginLocked(ctx)
}

// loginLocked performs the AppRole login and installs the new token.
// c.mu must be held.
func (c *Client) loginLocked(ctx context.Context) error {
	path := "auth/" + c.cfg.AppRoleMount + "/login"
	sec, err := c.login.Logical().WriteWithContext(ctx, path, map[string]any{
		"role_id":   c.cfg.RoleID,
		"secret_id": c.cfg.SecretID,
	})
	if err != nil {
		return classify("approle-login", path, err)
	}
	if sec == nil || sec.Auth == nil || sec.Auth.ClientToken == "" {
		return connectors.Transient(system, "approle-login", TypeUnavailable, "AppRole login at "+path+" returned no token", nil)
	}
	c.vc.SetToken(sec.Auth.ClientToken)
	c.gen++
	c.setLeaseLocked(time.Duration(sec.Auth.LeaseDuration)*time.Second, sec.Auth.Renewable)
	return nil
}

// setLeaseLocked records a token lease. A zero TTL means the token does not
// expire (e.g. a role with no TTL on a mount without one), so no renewal.
func (c *Client) setLeaseLocked(ttl time.Duration, renewable bool) {
	if ttl <= 0 {
		c.renewAt, c.expiresAt, c.renewable = time.Time{}, time.Time{}, false
		return
	}
	now := c.now()
	c.expiresAt = now.Add(ttl)
	c.renewAt = now.Add(ttl * 2 / 3)
	c.renewable = renewable
}
