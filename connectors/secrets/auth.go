package secrets

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/joinery/joinery/connectors"
)

// minTokenTTL is the remaining lifetime below which renewing is pointless
// (the token is at its max TTL) and the client logs in again instead.
const minTokenTTL = 30 * time.Second

// freshToken renews or replaces an AppRole token that is two thirds through
// its lifetime, and returns the login generation the caller's request runs
// under. Token auth is left alone: the operator owns that token's lifecycle
// (with a TokenFile, a 403 re-reads it: see call).
func (c *Client) freshToken(ctx context.Context) (uint64, error) {
	if c.login == nil && c.cfg.TokenFile == "" {
		return 0, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.login == nil {
		// A token from a file: the generation tells a 403 whether the
		// file was already re-read since this request started.
		return c.gen, nil
	}
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

// readTokenFile reads a Vault token from path: the first line, trimmed.
// Errors name the file, never its content.
func readTokenFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", connectors.Permanent(system, "token-file", TypeInvalidRequest, fmt.Sprintf("cannot read the Vault token file %s", path), err)
	}
	tok, _, _ := strings.Cut(string(b), "\n")
	tok = strings.TrimSpace(tok)
	if tok == "" {
		return "", connectors.Permanent(system, "token-file", TypeInvalidRequest, "the Vault token file "+path+" is empty", nil)
	}
	return tok, nil
}

// tokenFromFile re-reads TokenFile after a 403 and returns a client to
// retry with: the current one when a concurrent request already adopted a
// new token since gen was observed (tok is then ""), or a fresh client
// holding the file's token when it differs from the one in use. ok is false
// when there is nothing new to try. Who can write the file can already
// choose the worker's token at its next start, so re-reading it grants
// nobody anything new.
func (c *Client) tokenFromFile(gen uint64) (vc *vault.Client, tok string, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return c.vc, "", true
	}
	tok, err := readTokenFile(c.cfg.TokenFile)
	if err != nil || tok == c.fileToken {
		return nil, "", false
	}
	vc, err = newAPIClient(c.cfg)
	if err != nil {
		return nil, "", false
	}
	vc.SetToken(tok)
	return vc, tok, true
}

// adoptFileToken makes tok, read from TokenFile and accepted by Vault, the
// token of every later request.
func (c *Client) adoptFileToken(tok string) {
	if tok == "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if tok == c.fileToken {
		return
	}
	c.vc.SetToken(tok)
	c.fileToken = tok
	c.gen++
}
