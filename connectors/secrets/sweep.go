package secrets

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/joinery/joinery/connectors"
)

// The wrapping-token sweeper closes the one gap the handover ledger cannot:
// a worker that dies after Vault answered a response-wrapped read but before
// the ledger write leaves a live wrapping token that nobody knows (it lives
// for the wrap TTL, 72 h by default). The worker cannot find such a token:
// only listing every token accessor does, and that needs sudo on
// auth/token/accessors. So a separate process with its own, separately
// privileged identity (SweeperPolicyName) walks the accessors, recognises
// Joinery's wrapping tokens by the path Vault recorded when it created them,
// and revokes by accessor those that no handover index (index.go) lists.
// It reads the indexes itself (HandoverIndex): asking the worker which
// accessors are recorded would let anyone with Temporal write access forge
// the answer and have delivered handovers revoked.
//
// Who can reach this: only the sweeper process, with the sweeper's AppRole.
// Whoever steals that identity can list every token's metadata (paths,
// policies, display names, TTLs; never a token ID) and revoke any token in
// Vault by accessor, the worker's and operators' included: a denial of
// service, which revoke-accessor inherently grants. They can read the
// handover indexes (accessors only). They get no secret (no KV beyond the
// indexes, never a ledger, no unwrap, no default policy), no new token, no
// policy and no role: SweeperPolicyHCL grants nothing else, and the tests
// prove each refusal against a real Vault.

// SweeperPolicyName is the Vault policy (and AppRole role) name of the sweeper.
const SweeperPolicyName = "joinery-sweeper"

// Wrap token kinds: which of Joinery's response-wrapped paths a token wraps.
const (
	// WrapCredential is a wrapped read of an initial credential,
	// <kv>/data/<prefix>/<key>/initial-credential.
	WrapCredential = "initial-credential"
	// WrapWorkload is a wrapped SecretID of a workload role,
	// auth/<approle mount>/role/joinery-nhi-*/secret-id.
	WrapWorkload = "workload-secret-id"
)

// DefaultSweepMax bounds the lookups of one WrappingTokens walk when the
// caller gives no bound: about a minute of lookups against a local Vault,
// and far more tokens than Joinery itself keeps alive.
const DefaultSweepMax = 50000

// wrappingPolicy is the only policy Vault gives a response-wrapping token;
// no other token can carry it (auth/token/create refuses the name).
const wrappingPolicy = "response-wrapping"

// maxAccessorLen bounds an accessor handed to LookupWrapToken. Vault's are
// 24 characters (plus ".<namespace id>" inside a namespace).
const maxAccessorLen = 128

// WrapToken is a live response-wrapping token Vault holds for one of
// Joinery's paths. It never carries the token itself: the sweeper only ever
// sees accessors, and revoking by accessor is all it needs.
type WrapToken struct {
	// Accessor identifies the token (RevokeAccessor takes it).
	Accessor string
	// Kind is WrapCredential or WrapWorkload.
	Kind string
	// Key is the joiner key (WrapCredential) or the role name, e.g.
	// joinery-nhi-x (WrapWorkload).
	Key string
	// Path is the logical KV path JoinerPath(Key, InitialCredentialName)
	// (WrapCredential) or the role name (WrapWorkload): what the handover
	// ledgers and the reconciler name it by.
	Path string
	// CreatedAt is Vault's creation_time of the token (whole seconds).
	CreatedAt time.Time
	// ExpiresAt is Vault's expire_time of the token.
	ExpiresAt time.Time
	// Age is Vault's own measure of how long the token has lived:
	// creation_ttl - ttl of the lookup, both counted by Vault's clock, so
	// no clock of Joinery's (nor a skew between it and Vault's) decides
	// whether a token is old enough to revoke.
	Age time.Duration
}

// SweeperPolicyHCL is the sweeper's whole Vault ACL policy for a
// connector configured as cfg (KV mount and path prefix; empty fields take
// New's defaults): list (with sudo, which Vault demands for it) on
// auth/token/accessors, update on auth/token/lookup-accessor and
// auth/token/revoke-accessor, read on the handover indexes
// (<kv>/data/<prefix>/+/initial-credential-handovers-index and
// <kv>/data/<prefix>/+/secret-id-handovers-index), and what the client
// needs of its own token (renew-self, lookup-self) spelled out, because the
// sweeper's role issues tokens without the default policy
// (AppRoleOptions.TokenNoDefaultPolicy). Nothing else: never a ledger (it
// holds live tokens), never a secret, no sys, no token creation, no auth
// method.
func SweeperPolicyHCL(cfg Config) string {
	cfg = withDefaults(cfg)
	return strings.NewReplacer("@KV@", cfg.KVMount, "@PREFIX@", cfg.PathPrefix,
		"@CREDINDEX@", HandoverIndexPath(CredentialLedgerPath(InitialCredentialName)),
		"@WLINDEX@", HandoverIndexPath("secret-id-handovers")).Replace(sweeperPolicy)
}

const sweeperPolicy = `# Joinery wrapping-token sweeper: Vault ACL policy.
#
# Rendered by connectors/secrets.SweeperPolicyHCL; the Vault bootstrap
# installs it as "joinery-sweeper" and the sweeper logs in with AppRole
# (role joinery-sweeper, token_no_default_policy) to get it and nothing else.
#
# The sweeper finds response-wrapping tokens of Joinery's paths that no
# handover index lists (a worker died between Vault's answer and the
# ledger write) and revokes them. Finding them needs the list of every
# token accessor, which Vault guards with sudo; that is why this is not the
# worker's identity. Which tokens are recorded it reads from Vault itself
# (the indexes below), never from the worker: a result handed over through
# Temporal could be forged.
#
# What a thief of this identity gets: every token's metadata (never a token
# ID), the wrapping accessors Joinery recorded (not secrets: an accessor
# unwraps nothing) and the power to revoke any token by accessor - a denial
# of service. Deliberately absent: the handover ledgers (they hold live
# wrapping tokens), every other KV path (no secret, no write), the default
# policy (no cubbyhole, no sys/wrapping/*, no sys/tools/*),
# auth/token/create* (no new token), sys/* (no policy read or write, no
# mounts) and auth/<approle>/* (no role, no SecretID).

# Listing accessors is root-protected: sudo is required next to list.
path "auth/token/accessors" {
  capabilities = ["list", "sudo"]
}

# Metadata of one token by accessor: policies, creation path, times.
path "auth/token/lookup-accessor" {
  capabilities = ["update"]
}

# Revoking an orphaned wrapping token by accessor.
path "auth/token/revoke-accessor" {
  capabilities = ["update"]
}

# The handover indexes: the wrapping accessors each ledger recorded, and
# nothing else. One segment (+) per joiner key or workload role; the
# ledgers next to them ("...-handovers") do not match.
path "@KV@/data/@PREFIX@/+/@CREDINDEX@" {
  capabilities = ["read"]
}
path "@KV@/data/@PREFIX@/+/@WLINDEX@" {
  capabilities = ["read"]
}

# The client's own token, which without the default policy needs saying:
# renewing it before it expires, and the health check's lookup.
path "auth/token/renew-self" {
  capabilities = ["update"]
}
path "auth/token/lookup-self" {
  capabilities = ["read"]
}
`

// WrappingTokens lists every token accessor (LIST auth/token/accessors),
// looks each one up (auth/token/lookup-accessor) and calls fn for every live
// token whose policies are exactly ["response-wrapping"] and whose creation
// path is one of Joinery's (WrapCredential under this client's KV mount and
// path prefix, WrapWorkload under its AppRole mount). Tokens that vanish
// between the list and their lookup are skipped.
//
// It stops after max lookups (max <= 0: DefaultSweepMax) and then reports
// more = true. The walk starts at a random point of Vault's list (and wraps
// around), so successive capped walks do not keep looking at the same
// first max accessors. fn runs on the caller's goroutine, one token at a
// time; its error stops the walk and is returned unchanged. Vault's errors
// are classified like the rest of the package (a 403, e.g. a token without
// sudo on auth/token/accessors, is a permanent TypePermissionDenied).
func (c *Client) WrappingTokens(ctx context.Context, max int, fn func(WrapToken) error) (more bool, err error) {
	const op = "wrap-sweep"
	if fn == nil {
		return false, invalid(op, "fn is required")
	}
	if max <= 0 {
		max = DefaultSweepMax
	}
	accessors, err := c.listAccessors(ctx)
	if err != nil {
		return false, err
	}
	n := len(accessors)
	start := 0
	if n > 1 {
		start = rand.IntN(n)
	}
	// Vault answers 403, not 400, for an accessor whose token it no longer
	// holds while its accessor entry is still listed (revoked or expired
	// between the list and the lookup, its clean-up pending): one such
	// token must not stop every sweep. It is skipped — it cannot be judged,
	// so it is not revoked — once this identity's own token is known to
	// work (lookup-self), and a walk in which every lookup was refused is
	// an identity without the lookup permission: an error.
	selfChecked, readable := false, 0
	var denied error
	for i := range n {
		if i == max {
			return true, deniedOnly(denied, readable)
		}
		if err := ctx.Err(); err != nil {
			return true, classify(op, "auth/token/lookup-accessor", err)
		}
		wt, ok, err := c.lookupWrapToken(ctx, accessors[(start+i)%n])
		var ce *connectors.Error
		if err != nil && errors.As(err, &ce) && ce.Type == TypePermissionDenied {
			if !selfChecked {
				if serr := c.lookupSelf(ctx); serr != nil {
					return true, err
				}
				selfChecked = true
			}
			if denied == nil {
				denied = err
			}
			continue
		}
		if err != nil {
			return true, err
		}
		readable++
		if !ok {
			continue
		}
		if err := fn(wt); err != nil {
			return i+1 < n, err
		}
	}
	return false, deniedOnly(denied, readable)
}

// deniedOnly is denied when no lookup of the walk was answered (readable
// 0): the identity cannot look tokens up at all.
func deniedOnly(denied error, readable int) error {
	if denied != nil && readable == 0 {
		return denied
	}
	return nil
}

// lookupSelf checks this client's own token (auth/token/lookup-self).
func (c *Client) lookupSelf(ctx context.Context) error {
	return c.call(ctx, "wrap-sweep", "auth/token/lookup-self", func(ctx context.Context, vc *vault.Client) error {
		_, err := vc.Auth().Token().LookupSelfWithContext(ctx)
		return err
	})
}

// LookupWrapToken re-reads one accessor, right before a revoke: ok = false
// when Vault no longer knows it (redeemed, revoked, expired) or when it is
// not one of Joinery's live wrapping tokens, and then the caller must not
// revoke it. An accessor that is not a plausible Vault accessor is refused
// with TypeInvalidRequest before any request.
func (c *Client) LookupWrapToken(ctx context.Context, accessor string) (WrapToken, bool, error) {
	const op = "wrap-lookup"
	if err := checkSegment(accessor); err != nil {
		return WrapToken{}, false, invalid(op, "invalid accessor: "+err.Error())
	}
	if len(accessor) > maxAccessorLen {
		return WrapToken{}, false, invalid(op, fmt.Sprintf("invalid accessor: longer than %d characters", maxAccessorLen))
	}
	return c.lookupWrapToken(ctx, accessor)
}

// listAccessors returns every token accessor Vault holds.
func (c *Client) listAccessors(ctx context.Context) ([]string, error) {
	const op, apiPath = "wrap-sweep", "auth/token/accessors"
	var out []string
	err := c.call(ctx, op, apiPath, func(ctx context.Context, vc *vault.Client) error {
		s, err := vc.Logical().ListWithContext(ctx, apiPath)
		if err != nil {
			return err
		}
		if s == nil {
			// Vault answers an empty list with 404, which the client
			// turns into no secret.
			return nil
		}
		keys, ok := s.Data["keys"].([]any)
		if !ok && s.Data["keys"] != nil {
			return connectors.Permanent(system, op, TypeRejected, "Vault answered "+apiPath+" without a list of keys", nil)
		}
		out = make([]string, 0, len(keys))
		for _, k := range keys {
			if a, ok := k.(string); ok && a != "" {
				out = append(out, a)
			}
		}
		return nil
	})
	return out, err
}

// lookupWrapToken looks accessor up and keeps it only if it is a live
// wrapping token of one of Joinery's paths.
func (c *Client) lookupWrapToken(ctx context.Context, accessor string) (WrapToken, bool, error) {
	const op, apiPath = "wrap-lookup", "auth/token/lookup-accessor"
	var data map[string]any
	err := c.call(ctx, op, apiPath, func(ctx context.Context, vc *vault.Client) error {
		s, err := vc.Auth().Token().LookupAccessorWithContext(ctx, accessor)
		if isGoneToken(err) {
			// Redeemed, revoked or expired since the list: Vault answers
			// 400 "invalid accessor".
			return nil
		}
		if err != nil {
			return err
		}
		if s != nil {
			data = s.Data
		}
		return nil
	})
	if err != nil || data == nil {
		return WrapToken{}, false, err
	}
	wt, ok := c.wrapTokenOf(data, c.now())
	if ok && wt.Accessor != accessor {
		// Vault answered about another token than the one asked for:
		// nothing to act on.
		return WrapToken{}, false, nil
	}
	return wt, ok, nil
}

// wrapTokenOf interprets a lookup-accessor answer: a WrapToken when it is a
// wrapping token (policies exactly ["response-wrapping"]) created at one of
// Joinery's paths and not expired at now.
func (c *Client) wrapTokenOf(data map[string]any, now time.Time) (WrapToken, bool) {
	if !onlyWrappingPolicy(data["policies"]) {
		return WrapToken{}, false
	}
	path, _ := data["path"].(string)
	kind, key, logical, ok := c.parseWrapPath(path)
	if !ok {
		return WrapToken{}, false
	}
	accessor, _ := data["accessor"].(string)
	expires, ok := vaultTime(data["expire_time"])
	if accessor == "" || !ok || !expires.After(now) {
		// A wrapping token always expires; one without a parseable
		// expiry is not something to act on, and an expired one is
		// Vault's to clean up.
		return WrapToken{}, false
	}
	created, ok := vaultTime(data["creation_time"])
	if !ok {
		created, ok = vaultTime(data["issue_time"])
	}
	if !ok {
		// A token without a creation time would look like the oldest
		// there is: not something to revoke on.
		return WrapToken{}, false
	}
	creationTTL, ok1 := vaultSeconds(data["creation_ttl"])
	ttl, ok2 := vaultSeconds(data["ttl"])
	if !ok1 || !ok2 || creationTTL <= 0 || ttl > creationTTL {
		// Without both of Vault's TTLs there is no age Vault vouches for.
		return WrapToken{}, false
	}
	age := time.Duration(creationTTL-ttl) * time.Second
	return WrapToken{Accessor: accessor, Kind: kind, Key: key, Path: logical, CreatedAt: created, ExpiresAt: expires, Age: age}, true
}

// vaultSeconds reads a whole, non-negative number of seconds from a lookup
// answer (creation_ttl, ttl: a json.Number from the API client's decoder).
func vaultSeconds(v any) (int64, bool) {
	var n int64
	switch t := v.(type) {
	case json.Number:
		i, err := t.Int64()
		if err != nil {
			return 0, false
		}
		n = i
	case string:
		i, err := strconv.ParseInt(t, 10, 64)
		if err != nil {
			return 0, false
		}
		n = i
	case float64:
		if t != float64(int64(t)) {
			return 0, false
		}
		n = int64(t)
	case int64:
		n = t
	case int:
		n = int64(t)
	default:
		return 0, false
	}
	return n, n >= 0
}

// parseWrapPath recognises the creation paths of Joinery's wrapping tokens
// for this client's mounts and prefix, strictly: every segment must pass
// checkSegment, so "..", empty segments (a trailing slash), another mount,
// another prefix, a ledger ("…-handovers") or any other name is not
// Joinery's. It returns the kind, the key and the logical path (see
// WrapToken).
func (c *Client) parseWrapPath(path string) (kind, key, logical string, ok bool) {
	if rest, found := strings.CutPrefix(path, c.kvPath("data", c.cfg.PathPrefix)+"/"); found {
		segs := strings.Split(rest, "/")
		if len(segs) != 2 || segs[1] != InitialCredentialName || checkSegment(segs[0]) != nil {
			return "", "", "", false
		}
		return WrapCredential, segs[0], c.JoinerPath(segs[0], InitialCredentialName), true
	}
	if rest, found := strings.CutPrefix(path, c.rolePath("")); found {
		role, tail, cut := strings.Cut(rest, "/")
		if !cut || tail != "secret-id" || checkSegment(role) != nil ||
			!strings.HasPrefix(role, WorkloadRolePrefix) || len(role) == len(WorkloadRolePrefix) {
			return "", "", "", false
		}
		return WrapWorkload, role, role, true
	}
	return "", "", "", false
}

// onlyWrappingPolicy reports whether a lookup's policies are exactly
// ["response-wrapping"].
func onlyWrappingPolicy(v any) bool {
	switch ps := v.(type) {
	case []any:
		if len(ps) != 1 {
			return false
		}
		p, _ := ps[0].(string)
		return p == wrappingPolicy
	case []string:
		return len(ps) == 1 && ps[0] == wrappingPolicy
	}
	return false
}

// vaultTime reads a time from a lookup answer: RFC 3339 text (expire_time,
// issue_time) or Unix seconds (creation_time, a json.Number from the API
// client's decoder).
func vaultTime(v any) (time.Time, bool) {
	var secs int64
	switch t := v.(type) {
	case string:
		if ts, err := time.Parse(time.RFC3339Nano, t); err == nil {
			return ts.UTC(), true
		}
		n, err := strconv.ParseInt(t, 10, 64)
		if err != nil {
			return time.Time{}, false
		}
		secs = n
	case json.Number:
		n, err := t.Int64()
		if err != nil {
			return time.Time{}, false
		}
		secs = n
	case float64:
		secs = int64(t)
	case int64:
		secs = t
	case int:
		secs = int64(t)
	default:
		return time.Time{}, false
	}
	if secs <= 0 {
		return time.Time{}, false
	}
	return time.Unix(secs, 0).UTC(), true
}
