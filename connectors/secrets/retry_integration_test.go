package secrets_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"
	"github.com/stretchr/testify/require"

	"github.com/joinery/joinery/connectors"
	"github.com/joinery/joinery/connectors/secrets"
	"github.com/joinery/joinery/internal/stack"
	"github.com/joinery/joinery/internal/stack/stacktest"
)

// Retry hygiene on the real Vault, with the worker's own identity (AppRole
// joinery-worker and its least-privilege policy, as the dev stack's
// bootstrap installed them): what a retried issue does when the earlier
// attempt wrote everything and the worker died before Temporal recorded the
// result. At this layer such a retry is simply the same call again for the
// same joiner; the activity-level test in activities/ runs it under one
// Temporal activity identity.

// workerClient logs in exactly as the worker does.
func workerClient(t *testing.T, ep stack.Endpoints) *secrets.Client {
	t.Helper()
	roleID, err := os.ReadFile(stack.VaultWorkerRoleIDFile(ep.StateDir))
	require.NoError(t, err)
	secretID, err := os.ReadFile(stack.VaultWorkerSecretIDFile(ep.StateDir))
	require.NoError(t, err)
	return newClient(t, secrets.Config{Addr: ep.VaultAddr,
		RoleID: strings.TrimSpace(string(roleID)), SecretID: strings.TrimSpace(string(secretID))})
}

// requireEnded asserts that a wrapping token no longer unwraps, and that
// Vault no longer knows its accessor.
func requireEnded(t *testing.T, ep stack.Endpoints, token, accessor string) {
	t.Helper()
	_, err := unwrap(t, ep.VaultAddr, token)
	require.Error(t, err, "wrapping token %s must be ended", accessor)
	// Vault revokes a redeemed wrapping token behind the answer to the
	// unwrap, so its accessor may still resolve for a moment after the
	// token itself stopped working (seen once on a fresh CI clone).
	api := rootAPI(t, ep)
	require.Eventually(t, func() bool {
		_, err := api.Auth().Token().LookupAccessorWithContext(testCtx(t), accessor)
		return err != nil
	}, 10*time.Second, 100*time.Millisecond, "accessor %s must be gone", accessor)
}

func TestIntegrationRetriedCredentialIssueEndsEarlierHandovers(t *testing.T) {
	ep := stacktest.Ensure(t)
	ctx := testCtx(t)
	c := workerClient(t, ep)
	root := rootClient(t, ep)
	key := unique("retry-cred")
	path := c.JoinerPath(key, secrets.InitialCredentialName)
	ledger := secrets.CredentialLedgerPath(path)
	destroyOnCleanup(t, root, path)
	destroyOnCleanup(t, root, ledger)
	meta := map[string]string{"username": "grace.byron"}

	var set, delivered []string
	setPassword := func(_ context.Context, pw string) error { set = append(set, pw); return nil }
	deliver := func(_ context.Context, tok string) error { delivered = append(delivered, tok); return nil }

	// Attempt 1 writes, sets, wraps, records and delivers; the worker then
	// dies, so its result is lost. Attempts 2 and 3 are Temporal's retries.
	var hs []secrets.Handover
	for range 3 {
		h, err := c.IssueInitialCredential(ctx, key, meta, 10*time.Minute, setPassword, deliver)
		require.NoError(t, err)
		hs = append(hs, h)
	}
	last := hs[2]
	require.Equal(t, 3, last.Version)
	require.Equal(t, []string{hs[0].WrapAccessor, hs[1].WrapAccessor, hs[2].WrapAccessor}, last.Accessors,
		"every accessor ever handed out is recorded, oldest first")
	for i, h := range hs {
		require.NotContains(t, fmt.Sprintf("%#v", h), delivered[i], "no token in the handover")
	}

	// Only the last wrapping token is valid.
	requireEnded(t, ep, delivered[0], hs[0].WrapAccessor)
	requireEnded(t, ep, delivered[1], hs[1].WrapAccessor)
	_, err := rootAPI(t, ep).Auth().Token().LookupAccessorWithContext(ctx, last.WrapAccessor)
	require.NoError(t, err, "the delivered token is live")

	// Earlier versions are destroyed; the latest is the directory's password.
	md, found, err := root.Metadata(ctx, path)
	require.NoError(t, err)
	require.True(t, found)
	for _, v := range md.Versions {
		require.Equal(t, v.Version != 3, v.Destroyed, "version %d", v.Version)
	}
	latest, err := rootAPI(t, ep).KVv2("secret").Get(ctx, path)
	require.NoError(t, err)
	require.Equal(t, set[2], latest.Data["password"])

	// The ledger lists every handover, ended or live, without tokens; its
	// earlier versions (which held the ended tokens) are destroyed.
	recs, err := c.Handovers(ctx, ledger)
	require.NoError(t, err)
	require.Len(t, recs, 3)
	for i, r := range recs {
		require.Equal(t, hs[i].WrapAccessor, r.WrapAccessor)
		require.Equal(t, i+1, r.Version)
		want := secrets.HandoverEnded
		if i == 2 {
			want = secrets.HandoverLive
		}
		require.Equal(t, want, r.State, "handover %d", i)
	}
	raw, err := rootAPI(t, ep).KVv2("secret").Get(ctx, ledger)
	require.NoError(t, err)
	text := fmt.Sprint(raw.Data)
	require.NotContains(t, text, delivered[0])
	require.NotContains(t, text, delivered[1])
	lmd, _, err := root.Metadata(ctx, ledger)
	require.NoError(t, err)
	for _, v := range lmd.Versions {
		require.Equal(t, v.Version != lmd.CurrentVersion, v.Destroyed, "ledger version %d", v.Version)
	}

	// The recipient redeems the one valid token and gets the live password.
	sec, err := unwrap(t, ep.VaultAddr, delivered[2])
	require.NoError(t, err)
	require.Equal(t, set[2], kvData(t, sec)["password"])

	// Rollback after the recipient redeemed: succeeds, records it as gone,
	// and removes path and ledger.
	require.NoError(t, c.RevokeInitialCredential(ctx, path, last.WrapAccessor))
	require.NoError(t, c.RevokeInitialCredential(ctx, path, last.WrapAccessor), "idempotent")
	for _, p := range []string{path, ledger} {
		_, found, err := root.Metadata(ctx, p)
		require.NoError(t, err)
		require.False(t, found, "%s is gone", p)
	}
}

// A rollback ends a delivered token nobody has redeemed yet, with the
// worker's identity (which cannot revoke by accessor).
func TestIntegrationRevokeEndsUnredeemedHandover(t *testing.T) {
	ep := stacktest.Ensure(t)
	ctx := testCtx(t)
	c := workerClient(t, ep)
	root := rootClient(t, ep)
	key := unique("revoke-live")
	path := c.JoinerPath(key, secrets.InitialCredentialName)
	destroyOnCleanup(t, root, path)
	destroyOnCleanup(t, root, secrets.CredentialLedgerPath(path))
	var token string
	h, err := c.IssueInitialCredential(ctx, key, nil, 10*time.Minute, func(context.Context, string) error { return nil },
		func(_ context.Context, tok string) error { token = tok; return nil })
	require.NoError(t, err)
	require.NoError(t, c.RevokeInitialCredential(ctx, h.Path, h.WrapAccessor))
	requireEnded(t, ep, token, h.WrapAccessor)
	err = c.RevokeAccessor(ctx, h.WrapAccessor)
	requireType(t, err, secrets.TypePermissionDenied, false)
}

// An undelivered token is ended on the spot and recorded as ended, and the
// next attempt's handover is the only live one.
func TestIntegrationFailedDeliveryIsRecordedEnded(t *testing.T) {
	ep := stacktest.Ensure(t)
	ctx := testCtx(t)
	c := workerClient(t, ep)
	root := rootClient(t, ep)
	key := unique("undelivered")
	path := c.JoinerPath(key, secrets.InitialCredentialName)
	ledger := secrets.CredentialLedgerPath(path)
	destroyOnCleanup(t, root, path)
	destroyOnCleanup(t, root, ledger)
	var first string
	_, err := c.IssueInitialCredential(ctx, key, nil, time.Minute, func(context.Context, string) error { return nil },
		func(_ context.Context, tok string) error {
			first = tok
			return connectors.Transient("inbox", "post", "InboxUnavailable", "inbox is down", nil)
		})
	require.Error(t, err)
	recs, err := c.Handovers(ctx, ledger)
	require.NoError(t, err)
	require.Len(t, recs, 1)
	require.Equal(t, secrets.HandoverEnded, recs[0].State)
	requireEnded(t, ep, first, recs[0].WrapAccessor)

	h, err := c.IssueInitialCredential(ctx, key, nil, time.Minute, func(context.Context, string) error { return nil },
		func(context.Context, string) error { return nil })
	require.NoError(t, err)
	require.Equal(t, []string{recs[0].WrapAccessor, h.WrapAccessor}, h.Accessors)
}

// listSecretIDs lists the role's SecretID accessors (root: the worker's
// policy has no list).
func listSecretIDs(t *testing.T, root *vault.Client, role string) []string {
	t.Helper()
	s, err := root.Logical().ListWithContext(testCtx(t), "auth/approle/role/"+role+"/secret-id")
	require.NoError(t, err)
	if s == nil {
		return nil
	}
	var out []string
	for _, k := range s.Data["keys"].([]any) {
		out = append(out, k.(string))
	}
	return out
}

func TestIntegrationRetriedWorkloadIssueKeepsOnlyTheDeliveredSecretID(t *testing.T) {
	ep := stacktest.Ensure(t)
	ctx := testCtx(t)
	c := workerClient(t, ep)
	root := rootClient(t, ep)
	raw := rootAPI(t, ep)
	name := fmt.Sprintf("rbot%d", time.Now().UnixNano()%1e9)
	role := secrets.WorkloadRolePrefix + name + "-staging"
	t.Cleanup(func() {
		_, _ = raw.Logical().Delete("auth/approle/role/" + role)
		_ = root.Destroy(context.Background(), c.WorkloadLedgerPath(role))
	})
	req := secrets.WorkloadRequest{Role: role, Kind: "pipeline", WrapTTL: time.Hour,
		Grants: []secrets.GrantTemplate{
			{Path: "secret/data/workloads/" + name + "/staging/*", Capabilities: []string{"read"}},
			{Path: "secret/metadata/workloads/" + name + "/staging/*", Capabilities: []string{"list"}},
		},
		Options: secrets.AppRoleOptions{TokenTTL: 30 * time.Minute, TokenMaxTTL: time.Hour, SecretIDNumUses: 1, SecretIDTTL: time.Hour}}

	var delivered []string
	var issued []secrets.IssuedWorkload
	for range 3 {
		wl, err := c.IssueWorkload(ctx, req, func(_ context.Context, tok string) error { delivered = append(delivered, tok); return nil })
		require.NoError(t, err)
		require.NotEmpty(t, wl.Handover.SecretIDAccessor)
		issued = append(issued, wl)
	}
	last := issued[2].Handover
	require.Equal(t, []string{issued[0].Handover.WrapAccessor, issued[1].Handover.WrapAccessor, last.WrapAccessor}, last.Accessors)

	// Only the handed-over SecretID exists on the role.
	require.Equal(t, []string{last.SecretIDAccessor}, listSecretIDs(t, raw, role))
	requireEnded(t, ep, delivered[0], issued[0].Handover.WrapAccessor)
	requireEnded(t, ep, delivered[1], issued[1].Handover.WrapAccessor)

	// The sponsor's token works: the workload logs in with it.
	s, err := unwrap(t, ep.VaultAddr, delivered[2])
	require.NoError(t, err)
	require.Equal(t, last.SecretIDAccessor, s.Data["secret_id_accessor"])
	login, err := apiClient(t, ep.VaultAddr, "").Logical().WriteWithContext(ctx, "auth/approle/login",
		map[string]any{"role_id": issued[2].RoleID, "secret_id": s.Data["secret_id"]})
	require.NoError(t, err)
	require.NotEmpty(t, login.Auth.ClientToken)

	// Adversary: the workload itself (the one Vault identity Joinery hands
	// out) reading the ledgers, which hold live wrapping tokens: its own
	// role's and a human joiner's credential ledger. Both are refused.
	wc := apiClient(t, ep.VaultAddr, login.Auth.ClientToken)
	for _, p := range []string{c.WorkloadLedgerPath(role), secrets.CredentialLedgerPath(c.JoinerPath("200", secrets.InitialCredentialName))} {
		_, err := wc.Logical().ReadWithContext(ctx, "secret/data/"+p)
		var re *vault.ResponseError
		require.ErrorAs(t, err, &re, "reading %s", p)
		require.Equal(t, 403, re.StatusCode, "reading %s", p)
	}

	recs, err := c.Handovers(ctx, c.WorkloadLedgerPath(role))
	require.NoError(t, err)
	require.Len(t, recs, 3)
	for i, r := range recs {
		require.Equal(t, issued[i].Handover.SecretIDAccessor, r.SecretIDAccessor)
	}

	// Issuing again after the workload used its single-use SecretID (Vault
	// no longer knows that accessor) works: a spent SecretID counts as ended.
	_, err = c.IssueWorkload(ctx, req, func(context.Context, string) error { return nil })
	require.NoError(t, err)
	require.Len(t, listSecretIDs(t, raw, role), 1)

	// Revocation deletes the role and the ledger; absent, it is a no-op.
	require.NoError(t, c.RevokeWorkload(ctx, role))
	require.NoError(t, c.RevokeWorkload(ctx, role))
	_, found, err := root.Metadata(ctx, c.WorkloadLedgerPath(role))
	require.NoError(t, err)
	require.False(t, found)
}

// The handover is in the ledger while it is being delivered, so a worker
// that dies during delivery leaves it on record for the retry; a delivery
// that fails ends it and records it as ended.
func TestIntegrationWorkloadLedgerIsWrittenBeforeDelivery(t *testing.T) {
	ep := stacktest.Ensure(t)
	ctx := testCtx(t)
	c := workerClient(t, ep)
	raw := rootAPI(t, ep)
	name := fmt.Sprintf("lbot%d", time.Now().UnixNano()%1e9)
	role := secrets.WorkloadRolePrefix + name + "-staging"
	t.Cleanup(func() {
		_, _ = raw.Logical().Delete("auth/approle/role/" + role)
		_ = rootClient(t, ep).Destroy(context.Background(), c.WorkloadLedgerPath(role))
	})
	req := secrets.WorkloadRequest{Role: role, Kind: "pipeline", WrapTTL: time.Hour,
		Grants: []secrets.GrantTemplate{
			{Path: "secret/data/workloads/" + name + "/staging/*", Capabilities: []string{"read"}},
			{Path: "secret/metadata/workloads/" + name + "/staging/*", Capabilities: []string{"list"}},
		}}
	seen := false
	_, err := c.IssueWorkload(ctx, req, func(_ context.Context, tok string) error {
		recs, err := c.Handovers(ctx, c.WorkloadLedgerPath(role))
		require.NoError(t, err)
		require.Len(t, recs, 1, "recorded before delivery")
		require.Equal(t, secrets.HandoverLive, recs[0].State)
		seen = true
		return errors.New("relay down")
	})
	require.ErrorContains(t, err, "relay down")
	require.True(t, seen)
	require.Empty(t, listSecretIDs(t, raw, role), "the undelivered SecretID was destroyed")
	recs, err := c.Handovers(ctx, c.WorkloadLedgerPath(role))
	require.NoError(t, err)
	require.Equal(t, secrets.HandoverEnded, recs[0].State)
}

// Attempts racing each other (a zombie attempt still running after its
// start-to-close timeout while Temporal's retry runs) may both deliver, but
// the ledger's check-and-set loses neither handover: the rollback finds and
// ends every one.
func TestIntegrationConcurrentIssuesLoseNoHandover(t *testing.T) {
	ep := stacktest.Ensure(t)
	ctx := testCtx(t)
	c := workerClient(t, ep)
	root := rootClient(t, ep)
	key := unique("race-cred")
	path := c.JoinerPath(key, secrets.InitialCredentialName)
	ledger := secrets.CredentialLedgerPath(path)
	destroyOnCleanup(t, root, path)
	destroyOnCleanup(t, root, ledger)

	const n = 6
	tokens := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, errs[i] = c.IssueInitialCredential(ctx, key, nil, 10*time.Minute, func(context.Context, string) error { return nil },
				func(_ context.Context, tok string) error { tokens[i] = tok; return nil })
		})
	}
	wg.Wait()
	delivered := 0
	for i := range n {
		if errs[i] == nil {
			delivered++
		} else {
			t.Logf("attempt %d: %v", i, errs[i])
			require.True(t, connectors.IsRetryable(errs[i]), "losing a race is retryable, never the joiner's end: %v", errs[i])
		}
	}
	require.Positive(t, delivered)
	recs, err := c.Handovers(ctx, ledger)
	require.NoError(t, err)
	live := 0
	for _, r := range recs {
		if r.State == secrets.HandoverLive {
			live++
		}
	}
	t.Logf("%d concurrent issues: %d delivered, %d recorded, %d still live", n, delivered, len(recs), live)
	require.GreaterOrEqual(t, len(recs), delivered, "every delivered handover is on record")

	// The attempt Temporal keeps (the last retry) leaves one live handover.
	var last string
	h, err := c.IssueInitialCredential(ctx, key, nil, 10*time.Minute, func(context.Context, string) error { return nil },
		func(_ context.Context, tok string) error { last = tok; return nil })
	require.NoError(t, err)
	tokens = append(tokens, last)
	recs, err = c.Handovers(ctx, ledger)
	require.NoError(t, err)
	for _, r := range recs {
		require.Equal(t, r.WrapAccessor == h.WrapAccessor, r.State == secrets.HandoverLive, "only the last is live: %+v", r)
	}

	require.NoError(t, c.RevokeInitialCredential(ctx, path, ""))
	for i, tok := range tokens {
		if tok == "" {
			continue
		}
		_, err := unwrap(t, ep.VaultAddr, tok)
		require.Error(t, err, "token %d is ended after the rollback", i)
	}
}
