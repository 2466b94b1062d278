package secrets

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/joinery/joinery/connectors"
)

// A handover ledger is the record, kept in Vault next to the secret it is
// about, of every response-wrapped handover of that secret: each wrapping
// accessor ever handed out and, while it may still be redeemable, the
// wrapping token itself.
//
// Why keep the token: a retried issue (the first attempt delivered, then the
// worker died before Temporal recorded the result) must end the earlier
// handover, and so must a rollback. Revoking by accessor needs
// auth/token/revoke-accessor, which reaches every token in Vault and is not
// the worker's to have. A wrapping token can, however, be ended by redeeming
// it, which needs nothing but the token. So the worker records the token
// before it delivers it, and ends it later by redeeming it itself. Storing
// it gives nobody anything new: whoever may read the ledger (the worker,
// root) may read the wrapped secret at its path directly, and the ledger
// lives under the same KV prefix. Every ledger write destroys the ledger's
// earlier versions, so an ended token is not kept readable in history.
//
// The ledger is one KV v2 secret updated with check-and-set, so two attempts
// racing (a zombie attempt after a start-to-close timeout) cannot lose each
// other's entries: the loser re-reads and applies its change again.

// Handover states in the ledger.
const (
	// HandoverLive: delivered (or about to be), may still be redeemable by
	// its recipient.
	HandoverLive = "live"
	// HandoverEnded: ended by Joinery (redeemed by the worker, its SecretID
	// destroyed) before anyone else redeemed it.
	HandoverEnded = "ended"
	// HandoverGone: already redeemed (by its recipient) or expired when
	// Joinery came to end it.
	HandoverGone = "gone"
)

// HandoverRecord is one ledger entry as callers see it: never the token.
type HandoverRecord struct {
	// WrapAccessor identifies the wrapping token.
	WrapAccessor string `json:"wrapAccessor"`
	// SecretIDAccessor is the wrapped AppRole SecretID's accessor (workload
	// handovers only).
	SecretIDAccessor string `json:"secretIdAccessor,omitempty"`
	// Version is the KV version wrapped (initial credentials only).
	Version int `json:"version,omitempty"`
	// IssuedAt and ExpiresAt bound the wrapping token's life.
	IssuedAt  time.Time `json:"issuedAt"`
	ExpiresAt time.Time `json:"expiresAt"`
	// State is HandoverLive, HandoverEnded or HandoverGone.
	State string `json:"state"`
	// EndedAt is when Joinery ended (or found gone) the handover.
	EndedAt time.Time `json:"endedAt,omitzero"`
}

// ledgerEntry is a HandoverRecord plus the live token, which never leaves
// this package.
type ledgerEntry struct {
	HandoverRecord
	Token string `json:"token,omitempty"`
}

// ledgerField is the KV data field holding the JSON-encoded entries.
const ledgerField = "handovers"

// maxLedgerCAS bounds the check-and-set retries of one ledger update.
const maxLedgerCAS = 5

// CredentialLedgerPath is the handover ledger of the initial credential at
// path (JoinerPath(key, InitialCredentialName)).
func CredentialLedgerPath(path string) string { return path + "-handovers" }

// WorkloadLedgerPath is the handover ledger of the wrapped SecretIDs of a
// workload role, under Joinery's KV prefix (joinery-nhi-… never collides with
// a joiner key: the role name is "joinery-" plus the key).
func (c *Client) WorkloadLedgerPath(role string) string {
	return c.JoinerPath(role, "secret-id-handovers")
}

// readLedger returns the entries and the ledger's current version (0 when
// there is no ledger yet).
func (c *Client) readLedger(ctx context.Context, path string) ([]ledgerEntry, int, error) {
	var entries []ledgerEntry
	version, err := c.readJSONField(ctx, "ledger-read", "handover ledger", path, ledgerField, &entries)
	return entries, version, err
}

// readJSONField reads the JSON-encoded field of the KV v2 secret at path
// into out and returns the secret's current version (0, out untouched,
// when there is none). A latest version deleted behind Joinery's back is an
// error (softDeleted), and so is a field that is not valid JSON: neither
// is ever read as "nothing recorded". what names the secret in errors.
func (c *Client) readJSONField(ctx context.Context, op, what, path, field string, out any) (int, error) {
	version := 0
	apiPath := c.kvPath("data", path)
	err := c.call(ctx, op, apiPath, func(ctx context.Context, vc *vault.Client) error {
		s, err := vc.KVv2(c.cfg.KVMount).Get(ctx, path)
		if errors.Is(err, vault.ErrSecretNotFound) || statusCode(err) == http.StatusNotFound {
			return nil
		}
		if err != nil {
			return err
		}
		if err := softDeleted(op, apiPath, s); err != nil {
			return err
		}
		if s.VersionMetadata != nil {
			version = s.VersionMetadata.Version
		}
		raw, _ := s.Data[field].(string)
		if raw == "" {
			return nil
		}
		if err := json.Unmarshal([]byte(raw), out); err != nil {
			return connectors.Permanent(system, op, TypeRejected, "the "+what+" at "+apiPath+" is not valid JSON", nil)
		}
		return nil
	})
	return version, err
}

// updateLedger applies change to the ledger's entries and writes them back
// with check-and-set, re-reading on a lost race; then it destroys the
// ledger's earlier versions (they may hold ended tokens). change reports
// whether anything changed; nothing is written when it did not.
func (c *Client) updateLedger(ctx context.Context, path string, change func([]ledgerEntry) ([]ledgerEntry, bool)) error {
	const op = "ledger-write"
	apiPath := c.kvPath("data", path)
	for range maxLedgerCAS {
		entries, version, err := c.readLedger(ctx, path)
		if err != nil {
			return err
		}
		next, changed := change(entries)
		if !changed {
			return nil
		}
		raw, err := json.Marshal(next)
		if err != nil {
			return invalid(op, err.Error())
		}
		var written int
		lost := false
		err = c.call(ctx, op, apiPath, func(ctx context.Context, vc *vault.Client) error {
			s, err := vc.KVv2(c.cfg.KVMount).Put(ctx, path, map[string]any{ledgerField: string(raw)}, vault.WithCheckAndSet(version))
			if isCASMismatch(err) {
				lost = true
				return nil
			}
			if err != nil {
				return err
			}
			if s.VersionMetadata != nil {
				written = s.VersionMetadata.Version
			}
			return nil
		})
		if err != nil {
			return err
		}
		if lost {
			continue
		}
		return c.destroyOlderVersions(ctx, path, written)
	}
	return connectors.Transient(system, op, TypeUnavailable, fmt.Sprintf("the handover ledger at %s kept changing under %d check-and-set attempts", apiPath, maxLedgerCAS), nil)
}

// isCASMismatch reports Vault's answer to a check-and-set write that lost.
func isCASMismatch(err error) bool {
	var re *vault.ResponseError
	if !errors.As(err, &re) || re.StatusCode != http.StatusBadRequest {
		return false
	}
	for _, e := range re.Errors {
		if strings.Contains(strings.ToLower(e), "check-and-set") {
			return true
		}
	}
	return false
}

// destroyOlderVersions permanently removes every still-readable version of
// path older than keep (keep <= 0: every version).
func (c *Client) destroyOlderVersions(ctx context.Context, path string, keep int) error {
	md, found, err := c.Metadata(ctx, path)
	if err != nil || !found {
		return err
	}
	var old []int
	for _, v := range md.Versions {
		if (keep <= 0 || v.Version < keep) && !v.Destroyed {
			old = append(old, v.Version)
		}
	}
	if len(old) == 0 {
		return nil
	}
	return c.call(ctx, "kv-destroy-versions", c.kvPath("destroy", path), func(ctx context.Context, vc *vault.Client) error {
		return vc.KVv2(c.cfg.KVMount).Destroy(ctx, path, old)
	})
}

// recordHandover adds a live handover, token included, before it is
// delivered: a worker that dies after delivering leaves it on record. Then
// it adds the accessor to the ledger's index (HandoverIndexPath), the only
// record the sweeper reads: callers deliver only after this returned nil,
// so a delivered token is always indexed and the sweeper never revokes it.
// An index write that fails fails the call (the caller then discards the
// token); the ledger entry it leaves is ended by the retry or the revoke.
func (c *Client) recordHandover(ctx context.Context, path, token string, rec HandoverRecord) error {
	rec.State = HandoverLive
	err := c.updateLedger(ctx, path, func(es []ledgerEntry) ([]ledgerEntry, bool) {
		return append(es, ledgerEntry{HandoverRecord: rec, Token: token}), true
	})
	if err != nil {
		return err
	}
	return c.addToIndex(ctx, HandoverIndexPath(path), rec.WrapAccessor)
}

// markEnded records that the handover with accessor was ended here (e.g.
// an undelivered token redeemed on the spot), dropping its token.
func (c *Client) markEnded(ctx context.Context, path, accessor string) error {
	now := c.now().UTC()
	return c.updateLedger(ctx, path, func(es []ledgerEntry) ([]ledgerEntry, bool) {
		changed := false
		for i := range es {
			if es[i].WrapAccessor == accessor && (es[i].Token != "" || es[i].State == HandoverLive) {
				es[i].Token, es[i].State, es[i].EndedAt = "", HandoverEnded, now
				changed = true
			}
		}
		return es, changed
	})
}

// endHandovers ends every live handover in the ledger at path: each wrapping
// token is redeemed by the worker (ending it for everyone else) and, with
// destroySecretID set, the SecretID it wrapped is destroyed on role. A token
// its recipient already redeemed, or that expired, is recorded as gone (for
// a SecretID, destroyed anyway: a redeemed-and-undelivered SecretID must not
// stay). It returns the records of the whole ledger, every accessor ever
// handed out.
func (c *Client) endHandovers(ctx context.Context, path, role string) ([]HandoverRecord, error) {
	entries, _, err := c.readLedger(ctx, path)
	if err != nil {
		return nil, err
	}
	type outcome struct{ state string }
	done := map[string]outcome{}
	for _, e := range entries {
		if e.State != HandoverLive {
			continue
		}
		state := HandoverGone
		if e.Token != "" {
			_, uerr := c.unwrapOwn(ctx, e.Token)
			switch {
			case uerr == nil:
				state = HandoverEnded
			case isGoneWrap(uerr):
			default:
				return nil, classify("ledger-end", "sys/wrapping/unwrap", uerr)
			}
		}
		if role != "" && e.SecretIDAccessor != "" {
			if err := c.destroySecretID(ctx, role, e.SecretIDAccessor); err != nil {
				return nil, err
			}
			if state == HandoverGone {
				// Redeemed by someone, but the SecretID is dead now.
				state = HandoverEnded
			}
		}
		done[e.WrapAccessor] = outcome{state}
	}
	now := c.now().UTC()
	if len(done) > 0 {
		err = c.updateLedger(ctx, path, func(es []ledgerEntry) ([]ledgerEntry, bool) {
			changed := false
			for i := range es {
				if o, ok := done[es[i].WrapAccessor]; ok && es[i].State == HandoverLive {
					es[i].Token, es[i].State, es[i].EndedAt = "", o.state, now
					changed = true
				}
			}
			return es, changed
		})
		if err != nil {
			return nil, err
		}
	}
	entries, _, err = c.readLedger(ctx, path)
	if err != nil {
		return nil, err
	}
	return records(entries), nil
}

func records(es []ledgerEntry) []HandoverRecord {
	out := make([]HandoverRecord, len(es))
	for i, e := range es {
		out[i] = e.HandoverRecord
	}
	return out
}

// Handovers returns the ledger of the secret or role at ledgerPath
// (CredentialLedgerPath, WorkloadLedgerPath): every wrapping accessor handed
// out, with its state. It never returns a token.
func (c *Client) Handovers(ctx context.Context, ledgerPath string) ([]HandoverRecord, error) {
	if err := checkPath(ledgerPath); err != nil {
		return nil, invalid("ledger-read", err.Error())
	}
	es, _, err := c.readLedger(ctx, ledgerPath)
	return records(es), err
}

// isGoneWrap reports Vault's answer to unwrapping a token that was already
// redeemed, revoked or has expired.
func isGoneWrap(err error) bool {
	var re *vault.ResponseError
	if !errors.As(err, &re) || re.StatusCode != http.StatusBadRequest {
		return false
	}
	for _, e := range re.Errors {
		e = strings.ToLower(e)
		if strings.Contains(e, "wrapping token is not valid") || strings.Contains(e, "does not exist") || strings.Contains(e, "token not found") {
			return true
		}
	}
	return false
}

// destroySecretID destroys a SecretID of role by its accessor (a path
// scoped to Joinery's roles in the worker's policy). An accessor Vault no
// longer knows counts as destroyed.
func (c *Client) destroySecretID(ctx context.Context, role, accessor string) error {
	apiPath := c.rolePath(role) + "/secret-id-accessor/destroy"
	return c.call(ctx, "approle-secret-id-destroy", apiPath, func(ctx context.Context, vc *vault.Client) error {
		_, err := vc.Logical().WriteWithContext(ctx, apiPath, map[string]any{"secret_id_accessor": accessor})
		if isGoneSecretID(err) {
			return nil
		}
		return err
	})
}

// isGoneSecretID reports Vault's answer for a SecretID accessor (or role)
// that no longer exists: a SecretID whose uses are spent, that expired or
// was destroyed. Vault 1.21 answers that with a 500 ("failed to find
// accessor entry for secret_id_accessor"), so the message decides, not
// only the status.
func isGoneSecretID(err error) bool {
	if statusCode(err) == http.StatusNotFound {
		return true
	}
	var re *vault.ResponseError
	if !errors.As(err, &re) || (re.StatusCode != http.StatusBadRequest && re.StatusCode != http.StatusInternalServerError) {
		return false
	}
	for _, e := range re.Errors {
		e = strings.ToLower(e)
		if strings.Contains(e, "failed to find accessor") || strings.Contains(e, "not found") || strings.Contains(e, "invalid role") {
			return true
		}
	}
	return false
}

// accessorsOf lists the wrapping accessors of recs, oldest first.
func accessorsOf(recs []HandoverRecord) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.WrapAccessor
	}
	return out
}
