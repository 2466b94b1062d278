package secrets_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
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

// Integration tests against the dev stack's Vault (and, for sealing, a
// private dev server). Every test uses its own joiner key, role and policy
// names so that runs never see each other's data.

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func unique(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s-%d-%s", prefix, time.Now().UnixNano(), hex.EncodeToString(b))
}

// rootAPI is a plain vault/api client with the stack's root token, used to
// arrange and inspect what the connector did.
func rootAPI(t *testing.T, ep stack.Endpoints) *vault.Client {
	t.Helper()
	return apiClient(t, ep.VaultAddr, ep.VaultToken)
}

func apiClient(t *testing.T, addr, token string) *vault.Client {
	t.Helper()
	cfg := vault.DefaultConfig()
	cfg.Address = addr
	cfg.MaxRetries = 0
	vc, err := vault.NewClient(cfg)
	require.NoError(t, err)
	vc.SetToken(token)
	return vc
}

func newClient(t *testing.T, cfg secrets.Config) *secrets.Client {
	t.Helper()
	c, err := secrets.New(testCtx(t), cfg)
	require.NoError(t, err)
	return c
}

func rootClient(t *testing.T, ep stack.Endpoints) *secrets.Client {
	t.Helper()
	return newClient(t, secrets.Config{Addr: ep.VaultAddr, Token: ep.VaultToken})
}

// unwrap redeems a wrapping token with a fresh client that has no token of
// its own, as the recipient would.
func unwrap(t *testing.T, addr, token string) (*vault.Secret, error) {
	t.Helper()
	return apiClient(t, addr, "").Logical().UnwrapWithContext(testCtx(t), token)
}

func kvData(t *testing.T, sec *vault.Secret) map[string]any {
	t.Helper()
	require.NotNil(t, sec)
	data, ok := sec.Data["data"].(map[string]any)
	require.True(t, ok, "unwrapped KV response has no data: %v", sec.Data)
	return data
}

func requireType(t *testing.T, err error, typ string, retryable bool) *connectors.Error {
	t.Helper()
	require.Error(t, err)
	var ce *connectors.Error
	require.ErrorAs(t, err, &ce)
	require.Equal(t, typ, ce.Type, "error: %v", err)
	require.Equal(t, retryable, ce.Retryable, "error: %v", err)
	require.Equal(t, retryable, connectors.IsRetryable(err))
	return ce
}

func destroyOnCleanup(t *testing.T, c *secrets.Client, path string) {
	t.Cleanup(func() {
		if err := c.Destroy(context.Background(), path); err != nil {
			t.Errorf("cleanup: destroy %s: %v", path, err)
		}
	})
}

func TestIntegrationPutWrapUnwrapOnce(t *testing.T) {
	ep := stacktest.Ensure(t)
	ctx := testCtx(t)
	c := rootClient(t, ep)
	require.NoError(t, c.Health(ctx))

	key := unique("put")
	path := c.JoinerPath(key, "initial-credential")
	destroyOnCleanup(t, c, path)
	value := unique("value")

	stored, err := c.Put(ctx, path, map[string]any{"password": value}, map[string]string{"joiner": key, "username": "jdoe"})
	require.NoError(t, err)
	require.Equal(t, secrets.StoredSecret{Path: path, Version: 1}, stored)

	before := time.Now()
	token, h, err := c.Wrap(ctx, path, stored.Version, 2*time.Minute)
	require.NoError(t, err)
	require.NotEmpty(t, token)
	require.Equal(t, path, h.Path)
	require.Equal(t, 1, h.Version)
	require.NotEmpty(t, h.WrapAccessor)
	require.Equal(t, 2*time.Minute, h.WrapTTL)
	require.WithinDuration(t, before.Add(2*time.Minute), h.ExpiresAt, 10*time.Second)
	rendered := fmt.Sprintf("%#v", h)
	require.NotContains(t, rendered, token, "the handover never carries the wrapping token")
	require.NotContains(t, rendered, value, "the handover never carries the value")

	// sys/wrapping/lookup shows what was wrapped without consuming it.
	look, err := apiClient(t, ep.VaultAddr, "").Logical().WriteWithContext(ctx, "sys/wrapping/lookup", map[string]any{"token": token})
	require.NoError(t, err)
	require.Equal(t, "secret/data/"+path, look.Data["creation_path"])

	sec, err := unwrap(t, ep.VaultAddr, token)
	require.NoError(t, err)
	require.Equal(t, value, kvData(t, sec)["password"])

	_, err = unwrap(t, ep.VaultAddr, token)
	require.Error(t, err, "a wrapping token is single use")

	md, found, err := c.Metadata(ctx, path)
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, path, md.Path)
	require.Equal(t, 1, md.CurrentVersion)
	require.Len(t, md.Versions, 1)
	require.False(t, md.CreatedTime.IsZero())
	require.Equal(t, map[string]string{"joiner": key, "username": "jdoe"}, md.CustomMetadata)
	require.NotContains(t, fmt.Sprintf("%#v", md), value, "metadata never carries the value")

	// A second write is a new version; version 0 wraps the current one.
	stored2, err := c.Put(ctx, path, map[string]any{"password": value + "-2"}, nil)
	require.NoError(t, err)
	require.Equal(t, 2, stored2.Version)
	token2, h2, err := c.Wrap(ctx, path, 0, time.Minute)
	require.NoError(t, err)
	require.Equal(t, 2, h2.Version)
	sec, err = unwrap(t, ep.VaultAddr, token2)
	require.NoError(t, err)
	require.Equal(t, value+"-2", kvData(t, sec)["password"])
	md, _, err = c.Metadata(ctx, path)
	require.NoError(t, err)
	require.Equal(t, 2, md.CurrentVersion)
	require.Len(t, md.Versions, 2)
	require.Equal(t, "jdoe", md.CustomMetadata["username"], "custom metadata survives a write without metadata")

	_, _, err = c.Wrap(ctx, path, 7, time.Minute)
	requireType(t, err, secrets.TypeNotFound, false)
	// Vault itself would wrap a soft-deleted version's empty body with 200.
	require.NoError(t, rootAPI(t, ep).KVv2("secret").DeleteVersions(ctx, path, []int{1}))
	_, _, err = c.Wrap(ctx, path, 1, time.Minute)
	requireType(t, err, secrets.TypeNotFound, false)
	_, _, err = c.Wrap(ctx, c.JoinerPath(unique("absent"), "initial-credential"), 1, time.Minute)
	requireType(t, err, secrets.TypeNotFound, false)
	_, found, err = c.Metadata(ctx, c.JoinerPath(unique("absent"), "initial-credential"))
	require.NoError(t, err)
	require.False(t, found)
}

func TestIntegrationGeneratePasswordSatisfiesPolicy(t *testing.T) {
	ep := stacktest.Ensure(t)
	ctx := testCtx(t)
	root := rootClient(t, ep)
	policy := unique("pw")
	require.NoError(t, root.EnsurePasswordPolicy(ctx, policy, secrets.InitialPasswordPolicyHCL))
	t.Cleanup(func() {
		_, err := rootAPI(t, ep).Logical().Delete("sys/policies/password/" + policy)
		require.NoError(t, err)
	})

	c := newClient(t, secrets.Config{Addr: ep.VaultAddr, Token: ep.VaultToken, PasswordPolicy: policy})
	const symbols = "!@#$%^&*-_=+"
	seen := map[string]bool{}
	for range 25 {
		pw, err := c.GeneratePassword(ctx)
		require.NoError(t, err)
		require.Len(t, pw, 20)
		require.True(t, strings.ContainsAny(pw, "abcdefghijklmnopqrstuvwxyz"), "lower-case")
		require.True(t, strings.ContainsAny(pw, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"), "upper-case")
		require.True(t, strings.ContainsAny(pw, "0123456789"), "digit")
		require.True(t, strings.ContainsAny(pw, symbols), "symbol")
		for _, r := range pw {
			ok := r < 128 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(symbols, r))
			require.True(t, ok, "unexpected character %q", r)
		}
		require.False(t, seen[pw], "passwords repeat")
		seen[pw] = true
	}

	// The stack's policy (created through the same function) works too.
	pw, err := root.GeneratePassword(ctx)
	require.NoError(t, err)
	require.Len(t, pw, 20)

	missing := newClient(t, secrets.Config{Addr: ep.VaultAddr, Token: ep.VaultToken, PasswordPolicy: unique("nopolicy")})
	_, err = missing.GeneratePassword(ctx)
	requireType(t, err, secrets.TypeNotFound, false)
}

func TestIntegrationEnsurePasswordPolicyIsIdempotent(t *testing.T) {
	ep := stacktest.Ensure(t)
	ctx := testCtx(t)
	root := rootClient(t, ep)
	name := unique("ensure")
	t.Cleanup(func() {
		_, err := rootAPI(t, ep).Logical().Delete("sys/policies/password/" + name)
		require.NoError(t, err)
	})
	require.NoError(t, root.EnsurePasswordPolicy(ctx, name, secrets.InitialPasswordPolicyHCL))
	require.NoError(t, root.EnsurePasswordPolicy(ctx, name, secrets.InitialPasswordPolicyHCL))

	// A token that may only read the policy succeeds when it is already
	// right, and is refused when it would have to change it.
	readOnly := limitedToken(t, ep, fmt.Sprintf(`path "sys/policies/password/%s" { capabilities = ["read"] }`, name))
	ro := newClient(t, secrets.Config{Addr: ep.VaultAddr, Token: readOnly})
	require.NoError(t, ro.EnsurePasswordPolicy(ctx, name, secrets.InitialPasswordPolicyHCL))
	err := ro.EnsurePasswordPolicy(ctx, name, strings.Replace(secrets.InitialPasswordPolicyHCL, "length = 20", "length = 24", 1))
	ce := requireType(t, err, secrets.TypePermissionDenied, false)
	require.Contains(t, ce.Msg, "sys/policies/password/"+name)

	// Vault validates the HCL on write.
	err = root.EnsurePasswordPolicy(ctx, name, `length = 2
rule "charset" {
  charset = "a"
  min-chars = 5
}`)
	requireType(t, err, secrets.TypeRejected, false)
}

// limitedToken creates a token with only the given ACL (plus Vault's default
// policy) through the root token, and removes both afterwards.
func limitedToken(t *testing.T, ep stack.Endpoints, hcl string) string {
	t.Helper()
	ctx := testCtx(t)
	root := rootClient(t, ep)
	policy := unique("it-acl")
	require.NoError(t, root.WritePolicy(ctx, policy, hcl))
	sec, err := rootAPI(t, ep).Auth().Token().CreateWithContext(ctx, &vault.TokenCreateRequest{Policies: []string{policy}, TTL: "10m"})
	require.NoError(t, err)
	t.Cleanup(func() {
		require.NoError(t, root.RevokeAccessor(context.Background(), sec.Auth.Accessor))
		require.NoError(t, root.DeletePolicy(context.Background(), policy))
	})
	return sec.Auth.ClientToken
}

func TestIntegrationIssueInitialCredentialTwice(t *testing.T) {
	ep := stacktest.Ensure(t)
	ctx := testCtx(t)
	c := rootClient(t, ep)
	key := unique("issue")
	path := c.JoinerPath(key, secrets.InitialCredentialName)
	destroyOnCleanup(t, c, path)
	destroyOnCleanup(t, c, secrets.CredentialLedgerPath(path))
	meta := map[string]string{"username": "ada.lovelace", "dn": "uid=ada.lovelace,ou=people,dc=joinery,dc=test"}

	var set, delivered []string
	setPassword := func(_ context.Context, pw string) error { set = append(set, pw); return nil }
	deliver := func(_ context.Context, tok string) error { delivered = append(delivered, tok); return nil }

	h1, err := c.IssueInitialCredential(ctx, key, meta, 5*time.Minute, setPassword, deliver)
	require.NoError(t, err)
	h2, err := c.IssueInitialCredential(ctx, key, meta, 5*time.Minute, setPassword, deliver)
	require.NoError(t, err)

	require.Len(t, set, 2)
	require.Len(t, delivered, 2)
	require.NotEqual(t, set[0], set[1])
	require.Equal(t, path, h1.Path)
	require.Equal(t, 1, h1.Version)
	require.Equal(t, 2, h2.Version)
	require.NotEqual(t, h1.WrapAccessor, h2.WrapAccessor)
	for i, h := range []secrets.Handover{h1, h2} {
		rendered := fmt.Sprintf("%#v", h)
		require.NotContains(t, rendered, set[i])
		require.NotContains(t, rendered, delivered[i])
	}

	// The second call ended the first handover (its password is no longer
	// the account's); the second token unwraps to the password set last.
	_, err = unwrap(t, ep.VaultAddr, delivered[0])
	require.Error(t, err, "the superseded wrapping token is ended")
	sec, err := unwrap(t, ep.VaultAddr, delivered[1])
	require.NoError(t, err)
	data := kvData(t, sec)
	require.Equal(t, set[1], data["password"])
	require.Equal(t, "ada.lovelace", data["username"])
	// The stored latest version is the password the directory has now.
	latest, err := rootAPI(t, ep).KVv2("secret").Get(ctx, path)
	require.NoError(t, err)
	require.Equal(t, 2, latest.VersionMetadata.Version)
	require.Equal(t, set[1], latest.Data["password"])

	md, found, err := c.Metadata(ctx, path)
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, map[string]string{"joiner": key, "username": meta["username"], "dn": meta["dn"]}, md.CustomMetadata)
	require.Len(t, md.Versions, 2)
	require.True(t, md.Versions[0].Destroyed, "the superseded version is destroyed")
	require.False(t, md.Versions[1].Destroyed)
}

func TestIntegrationIssueInitialCredentialFailures(t *testing.T) {
	ep := stacktest.Ensure(t)
	ctx := testCtx(t)
	c := rootClient(t, ep)
	key := unique("issuefail")
	path := c.JoinerPath(key, secrets.InitialCredentialName)
	destroyOnCleanup(t, c, path)

	// The directory refuses the password, quoting it: the version is
	// destroyed, nothing is delivered and the error does not repeat it.
	var refused string
	dirErr := func(_ context.Context, pw string) error {
		refused = pw
		return connectors.Permanent("ldap", "modify", "DirectoryConstraint", "password "+pw+" is in history", nil)
	}
	deliverCalled := false
	_, err := c.IssueInitialCredential(ctx, key, nil, time.Minute, dirErr, func(context.Context, string) error {
		deliverCalled = true
		return nil
	})
	ce := requireType(t, err, "DirectoryConstraint", false)
	require.Equal(t, "ldap", ce.System, "the directory's classification is kept")
	require.NotContains(t, err.Error(), refused)
	require.False(t, deliverCalled)
	md, found, err := c.Metadata(ctx, path)
	require.NoError(t, err)
	require.True(t, found)
	v1, ok := md.Version(1)
	require.True(t, ok)
	require.True(t, v1.Destroyed, "a password the directory refused is not left readable")

	// Delivery fails: the undelivered wrapping token is revoked.
	var token string
	_, err = c.IssueInitialCredential(ctx, key, nil, time.Minute, func(context.Context, string) error { return nil },
		func(_ context.Context, tok string) error {
			token = tok
			return connectors.Transient("inbox", "post", "InboxUnavailable", "inbox is down", nil)
		})
	require.Error(t, err)
	require.True(t, connectors.IsRetryable(err))
	require.Contains(t, err.Error(), "inbox is down")
	require.NotEmpty(t, token)
	_, err = unwrap(t, ep.VaultAddr, token)
	require.Error(t, err, "an undelivered wrapping token must not stay redeemable")

	_, err = c.IssueInitialCredential(ctx, key, nil, 0, func(context.Context, string) error { return nil }, func(context.Context, string) error { return nil })
	requireType(t, err, secrets.TypeInvalidRequest, false)
}

func TestIntegrationRevokeInitialCredential(t *testing.T) {
	ep := stacktest.Ensure(t)
	ctx := testCtx(t)
	c := rootClient(t, ep)
	key := unique("revoke")
	var token string
	h, err := c.IssueInitialCredential(ctx, key, map[string]string{"username": "x"}, 10*time.Minute,
		func(context.Context, string) error { return nil },
		func(_ context.Context, tok string) error { token = tok; return nil })
	require.NoError(t, err)

	require.NoError(t, c.RevokeInitialCredential(ctx, h.Path, h.WrapAccessor))
	require.NoError(t, c.RevokeInitialCredential(ctx, h.Path, h.WrapAccessor), "the second revocation is a no-op")

	_, found, err := c.Metadata(ctx, h.Path)
	require.NoError(t, err)
	require.False(t, found, "the path and all its versions are gone")
	// The unredeemed wrapping token is ended too: the connector recorded it
	// in the credential's ledger and redeemed it itself (no
	// auth/token/revoke-accessor needed, which the worker does not have).
	_, err = rootAPI(t, ep).Auth().Token().LookupAccessorWithContext(ctx, h.WrapAccessor)
	require.Error(t, err, "the wrapping token is gone")
	_, err = unwrap(t, ep.VaultAddr, token)
	require.Error(t, err, "ended by the revocation")
	require.NoError(t, c.RevokeAccessor(ctx, h.WrapAccessor), "revoking an ended accessor succeeds")

	// Revoking a used token's accessor and destroying an absent path succeed.
	stored, err := c.Put(ctx, h.Path, map[string]any{"password": "p"}, nil)
	require.NoError(t, err)
	tok, h2, err := c.Wrap(ctx, stored.Path, stored.Version, time.Minute)
	require.NoError(t, err)
	_, err = unwrap(t, ep.VaultAddr, tok)
	require.NoError(t, err)
	require.NoError(t, c.RevokeInitialCredential(ctx, h2.Path, h2.WrapAccessor))
	require.NoError(t, c.RevokeAccessor(ctx, "never-issued-accessor"))
	require.NoError(t, c.Destroy(ctx, c.JoinerPath(unique("absent"), "initial-credential")))
	require.NoError(t, c.RevokeInitialCredential(ctx, c.JoinerPath(unique("absent"), "initial-credential"), ""))
}

func TestIntegrationPermissionDenied(t *testing.T) {
	ep := stacktest.Ensure(t)
	ctx := testCtx(t)
	root := rootClient(t, ep)
	key := unique("deny")
	allowed := root.JoinerPath(key, "allowed")
	denied := root.JoinerPath(key, "denied")
	destroyOnCleanup(t, root, allowed)
	token := limitedToken(t, ep, fmt.Sprintf(`
path "secret/data/%[1]s" { capabilities = ["create", "update", "read"] }
path "secret/metadata/%[1]s" { capabilities = ["read"] }
path "secret/data/%[2]s" { capabilities = ["deny"] }
`, allowed, denied))
	c := newClient(t, secrets.Config{Addr: ep.VaultAddr, Token: token})

	_, err := c.Put(ctx, allowed, map[string]any{"password": "fine"}, nil)
	require.NoError(t, err)
	_, _, err = c.Wrap(ctx, allowed, 1, time.Minute)
	require.NoError(t, err)

	_, err = c.Put(ctx, denied, map[string]any{"password": "nope"}, nil)
	ce := requireType(t, err, secrets.TypePermissionDenied, false)
	require.Contains(t, ce.Msg, "secret/data/"+denied)
	require.NotContains(t, err.Error(), token)
	require.NotContains(t, err.Error(), "nope")

	// Custom metadata needs the metadata capability this token lacks.
	_, err = c.Put(ctx, allowed, map[string]any{"password": "fine"}, map[string]string{"joiner": key})
	ce = requireType(t, err, secrets.TypePermissionDenied, false)
	require.Contains(t, ce.Msg, "secret/metadata/"+allowed)

	err = c.Destroy(ctx, allowed)
	requireType(t, err, secrets.TypePermissionDenied, false)
	_, err = c.GeneratePassword(ctx)
	requireType(t, err, secrets.TypePermissionDenied, false)
}

func TestIntegrationUnreachable(t *testing.T) {
	ctx := testCtx(t)
	c := newClient(t, secrets.Config{Addr: "http://" + freeAddr(t), Token: "irrelevant-token", Timeout: 5 * time.Second})
	_, err := c.Put(ctx, c.JoinerPath("1", "initial-credential"), map[string]any{"password": "p"}, nil)
	ce := requireType(t, err, secrets.TypeUnavailable, true)
	require.NotContains(t, err.Error(), "irrelevant-token")
	require.Contains(t, ce.Msg, "unreachable")
	requireType(t, c.Health(ctx), secrets.TypeUnavailable, true)
	_, err = c.GeneratePassword(ctx)
	requireType(t, err, secrets.TypeUnavailable, true)

	_, err = secrets.New(ctx, secrets.Config{Addr: "http://" + freeAddr(t), RoleID: "r", SecretID: "s", Timeout: 5 * time.Second})
	requireType(t, err, secrets.TypeUnavailable, true)
}

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

func TestIntegrationSealedVault(t *testing.T) {
	ep := stacktest.Ensure(t)
	ctx := testCtx(t)
	addr, token := startDevVault(t, filepath.Join(ep.BinDir, "vault"))
	c := newClient(t, secrets.Config{Addr: addr, Token: token})
	require.NoError(t, c.Health(ctx))
	path := c.JoinerPath(unique("sealed"), "initial-credential")
	_, err := c.Put(ctx, path, map[string]any{"password": "before-seal"}, nil)
	require.NoError(t, err, "the dev server mounts KV v2 at secret/")

	require.NoError(t, apiClient(t, addr, token).Sys().SealWithContext(ctx))

	_, err = c.Put(ctx, path, map[string]any{"password": "after-seal"}, nil)
	ce := requireType(t, err, secrets.TypeSealed, true)
	require.Equal(t, "vault", ce.System)
	require.Equal(t, "kv-put", ce.Op)
	_, _, err = c.Wrap(ctx, path, 1, time.Minute)
	requireType(t, err, secrets.TypeSealed, true)
	_, err = c.GeneratePassword(ctx)
	requireType(t, err, secrets.TypeSealed, true)
	requireType(t, c.Health(ctx), secrets.TypeSealed, true)
	requireType(t, c.RevokeInitialCredential(ctx, path, "acc"), secrets.TypeSealed, true)
}

// startDevVault runs a private in-memory Vault dev server for this test only
// and kills exactly that process when the test ends.
func startDevVault(t *testing.T, bin string) (addr, token string) {
	t.Helper()
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("vault binary needed for the sealed-Vault test: %v", err)
	}
	listen := freeAddr(t)
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	token = "dev-" + hex.EncodeToString(b)
	dir := t.TempDir()
	logFile, err := os.Create(filepath.Join(dir, "vault.log"))
	require.NoError(t, err)
	cmd := exec.Command(bin, "server", "-dev", "-dev-listen-address="+listen)
	// The root token goes through the environment rather than argv (ps), and
	// HOME points at a temp dir because dev mode writes ~/.vault-token.
	cmd.Env = append(os.Environ(), "VAULT_DEV_ROOT_TOKEN_ID="+token, "HOME="+dir, "VAULT_LOG_LEVEL=warn", "VAULT_TOKEN=", "VAULT_ADDR=")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	require.NoError(t, cmd.Start())
	proc := cmd.Process
	var once sync.Once
	wait := func() { once.Do(func() { _ = cmd.Wait(); _ = logFile.Close() }) }
	t.Cleanup(func() {
		_ = proc.Kill()
		wait()
	})
	addr = "http://" + listen
	deadline := time.Now().Add(90 * time.Second)
	for {
		resp, err := http.Get(addr + "/v1/sys/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return addr, token
			}
		}
		if cmd.ProcessState != nil || time.Now().After(deadline) {
			log, _ := os.ReadFile(logFile.Name())
			t.Fatalf("private vault dev server at %s did not become ready (last error %v); log:\n%s", addr, err, log)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// appRoleFixture creates an ACL policy allowing a joiner's paths and an
// AppRole role bound to it, with the connector's own helpers.
type appRoleFixture struct {
	key, policy, role, roleID string
}

func newAppRoleFixture(t *testing.T, ep stack.Endpoints, root *secrets.Client) appRoleFixture {
	t.Helper()
	ctx := testCtx(t)
	f := appRoleFixture{key: unique("app")}
	f.policy, f.role = "it-"+f.key, "it-"+f.key
	require.NoError(t, root.WritePolicy(ctx, f.policy, fmt.Sprintf(`
path "secret/data/%[1]s/*" { capabilities = ["create", "update", "read"] }
path "secret/metadata/%[1]s/*" { capabilities = ["read", "patch"] }
`, strings.TrimSuffix(root.JoinerPath(f.key, "x"), "/x"))))
	var err error
	f.roleID, err = root.CreateAppRole(ctx, f.role, secrets.AppRoleOptions{
		TokenPolicies: []string{f.policy},
		TokenTTL:      10 * time.Minute, TokenMaxTTL: 20 * time.Minute,
		SecretIDTTL: 10 * time.Minute, SecretIDNumUses: 0,
		TokenBoundCIDRs: []string{"127.0.0.1/32"}, SecretIDBoundCIDRs: []string{"127.0.0.0/8"},
	})
	require.NoError(t, err)
	require.NotEmpty(t, f.roleID)
	t.Cleanup(func() {
		ctx := context.Background()
		require.NoError(t, root.DeleteAppRole(ctx, f.role))
		require.NoError(t, root.DeleteAppRole(ctx, f.role), "deleting an absent role succeeds")
		require.NoError(t, root.DeletePolicy(ctx, f.policy))
		require.NoError(t, root.DeletePolicy(ctx, f.policy), "deleting an absent policy succeeds")
		require.NoError(t, root.Destroy(ctx, root.JoinerPath(f.key, "initial-credential")))
	})
	return f
}

// secretID issues a wrapped SecretID and redeems it like a bootstrap would.
func (f appRoleFixture) secretID(t *testing.T, ep stack.Endpoints, root *secrets.Client) string {
	t.Helper()
	tok, h, err := root.WrappedSecretID(testCtx(t), f.role, time.Minute)
	require.NoError(t, err)
	require.Equal(t, "auth/approle/role/"+f.role+"/secret-id", h.Path)
	require.NotEmpty(t, h.WrapAccessor)
	require.Equal(t, time.Minute, h.WrapTTL)
	sec, err := unwrap(t, ep.VaultAddr, tok)
	require.NoError(t, err)
	id, _ := sec.Data["secret_id"].(string)
	require.NotEmpty(t, id)
	require.NotContains(t, fmt.Sprintf("%#v", h), id)
	_, err = unwrap(t, ep.VaultAddr, tok)
	require.Error(t, err, "the wrapped SecretID is single use")
	return id
}

func TestIntegrationAppRole(t *testing.T) {
	ep := stacktest.Ensure(t)
	ctx := testCtx(t)
	root := rootClient(t, ep)
	f := newAppRoleFixture(t, ep, root)
	secretID := f.secretID(t, ep, root)

	// Creating the role again (an update) keeps its RoleID.
	again, err := root.CreateAppRole(ctx, f.role, secrets.AppRoleOptions{TokenPolicies: []string{f.policy}})
	require.NoError(t, err)
	require.Equal(t, f.roleID, again)

	c := newClient(t, secrets.Config{Addr: ep.VaultAddr, RoleID: f.roleID, SecretID: secretID})
	require.NoError(t, c.Health(ctx))
	path := c.JoinerPath(f.key, "initial-credential")
	stored, err := c.Put(ctx, path, map[string]any{"password": "p"}, map[string]string{"joiner": f.key})
	require.NoError(t, err, "a permitted write")
	md, found, err := c.Metadata(ctx, path)
	require.NoError(t, err, "a permitted read")
	require.True(t, found)
	require.Equal(t, stored.Version, md.CurrentVersion)

	_, _, err = c.Metadata(ctx, c.JoinerPath(unique("other"), "initial-credential"))
	ce := requireType(t, err, secrets.TypePermissionDenied, false)
	require.Contains(t, ce.Msg, "secret/metadata/")
	gen, _, _ := secrets.TokenState(c)
	require.Equal(t, uint64(2), gen, "a denied request re-logs in exactly once before giving up")

	_, err = secrets.New(ctx, secrets.Config{Addr: ep.VaultAddr, RoleID: f.roleID, SecretID: "wrong-secret-id-value"})
	ce = requireType(t, err, secrets.TypeRejected, false)
	require.NotContains(t, err.Error(), "wrong-secret-id-value")
	require.Contains(t, ce.Msg, "auth/approle/login")
}

func TestIntegrationAppRoleReloginAfterTokenExhausted(t *testing.T) {
	ep := stacktest.Ensure(t)
	ctx := testCtx(t)
	root := rootClient(t, ep)
	f := newAppRoleFixture(t, ep, root)
	// Tokens good for two requests only: the third is refused with 403 as if
	// the token had been revoked, and the client must log in again.
	_, err := rootAPI(t, ep).Logical().WriteWithContext(ctx, "auth/approle/role/"+f.role, map[string]any{"token_num_uses": 2})
	require.NoError(t, err)
	c := newClient(t, secrets.Config{Addr: ep.VaultAddr, RoleID: f.roleID, SecretID: f.secretID(t, ep, root)})
	path := c.JoinerPath(f.key, "initial-credential")

	for i := range 5 {
		_, _, err := c.Metadata(ctx, path)
		require.NoError(t, err, "request %d", i+1)
	}
	gen, _, _ := secrets.TokenState(c)
	require.Equal(t, uint64(3), gen, "logins: the initial one and one per exhausted token")
}

func TestIntegrationAppRoleRenewsThenRelogsIn(t *testing.T) {
	ep := stacktest.Ensure(t)
	ctx := testCtx(t)
	root := rootClient(t, ep)
	f := newAppRoleFixture(t, ep, root)
	c := newClient(t, secrets.Config{Addr: ep.VaultAddr, RoleID: f.roleID, SecretID: f.secretID(t, ep, root)})
	path := c.JoinerPath(f.key, "initial-credential")

	gen, renewAt, expiresAt := secrets.TokenState(c)
	require.Equal(t, uint64(1), gen)
	require.WithinDuration(t, time.Now().Add(10*time.Minute), expiresAt, 30*time.Second, "token_ttl of the role")

	// Past two thirds of the TTL the token is renewed, not replaced.
	now := renewAt.Add(time.Second)
	secrets.SetClock(c, func() time.Time { return now })
	_, _, err := c.Metadata(ctx, path)
	require.NoError(t, err)
	gen2, renewAt2, expiresAt2 := secrets.TokenState(c)
	require.Equal(t, uint64(1), gen2, "renewed, not re-logged-in")
	require.True(t, renewAt2.After(renewAt))
	require.True(t, expiresAt2.After(expiresAt))

	// Close to expiry (renewal no longer buys time) the client logs in again.
	now = expiresAt2.Add(-10 * time.Second)
	_, _, err = c.Metadata(ctx, path)
	require.NoError(t, err)
	gen3, _, _ := secrets.TokenState(c)
	require.Equal(t, uint64(2), gen3)
}
