package secrets_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"
	"github.com/stretchr/testify/require"

	"github.com/joinery/joinery/connectors/secrets"
	"github.com/joinery/joinery/internal/stack"
	"github.com/joinery/joinery/internal/stack/stacktest"
)

// Integration tests of the wrapping-token sweeper against the dev stack's
// Vault. The sweeper identity here is a uniquely named policy with
// SweeperPolicyHCL's text and an AppRole role bound to it (the real
// joinery-sweeper belongs to the bootstrap); orphans are made by the
// worker's own identity (credentials) and root (workload SecretIDs, which
// need a joinery-nhi-* role only an operator may create freely), each with
// a short TTL and revoked at the end. Other tests share this Vault, so a
// walk sees their tokens too: assertions are about this test's accessors.

// sweeper is a logged-in sweeper identity: the connector client, and the
// raw token of a second login for probing what the policy refuses.
type sweeper struct {
	c    *secrets.Client
	raw  *vault.Client
	role string
}

// newSweeper installs SweeperPolicyHCL under a unique name, binds an
// AppRole role to it (without the default policy, as the bootstrap does)
// and logs in with it exactly as the sweeper process would (RoleID and
// SecretID).
func newSweeper(t *testing.T, ep stack.Endpoints) sweeper {
	t.Helper()
	ctx := testCtx(t)
	root := rootClient(t, ep)
	name := unique("it-sweeper")
	require.NoError(t, root.WritePolicy(ctx, name, secrets.SweeperPolicyHCL(secrets.Config{})))
	roleID, err := root.CreateAppRole(ctx, name, secrets.AppRoleOptions{
		TokenPolicies: []string{name},
		TokenTTL:      5 * time.Minute, TokenMaxTTL: 10 * time.Minute,
		SecretIDTTL: 10 * time.Minute, TokenNoDefaultPolicy: true,
	})
	require.NoError(t, err)
	tok, _, err := root.WrappedSecretID(ctx, name, time.Minute)
	require.NoError(t, err)
	sec, err := unwrap(t, ep.VaultAddr, tok)
	require.NoError(t, err)
	secretID, _ := sec.Data["secret_id"].(string)
	require.NotEmpty(t, secretID)

	login, err := apiClient(t, ep.VaultAddr, "").Logical().WriteWithContext(ctx, "auth/approle/login",
		map[string]any{"role_id": roleID, "secret_id": secretID})
	require.NoError(t, err)
	raw := apiClient(t, ep.VaultAddr, login.Auth.ClientToken)
	require.ElementsMatch(t, []string{name}, login.Auth.TokenPolicies, "no default policy")
	t.Cleanup(func() {
		ctx := context.Background()
		require.NoError(t, root.RevokeAccessor(ctx, login.Auth.Accessor))
		require.NoError(t, root.DeleteAppRole(ctx, name))
		require.NoError(t, root.DeletePolicy(ctx, name))
	})
	c := newClient(t, secrets.Config{Addr: ep.VaultAddr, RoleID: roleID, SecretID: secretID})
	return sweeper{c: c, raw: raw, role: name}
}

// orphan is a live wrapping token whose token was dropped, as by a worker
// that died before its ledger write. Its accessor is revoked at cleanup.
type orphan struct {
	accessor  string
	token     string // kept only to prove the token itself still works or not
	createdAt time.Time
	expiresAt time.Time
}

func revokeOnCleanup(t *testing.T, ep stack.Endpoints, accessor string) {
	t.Cleanup(func() {
		require.NoError(t, rootClient(t, ep).RevokeAccessor(context.Background(), accessor))
	})
}

// credentialOrphan stores a credential for key with c and wraps it, the
// worker's exact read, then forgets the token.
func credentialOrphan(t *testing.T, ep stack.Endpoints, c *secrets.Client, path string) orphan {
	t.Helper()
	ctx := testCtx(t)
	destroyOnCleanup(t, rootClient(t, ep), path)
	stored, err := c.Put(ctx, path, map[string]any{"password": unique("pw")}, nil)
	require.NoError(t, err)
	tok, h, err := c.Wrap(ctx, path, stored.Version, 2*time.Minute)
	require.NoError(t, err)
	revokeOnCleanup(t, ep, h.WrapAccessor)
	return orphan{accessor: h.WrapAccessor, token: tok, createdAt: h.ExpiresAt.Add(-h.WrapTTL), expiresAt: h.ExpiresAt}
}

// workloadOrphan creates role (root) and a wrapped SecretID for it.
func workloadOrphan(t *testing.T, ep stack.Endpoints, role string) orphan {
	t.Helper()
	ctx := testCtx(t)
	root := rootClient(t, ep)
	_, err := root.CreateAppRole(ctx, role, secrets.AppRoleOptions{TokenTTL: time.Minute, SecretIDTTL: 5 * time.Minute})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, root.DeleteAppRole(context.Background(), role)) })
	tok, h, err := root.WrappedSecretID(ctx, role, 2*time.Minute)
	require.NoError(t, err)
	revokeOnCleanup(t, ep, h.WrapAccessor)
	return orphan{accessor: h.WrapAccessor, token: tok, createdAt: h.ExpiresAt.Add(-h.WrapTTL), expiresAt: h.ExpiresAt}
}

// sysWrapOrphan wraps arbitrary data through sys/wrapping/wrap.
func sysWrapOrphan(t *testing.T, ep stack.Endpoints, data map[string]any) string {
	t.Helper()
	req := vault.NewLogicalWriteRequest("sys/wrapping/wrap", data, http.Header{"X-Vault-Wrap-TTL": {"120s"}})
	sec, err := rootAPI(t, ep).Logical().WriteWithRequest(testCtx(t), req)
	require.NoError(t, err)
	require.NotNil(t, sec.WrapInfo)
	revokeOnCleanup(t, ep, sec.WrapInfo.Accessor)
	return sec.WrapInfo.Accessor
}

// walk collects every token WrappingTokens reports.
func walk(t *testing.T, c *secrets.Client, max int) (map[string]secrets.WrapToken, bool) {
	t.Helper()
	found := map[string]secrets.WrapToken{}
	more, err := c.WrappingTokens(testCtx(t), max, func(wt secrets.WrapToken) error {
		_, dup := found[wt.Accessor]
		require.False(t, dup, "accessor %s reported twice", wt.Accessor)
		found[wt.Accessor] = wt
		return nil
	})
	require.NoError(t, err)
	return found, more
}

func requireOrphan(t *testing.T, found map[string]secrets.WrapToken, o orphan, kind, key, path string) {
	t.Helper()
	wt, ok := found[o.accessor]
	require.True(t, ok, "orphan %s (%s %s) not found", o.accessor, kind, path)
	require.Equal(t, o.accessor, wt.Accessor)
	require.Equal(t, kind, wt.Kind)
	require.Equal(t, key, wt.Key)
	require.Equal(t, path, wt.Path)
	// Vault's creation_time has whole seconds; wrap_info's has more.
	require.WithinDuration(t, o.createdAt, wt.CreatedAt, 2*time.Second)
	require.False(t, wt.CreatedAt.After(o.createdAt), "creation time %s is after the wrap's %s", wt.CreatedAt, o.createdAt)
	require.WithinDuration(t, o.expiresAt, wt.ExpiresAt, 2*time.Second)
	// Age is Vault's creation_ttl - ttl: at least zero, at most how long
	// ago the wrap was made (whole seconds, rounded either way).
	require.GreaterOrEqual(t, wt.Age, time.Duration(0))
	require.LessOrEqual(t, wt.Age, time.Since(o.createdAt)+time.Second)
	require.NotContains(t, strings.Join([]string{wt.Accessor, wt.Kind, wt.Key, wt.Path}, " "), o.token)
}

// The adversary: whoever steals the sweeper's identity (its RoleID and
// SecretID, or a token from its process). They can do what it does - list,
// look up, revoke by accessor - and nothing else: no secret under the
// joiner prefix, no new token, no policy, no role, no SecretID, no mount.
// Each refusal is Vault's own 403 (classified permanent), and root checks
// afterwards that nothing was written.
func TestIntegrationSweeperPolicyAllowsOnlyTheSweep(t *testing.T) {
	ep := stacktest.Ensure(t)
	ctx := testCtx(t)
	root := rootClient(t, ep)
	s := newSweeper(t, ep)
	worker := workerClient(t, ep)

	// CAN: find, look up and revoke an orphan by accessor.
	key := unique("sweep-pol")
	path := worker.JoinerPath(key, secrets.InitialCredentialName)
	o := credentialOrphan(t, ep, worker, path)
	found, _ := walk(t, s.c, 0)
	requireOrphan(t, found, o, secrets.WrapCredential, key, path)
	wt, ok, err := s.c.LookupWrapToken(ctx, o.accessor)
	require.NoError(t, err)
	require.True(t, ok)
	// Age is Vault's and grows between the walk and the lookup.
	require.GreaterOrEqual(t, wt.Age, found[o.accessor].Age)
	wt.Age = found[o.accessor].Age
	require.Equal(t, found[o.accessor], wt)
	// lookup-accessor never shows the sweeper a token ID.
	look, err := s.raw.Auth().Token().LookupAccessorWithContext(ctx, o.accessor)
	require.NoError(t, err)
	require.Empty(t, look.Data["id"])
	require.NoError(t, s.c.RevokeAccessor(ctx, o.accessor))
	_, err = unwrap(t, ep.VaultAddr, o.token)
	require.Error(t, err, "the revoked orphan no longer unwraps")
	_, ok, err = s.c.LookupWrapToken(ctx, o.accessor)
	require.NoError(t, err)
	require.False(t, ok)

	// CANNOT read or write the joiner's secrets, through the connector...
	_, _, err = s.c.Metadata(ctx, path)
	requireType(t, err, secrets.TypePermissionDenied, false)
	_, _, err = s.c.Wrap(ctx, path, 1, time.Minute)
	requireType(t, err, secrets.TypePermissionDenied, false)
	other := s.c.JoinerPath(unique("sweep-pol-new"), secrets.InitialCredentialName)
	_, err = s.c.Put(ctx, other, map[string]any{"password": "planted"}, nil)
	requireType(t, err, secrets.TypePermissionDenied, false)
	requireType(t, s.c.Destroy(ctx, path), secrets.TypePermissionDenied, false)
	_, err = s.c.GeneratePassword(ctx)
	requireType(t, err, secrets.TypePermissionDenied, false)
	_, err = s.c.Handovers(ctx, secrets.CredentialLedgerPath(path))
	requireType(t, err, secrets.TypePermissionDenied, false)

	// ... nor with its raw token: KV, tokens, policies, AppRole, mounts.
	role := secrets.WorkloadRolePrefix + unique("sweep-pol")
	policy := unique("it-sweep-planted")
	denied := []struct {
		name string
		do   func() error
	}{
		{"read the credential", func() error { _, err := s.raw.Logical().ReadWithContext(ctx, "secret/data/"+path); return err }},
		{"list joiners", func() error {
			_, err := s.raw.Logical().ListWithContext(ctx, "secret/metadata/"+secrets.DefaultPathPrefix)
			return err
		}},
		{"write a credential", func() error {
			_, err := s.raw.Logical().WriteWithContext(ctx, "secret/data/"+other, map[string]any{"data": map[string]any{"password": "planted"}})
			return err
		}},
		{"create a token", func() error {
			_, err := s.raw.Auth().Token().CreateWithContext(ctx, &vault.TokenCreateRequest{Policies: []string{"default"}})
			return err
		}},
		{"create an orphan token", func() error {
			_, err := s.raw.Auth().Token().CreateOrphanWithContext(ctx, &vault.TokenCreateRequest{})
			return err
		}},
		{"create a token for a role", func() error {
			_, err := s.raw.Auth().Token().CreateWithRoleWithContext(ctx, &vault.TokenCreateRequest{}, "any")
			return err
		}},
		{"read the worker policy", func() error {
			_, err := s.raw.Logical().ReadWithContext(ctx, "sys/policy/"+secrets.WorkerPolicyName)
			return err
		}},
		{"read its own policy", func() error { _, err := s.raw.Logical().ReadWithContext(ctx, "sys/policies/acl/"+s.role); return err }},
		{"list policies", func() error { _, err := s.raw.Logical().ListWithContext(ctx, "sys/policies/acl"); return err }},
		{"write a policy", func() error {
			_, err := s.raw.Logical().WriteWithContext(ctx, "sys/policies/acl/"+policy, map[string]any{"policy": `path "*" { capabilities = ["sudo", "read"] }`})
			return err
		}},
		{"create a workload role", func() error {
			_, err := s.raw.Logical().WriteWithContext(ctx, "auth/approle/role/"+role, map[string]any{"token_policies": "root"})
			return err
		}},
		{"widen its own role", func() error {
			_, err := s.raw.Logical().WriteWithContext(ctx, "auth/approle/role/"+s.role, map[string]any{"token_policies": "root"})
			return err
		}},
		{"mint a SecretID for its own role", func() error {
			_, err := s.raw.Logical().WriteWithContext(ctx, "auth/approle/role/"+s.role+"/secret-id", nil)
			return err
		}},
		{"mint a SecretID for the worker", func() error {
			_, err := s.raw.Logical().WriteWithContext(ctx, "auth/approle/role/joinery-worker/secret-id", nil)
			return err
		}},
		{"read the worker's RoleID", func() error {
			_, err := s.raw.Logical().ReadWithContext(ctx, "auth/approle/role/joinery-worker/role-id")
			return err
		}},
		{"list roles", func() error { _, err := s.raw.Logical().ListWithContext(ctx, "auth/approle/role"); return err }},
		{"read mounts", func() error { _, err := s.raw.Sys().ListMountsWithContext(ctx); return err }},
		{"read auth methods", func() error { _, err := s.raw.Sys().ListAuthWithContext(ctx); return err }},
		{"enable a mount", func() error {
			return s.raw.Sys().MountWithContext(ctx, unique("it-sweep-kv"), &vault.MountInput{Type: "kv"})
		}},
		{"read its own role", func() error { _, err := s.raw.Logical().ReadWithContext(ctx, "auth/approle/role/"+s.role); return err }},
		{"list leases", func() error {
			_, err := s.raw.Logical().ListWithContext(ctx, "sys/leases/lookup/auth/approle/login")
			return err
		}},
		{"read the audit devices", func() error { _, err := s.raw.Sys().ListAuditWithContext(ctx); return err }},
		{"use a password policy", func() error {
			_, err := s.raw.Logical().ReadWithContext(ctx, "sys/policies/password/"+secrets.DefaultPasswordPolicy+"/generate")
			return err
		}},
	}
	for _, d := range denied {
		err := d.do()
		var re *vault.ResponseError
		require.ErrorAs(t, err, &re, "%s: the sweeper must be refused", d.name)
		require.Equal(t, http.StatusForbidden, re.StatusCode, "%s: %v", d.name, err)
	}

	// Root sees that nothing was planted.
	_, found2, err := root.Metadata(ctx, other)
	require.NoError(t, err)
	require.False(t, found2, "no credential was written")
	pol, err := rootAPI(t, ep).Sys().GetPolicyWithContext(ctx, policy)
	require.NoError(t, err)
	require.Empty(t, pol, "no policy was written")
	exists, err := root.AppRoleExists(ctx, role)
	require.NoError(t, err)
	require.False(t, exists, "no role was created")
	roleCfg, err := rootAPI(t, ep).Logical().ReadWithContext(ctx, "auth/approle/role/"+s.role)
	require.NoError(t, err)
	require.Equal(t, []any{s.role}, roleCfg.Data["token_policies"], "its own role is unchanged")
}

// A token that may list accessors but lacks sudo (a policy someone
// "simplified") gets Vault's 403, classified permanent and naming the path:
// a sweep that can see nothing must not look like a sweep that found
// nothing.
func TestIntegrationWrappingTokensWithoutSudoIsDenied(t *testing.T) {
	ep := stacktest.Ensure(t)
	token := limitedToken(t, ep, `
path "auth/token/accessors" { capabilities = ["list"] }
path "auth/token/lookup-accessor" { capabilities = ["update"] }
`)
	c := newClient(t, secrets.Config{Addr: ep.VaultAddr, Token: token})
	calls := 0
	_, err := c.WrappingTokens(testCtx(t), 0, func(secrets.WrapToken) error { calls++; return nil })
	ce := requireType(t, err, secrets.TypePermissionDenied, false)
	require.Contains(t, ce.Msg, "auth/token/accessors")
	require.NotContains(t, err.Error(), token)
	require.Zero(t, calls)
}

// The sweep finds orphans of both kinds, with their kind, key, path and
// times, and nothing that is not one of Joinery's wrapping tokens: not a
// wrapped read of another KV path (another prefix, another secret name
// under a joiner), not sys/wrapping/wrap data that merely names a Joinery
// path, not a wrapped SecretID of a role outside joinery-nhi-*, not an
// ordinary token whose display name and metadata imitate a Joinery path.
// The last is the adversary who may create tokens and wants the reconciler
// to revoke someone else's: the creation path is Vault's, not theirs.
func TestIntegrationWrappingTokensFindsOrphans(t *testing.T) {
	ep := stacktest.Ensure(t)
	ctx := testCtx(t)
	root := rootClient(t, ep)
	worker := workerClient(t, ep)
	s := newSweeper(t, ep)

	key := unique("sweep")
	credPath := worker.JoinerPath(key, secrets.InitialCredentialName)
	cred := credentialOrphan(t, ep, worker, credPath)
	role := secrets.WorkloadRolePrefix + unique("sweep")
	wl := workloadOrphan(t, ep, role)

	otherPrefix := unique("it-sweep-other")
	otherPrefixPath := otherPrefix + "/" + key + "/" + secrets.InitialCredentialName
	notJoinery := map[string]string{
		"another prefix":      credentialOrphan(t, ep, root, otherPrefixPath).accessor,
		"another secret name": credentialOrphan(t, ep, worker, worker.JoinerPath(key, "api-key")).accessor,
		"sys/wrapping/wrap":   sysWrapOrphan(t, ep, map[string]any{"path": "secret/data/" + credPath}),
	}
	foreignRole := unique("it-sweep-role")
	notJoinery["foreign role SecretID"] = workloadOrphan(t, ep, foreignRole).accessor
	plain, err := rootAPI(t, ep).Auth().Token().CreateWithContext(ctx, &vault.TokenCreateRequest{
		Policies: []string{"default"}, TTL: "2m", DisplayName: "secret/data/" + credPath,
		Metadata: map[string]string{"path": "secret/data/" + credPath, "policies": "response-wrapping"},
	})
	require.NoError(t, err)
	revokeOnCleanup(t, ep, plain.Auth.Accessor)
	notJoinery["ordinary token imitating a Joinery path"] = plain.Auth.Accessor
	notJoinery["the sweeper's own token"] = func() string {
		sec, err := s.raw.Auth().Token().LookupSelfWithContext(ctx)
		require.NoError(t, err)
		return sec.Data["accessor"].(string)
	}()

	found, more := walk(t, s.c, 0)
	require.False(t, more, "a walk within the default bound reaches the end of the list")
	requireOrphan(t, found, cred, secrets.WrapCredential, key, credPath)
	requireOrphan(t, found, wl, secrets.WrapWorkload, role, role)
	for name, acc := range notJoinery {
		require.NotContains(t, found, acc, "%s must not be reported", name)
	}
	for _, wt := range found {
		require.Contains(t, []string{secrets.WrapCredential, secrets.WrapWorkload}, wt.Kind)
		require.True(t, wt.ExpiresAt.After(time.Now().Add(-time.Minute)), "only live tokens: %+v", wt)
	}

	// The same Vault seen by a sweeper configured for another prefix and
	// AppRole mount: the default prefix's orphans are not its, the other
	// prefix's is (so the prefix, not luck, decides).
	otherCfg := newClient(t, secrets.Config{Addr: ep.VaultAddr, Token: ep.VaultToken, PathPrefix: otherPrefix, AppRoleMount: "approle-" + key})
	found, _ = walk(t, otherCfg, 0)
	require.NotContains(t, found, cred.accessor)
	require.NotContains(t, found, wl.accessor)
	require.Contains(t, found, notJoinery["another prefix"])
	require.Equal(t, secrets.WrapToken{
		Accessor: notJoinery["another prefix"], Kind: secrets.WrapCredential, Key: key, Path: otherPrefixPath,
		CreatedAt: found[notJoinery["another prefix"]].CreatedAt, ExpiresAt: found[notJoinery["another prefix"]].ExpiresAt,
		Age: found[notJoinery["another prefix"]].Age,
	}, found[notJoinery["another prefix"]])

	// fn's error stops the walk at once and comes back unchanged.
	stop := errors.New("stop here")
	calls := 0
	_, err = s.c.WrappingTokens(ctx, 0, func(secrets.WrapToken) error { calls++; return stop })
	require.ErrorIs(t, err, stop)
	require.Equal(t, 1, calls)
}

// lookupProxy sits in front of Vault, counts lookup-accessor requests and
// runs before(accessor) ahead of forwarding each one.
type lookupProxy struct {
	url     string
	lookups atomic.Int64
	mu      sync.Mutex
	before  func(accessor string)
}

func newLookupProxy(t *testing.T, vaultAddr string) *lookupProxy {
	t.Helper()
	target, err := url.Parse(vaultAddr)
	require.NoError(t, err)
	p := &lookupProxy{}
	rp := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/auth/token/lookup-accessor" {
			p.lookups.Add(1)
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			var req struct{ Accessor string }
			_ = json.Unmarshal(body, &req)
			p.mu.Lock()
			before := p.before
			p.mu.Unlock()
			if before != nil {
				before(req.Accessor)
			}
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.url = srv.URL
	return p
}

// max bounds the lookups exactly and says so; a token that vanishes
// between the list and its lookup (here revoked just before Vault is asked,
// as a recipient's unwrap or Vault's expiry would) is skipped and the walk
// goes on to find the rest.
func TestIntegrationWrappingTokensBoundAndVanishing(t *testing.T) {
	ep := stacktest.Ensure(t)
	worker := workerClient(t, ep)
	p := newLookupProxy(t, ep.VaultAddr)
	c := newClient(t, secrets.Config{Addr: p.url, Token: ep.VaultToken})

	keep := credentialOrphan(t, ep, worker, worker.JoinerPath(unique("sweep-keep"), secrets.InitialCredentialName))
	vanishKey := unique("sweep-vanish")
	vanish := credentialOrphan(t, ep, worker, worker.JoinerPath(vanishKey, secrets.InitialCredentialName))

	for _, max := range []int{1, 5} {
		p.lookups.Store(0)
		_, more := walk(t, c, max)
		require.True(t, more, "the shared Vault holds more than %d tokens", max)
		require.Equal(t, int64(max), p.lookups.Load(), "max bounds the lookups")
	}

	root := rootClient(t, ep)
	var revoked atomic.Bool
	p.mu.Lock()
	p.before = func(acc string) {
		// The proxy's goroutine: report, do not FailNow.
		if acc == vanish.accessor && revoked.CompareAndSwap(false, true) {
			if err := root.RevokeAccessor(context.Background(), acc); err != nil {
				t.Errorf("revoking the vanishing token: %v", err)
			}
		}
	}
	p.mu.Unlock()
	p.lookups.Store(0)
	began := time.Now()
	found, more := walk(t, c, 0)
	took := time.Since(began)
	require.False(t, more)
	require.True(t, revoked.Load(), "the walk asked about the vanishing token")
	require.NotContains(t, found, vanish.accessor)
	require.Contains(t, found, keep.accessor)
	require.Greater(t, p.lookups.Load(), int64(2))
	t.Logf("one walk of the shared Vault through the proxy: %d lookups in %s, %d Joinery wrapping tokens", p.lookups.Load(), took.Round(time.Millisecond), len(found))
}

// LookupWrapToken is the check right before a revoke: a live orphan is
// Joinery's; after a revoke or the recipient's unwrap it is gone; another
// path's wrapping token, an ordinary token and an unknown accessor are
// never Joinery's, so the caller must not revoke them.
func TestIntegrationLookupWrapToken(t *testing.T) {
	ep := stacktest.Ensure(t)
	ctx := testCtx(t)
	worker := workerClient(t, ep)
	s := newSweeper(t, ep)

	key := unique("sweep-look")
	path := worker.JoinerPath(key, secrets.InitialCredentialName)
	revoked := credentialOrphan(t, ep, worker, path)
	wt, ok, err := s.c.LookupWrapToken(ctx, revoked.accessor)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, secrets.WrapCredential, wt.Kind)
	require.Equal(t, key, wt.Key)
	require.Equal(t, path, wt.Path)
	require.NoError(t, s.c.RevokeAccessor(ctx, revoked.accessor))
	require.Eventually(t, func() bool {
		_, ok, err := s.c.LookupWrapToken(ctx, revoked.accessor)
		return err == nil && !ok
	}, 10*time.Second, 100*time.Millisecond, "a revoked orphan is gone")
	require.NoError(t, s.c.RevokeAccessor(ctx, revoked.accessor), "revoking again succeeds")

	role := secrets.WorkloadRolePrefix + unique("sweep-look")
	redeemed := workloadOrphan(t, ep, role)
	wt, ok, err = s.c.LookupWrapToken(ctx, redeemed.accessor)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, secrets.WrapToken{Accessor: redeemed.accessor, Kind: secrets.WrapWorkload, Key: role, Path: role,
		CreatedAt: wt.CreatedAt, ExpiresAt: wt.ExpiresAt, Age: wt.Age}, wt)
	_, err = unwrap(t, ep.VaultAddr, redeemed.token)
	require.NoError(t, err, "the recipient redeems it")
	// Vault revokes a redeemed token behind the unwrap's answer.
	require.Eventually(t, func() bool {
		_, ok, err := s.c.LookupWrapToken(ctx, redeemed.accessor)
		return err == nil && !ok
	}, 10*time.Second, 100*time.Millisecond, "a redeemed orphan is gone")

	other := sysWrapOrphan(t, ep, map[string]any{"k": "v"})
	plain := tokenFor(t, ep, "default")
	revokeOnCleanup(t, ep, plain.Accessor)
	for name, acc := range map[string]string{
		"sys/wrapping/wrap": other,
		"ordinary token":    plain.Accessor,
		"unknown accessor":  "NoSuchAccessor0123456789",
	} {
		_, ok, err := s.c.LookupWrapToken(ctx, acc)
		require.NoError(t, err, name)
		require.False(t, ok, "%s is not Joinery's", name)
	}
	// Looking them up changed nothing: the foreign wrapping token still
	// exists.
	_, err = rootAPI(t, ep).Auth().Token().LookupAccessorWithContext(ctx, other)
	require.NoError(t, err)
}
