package codec_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	vaultapi "github.com/hashicorp/vault/api"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"

	"github.com/joinery/joinery/internal/codec"
	"github.com/joinery/joinery/internal/config"
	"github.com/joinery/joinery/internal/stack/stacktest"
)

// Keys kept in the dev stack's Vault (KV v2) work like keys from the file,
// and a bad or missing secret is a clear error at start.
func TestIntegrationKeysFromVault(t *testing.T) {
	ep := stacktest.Ensure(t)
	ctx := context.Background()
	vc, err := vaultapi.NewClient(&vaultapi.Config{Address: ep.VaultAddr})
	require.NoError(t, err)
	vc.SetToken(strings.TrimSpace(ep.VaultToken))
	path := fmt.Sprintf("joinery-test/codec-keys-%d", rand.IntN(1e9))
	t.Cleanup(func() { _ = vc.KVv2("secret").DeleteMetadata(context.Background(), path) })

	newKey, err := codec.NewKey("new")
	require.NoError(t, err)
	oldKey, err := codec.NewKey("old")
	require.NoError(t, err)
	_, err = vc.KVv2("secret").Put(ctx, path, map[string]any{codec.VaultKeysField: newKey.Line() + "\n" + oldKey.Line() + "\n"})
	require.NoError(t, err)

	cfg := config.Config{VaultAddr: ep.VaultAddr, VaultToken: strings.TrimSpace(ep.VaultToken), CodecKeysVaultPath: "secret/" + path}
	c, err := codec.FromConfig(ctx, cfg)
	require.NoError(t, err)
	require.Equal(t, "new", c.ActiveKeyID())
	require.Equal(t, []string{"new", "old"}, c.KeyIDs())

	// A payload sealed with the old key (read from a file elsewhere) opens.
	fromOld, err := codec.New([]codec.Key{oldKey})
	require.NoError(t, err)
	sealed, err := fromOld.Encode([]*commonpb.Payload{{Data: []byte(`"Grace Hopper"`)}})
	require.NoError(t, err)
	opened, err := c.Decode(sealed)
	require.NoError(t, err)
	require.Equal(t, `"Grace Hopper"`, string(opened[0].GetData()))

	_, err = codec.FromConfig(ctx, config.Config{VaultAddr: ep.VaultAddr, VaultToken: cfg.VaultToken, CodecKeysVaultPath: "secret/" + path + "-missing"})
	require.ErrorContains(t, err, "JOINERY_CODEC_KEYS_VAULT_PATH")

	_, err = vc.KVv2("secret").Put(ctx, path, map[string]any{"other": "x"})
	require.NoError(t, err)
	_, err = codec.FromConfig(ctx, cfg)
	require.ErrorContains(t, err, `no string field "keys"`)

	_, err = vc.KVv2("secret").Put(ctx, path, map[string]any{codec.VaultKeysField: "k1 not-base64\n"})
	require.NoError(t, err)
	_, err = codec.FromConfig(ctx, cfg)
	require.ErrorContains(t, err, "not standard base64")

	_, err = codec.FromConfig(ctx, config.Config{CodecKeysFile: "x", CodecKeysVaultPath: "secret/y"})
	require.ErrorContains(t, err, "choose one")
	none, err := codec.FromConfig(ctx, config.Config{})
	require.NoError(t, err)
	require.Nil(t, none, "no key source: no encryption")
}
