package stack

import (
	"context"
	"fmt"
	"time"

	vault "github.com/hashicorp/vault/api"
)

// EnsureVaultMounts makes what Joinery needs of a fresh Vault, idempotently:
// KV v2 at secret/ and the AppRole auth method, and waits until the new KV
// mount answers reads. cli must carry a token that may mount (the root token
// of a bootstrap). The dev stack and compose's vault-init job both call it,
// so the two Vaults are set up alike.
func EnsureVaultMounts(ctx context.Context, cli *vault.Client) error {
	mounts, err := cli.Sys().ListMountsWithContext(ctx)
	if err != nil {
		return fmt.Errorf("list mounts: %w", err)
	}
	if _, ok := mounts["secret/"]; !ok {
		if err := cli.Sys().MountWithContext(ctx, "secret", &vault.MountInput{Type: "kv", Options: map[string]string{"version": "2"}}); err != nil {
			return fmt.Errorf("mount kv: %w", err)
		}
	}
	auths, err := cli.Sys().ListAuthWithContext(ctx)
	if err != nil {
		return fmt.Errorf("list auth: %w", err)
	}
	if _, ok := auths["approle/"]; !ok {
		if err := cli.Sys().EnableAuthWithOptionsWithContext(ctx, "approle", &vault.EnableAuthOptions{Type: "approle"}); err != nil {
			return fmt.Errorf("enable approle: %w", err)
		}
	}
	// A fresh KV v2 mount upgrades itself in the background; the catalogue
	// write must not race it.
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := cli.Logical().ReadWithContext(ctx, "secret/config")
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("kv mount not ready: %w", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
