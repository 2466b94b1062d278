package e2e

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"
	"github.com/stretchr/testify/require"

	"github.com/joinery/joinery/connectors"
	"github.com/joinery/joinery/connectors/secrets"
	"github.com/joinery/joinery/internal/stack"
	"github.com/joinery/joinery/internal/stack/stacktest"
)

// The worker's Vault identity is the one the dev stack's bootstrap created
// (AppRole joinery-worker, policy joinery-worker): these tests log in with
// its RoleID and SecretID exactly as the worker does, and use the root token
// only to arrange and inspect.

// workerLogin returns the worker's connector and a raw API client holding a
// token of the worker's own identity, for the attempts the connector would
// never make.
func workerLogin(t *testing.T, ep stack.Endpoints) (*secrets.Client, *vault.Client) {
	t.Helper()
	roleID, err := os.ReadFile(stack.VaultWorkerRoleIDFile(ep.StateDir))
	require.NoError(t, err, "the bootstrap leaves the worker's RoleID in the state directory")
	secretID, err := os.ReadFile(stack.VaultWorkerSecretIDFile(ep.StateDir))
	require.NoError(t, err)
	info, err := os.Stat(stack.VaultWorkerSecretIDFile(ep.StateDir))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm(), "the SecretID file is the owner's only")
	rid, sid := strings.TrimSpace(string(roleID)), strings.TrimSpace(string(secretID))
	ctx := context.Background()
	sec, err := secrets.New(ctx, secrets.Config{Addr: ep.VaultAddr, RoleID: rid, SecretID: sid})
	require.NoError(t, err)
	raw := vaultClient(t, ep.VaultAddr, "")
	login, err := raw.Logical().WriteWithContext(ctx, "auth/approle/login", map[string]any{"role_id": rid, "secret_id": sid})
	require.NoError(t, err)
	require.Equal(t, []string{"default", secrets.WorkerPolicyName}, login.Auth.TokenPolicies, "the worker's token carries its policy and nothing else")
	raw.SetToken(login.Auth.ClientToken)
	return sec, raw
}

// requireDenied asserts Vault refused the request with 403.
func requireDenied(t *testing.T, what string, err error) {
	t.Helper()
	var re *vault.ResponseError
	require.Error(t, err, "%s must be denied", what)
	require.True(t, errors.As(err, &re), "%s: %v", what, err)
	require.Equal(t, http.StatusForbidden, re.StatusCode, "%s: %v", what, err)
}

// The legitimate flows work with the worker's own identity: initial
// credentials, and a workload AppRole bound to the pre-created policy of
// its kind with exactly the plan's grants.
func TestWorkerVaultPolicyIsEnough(t *testing.T) {
	ep := stacktest.Ensure(t)
	sec, _ := workerLogin(t, ep)
	root := vaultClient(t, ep.VaultAddr, ep.VaultToken)
	ctx := context.Background()
	key := fmt.Sprintf("it-wpol-%d", rand.IntN(1e6))

	var setPw, delivered string
	h, err := sec.IssueInitialCredential(ctx, key, map[string]string{"joiner": key}, time.Hour,
		func(_ context.Context, pw string) error { setPw = pw; return nil },
		func(_ context.Context, tok string) error { delivered = tok; return nil })
	require.NoError(t, err)
	require.NotEmpty(t, setPw)
	require.NotEmpty(t, delivered)
	_, found, err := sec.Metadata(ctx, h.Path)
	require.NoError(t, err)
	require.True(t, found)
	require.NoError(t, sec.RevokeInitialCredential(ctx, h.Path, h.WrapAccessor))
	_, found, err = sec.Metadata(ctx, h.Path)
	require.NoError(t, err)
	require.False(t, found)

	// A delivery that fails leaves no redeemable token behind, without the
	// worker being able to revoke tokens by accessor.
	var undelivered string
	_, err = sec.IssueInitialCredential(ctx, key, nil, time.Hour, func(context.Context, string) error { return nil },
		func(_ context.Context, tok string) error {
			undelivered = tok
			return connectors.Transient("inbox", "post", "InboxUnavailable", "inbox is down", nil)
		})
	require.Error(t, err)
	_, err = unwrap(ep.VaultAddr, undelivered)
	require.Error(t, err, "the undelivered wrapping token was consumed")
	require.NoError(t, sec.RevokeInitialCredential(ctx, sec.JoinerPath(key, secrets.InitialCredentialName), ""))

	// A workload of kind pipeline, as the joiner policy plans it.
	name := fmt.Sprintf("bot%d", rand.IntN(1e6))
	role := secrets.WorkloadRolePrefix + name + "-staging"
	t.Cleanup(func() { _, _ = root.Logical().Delete("auth/approle/role/" + role) })
	grants := []secrets.GrantTemplate{
		{Path: "secret/data/workloads/" + name + "/staging/*", Capabilities: []string{"read"}},
		{Path: "secret/metadata/workloads/" + name + "/staging/*", Capabilities: []string{"list"}},
	}
	opts := secrets.AppRoleOptions{TokenTTL: 30 * time.Minute, TokenMaxTTL: time.Hour, SecretIDNumUses: 1, SecretIDTTL: time.Hour,
		TokenBoundCIDRs: []string{"127.0.0.0/8"}, SecretIDBoundCIDRs: []string{"127.0.0.0/8"}}
	var wrapped string
	wl, err := sec.IssueWorkload(ctx, secrets.WorkloadRequest{Role: role, Kind: "pipeline", Grants: grants, Options: opts, WrapTTL: time.Hour},
		func(_ context.Context, tok string) error { wrapped = tok; return nil })
	require.NoError(t, err)
	require.Equal(t, "joinery-workload-pipeline", wl.PolicyName)
	require.Contains(t, wl.EffectivePolicy, `path "secret/data/workloads/`+name+`/staging/*"`)

	// The workload logs in with what the sponsor unwraps and gets exactly
	// its grants.
	s, err := unwrap(ep.VaultAddr, wrapped)
	require.NoError(t, err)
	wtok := appRoleLogin(t, ep, wl.RoleID, s.Data["secret_id"].(string))
	_, err = root.Logical().Write("secret/data/workloads/"+name+"/staging/db", map[string]any{"data": map[string]any{"password": "x"}})
	require.NoError(t, err)
	_, err = root.Logical().Write("secret/data/workloads/other-"+name+"/staging/db", map[string]any{"data": map[string]any{"password": "y"}})
	require.NoError(t, err)
	t.Cleanup(func() {
		_, _ = root.Logical().Delete("secret/metadata/workloads/" + name + "/staging/db")
		_, _ = root.Logical().Delete("secret/metadata/workloads/other-" + name + "/staging/db")
	})
	workload := vaultClient(t, ep.VaultAddr, wtok)
	got, err := workload.Logical().Read("secret/data/workloads/" + name + "/staging/db")
	require.NoError(t, err)
	require.Equal(t, "x", got.Data["data"].(map[string]any)["password"])
	_, err = workload.Logical().List("secret/metadata/workloads/" + name + "/staging/")
	require.NoError(t, err)
	_, err = workload.Logical().Read("secret/data/workloads/other-" + name + "/staging/db")
	requireDenied(t, "a workload reading another workload's secret", err)
	_, err = workload.Logical().Write("secret/data/workloads/"+name+"/staging/db", map[string]any{"data": map[string]any{"password": "z"}})
	requireDenied(t, "a workload writing where it may only read", err)

	// An undelivered SecretID is consumed and destroyed.
	_, err = sec.IssueWorkload(ctx, secrets.WorkloadRequest{Role: role, Kind: "pipeline", Grants: grants, Options: opts, WrapTTL: time.Hour},
		func(_ context.Context, tok string) error { wrapped = tok; return errors.New("mail relay down") })
	require.ErrorContains(t, err, "mail relay down")
	_, err = unwrap(ep.VaultAddr, wrapped)
	require.Error(t, err, "the undelivered wrapped SecretID was consumed")
	ids, err := root.Logical().List("auth/approle/role/" + role + "/secret-id")
	require.NoError(t, err)
	require.Nil(t, ids, "the first SecretID was used by the login, the second destroyed: none is left")

	// Grants the catalogue does not yield fail clearly and create nothing.
	other := secrets.WorkloadRolePrefix + name + "-wide"
	_, err = sec.IssueWorkload(ctx, secrets.WorkloadRequest{Role: other, Grants: []secrets.GrantTemplate{
		{Path: "secret/data/joinery/joiners/*", Capabilities: []string{"read"}},
		{Path: "secret/metadata/workloads/" + name + "/staging/*", Capabilities: []string{"list"}},
	}, Options: opts, WrapTTL: time.Hour}, func(context.Context, string) error { return nil })
	var ce *connectors.Error
	require.ErrorAs(t, err, &ce)
	require.Equal(t, secrets.TypeNoWorkloadPolicy, ce.Type)
	require.False(t, ce.Retryable)
	r, err := root.Logical().Read("auth/approle/role/" + other)
	require.NoError(t, err)
	require.Nil(t, r, "no role was created for grants outside the catalogue")

	// Revoking the workload takes its permissions away at once, from tokens
	// already issued too, without the worker being able to revoke tokens:
	// the role's entity alias loses its slot values, then the role goes.
	_, err = workload.Logical().Read("secret/data/workloads/" + name + "/staging/db")
	require.NoError(t, err, "still active before revocation")
	require.NoError(t, sec.RevokeWorkload(ctx, role))
	_, err = workload.Logical().Read("secret/data/workloads/" + name + "/staging/db")
	requireDenied(t, "a workload token issued before revocation", err)
	r, err = root.Logical().Read("auth/approle/role/" + role)
	require.NoError(t, err)
	require.Nil(t, r, "the role is deleted")
	require.NoError(t, sec.RevokeWorkload(ctx, role), "revoking again is a no-op")
	require.NoError(t, sec.DeletePolicy(ctx, secrets.WorkloadRolePrefix+name), "deleting a legacy per-joiner policy (absent: a no-op)")
}

// Every way found in review, and more, to turn the worker's identity into
// something bigger is refused by Vault itself.
func TestWorkerVaultIdentityCannotEscalate(t *testing.T) {
	ep := stacktest.Ensure(t)
	_, w := workerLogin(t, ep)
	root := vaultClient(t, ep.VaultAddr, ep.VaultToken)
	ctx := context.Background()
	n := rand.IntN(1e6)
	role := fmt.Sprintf("%sx%d", secrets.WorkloadRolePrefix, n)
	t.Cleanup(func() {
		_, _ = root.Logical().Delete("auth/approle/role/" + role)
		_, _ = root.Logical().Delete("sys/policies/acl/" + role)
	})
	write := func(path string, data map[string]any) error {
		_, err := w.Logical().WriteWithContext(ctx, path, data)
		return err
	}
	read := func(path string) error {
		_, err := w.Logical().ReadWithContext(ctx, path)
		return err
	}
	sudo := `path "*" { capabilities = ["create", "read", "update", "delete", "list", "sudo"] }`

	// The four calls from the review: policy, role, role-id, SecretID.
	requireDenied(t, "writing sys/policies/acl/joinery-nhi-x with sudo", write("sys/policies/acl/"+role, map[string]any{"policy": sudo}))
	requireDenied(t, "writing any ACL policy", write("sys/policies/acl/anything", map[string]any{"policy": sudo}))
	requireDenied(t, "PUT sys/policy (legacy endpoint)", write("sys/policy/"+role, map[string]any{"policy": sudo}))
	for _, pols := range []any{
		[]string{"root"},
		[]string{secrets.WorkerPolicyName},
		[]string{"default"},
		[]string{"joinery-workload-pipeline", "root"},
		"joinery-workload-pipeline,root",
		"root",
		[]string{role},
	} {
		requireDenied(t, fmt.Sprintf("a role with token_policies=%v", pols),
			write("auth/approle/role/"+role, map[string]any{"token_policies": pols}))
	}
	for param, val := range map[string]any{
		"policies":                []string{"root"},
		"bind_secret_id":          false,
		"token_period":            "768h",
		"period":                  "768h",
		"token_type":              "batch",
		"token_no_default_policy": true,
		"token_explicit_max_ttl":  "0",
		"role_id":                 "chosen-role-id",
		"local_secret_ids":        true,
	} {
		requireDenied(t, "a role with "+param, write("auth/approle/role/"+role,
			map[string]any{"token_policies": []string{"joinery-workload-pipeline"}, param: val}))
	}
	// A role with an allowed workload policy can be made: the worker's job.
	require.NoError(t, write("auth/approle/role/"+role, map[string]any{"token_policies": []string{"joinery-workload-pipeline"}}))
	requireDenied(t, "token policies through role/<name>/policies", write("auth/approle/role/"+role+"/policies", map[string]any{"token_policies": "root"}))
	requireDenied(t, "legacy policies through role/<name>/policies", write("auth/approle/role/"+role+"/policies", map[string]any{"policies": "root"}))
	requireDenied(t, "a RoleID of its choosing", write("auth/approle/role/"+role+"/role-id", map[string]any{"role_id": "chosen"}))
	requireDenied(t, "a SecretID of its choosing", write("auth/approle/role/"+role+"/custom-secret-id", map[string]any{"secret_id": "chosen-secret"}))
	requireDenied(t, "turning off SecretIDs", write("auth/approle/role/"+role+"/bind-secret-id", map[string]any{"bind_secret_id": false}))
	requireDenied(t, "periodic tokens", write("auth/approle/role/"+role+"/period", map[string]any{"period": "768h"}))

	// Roles outside Joinery's prefix, including its own.
	for _, other := range []string{stack.WorkerAppRole, "admin", "joinery-nhi"} {
		requireDenied(t, "reading role "+other+"'s RoleID", read("auth/approle/role/"+other+"/role-id"))
		requireDenied(t, "minting a SecretID for role "+other, write("auth/approle/role/"+other+"/secret-id", nil))
		requireDenied(t, "updating role "+other, write("auth/approle/role/"+other, map[string]any{"token_policies": []string{"joinery-workload-pipeline"}}))
	}
	// Dot segments do not reach a role outside the prefix: Vault redirects to
	// the cleaned path (whose ACL then applies) or finds no route.
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, p := range []string{
		"auth/approle/role/" + role + "/../" + stack.WorkerAppRole + "/secret-id",
		"auth/approle/role/" + role + "/%2e%2e/" + stack.WorkerAppRole + "/secret-id",
		"auth/approle/role/" + role + "%2f..%2f" + stack.WorkerAppRole + "/secret-id",
	} {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.VaultAddr+"/v1/"+p, strings.NewReader("{}"))
		require.NoError(t, err)
		req.Header.Set("X-Vault-Token", w.Token())
		resp, err := noRedirect.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.GreaterOrEqual(t, resp.StatusCode, 300, "%s must not succeed", p)
		if resp.StatusCode/100 == 3 {
			loc := resp.Header.Get("Location")
			require.NotContains(t, loc, "..", "the redirect goes to the cleaned path")
			_, err := w.Logical().WriteWithContext(ctx, strings.TrimPrefix(loc, "/v1/"), nil)
			requireDenied(t, "the cleaned path "+loc, err)
		}
	}
	requireDenied(t, "listing roles", func() error { _, err := w.Logical().ListWithContext(ctx, "auth/approle/role"); return err }())

	// Tokens: no revoking others', no minting new ones.
	victim, err := root.Auth().Token().CreateWithContext(ctx, &vault.TokenCreateRequest{Policies: []string{"default"}, TTL: "10m"})
	require.NoError(t, err)
	requireDenied(t, "revoking another token by accessor", write("auth/token/revoke-accessor", map[string]any{"accessor": victim.Auth.Accessor}))
	requireDenied(t, "revoking another token", write("auth/token/revoke", map[string]any{"token": victim.Auth.ClientToken}))
	requireDenied(t, "revoking another token as orphan", write("auth/token/revoke-orphan", map[string]any{"token": victim.Auth.ClientToken}))
	requireDenied(t, "looking up a token by accessor", write("auth/token/lookup-accessor", map[string]any{"accessor": victim.Auth.Accessor}))
	_, err = root.Auth().Token().LookupWithContext(ctx, victim.Auth.ClientToken)
	require.NoError(t, err, "the other token is untouched")
	requireDenied(t, "auth/token/create with policies", write("auth/token/create", map[string]any{"policies": []string{"root"}}))
	requireDenied(t, "auth/token/create", write("auth/token/create", map[string]any{}))
	requireDenied(t, "auth/token/create-orphan", write("auth/token/create-orphan", map[string]any{}))
	requireDenied(t, "a token role", write("auth/token/roles/x", map[string]any{"allowed_policies": "root"}))

	// Secrets that are not the worker's.
	for _, p := range []string{"secret/data/apps/db", "secret/data/workloads/deploy-bot/production/db", "secret/data/joinery/other",
		"cubbyhole/../secret/data/x", "sys/config/state/sanitized"} {
		requireDenied(t, "reading "+p, read(p))
	}
	requireDenied(t, "writing an arbitrary secret", write("secret/data/apps/db", map[string]any{"data": map[string]any{"x": "y"}}))
	requireDenied(t, "rewriting the workload catalogue", write("secret/data/"+secrets.DefaultWorkloadCataloguePath, map[string]any{"data": map[string]any{"catalogue": "{}"}}))
	requireDenied(t, "listing joiners", func() error {
		_, err := w.Logical().ListWithContext(ctx, "secret/metadata/joinery/joiners")
		return err
	}())

	// Mounts, auth methods, policies, audit, identity.
	requireDenied(t, "reading sys/mounts", read("sys/mounts"))
	requireDenied(t, "mounting an engine", write("sys/mounts/evil", map[string]any{"type": "kv"}))
	requireDenied(t, "tuning the KV mount", write("sys/mounts/secret/tune", map[string]any{"max_lease_ttl": "87600h"}))
	requireDenied(t, "reading sys/auth", read("sys/auth"))
	requireDenied(t, "enabling an auth method", write("sys/auth/evil", map[string]any{"type": "userpass"}))
	requireDenied(t, "reading the worker's own policy", read("sys/policies/acl/"+secrets.WorkerPolicyName))
	requireDenied(t, "deleting a workload policy", func() error {
		_, err := w.Logical().DeleteWithContext(ctx, "sys/policies/acl/joinery-workload-pipeline")
		return err
	}())
	requireDenied(t, "deleting the worker's policy", func() error {
		_, err := w.Logical().DeleteWithContext(ctx, "sys/policies/acl/"+secrets.WorkerPolicyName)
		return err
	}())
	requireDenied(t, "changing the password policy", write("sys/policies/password/joinery-initial", map[string]any{"policy": "length = 4"}))
	requireDenied(t, "disabling audit", func() error { _, err := w.Logical().DeleteWithContext(ctx, "sys/audit/file"); return err }())
	requireDenied(t, "an identity entity with root", write("identity/entity", map[string]any{"name": role, "policies": []string{"root"}}))
	requireDenied(t, "an identity group with root", write("identity/group", map[string]any{"name": role, "policies": []string{"root"}}))
	requireDenied(t, "an entity alias", write("identity/entity-alias", map[string]any{"name": "x", "canonical_id": "x", "mount_accessor": "x"}))
	requireDenied(t, "sys/capabilities on another token", write("sys/capabilities", map[string]any{"token": victim.Auth.ClientToken, "path": "sys"}))
	requireDenied(t, "sealing Vault", write("sys/seal", map[string]any{}))

	// The residual bound, made concrete: through SecretID metadata the
	// worker chooses a workload's slot values, so the most it can obtain is
	// a kind's prefix with that kind's capabilities - never a path outside.
	require.NoError(t, write("auth/approle/role/"+role, map[string]any{"token_policies": []string{"joinery-workload-pipeline"}, "secret_id_bound_cidrs": []string{"127.0.0.0/8"}}))
	rid, err := w.Logical().ReadWithContext(ctx, "auth/approle/role/"+role+"/role-id")
	require.NoError(t, err, "reading a Joinery role's RoleID is the worker's job")
	for slot, wantReach := range map[string]bool{"../../joinery/joiners/*": false, "*": true} {
		s, err := w.Logical().WriteWithContext(ctx, "auth/approle/role/"+role+"/secret-id",
			map[string]any{"metadata": `{"joinery_slot_0":"` + slot + `","joinery_slot_1":"` + slot + `"}`})
		require.NoError(t, err)
		tok := appRoleLogin(t, ep, rid.Data["role_id"].(string), s.Data["secret_id"].(string))
		c := vaultClient(t, ep.VaultAddr, tok)
		_, err = c.Logical().Read("secret/data/joinery/joiners/x/initial-credential")
		requireDenied(t, "a workload reaching joiners' credentials through slot "+slot, err)
		_, err = c.Logical().Read("sys/mounts")
		requireDenied(t, "a workload reaching sys through slot "+slot, err)
		_, err = c.Logical().Write("secret/data/workloads/a/b/c", map[string]any{"data": map[string]any{"x": "y"}})
		requireDenied(t, "a workload writing with a read-only kind through slot "+slot, err)
		_, err = c.Logical().Read("secret/data/workloads/a/b/c")
		if wantReach {
			var re *vault.ResponseError
			if errors.As(err, &re) {
				require.NotEqual(t, http.StatusForbidden, re.StatusCode, "the documented bound: below the kind's prefix")
			}
		} else {
			requireDenied(t, "slot "+slot+" outside its own subtree", err)
		}
	}
}

// appRoleLogin logs in as a role and returns the token.
func appRoleLogin(t *testing.T, ep stack.Endpoints, roleID, secretID string) string {
	t.Helper()
	s, err := vaultClient(t, ep.VaultAddr, "").Logical().Write("auth/approle/login", map[string]any{"role_id": roleID, "secret_id": secretID})
	require.NoError(t, err)
	return s.Auth.ClientToken
}
