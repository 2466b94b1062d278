package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/joinery/joinery/connectors/secrets"
	"github.com/joinery/joinery/internal/stack"
)

// initMaterial is what the job keeps from `vault operator init`: one key
// share (a trial; a real deployment splits the unseal key among operators
// or auto-unseals with a KMS) and the root token.
type initMaterial struct {
	UnsealKey string `json:"unseal_key"`
	RootToken string `json:"root_token"`
}

// WorkerRoleID is the RoleID the job gives the worker's AppRole role: an
// identifier, not a secret, fixed so that compose can name it in
// JOINERY_VAULT_ROLE_ID. The SecretID is the secret.
const WorkerRoleID = stack.WorkerAppRole

// runVault initialises and unseals Vault on first start, unseals it on
// later ones, makes sure KV v2, AppRole and the password policy exist, and
// installs the worker's identity with the same code as the dev stack
// (stack.InstallWorkerVaultIdentity: workload policies rendered from the
// joiner policy file, the worker's policy, the AppRole role). The address
// and CA come from VAULT_ADDR and VAULT_CACERT, as for the vault CLI.
func runVault(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("vault", flag.ContinueOnError)
	initDir := fs.String("init-dir", "", "where the init material is kept (this job's volume only)")
	workerDir := fs.String("worker-dir", "", "where the worker's role-id and secret-id go")
	policyFile := fs.String("policy", "/app/policy/default.yaml", "joiner policy the workload policies are rendered from")
	owner := fs.Int("owner", -1, "uid (and gid) owning the worker's files: Joinery's images run as 65532")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *initDir == "" || *workerDir == "" {
		return errors.New("vault: -init-dir and -worker-dir are required")
	}
	if filepath.Clean(*initDir) == filepath.Clean(*workerDir) {
		return errors.New("vault: the init material and the worker's credentials must not share a directory")
	}
	addr := os.Getenv("VAULT_ADDR")
	if addr == "" {
		return errors.New("vault: VAULT_ADDR is required")
	}
	if !strings.HasPrefix(addr, "https://") && os.Getenv("BOOTSTRAP_ALLOW_PLAIN_VAULT") != "true" {
		return fmt.Errorf("vault: %s is not https: the unseal key and root token would cross the network in clear", addr)
	}
	cfg := vault.DefaultConfig() // VAULT_CACERT, VAULT_ADDR
	if cfg.Error != nil {
		return cfg.Error
	}
	cli, err := vault.NewClient(cfg)
	if err != nil {
		return err
	}
	cli.ClearToken()
	if err := waitForVault(ctx, cli); err != nil {
		return err
	}
	keys, err := initOrLoad(ctx, cli, filepath.Join(*initDir, "init.json"))
	if err != nil {
		return err
	}
	st, err := cli.Sys().SealStatusWithContext(ctx)
	if err != nil {
		return fmt.Errorf("seal status: %w", err)
	}
	if st.Sealed {
		if _, err := cli.Sys().UnsealWithContext(ctx, keys.UnsealKey); err != nil {
			return fmt.Errorf("unseal: %w", err)
		}
	}
	cli.SetToken(keys.RootToken)
	if err := stack.EnsureVaultMounts(ctx, cli); err != nil {
		return err
	}
	admin, err := secrets.New(ctx, secrets.Config{Addr: addr, Token: keys.RootToken})
	if err != nil {
		return err
	}
	if err := admin.EnsurePasswordPolicy(ctx, stack.VaultPasswordPolicy, secrets.InitialPasswordPolicyHCL); err != nil {
		return fmt.Errorf("password policy: %w", err)
	}
	if _, err := stack.InstallWorkerVaultIdentity(ctx, admin, *policyFile, secrets.AppRoleOptions{
		TokenTTL: time.Hour, TokenMaxTTL: 4 * time.Hour,
	}); err != nil {
		return err
	}
	rolePath := "auth/approle/role/" + stack.WorkerAppRole
	if _, err := cli.Logical().WriteWithContext(ctx, rolePath+"/role-id", map[string]any{"role_id": WorkerRoleID}); err != nil {
		return fmt.Errorf("worker role-id: %w", err)
	}
	if err := os.MkdirAll(*workerDir, 0o700); err != nil {
		return err
	}
	sidFile := filepath.Join(*workerDir, "secret-id")
	if err := ensureSecretID(ctx, cli, rolePath, sidFile); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(*workerDir, "role-id"), WorkerRoleID+"\n", 0o400); err != nil {
		return err
	}
	if *owner >= 0 {
		for _, p := range []string{*workerDir, sidFile, filepath.Join(*workerDir, "role-id")} {
			if err := os.Chown(p, *owner, *owner); err != nil {
				return err
			}
		}
	}
	fmt.Println("bootstrap: vault initialised, unsealed, worker identity installed")
	return nil
}

func waitForVault(ctx context.Context, cli *vault.Client) error {
	var last error
	for {
		if _, last = cli.Sys().InitStatusWithContext(ctx); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("vault did not answer: %v", last)
		case <-time.After(time.Second):
		}
	}
}

func initOrLoad(ctx context.Context, cli *vault.Client, initFile string) (initMaterial, error) {
	var keys initMaterial
	done, err := cli.Sys().InitStatusWithContext(ctx)
	if err != nil {
		return keys, fmt.Errorf("init status: %w", err)
	}
	if done {
		data, err := os.ReadFile(initFile)
		if err != nil {
			return keys, fmt.Errorf("vault is initialised but %s is missing (%v): unseal it by hand", initFile, err)
		}
		if err := json.Unmarshal(data, &keys); err != nil || keys.UnsealKey == "" || keys.RootToken == "" {
			return keys, fmt.Errorf("%s: not the init material this job writes", initFile)
		}
		return keys, nil
	}
	if err := os.MkdirAll(filepath.Dir(initFile), 0o700); err != nil {
		return keys, err
	}
	resp, err := cli.Sys().InitWithContext(ctx, &vault.InitRequest{SecretShares: 1, SecretThreshold: 1})
	if err != nil {
		return keys, fmt.Errorf("init: %w", err)
	}
	keys = initMaterial{UnsealKey: resp.KeysB64[0], RootToken: resp.RootToken}
	data, _ := json.Marshal(keys)
	return keys, writeFile(initFile, string(data), 0o400)
}

// ensureSecretID keeps a SecretID Vault still knows (a restart must not
// invalidate a running worker's credentials) and issues one otherwise.
func ensureSecretID(ctx context.Context, cli *vault.Client, rolePath, file string) error {
	if b, err := os.ReadFile(file); err == nil {
		s, err := cli.Logical().WriteWithContext(ctx, rolePath+"/secret-id/lookup",
			map[string]any{"secret_id": strings.TrimSpace(string(b))})
		if err == nil && s != nil {
			return nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	s, err := cli.Logical().WriteWithContext(ctx, rolePath+"/secret-id", nil)
	if err != nil {
		return fmt.Errorf("worker secret-id: %w", err)
	}
	sid, _ := s.Data["secret_id"].(string)
	if sid == "" {
		return errors.New("worker secret-id: Vault returned none")
	}
	return writeFile(file, sid+"\n", 0o400)
}

// writeFile replaces path atomically; the file never exists with a wider
// mode than perm.
func writeFile(path, value string, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if _, err := f.WriteString(value); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
