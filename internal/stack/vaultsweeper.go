package stack

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/joinery/joinery/connectors/secrets"
)

// SweeperAppRole is the AppRole role the wrapping-token sweeper logs in
// with (activities/sweep.go); its only policy is secrets.SweeperPolicyName.
const SweeperAppRole = secrets.SweeperPolicyName

// VaultSweeperRoleIDFile and VaultSweeperSecretIDFile hold the sweeper's
// AppRole credentials, next to (never inside) the worker's.
func VaultSweeperRoleIDFile(stateDir string) string {
	return filepath.Join(stateDir, "vault", "sweeper-role-id")
}

// VaultSweeperSecretIDFile: see VaultSweeperRoleIDFile.
func VaultSweeperSecretIDFile(stateDir string) string {
	return filepath.Join(stateDir, "vault", "sweeper-secret-id")
}

// InstallSweeperVaultIdentity installs the sweeper's policy (for the
// default KV mount and prefix) and creates or updates its AppRole role with
// roleOpts (token policies: the sweeper's only, without Vault's default
// policy). It returns the RoleID and never issues a SecretID.
func InstallSweeperVaultIdentity(ctx context.Context, admin *secrets.Client, roleOpts secrets.AppRoleOptions) (string, error) {
	if err := admin.WritePolicy(ctx, secrets.SweeperPolicyName, secrets.SweeperPolicyHCL(secrets.Config{})); err != nil {
		return "", fmt.Errorf("sweeper policy: %w", err)
	}
	roleOpts.TokenPolicies = []string{secrets.SweeperPolicyName}
	// No default policy (cubbyhole, sys/wrapping/*, sys/tools/*): the
	// sweeper's policy grants what its own token needs explicitly.
	roleOpts.TokenNoDefaultPolicy = true
	roleID, err := admin.CreateAppRole(ctx, SweeperAppRole, roleOpts)
	if err != nil {
		return "", fmt.Errorf("sweeper role: %w", err)
	}
	return roleID, nil
}

// setupVaultSweeper gives the dev stack's sweeper its identity, as
// setupVaultWorker does the worker's.
func (c Config) setupVaultSweeper(ctx context.Context, addr, rootToken string) error {
	admin, err := secrets.New(ctx, secrets.Config{Addr: addr, Token: rootToken})
	if err != nil {
		return err
	}
	// Short tokens, as in compose: this identity can revoke any token.
	roleID, err := InstallSweeperVaultIdentity(ctx, admin, secrets.AppRoleOptions{
		TokenTTL: 15 * time.Minute, TokenMaxTTL: time.Hour,
		TokenBoundCIDRs: []string{"127.0.0.1/32"}, SecretIDBoundCIDRs: []string{"127.0.0.1/32"},
	})
	if err != nil {
		return err
	}
	return writeAppRoleFiles(ctx, addr, rootToken, SweeperAppRole, roleID, VaultSweeperRoleIDFile(c.StateDir), VaultSweeperSecretIDFile(c.StateDir))
}

// SweeperEnv is Env for the sweeper process: the worker binary in sweeper
// mode with the sweeper's AppRole instead of the worker's, and none of the
// worker's directory or HRIS secrets (it opens neither).
func SweeperEnv(ep Endpoints) []string {
	roleID, _ := os.ReadFile(VaultSweeperRoleIDFile(ep.StateDir))
	var out []string
	for _, kv := range Env(ep) {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case "JOINERY_VAULT_ROLE_ID", "JOINERY_VAULT_SECRET_ID_FILE":
			continue
		case "JOINERY_LDAP_BIND_PASSWORD", "JOINERY_HRIS_API_KEY", "JOINERY_HRIS_WEBHOOK_SECRET", "JOINERY_DECISION_KEY_FILE":
			// Set empty, not left out: a shell that ran `devstack env`
			// (or `make run`'s own environment) would otherwise hand the
			// worker's secrets to the sweeper, which opens none of them.
			out = append(out, name+"=")
			continue
		}
		out = append(out, kv)
	}
	return append(out,
		"JOINERY_WORKER_MODE=sweeper",
		"JOINERY_VAULT_ROLE_ID="+strings.TrimSpace(string(roleID)),
		"JOINERY_VAULT_SECRET_ID_FILE="+VaultSweeperSecretIDFile(ep.StateDir),
	)
}
