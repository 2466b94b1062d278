package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
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

// SweeperAppRole is the AppRole role of the wrapping-token sweeper, the
// separate process (the worker binary with JOINERY_WORKER_MODE=sweeper)
// that finds wrapping tokens a crash left unrecorded. Its tokens carry
// only secrets.SweeperPolicyName: list with sudo on auth/token/accessors,
// lookup and revoke by accessor, which the worker must never hold. The
// name lies outside the worker's secrets.WorkloadRolePrefix, so the
// worker's policy cannot read the role or issue a SecretID for it.
const SweeperAppRole = stack.SweeperAppRole

// SweeperRoleID is the sweeper role's RoleID, fixed like WorkerRoleID so
// that compose can name it.
const SweeperRoleID = SweeperAppRole

// Token lifetimes of the two identities. The sweeper's are short: its
// policy can revoke any token in Vault by accessor, so a leaked sweeper
// token should be worth little for little time. Its client renews at two
// thirds of the TTL and logs in again at the max TTL (connectors/secrets).
const (
	workerTokenTTL     = time.Hour
	workerTokenMaxTTL  = 4 * time.Hour
	sweeperTokenTTL    = 15 * time.Minute
	sweeperTokenMaxTTL = time.Hour
)

// runVault initialises and unseals Vault on first start, unseals it on
// later ones, makes sure KV v2, AppRole and the password policy exist, and
// installs the worker's identity with the same code as the dev stack
// (stack.InstallWorkerVaultIdentity: workload policies rendered from the
// joiner policy file, the worker's policy, the AppRole role). With
// -sweeper-dir it also installs the sweeper's identity (policy
// secrets.SweeperPolicyName, role SweeperAppRole) and leaves its RoleID
// and SecretID there. The address and CA come from VAULT_ADDR and
// VAULT_CACERT, as for the vault CLI.
//
// Each identity's credentials go to a directory of their own, and no two
// of the directories may be the same or one inside another: each is a
// volume mounted by one service only, so a compromised worker cannot read
// the sweeper's SecretID (and gain sudo on the token store), and neither
// can read the root token.
func runVault(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("vault", flag.ContinueOnError)
	initDir := fs.String("init-dir", "", "where the init material is kept (this job's volume only)")
	workerDir := fs.String("worker-dir", "", "where the worker's role-id and secret-id go")
	sweeperDir := fs.String("sweeper-dir", "", "where the wrapping-token sweeper's role-id and secret-id go (optional: without it no sweeper identity is installed)")
	policyFile := fs.String("policy", "/app/policy/default.yaml", "joiner policy the workload policies are rendered from")
	owner := fs.Int("owner", -1, "uid (and gid) owning the worker's and the sweeper's files: Joinery's images run as 65532")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("vault: unexpected arguments %q", fs.Args())
	}
	if *initDir == "" || *workerDir == "" {
		return errors.New("vault: -init-dir and -worker-dir are required")
	}
	if err := separateDirs(map[string]string{"the init material": *initDir, "the worker's credentials": *workerDir,
		"the sweeper's credentials": *sweeperDir}); err != nil {
		return fmt.Errorf("vault: %w", err)
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
		TokenTTL: workerTokenTTL, TokenMaxTTL: workerTokenMaxTTL,
	}); err != nil {
		return err
	}
	if err := handOver(ctx, cli, "worker", stack.WorkerAppRole, WorkerRoleID, *workerDir, *owner); err != nil {
		return err
	}
	if *sweeperDir == "" {
		fmt.Println("bootstrap: vault initialised, unsealed, worker identity installed (no -sweeper-dir: no sweeper identity)")
		return nil
	}
	// The dev stack's code (stack.InstallSweeperVaultIdentity), so the two
	// Vaults cannot drift apart; only the token lifetimes differ.
	if _, err := stack.InstallSweeperVaultIdentity(ctx, admin, secrets.AppRoleOptions{
		TokenTTL: sweeperTokenTTL, TokenMaxTTL: sweeperTokenMaxTTL,
	}); err != nil {
		return err
	}
	if err := handOver(ctx, cli, "sweeper", SweeperAppRole, SweeperRoleID, *sweeperDir, *owner); err != nil {
		return err
	}
	fmt.Println("bootstrap: vault initialised, unsealed, worker and sweeper identities installed")
	return nil
}

// handOver fixes role's RoleID to roleID and leaves it and a SecretID
// Vault knows in dir (0700, files 0400), owned by owner when owner >= 0.
// who names the identity in errors.
func handOver(ctx context.Context, cli *vault.Client, who, role, roleID, dir string, owner int) error {
	rolePath := "auth/approle/role/" + role
	if _, err := cli.Logical().WriteWithContext(ctx, rolePath+"/role-id", map[string]any{"role_id": roleID}); err != nil {
		return fmt.Errorf("%s role-id: %w", who, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	// MkdirAll leaves an existing directory's mode alone: a fresh named
	// volume's root is 0755.
	if err := os.Chmod(dir, 0o700); err != nil {
		return err
	}
	sidFile := filepath.Join(dir, "secret-id")
	if err := ensureSecretID(ctx, cli, who, rolePath, sidFile); err != nil {
		return err
	}
	idFile := filepath.Join(dir, "role-id")
	if err := writeFile(idFile, roleID+"\n", 0o400); err != nil {
		return err
	}
	if owner >= 0 {
		for _, p := range []string{dir, sidFile, idFile} {
			if err := os.Chown(p, owner, owner); err != nil {
				return err
			}
		}
	}
	return nil
}

// separateDirs refuses two roles' directories that are the same or nested
// (a volume mounted at one would expose the other's files); empty entries
// are optional directories not in use.
func separateDirs(dirs map[string]string) error {
	names := make([]string, 0, len(dirs))
	for n, d := range dirs {
		if d != "" {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	abs := map[string]string{}
	for _, n := range names {
		a, err := filepath.Abs(dirs[n])
		if err != nil {
			return fmt.Errorf("%s: %w", n, err)
		}
		abs[n] = a
	}
	for i, a := range names {
		for _, b := range names[i+1:] {
			da, db := abs[a], abs[b]
			if da == db || within(da, db) || within(db, da) {
				return fmt.Errorf("%s (%s) and %s (%s) must not share a directory", a, dirs[a], b, dirs[b])
			}
		}
	}
	return nil
}

// within reports whether path lies below dir (both absolute and clean).
func within(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != "." && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
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
func ensureSecretID(ctx context.Context, cli *vault.Client, who, rolePath, file string) error {
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
		return fmt.Errorf("%s secret-id: %w", who, err)
	}
	sid, _ := s.Data["secret_id"].(string)
	if sid == "" {
		return fmt.Errorf("%s secret-id: Vault returned none", who)
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
