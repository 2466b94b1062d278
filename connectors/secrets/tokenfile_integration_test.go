package secrets_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	vault "github.com/hashicorp/vault/api"
	"github.com/stretchr/testify/require"

	"github.com/joinery/joinery/connectors/secrets"
	"github.com/joinery/joinery/internal/stack"
	"github.com/joinery/joinery/internal/stack/stacktest"
)

// tokenFor creates a short-lived token with policy, via the root token.
func tokenFor(t *testing.T, ep stack.Endpoints, policy string) *vault.SecretAuth {
	t.Helper()
	sec, err := rootAPI(t, ep).Auth().Token().CreateWithContext(testCtx(t), &vault.TokenCreateRequest{Policies: []string{policy}, TTL: "10m"})
	require.NoError(t, err)
	return sec.Auth
}

// A worker that authenticates with a token file (not AppRole) keeps
// working when the operator rotates the file and revokes the old token
// under it: the 403 re-reads the file once and retries with the new token.
// A 403 the file cannot cure (the token in it is revoked too, or the path
// is simply not allowed) fails as before, after one re-read.
func TestIntegrationTokenFileIsReReadAfter403(t *testing.T) {
	ep := stacktest.Ensure(t)
	ctx := testCtx(t)
	root := rootClient(t, ep)
	key := unique("tokfile")
	allowed := root.JoinerPath(key, "allowed")
	destroyOnCleanup(t, root, allowed)
	_, err := root.Put(ctx, allowed, map[string]any{"v": "1"}, nil)
	require.NoError(t, err)
	policy := unique("it-tokfile")
	require.NoError(t, root.WritePolicy(ctx, policy, `path "secret/metadata/`+allowed+`" { capabilities = ["read"] }`))
	t.Cleanup(func() { _ = root.DeletePolicy(context.Background(), policy) })

	file := filepath.Join(t.TempDir(), "vault-token")
	first := tokenFor(t, ep, policy)
	require.NoError(t, os.WriteFile(file, []byte(first.ClientToken+"\n"), 0o600))
	c := newClient(t, secrets.Config{Addr: ep.VaultAddr, TokenFile: file})
	_, found, err := c.Metadata(ctx, allowed)
	require.NoError(t, err)
	require.True(t, found)

	// Rotate: a new token in the file, the old one revoked.
	second := tokenFor(t, ep, policy)
	require.NoError(t, os.WriteFile(file, []byte(second.ClientToken+"\n"), 0o600))
	require.NoError(t, root.RevokeAccessor(ctx, first.Accessor))
	_, found, err = c.Metadata(ctx, allowed)
	require.NoError(t, err, "the 403 of the revoked token re-read the file")
	require.True(t, found)
	require.NoError(t, c.Health(ctx), "and the client keeps the new token")

	// A real denial stays a denial (the file holds the token in use).
	_, _, err = c.Metadata(ctx, root.JoinerPath(key, "denied"))
	requireType(t, err, secrets.TypePermissionDenied, false)

	// A half-written file at the moment of a real denial does not replace
	// the working token: the retry with it is refused, so it is not adopted.
	require.NoError(t, os.WriteFile(file, []byte(second.ClientToken[:8]+"\n"), 0o600))
	_, _, err = c.Metadata(ctx, root.JoinerPath(key, "denied"))
	requireType(t, err, secrets.TypePermissionDenied, false)
	_, found, err = c.Metadata(ctx, allowed)
	require.NoError(t, err, "the working token is still in use")
	require.True(t, found)
	require.NoError(t, os.WriteFile(file, []byte(second.ClientToken+"\n"), 0o600))

	// The file's token revoked and not rotated: one re-read, then the 403.
	require.NoError(t, root.RevokeAccessor(ctx, second.Accessor))
	_, _, err = c.Metadata(ctx, allowed)
	requireType(t, err, secrets.TypePermissionDenied, false)

	// Rotated again: the next request recovers.
	third := tokenFor(t, ep, policy)
	t.Cleanup(func() { _ = root.RevokeAccessor(context.Background(), third.Accessor) })
	require.NoError(t, os.WriteFile(file, []byte(third.ClientToken), 0o600))
	_, found, err = c.Metadata(ctx, allowed)
	require.NoError(t, err)
	require.True(t, found)

	// An unreadable file at the moment of the 403 keeps Vault's answer.
	require.NoError(t, root.RevokeAccessor(ctx, third.Accessor))
	require.NoError(t, os.Remove(file))
	_, _, err = c.Metadata(ctx, allowed)
	requireType(t, err, secrets.TypePermissionDenied, false)
}

// Bad token-file configuration fails at New, naming the file and never a
// token.
func TestTokenFileConfiguration(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	require.NoError(t, os.WriteFile(empty, []byte("  \n"), 0o600))
	for name, cfg := range map[string]secrets.Config{
		"missing file":      {Addr: "http://127.0.0.1:1", TokenFile: filepath.Join(dir, "absent")},
		"empty file":        {Addr: "http://127.0.0.1:1", TokenFile: empty},
		"file with AppRole": {Addr: "http://127.0.0.1:1", TokenFile: empty, RoleID: "r", SecretID: "s"},
	} {
		_, err := secrets.New(context.Background(), cfg)
		requireType(t, err, secrets.TypeInvalidRequest, false)
		require.NotContains(t, err.Error(), "hvs.", name)
	}
}
