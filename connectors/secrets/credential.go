package secrets

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/joinery/joinery/connectors"
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
//  1. end every earlier handover of the credential still live in its
//     ledger (CredentialLedgerPath): each wrapping token is redeemed by the
//     worker itself, so nobody else can redeem it any more;
//  2. generate a password from the configured Vault password policy;
//  3. store it (with meta's username, if any) as a new version at
//     JoinerPath(joinerKey, "initial-credential"), custom_metadata = meta plus
//     "joiner" — meta must hold no secrets (username, DN, ...);
//  4. setPassword(ctx, password) sets it on the directory account, and the
//     earlier versions are destroyed (they hold passwords the account no
//     longer has);
//  5. wrap that version for ttl, record the wrapping token and its accessor
//     in the ledger, and deliver(ctx, token) the single-use wrapping token
//     (e.g. to the manager's inbox).
//
// Only the Handover is returned; its Accessors are every wrapping accessor
// the ledger holds for this credential. Storing comes before setting so that
// a password is never live on an account without being recorded; if setting
// fails, the just-written version is destroyed so the stored latest version
// never offers a password the directory refused. Recording comes before
// delivering so that a worker which dies after delivering (Temporal then
// retries the activity) leaves the handover on record for the retry to end.
// If delivery fails, the wrapping token is redeemed here and dropped.
//
// Running it again for the same joiner therefore leaves exactly one live
// handover, the new one, and one readable version, the password the
// directory has. Errors from the callbacks are returned wrapped (their
// classification preserved); should one quote the password or token, its
// text is withheld.
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
	ledger := CredentialLedgerPath(path)

	// An earlier attempt may have delivered a token and died before its
	// result was recorded: end it before anything new is handed out.
	if _, err := c.endHandovers(ctx, ledger, ""); err != nil {
		return Handover{}, err
	}

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
	// Only now are the earlier versions obsolete: the account holds this one.
	if err := c.destroyOlderVersions(ctx, path, stored.Version); err != nil {
		return Handover{}, err
	}

	token, h, err := c.Wrap(ctx, path, stored.Version, ttl)
	if err != nil {
		var ce *connectors.Error
		if errors.As(err, &ce) && ce.Type == TypeNotFound {
			// Our version is gone: a concurrent attempt for the same joiner
			// (a zombie past its timeout) destroyed it as superseded. Not a
			// reason to fail the joiner: the retry issues afresh and ends
			// the other attempt's handover.
			return Handover{}, connectors.Transient(system, op, TypeUnavailable,
				"a concurrent issue for the same joiner superseded this attempt's version", err)
		}
		return Handover{}, err
	}
	rec := HandoverRecord{WrapAccessor: h.WrapAccessor, Version: h.Version, IssuedAt: h.ExpiresAt.Add(-h.WrapTTL), ExpiresAt: h.ExpiresAt}
	if err := c.recordHandover(ctx, ledger, token, rec); err != nil {
		c.discardToken(ctx, token)
		return Handover{}, err
	}
	if err := deliver(ctx, token); err != nil {
		// Best effort: if redeeming fails too, the ledger still has the
		// token live and the retry (or the rollback) ends it.
		if c.discardToken(ctx, token) {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
			defer cancel()
			_ = c.markEnded(cctx, ledger, h.WrapAccessor)
		}
		return Handover{}, withheld(op, "delivering the initial credential", err, pw, token)
	}
	recs, err := c.Handovers(ctx, ledger)
	if err != nil {
		// Delivered and recorded: the list is for the audit trail, and a
		// failed read must not make Temporal issue yet another credential.
		recs = []HandoverRecord{rec}
	}
	h.Accessors = accessorsOf(recs)
	return h, nil
}

// discardToken redeems an undelivered wrapping token on a detached context,
// so nobody can redeem it any more, and reports whether that worked.
func (c *Client) discardToken(ctx context.Context, token string) bool {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	_, err := c.unwrapOwn(cctx, token)
	return err == nil
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

// RevokeInitialCredential undoes IssueInitialCredential: it ends every
// handover still live in the credential's ledger (the worker redeems each
// recorded wrapping token, so a manager who has not redeemed theirs yet
// never will), then destroys the ledger and the path with all its versions.
// Absent paths and already-redeemed tokens succeed, so the compensation can
// run any number of times.
//
// accessor is the handover the caller recorded; every handover in the
// ledger is ended whether or not it is named. A token that was handed out
// but never reached the ledger (an attempt that died between wrapping and
// recording) was never delivered either; it expires at its TTL, and the
// account its password was for is removed by the same compensation.
// Revoking by accessor (RevokeAccessor) stays an operator operation.
func (c *Client) RevokeInitialCredential(ctx context.Context, path, accessor string) error {
	_ = accessor // the ledger holds it and every other one; see above
	if err := checkPath(path); err != nil {
		return invalid("revoke-initial-credential", err.Error())
	}
	ledger := CredentialLedgerPath(path)
	if _, err := c.endHandovers(ctx, ledger, ""); err != nil {
		return err
	}
	if err := c.Destroy(ctx, ledger); err != nil {
		return err
	}
	// The index goes after the ledger: while the ledger lives, the sweeper
	// must keep seeing its accessors as recorded.
	if err := c.Destroy(ctx, HandoverIndexPath(ledger)); err != nil {
		return err
	}
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
