package decision_test

import (
	"context"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"
	"github.com/stretchr/testify/require"

	"github.com/joinery/joinery/internal/decision"
	"github.com/joinery/joinery/internal/stack/stacktest"
)

// The inbox can sign with a Vault transit key: the signature verifies like
// a file key's, only a token with the signing policy can use the key, and
// a non-ed25519 key is refused.
func TestTransitSignerOnTheRealVault(t *testing.T) {
	ep := stacktest.Ensure(t)
	ctx := context.Background()
	root, err := vault.NewClient(&vault.Config{Address: ep.VaultAddr})
	require.NoError(t, err)
	root.SetToken(ep.VaultToken)
	mounts, err := root.Sys().ListMountsWithContext(ctx)
	require.NoError(t, err)
	if _, ok := mounts["transit-test/"]; !ok {
		require.NoError(t, root.Sys().MountWithContext(ctx, "transit-test", &vault.MountInput{Type: "transit"}))
	}
	_, err = root.Logical().WriteWithContext(ctx, "transit-test/keys/decisions", map[string]any{"type": "ed25519"})
	require.NoError(t, err)
	_, err = root.Logical().WriteWithContext(ctx, "transit-test/keys/aes", map[string]any{"type": "aes256-gcm96"})
	require.NoError(t, err)
	require.NoError(t, root.Sys().PutPolicyWithContext(ctx, "joinery-inbox-signer-test",
		`path "transit-test/sign/decisions" { capabilities = ["update"] }
path "transit-test/keys/decisions" { capabilities = ["read"] }`))
	tok, err := root.Auth().Token().CreateWithContext(ctx, &vault.TokenCreateRequest{Policies: []string{"joinery-inbox-signer-test"}, TTL: "10m"})
	require.NoError(t, err)
	inbox, err := vault.NewClient(&vault.Config{Address: ep.VaultAddr})
	require.NoError(t, err)
	inbox.SetToken(tok.Auth.ClientToken)

	s, err := decision.NewTransitSigner(ctx, inbox, "transit-test/decisions")
	require.NoError(t, err)
	d := decision.Decision{WorkflowID: "joiner-200", PlanHash: "sha256:aa", PolicyVersion: "p", Approver: "ada.lovelace",
		Action: decision.ActionApprove, IssuedAt: time.Now(), Nonce: "0123456789abcdef"}
	signed, err := s.Sign(ctx, d)
	require.NoError(t, err)
	got, err := decision.Verify([]decision.PublicKey{s.PublicKey()}, signed)
	require.NoError(t, err)
	require.Equal(t, "ada.lovelace", got.Approver)

	// A token without the signing policy (say, a worker's) cannot sign.
	other, err := root.Auth().Token().CreateWithContext(ctx, &vault.TokenCreateRequest{Policies: []string{"default"}, TTL: "10m"})
	require.NoError(t, err)
	nobody, err := vault.NewClient(&vault.Config{Address: ep.VaultAddr})
	require.NoError(t, err)
	nobody.SetToken(other.Auth.ClientToken)
	_, err = decision.NewTransitSigner(ctx, nobody, "transit-test/decisions")
	require.Error(t, err, "reading the key needs the inbox's policy")

	// Only ed25519 keys sign decisions.
	_, err = decision.NewTransitSigner(ctx, root, "transit-test/aes")
	require.ErrorContains(t, err, "want ed25519")
	_, err = decision.NewTransitSigner(ctx, root, "no-key")
	require.ErrorContains(t, err, "<mount>/<key>")
}
