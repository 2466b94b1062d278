package secrets

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	vault "github.com/hashicorp/vault/api"
)

// InitialCredentialName is the secret name of a joiner's initial credential
// under JoinerPath.
const InitialCredentialName = "initial-credential"

// cleanupTimeout bounds best-effort undo steps that run after a failure, on a
// context detached from the (possibly cancelled) caller's.
const cleanupTimeout = 10 * time.Second

// IssueInitialCredential gives a joiner's directory account its first
// password and hands it over without the value leaving this call:
//
//  1. generate a password from the configured Vault password policy;
//  2. store it (with meta's username, if any) as a new version at
//     JoinerPath(joinerKey, "initial-credential"), custom_metadata = meta plus
//     "joiner" — meta must hold no secrets (username, DN, ...);
//  3. setPassword(ctx, password) sets it on the directory account;
//  4. wrap that version for ttl and deliver(ctx, token) the single-use
//     wrapping token (e.g. to the manager's inbox).
//
// Only the Handover is returned. Storing comes before setting so that a
// password is never live on an account without being recorded; if setting
// fails, the just-written version is destroyed so the stored latest version
// never offers a password the directory refused. If delivery fails, the
// wrapping token is redeemed here and dropped: an undelivered token must not
// stay redeemable, and redeeming needs no capability beyond the token itself
// (revoking by accessor would need auth/token/revoke-accessor, which can end
// any token in Vault and is therefore not in the worker's policy).
//
// Running it again for the same joiner writes a new version, sets it and
// delivers a new handover, so after any successful call the directory's
// password is the stored latest version. Errors from the callbacks are
// returned wrapped (their classification preserved); should one quote the
// password or token, its text is withheld.
func (c *Client) IssueInitialCredential(ctx context.Context, joinerKey string, meta map[string]string, ttl time.Duration,
	setPassword func(context.Context, string) error, deliver func(context.Context, string) error) (Handover, error) {
	const op = "issue-initial-credential"
	if err := checkSegment(joinerKey); err != nil {
		return Handover{}, invalid(op, "invalid joiner key: "+err.Error())
	}
	if err := checkWrapTTL(ttl); err != nil {
		return Handover{}, invalid(op, err.Error())
	}
	if setPassword == nil || deliver == nil {
		return Handover{}, invalid(op, "setPassword and deliver are required")
	}
	path := c.JoinerPath(joinerKey, InitialCredentialName)

	pw, err := c.GeneratePassword(ctx)
	if err != nil {
		return Handover{}, err
	}
	custom := make(map[string]string, len(meta)+1)
	for k, v := range meta {
		custom[k] = v
	}
	custom["joiner"] = joinerKey
	data := map[string]any{"password": pw}
	if u := meta["username"]; u != "" {
		// The recipient needs to know which account the password is for.
		data["username"] = u
	}
	stored, err := c.Put(ctx, path, data, custom)
	if err != nil {
		return Handover{}, err
	}

	if err := setPassword(ctx, pw); err != nil {
		c.destroyVersion(ctx, stored)
		return Handover{}, withheld(op, "setting the initial password on the directory account", err, pw)
	}

	token, h, err := c.Wrap(ctx, path, stored.Version, ttl)
	if err != nil {
		return Handover{}, err
	}
	if err := deliver(ctx, token); err != nil {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		// Best effort: if redeeming fails too, the token still expires at
		// h.ExpiresAt, and the retry issues a fresh one.
		_, _ = c.unwrapOwn(cctx, token)
		return Handover{}, withheld(op, "delivering the initial credential", err, pw, token)
	}
	return h, nil
}

// destroyVersion permanently removes one version after a failed issue. It is
// best effort on a detached context: the caller's error matters more, and a
// leftover version is still removed by RevokeInitialCredential.
func (c *Client) destroyVersion(ctx context.Context, s StoredSecret) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	apiPath := c.kvPath("destroy", s.Path)
	_ = c.call(cctx, "kv-destroy-version", apiPath, func(ctx context.Context, vc *vault.Client) error {
		return vc.KVv2(c.cfg.KVMount).Destroy(ctx, s.Path, []int{s.Version})
	})
}

// RevokeInitialCredential undoes IssueInitialCredential by destroying the
// path with all its versions; destroying an absent path succeeds, so the
// compensation can run any number of times.
//
// The wrapping token (accessor) is deliberately not revoked: revoking by
// accessor needs auth/token/revoke-accessor, which can end any token in
// Vault, and the worker's policy does not have it. The wrapped copy stays
// redeemable until its TTL (Handover.ExpiresAt); what it holds is the
// password of the account the same compensation deletes or disables. An
// operator who must end it sooner runs RevokeAccessor with their own token.
func (c *Client) RevokeInitialCredential(ctx context.Context, path, accessor string) error {
	_ = accessor // recorded in history for operators; see above
	return c.Destroy(ctx, path)
}

// RevokeAccessor revokes the token behind accessor (typically a wrapping
// token) without knowing the token. A token already redeemed, expired,
// revoked or never known counts as revoked. It is an operator operation:
// auth/token/revoke-accessor reaches every token in Vault, so the worker's
// policy does not grant it.
func (c *Client) RevokeAccessor(ctx context.Context, accessor string) error {
	const op = "revoke-accessor"
	if accessor == "" {
		return invalid(op, "empty accessor")
	}
	const apiPath = "auth/token/revoke-accessor"
	return c.call(ctx, op, apiPath, func(ctx context.Context, vc *vault.Client) error {
		// An unknown accessor gets a 2xx with a warning; an accessor whose
		// token vanished between index and lookup gets 400 "token not found".
		_, err := vc.Logical().WriteWithContext(ctx, apiPath, map[string]any{"accessor": accessor})
		if isGoneToken(err) {
			return nil
		}
		return err
	})
}

// isGoneToken reports whether err says the token no longer exists.
func isGoneToken(err error) bool {
	var re *vault.ResponseError
	if !errors.As(err, &re) || re.StatusCode != http.StatusBadRequest {
		return false
	}
	for _, e := range re.Errors {
		e = strings.ToLower(e)
		if strings.Contains(e, "token not found") || strings.Contains(e, "invalid accessor") {
			return true
		}
	}
	return false
}
