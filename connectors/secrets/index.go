package secrets

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	vault "github.com/hashicorp/vault/api"

	"github.com/joinery/joinery/connectors"
)

// A handover index is what the sweeper reads instead of a ledger. The
// ledger holds live wrapping tokens, so the sweeper must never read it;
// and it must not take the list of recorded accessors from the worker
// either (an activity result anyone with Temporal write access can forge by
// completing the activity by ID, which would make the sweeper revoke
// legitimate, delivered handovers). So the worker keeps, next to each
// ledger, an index: one KV v2 secret holding only the wrapping accessors the
// ledger ever recorded, never a token, never a state. An accessor is not a
// secret (it cannot unwrap anything), so the sweeper may read every index
// under Joinery's prefix and nothing else there.
//
// The invariant the sweeper relies on: recordHandover writes the index
// after the ledger and before it returns, and callers deliver a token only
// after recordHandover returned nil. A delivered token is therefore always
// indexed; a wrapping token of Joinery's paths that no index lists was never
// delivered and is safe to revoke (once older than the worker's wrap-to-
// record window, which is the sweeper's minimum age).
//
// Entries are only ever added, never removed while the ledger lives: the
// index is an allow-list of "do not revoke", and an accessor whose token is
// gone costs nothing. It goes with its ledger (RevokeInitialCredential,
// RevokeWorkload), after the ledger.

// indexField is the KV data field holding the JSON-encoded, sorted list of
// accessors.
const indexField = "accessors"

// HandoverIndexPath is the index of the ledger at ledgerPath: ledgerPath + "-index".
func HandoverIndexPath(ledgerPath string) string { return ledgerPath + "-index" }

// IndexHandovers makes the index of the ledger at ledgerPath list every
// accessor the ledger has (idempotent, check-and-set like updateLedger): the
// backfill for ledgers written before the index existed. An absent ledger
// has nothing to index and succeeds without writing anything.
func (c *Client) IndexHandovers(ctx context.Context, ledgerPath string) error {
	if err := checkPath(ledgerPath); err != nil {
		return invalid("index-handovers", err.Error())
	}
	entries, _, err := c.readLedger(ctx, ledgerPath)
	if err != nil || len(entries) == 0 {
		return err
	}
	accessors := make([]string, 0, len(entries))
	for _, e := range entries {
		if e.WrapAccessor != "" {
			accessors = append(accessors, e.WrapAccessor)
		}
	}
	return c.addToIndex(ctx, HandoverIndexPath(ledgerPath), accessors...)
}

// HandoverIndex reads the index for t's secret, named by t.Kind and t.Key
// as Vault reported them (WrappingTokens, LookupWrapToken): for
// WrapCredential the index of CredentialLedgerPath(JoinerPath(t.Key,
// InitialCredentialName)), for WrapWorkload that of WorkloadLedgerPath(t.Key).
// An absent index is the empty set, no error. A kind or key that is not one
// of Joinery's is refused with TypeInvalidRequest before any request, so a
// caller cannot be steered to read another path.
func (c *Client) HandoverIndex(ctx context.Context, t WrapToken) (map[string]bool, error) {
	const op = "index-read"
	if err := checkSegment(t.Key); err != nil {
		return nil, invalid(op, "invalid key: "+err.Error())
	}
	var ledger string
	switch t.Kind {
	case WrapCredential:
		ledger = CredentialLedgerPath(c.JoinerPath(t.Key, InitialCredentialName))
	case WrapWorkload:
		if !strings.HasPrefix(t.Key, WorkloadRolePrefix) || len(t.Key) == len(WorkloadRolePrefix) {
			return nil, invalid(op, "workload role "+t.Key+" must start with "+WorkloadRolePrefix)
		}
		ledger = c.WorkloadLedgerPath(t.Key)
	default:
		return nil, invalid(op, fmt.Sprintf("unknown wrap token kind %q", t.Kind))
	}
	accessors, _, err := c.readIndex(ctx, HandoverIndexPath(ledger))
	if err != nil {
		return nil, err
	}
	set := make(map[string]bool, len(accessors))
	for _, a := range accessors {
		set[a] = true
	}
	return set, nil
}

// readIndex returns the index's accessors and its current version (0 when
// there is no index yet).
func (c *Client) readIndex(ctx context.Context, path string) ([]string, int, error) {
	var accessors []string
	version, err := c.readJSONField(ctx, "index-read", "handover index", path, indexField, &accessors)
	return accessors, version, err
}

// addToIndex adds accessors to the index at path with check-and-set,
// re-reading on a lost race (two attempts recording at once must not lose
// each other's accessor). Nothing is written when all are already there.
func (c *Client) addToIndex(ctx context.Context, path string, add ...string) error {
	const op = "index-write"
	apiPath := c.kvPath("data", path)
	for range maxLedgerCAS {
		have, version, err := c.readIndex(ctx, path)
		if err != nil {
			return err
		}
		next := slices.Clone(have)
		for _, a := range add {
			if a != "" && !slices.Contains(next, a) {
				next = append(next, a)
			}
		}
		if len(next) == len(have) {
			return nil
		}
		slices.Sort(next)
		raw, err := json.Marshal(next)
		if err != nil {
			return invalid(op, err.Error())
		}
		lost := false
		err = c.call(ctx, op, apiPath, func(ctx context.Context, vc *vault.Client) error {
			_, err := vc.KVv2(c.cfg.KVMount).Put(ctx, path, map[string]any{indexField: string(raw)}, vault.WithCheckAndSet(version))
			if isCASMismatch(err) {
				lost = true
				return nil
			}
			return err
		})
		if err != nil {
			return err
		}
		if !lost {
			return nil
		}
	}
	return connectors.Transient(system, op, TypeUnavailable, fmt.Sprintf("the handover index at %s kept changing under %d check-and-set attempts", apiPath, maxLedgerCAS), nil)
}

// softDeleted refuses a KV v2 read whose latest version was deleted or
// destroyed without the secret's metadata going with it. Joinery removes a
// ledger or an index only by deleting its metadata (every version at
// once), so a latest version without data is someone else's doing, or a
// mount's delete_version_after. Read as "absent", an index would make
// every delivered handover look unrecorded to the sweeper and a ledger
// would stop the worker ending them: an error, never a guess.
func softDeleted(op, apiPath string, s *vault.KVSecret) error {
	if s == nil || s.Data != nil || s.VersionMetadata == nil {
		return nil
	}
	if s.VersionMetadata.Destroyed || !s.VersionMetadata.DeletionTime.IsZero() {
		return connectors.Permanent(system, op, TypeRejected, fmt.Sprintf(
			"the latest version of %s (v%d) was deleted but the secret was not (a mount or key delete_version_after, or a hand-made delete): refusing to read it as absent",
			apiPath, s.VersionMetadata.Version), nil)
	}
	return nil
}
