package codec

import (
	"context"
	"errors"
	"fmt"
	"strings"

	vaultapi "github.com/hashicorp/vault/api"

	"github.com/joinery/joinery/internal/config"
)

// VaultKeysField is the field of the KV v2 secret that holds the keys, in
// the key file's format ("<key-id> <base64 32 bytes>" per line, newest first).
const VaultKeysField = "keys"

// LoadVault reads the keys from a KV v2 secret, ref being "<mount>/<path>"
// (e.g. secret/joinery/codec-keys). Keeping them in Vault instead of a file
// puts reading them under Vault's policies and audit log.
func LoadVault(ctx context.Context, vc *vaultapi.Client, ref string) ([]Key, error) {
	mount, path, ok := strings.Cut(strings.Trim(ref, "/"), "/")
	if !ok || mount == "" || path == "" {
		return nil, fmt.Errorf("codec keys: Vault reference %q: want <kv-v2 mount>/<path>", ref)
	}
	s, err := vc.KVv2(mount).Get(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("codec keys: read %s from Vault: %w", ref, err)
	}
	if s == nil || s.Data == nil {
		return nil, fmt.Errorf("codec keys: %s in Vault has no current version (deleted?)", ref)
	}
	text, ok := s.Data[VaultKeysField].(string)
	if !ok {
		return nil, fmt.Errorf("codec keys: %s in Vault has no string field %q", ref, VaultKeysField)
	}
	keys, err := ParseKeys(strings.NewReader(text))
	if err != nil {
		return nil, fmt.Errorf("codec keys %s (Vault): %w", ref, err)
	}
	return keys, nil
}

// FromConfig builds the codec configuration asks for: the file of
// JOINERY_CODEC_KEYS_FILE, or the KV v2 secret of
// JOINERY_CODEC_KEYS_VAULT_PATH read with the process's own Vault identity
// (token or AppRole, as for the worker). Neither set means no encryption:
// it returns nil, nil.
func FromConfig(ctx context.Context, cfg config.Config) (*Codec, error) {
	switch {
	case cfg.CodecKeysFile != "" && cfg.CodecKeysVaultPath != "":
		return nil, errors.New("JOINERY_CODEC_KEYS_FILE and JOINERY_CODEC_KEYS_VAULT_PATH are both set: choose one source of keys")
	case cfg.CodecKeysFile != "":
		c, err := Load(cfg.CodecKeysFile)
		if err != nil {
			return nil, fmt.Errorf("JOINERY_CODEC_KEYS_FILE: %w", err)
		}
		return c, nil
	case cfg.CodecKeysVaultPath != "":
		vc, err := vaultClient(ctx, cfg)
		if err != nil {
			return nil, fmt.Errorf("JOINERY_CODEC_KEYS_VAULT_PATH: %w", err)
		}
		keys, err := LoadVault(ctx, vc, cfg.CodecKeysVaultPath)
		if err != nil {
			return nil, fmt.Errorf("JOINERY_CODEC_KEYS_VAULT_PATH: %w", err)
		}
		return New(keys)
	}
	return nil, nil
}

// vaultClient logs in the way the worker does; it is used once, at dial.
func vaultClient(ctx context.Context, cfg config.Config) (*vaultapi.Client, error) {
	vc, err := vaultapi.NewClient(&vaultapi.Config{Address: cfg.VaultAddr})
	if err != nil {
		return nil, err
	}
	token, secretID, err := cfg.VaultCredentials()
	if err != nil {
		return nil, err
	}
	if cfg.VaultRoleID == "" {
		vc.SetToken(token)
		return vc, nil
	}
	s, err := vc.Logical().WriteWithContext(ctx, "auth/approle/login", map[string]any{
		"role_id": cfg.VaultRoleID, "secret_id": secretID,
	})
	if err != nil {
		return nil, fmt.Errorf("vault approle login: %w", err)
	}
	if s == nil || s.Auth == nil || s.Auth.ClientToken == "" {
		return nil, errors.New("vault approle login returned no token")
	}
	vc.SetToken(s.Auth.ClientToken)
	return vc, nil
}
