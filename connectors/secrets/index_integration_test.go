package secrets_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"
	"github.com/stretchr/testify/require"

	"github.com/joinery/joinery/connectors/secrets"
	"github.com/joinery/joinery/internal/stack"
	"github.com/joinery/joinery/internal/stack/stacktest"
)

// Integration tests of the handover index on the dev stack's Vault: the
// record of delivered wrapping accessors that the sweeper reads itself
// instead of asking the worker (whose activity result anyone with Temporal
// write access could forge, making the sweeper revoke delivered handovers).
//
// The adversary here is whoever holds the sweeper's identity: it may read
// the indexes and must get nothing else of Joinery's KV (no ledger, which
// holds live tokens; no credential; no write to an index, which would let
// it hide a token from itself or protect an orphan) and nothing of Vault's
// default policy.

// readIndexRaw reads the index at ledger's index path as root: its data
// fields, or nil when there is none.
func readIndexRaw(t *testing.T, ep stack.Endpoints, ledger string) map[string]any {
	t.Helper()
	s, err := rootAPI(t, ep).Logical().ReadWithContext(testCtx(t), "secret/data/"+secrets.HandoverIndexPath(ledger))
	require.NoError(t, err)
	if s == nil {
		return nil
	}
	return kvData(t, s)
}

// requireIndexHoldsOnly checks that the index holds exactly the accessors
// want, in its one field, and none of tokens.
func requireIndexHoldsOnly(t *testing.T, ep stack.Endpoints, ledger string, want []string, tokens ...string) {
	t.Helper()
	d := readIndexRaw(t, ep, ledger)
	require.NotNil(t, d, "no index at %s", secrets.HandoverIndexPath(ledger))
	require.Len(t, d, 1, "the index has one field: %v", d)
	raw, _ := d["accessors"].(string)
	var got []string
	require.NoError(t, json.Unmarshal([]byte(raw), &got))
	require.ElementsMatch(t, want, got)
	for _, tok := range tokens {
		require.NotEmpty(t, tok)
		require.NotContains(t, raw, tok, "the index holds no token")
	}
}

func requireForbidden(t *testing.T, err error, what string) {
	t.Helper()
	var re *vault.ResponseError
	require.ErrorAs(t, err, &re, "%s: the sweeper must be refused", what)
	require.Equal(t, http.StatusForbidden, re.StatusCode, "%s: %v", what, err)
}

// vaultAge is creation_ttl - ttl of Vault's own lookup of accessor, as root.
func vaultAge(t *testing.T, ep stack.Endpoints, accessor string) (time.Duration, int64) {
	t.Helper()
	s, err := rootAPI(t, ep).Auth().Token().LookupAccessorWithContext(testCtx(t), accessor)
	require.NoError(t, err)
	ct, err := s.Data["creation_ttl"].(json.Number).Int64()
	require.NoError(t, err)
	ttl, err := s.Data["ttl"].(json.Number).Int64()
	require.NoError(t, err)
	return time.Duration(ct-ttl) * time.Second, ct
}

// IssueInitialCredential leaves every accessor it delivered in the index,
// and only accessors; the sweeper (no default policy) reads it, finds the
// delivered token recorded with Vault's own age, and can read nothing else
// of the joiner's; the revoke destroys ledger and index, after which the
// index reads as the empty set.
func TestIntegrationCredentialIndexAndTheSweeperIdentity(t *testing.T) {
	ep := stacktest.Ensure(t)
	ctx := testCtx(t)
	c := workerClient(t, ep)
	root := rootClient(t, ep)
	s := newSweeper(t, ep)
	key := unique("index-cred")
	path := c.JoinerPath(key, secrets.InitialCredentialName)
	ledger := secrets.CredentialLedgerPath(path)
	destroyOnCleanup(t, root, path)
	destroyOnCleanup(t, root, ledger)
	destroyOnCleanup(t, root, secrets.HandoverIndexPath(ledger))

	var delivered []string
	var hs []secrets.Handover
	for range 2 {
		h, err := c.IssueInitialCredential(ctx, key, nil, time.Hour,
			func(context.Context, string) error { return nil },
			func(_ context.Context, tok string) error {
				// At delivery the accessor is already indexed, and the
				// sweeper sees it so.
				look, ok, err := s.c.LookupWrapToken(ctx, lookupAccessor(t, ep, tok))
				require.NoError(t, err)
				require.True(t, ok)
				idx, err := s.c.HandoverIndex(ctx, look)
				require.NoError(t, err)
				require.True(t, idx[look.Accessor], "delivered %s before it was indexed", look.Accessor)
				delivered = append(delivered, tok)
				return nil
			})
		require.NoError(t, err)
		hs = append(hs, h)
	}
	accs := []string{hs[0].WrapAccessor, hs[1].WrapAccessor}
	requireIndexHoldsOnly(t, ep, ledger, accs, delivered...)

	// The sweeper, from Vault alone: the live token's lookup and the index.
	wt, ok, err := s.c.LookupWrapToken(ctx, hs[1].WrapAccessor)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, secrets.WrapCredential, wt.Kind)
	require.Equal(t, key, wt.Key)
	idx, err := s.c.HandoverIndex(ctx, wt)
	require.NoError(t, err)
	require.Equal(t, map[string]bool{accs[0]: true, accs[1]: true}, idx)

	// Age is Vault's creation_ttl - ttl: let a few seconds pass so it is
	// not trivially zero, then compare with root's own lookup.
	time.Sleep(2 * time.Second)
	wt, ok, err = s.c.LookupWrapToken(ctx, hs[1].WrapAccessor)
	require.NoError(t, err)
	require.True(t, ok)
	age, ct := vaultAge(t, ep, hs[1].WrapAccessor)
	require.Equal(t, int64(3600), ct, "a one-hour wrap")
	require.GreaterOrEqual(t, wt.Age, 2*time.Second)
	require.InDelta(t, age.Seconds(), wt.Age.Seconds(), 1, "Age is Vault's measure")

	// What the sweeper identity may not do with Joinery's KV or the
	// default policy, each Vault's own 403.
	raw := s.raw
	index := "secret/data/" + secrets.HandoverIndexPath(ledger)
	for what, do := range map[string]func() error{
		"read the ledger":     func() error { _, err := raw.Logical().ReadWithContext(ctx, "secret/data/"+ledger); return err },
		"read the credential": func() error { _, err := raw.Logical().ReadWithContext(ctx, "secret/data/"+path); return err },
		"read index metadata": func() error {
			_, err := raw.Logical().ReadWithContext(ctx, "secret/metadata/"+secrets.HandoverIndexPath(ledger))
			return err
		},
		"list the prefix": func() error {
			_, err := raw.Logical().ListWithContext(ctx, "secret/metadata/"+secrets.DefaultPathPrefix)
			return err
		},
		"write the index": func() error {
			_, err := raw.Logical().WriteWithContext(ctx, index, map[string]any{"data": map[string]any{"accessors": `["planted"]`}})
			return err
		},
		"delete the index": func() error { _, err := raw.Logical().DeleteWithContext(ctx, index); return err },
		"destroy the index": func() error {
			_, err := raw.Logical().DeleteWithContext(ctx, "secret/metadata/"+secrets.HandoverIndexPath(ledger))
			return err
		},
		"plant an index elsewhere": func() error {
			_, err := raw.Logical().WriteWithContext(ctx, "secret/data/"+secrets.HandoverIndexPath(secrets.CredentialLedgerPath(c.JoinerPath(unique("index-new"), secrets.InitialCredentialName))),
				map[string]any{"data": map[string]any{"accessors": `["planted"]`}})
			return err
		},
		"cubbyhole write": func() error {
			_, err := raw.Logical().WriteWithContext(ctx, "cubbyhole/x", map[string]any{"a": "b"})
			return err
		},
		"cubbyhole read": func() error { _, err := raw.Logical().ReadWithContext(ctx, "cubbyhole/x"); return err },
		"sys/wrapping/wrap": func() error {
			_, err := raw.Logical().WriteWithContext(ctx, "sys/wrapping/wrap", map[string]any{"a": "b"})
			return err
		},
		// Unwrapping someone else's token by value (the default policy's
		// sys/wrapping/unwrap): the delivered token itself.
		"sys/wrapping/unwrap of a delivered token": func() error {
			_, err := raw.Logical().WriteWithContext(ctx, "sys/wrapping/unwrap", map[string]any{"token": delivered[1]})
			return err
		},
		"sys/tools/hash": func() error {
			_, err := raw.Logical().WriteWithContext(ctx, "sys/tools/hash", map[string]any{"input": "YQ=="})
			return err
		},
		"sys/tools/random": func() error { _, err := raw.Logical().WriteWithContext(ctx, "sys/tools/random", nil); return err },
		"capabilities-self": func() error {
			_, err := raw.Logical().WriteWithContext(ctx, "sys/capabilities-self", map[string]any{"paths": []string{index}})
			return err
		},
		"identity entity": func() error { _, err := raw.Logical().ReadWithContext(ctx, "identity/entity/id/x"); return err },
		"the worker's index": func() error {
			_, err := raw.Logical().ReadWithContext(ctx, "secret/data/joinery-other/x/initial-credential-handovers-index")
			return err
		},
	} {
		requireForbidden(t, do(), what)
	}
	// Through the connector, too: the ledger read is refused.
	_, err = s.c.Handovers(ctx, ledger)
	requireType(t, err, secrets.TypePermissionDenied, false)
	// What it needs of its own token, without the default policy.
	_, err = raw.Auth().Token().LookupSelfWithContext(ctx)
	require.NoError(t, err, "lookup-self")
	_, err = raw.Auth().Token().RenewSelfWithContext(ctx, 0)
	require.NoError(t, err, "renew-self")
	require.NoError(t, s.c.Health(ctx))
	// Nothing was planted.
	requireIndexHoldsOnly(t, ep, ledger, accs)

	// The revoke destroys the index too; the sweeper then reads an empty set.
	require.NoError(t, c.RevokeInitialCredential(ctx, path, hs[1].WrapAccessor))
	for _, p := range []string{ledger, secrets.HandoverIndexPath(ledger), path} {
		_, found, err := root.Metadata(ctx, p)
		require.NoError(t, err)
		require.False(t, found, "%s survives the revoke", p)
	}
	idx, err = s.c.HandoverIndex(ctx, secrets.WrapToken{Kind: secrets.WrapCredential, Key: key})
	require.NoError(t, err)
	require.Empty(t, idx)
	require.NoError(t, c.RevokeInitialCredential(ctx, path, ""), "a second revoke is a no-op")
}

// lookupAccessor finds a wrapping token's accessor from the token (root's
// sys/wrapping/lookup does not consume it).
func lookupAccessor(t *testing.T, ep stack.Endpoints, token string) string {
	t.Helper()
	s, err := rootAPI(t, ep).Auth().Token().LookupWithContext(testCtx(t), token)
	require.NoError(t, err)
	acc, _ := s.Data["accessor"].(string)
	require.NotEmpty(t, acc)
	return acc
}

// The workload issue indexes each wrapped SecretID's accessor; the revoke
// destroys ledger and index.
func TestIntegrationWorkloadIndex(t *testing.T) {
	ep := stacktest.Ensure(t)
	ctx := testCtx(t)
	c := workerClient(t, ep)
	root := rootClient(t, ep)
	raw := rootAPI(t, ep)
	s := newSweeper(t, ep)
	name := fmt.Sprintf("ibot%d", time.Now().UnixNano()%1e9)
	role := secrets.WorkloadRolePrefix + name + "-staging"
	ledger := c.WorkloadLedgerPath(role)
	t.Cleanup(func() {
		_, _ = raw.Logical().Delete("auth/approle/role/" + role)
		_ = root.Destroy(context.Background(), ledger)
		_ = root.Destroy(context.Background(), secrets.HandoverIndexPath(ledger))
	})
	req := secrets.WorkloadRequest{Role: role, Kind: "pipeline", WrapTTL: time.Hour,
		Grants: []secrets.GrantTemplate{
			{Path: "secret/data/workloads/" + name + "/staging/*", Capabilities: []string{"read"}},
			{Path: "secret/metadata/workloads/" + name + "/staging/*", Capabilities: []string{"list"}},
		},
		Options: secrets.AppRoleOptions{TokenTTL: 30 * time.Minute, TokenMaxTTL: time.Hour, SecretIDNumUses: 1, SecretIDTTL: time.Hour}}
	var delivered, accs []string
	for range 2 {
		wl, err := c.IssueWorkload(ctx, req, func(_ context.Context, tok string) error { delivered = append(delivered, tok); return nil })
		require.NoError(t, err)
		accs = append(accs, wl.Handover.WrapAccessor)
	}
	requireIndexHoldsOnly(t, ep, ledger, accs, delivered...)

	wt, ok, err := s.c.LookupWrapToken(ctx, accs[1])
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, secrets.WrapWorkload, wt.Kind)
	idx, err := s.c.HandoverIndex(ctx, wt)
	require.NoError(t, err)
	require.Equal(t, map[string]bool{accs[0]: true, accs[1]: true}, idx)
	_, err = s.raw.Logical().ReadWithContext(ctx, "secret/data/"+ledger)
	requireForbidden(t, err, "read the workload ledger")

	require.NoError(t, c.RevokeWorkload(ctx, role))
	for _, p := range []string{ledger, secrets.HandoverIndexPath(ledger)} {
		_, found, err := root.Metadata(ctx, p)
		require.NoError(t, err)
		require.False(t, found, "%s survives the revoke", p)
	}
	idx, err = s.c.HandoverIndex(ctx, wt)
	require.NoError(t, err)
	require.Empty(t, idx)
}

// A ledger written before the index existed (by hand here, the old way: the
// handovers field only) is backfilled by IndexHandovers, which merges with
// what an index already has, writes nothing when there is nothing new, and
// does nothing for an absent ledger.
func TestIntegrationIndexHandoversBackfills(t *testing.T) {
	ep := stacktest.Ensure(t)
	ctx := testCtx(t)
	c := workerClient(t, ep)
	root := rootClient(t, ep)
	s := newSweeper(t, ep)
	key := unique("index-backfill")
	ledger := secrets.CredentialLedgerPath(c.JoinerPath(key, secrets.InitialCredentialName))
	index := secrets.HandoverIndexPath(ledger)
	destroyOnCleanup(t, root, ledger)
	destroyOnCleanup(t, root, index)

	// Absent ledger: nothing to do, no index appears.
	require.NoError(t, c.IndexHandovers(ctx, ledger))
	_, found, err := root.Metadata(ctx, index)
	require.NoError(t, err)
	require.False(t, found)

	old := `[{"wrapAccessor":"accOldLive","issuedAt":"2026-11-30T10:00:00Z","expiresAt":"2026-12-03T10:00:00Z","state":"live","token":"hvs.old-live-token"},` +
		`{"wrapAccessor":"accOldEnded","issuedAt":"2026-11-29T10:00:00Z","expiresAt":"2026-12-02T10:00:00Z","state":"ended","endedAt":"2026-11-30T10:00:00Z"}]`
	_, err = rootAPI(t, ep).Logical().WriteWithContext(ctx, "secret/data/"+ledger, map[string]any{"data": map[string]any{"handovers": old}})
	require.NoError(t, err)
	idx, err := s.c.HandoverIndex(ctx, secrets.WrapToken{Kind: secrets.WrapCredential, Key: key})
	require.NoError(t, err)
	require.Empty(t, idx, "not yet backfilled")

	require.NoError(t, c.IndexHandovers(ctx, ledger))
	requireIndexHoldsOnly(t, ep, ledger, []string{"accOldEnded", "accOldLive"}, "hvs.old-live-token")
	md, _, err := root.Metadata(ctx, index)
	require.NoError(t, err)
	v := md.CurrentVersion
	require.NoError(t, c.IndexHandovers(ctx, ledger), "idempotent")
	md, _, err = root.Metadata(ctx, index)
	require.NoError(t, err)
	require.Equal(t, v, md.CurrentVersion, "nothing new, nothing written")

	// An index that already has an accessor the ledger lacks keeps it.
	_, err = rootAPI(t, ep).Logical().WriteWithContext(ctx, "secret/data/"+index, map[string]any{"data": map[string]any{"accessors": `["accElsewhere"]`}})
	require.NoError(t, err)
	require.NoError(t, c.IndexHandovers(ctx, ledger))
	idx, err = s.c.HandoverIndex(ctx, secrets.WrapToken{Kind: secrets.WrapCredential, Key: key})
	require.NoError(t, err)
	require.Equal(t, map[string]bool{"accElsewhere": true, "accOldEnded": true, "accOldLive": true}, idx)

	// The sweeper cannot backfill (it may not read the ledger).
	requireType(t, s.c.IndexHandovers(ctx, ledger), secrets.TypePermissionDenied, false)

	// A corrupt index is an error, not an empty set (which would make
	// every delivered token look unrecorded).
	_, err = rootAPI(t, ep).Logical().WriteWithContext(ctx, "secret/data/"+index, map[string]any{"data": map[string]any{"accessors": "not json"}})
	require.NoError(t, err)
	_, err = s.c.HandoverIndex(ctx, secrets.WrapToken{Kind: secrets.WrapCredential, Key: key})
	requireType(t, err, secrets.TypeRejected, false)
}

// A lookup-accessor answer without Vault's TTLs (or times) gives no age
// Vault vouches for: the walk and LookupWrapToken skip the token rather
// than report it (a zero age or creation time would make it look the
// oldest). A proxy strips the fields from Vault's real answers.
func TestIntegrationLookupWithoutTimesIsSkipped(t *testing.T) {
	ep := stacktest.Ensure(t)
	ctx := testCtx(t)
	worker := workerClient(t, ep)
	o := credentialOrphan(t, ep, worker, worker.JoinerPath(unique("index-notimes"), secrets.InitialCredentialName))

	strip := map[string][]string{
		"ttls":  {"creation_ttl", "ttl"},
		"ttl":   {"ttl"},
		"times": {"creation_time", "issue_time"},
	}
	for name, fields := range strip {
		target, err := url.Parse(ep.VaultAddr)
		require.NoError(t, err)
		rp := httputil.NewSingleHostReverseProxy(target)
		rp.ModifyResponse = func(r *http.Response) error {
			if r.Request.URL.Path != "/v1/auth/token/lookup-accessor" || r.StatusCode != http.StatusOK {
				return nil
			}
			body, err := io.ReadAll(r.Body)
			if err != nil {
				return err
			}
			var doc map[string]any
			if err := json.Unmarshal(body, &doc); err != nil {
				return err
			}
			if d, ok := doc["data"].(map[string]any); ok {
				for _, f := range fields {
					delete(d, f)
				}
			}
			body, _ = json.Marshal(doc)
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.ContentLength = int64(len(body))
			r.Header.Set("Content-Length", strconv.Itoa(len(body)))
			return nil
		}
		srv := httptest.NewServer(rp)
		c := newClient(t, secrets.Config{Addr: srv.URL, Token: ep.VaultToken})
		_, ok, err := c.LookupWrapToken(ctx, o.accessor)
		require.NoError(t, err, name)
		require.False(t, ok, "%s stripped: the token must not be reported", name)
		found, _ := walk(t, c, 0)
		_, seen := found[o.accessor]
		require.False(t, seen, "%s stripped: the walk must skip it", name)
		srv.Close()
	}

	// The same token straight from Vault is reported, with its age.
	c := newClient(t, secrets.Config{Addr: ep.VaultAddr, Token: ep.VaultToken})
	wt, ok, err := c.LookupWrapToken(ctx, o.accessor)
	require.NoError(t, err)
	require.True(t, ok)
	age, _ := vaultAge(t, ep, o.accessor)
	require.InDelta(t, age.Seconds(), wt.Age.Seconds(), 1)
	require.False(t, strings.Contains(fmt.Sprint(wt), o.token))
}

// A worker whose index write fails (here its policy denies the index path)
// delivers nothing: IssueInitialCredential fails, deliver is never called,
// and the wrapping token it made no longer unwraps (the worker discarded
// it). So a token that is not indexed was never delivered.
func TestIntegrationUnindexedHandoverIsNotDelivered(t *testing.T) {
	ep := stacktest.Ensure(t)
	ctx := testCtx(t)
	root := rootClient(t, ep)
	hcl := secrets.WorkerPolicyHCL(secrets.Config{}, secrets.WorkloadCatalogue{}) + `
path "secret/data/` + secrets.DefaultPathPrefix + `/+/initial-credential-handovers-index" {
  capabilities = ["deny"]
}
`
	c := newClient(t, secrets.Config{Addr: ep.VaultAddr, Token: limitedToken(t, ep, hcl)})
	key := unique("index-denied")
	path := c.JoinerPath(key, secrets.InitialCredentialName)
	ledger := secrets.CredentialLedgerPath(path)
	destroyOnCleanup(t, root, path)
	destroyOnCleanup(t, root, ledger)

	delivered := 0
	_, err := c.IssueInitialCredential(ctx, key, nil, time.Hour,
		func(context.Context, string) error { return nil },
		func(context.Context, string) error { delivered++; return nil })
	requireType(t, err, secrets.TypePermissionDenied, false)
	require.Zero(t, delivered, "nothing is delivered unindexed")
	require.Nil(t, readIndexRaw(t, ep, ledger))
	recs, err := root.Handovers(ctx, ledger)
	require.NoError(t, err)
	require.Len(t, recs, 1, "the ledger entry stays for the retry or revoke to end")
	// A redeemed token's accessor may resolve for a moment after the
	// unwrap: wait for Vault to drop it.
	require.Eventually(t, func() bool {
		_, ok, err := root.LookupWrapToken(ctx, recs[0].WrapAccessor)
		return err == nil && !ok
	}, 10*time.Second, 100*time.Millisecond, "the undelivered token was discarded")
}
