package stack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	vault "github.com/hashicorp/vault/api"
	"gopkg.in/yaml.v3"

	"github.com/joinery/joinery/connectors/secrets"
	"github.com/joinery/joinery/internal/policy"
)

// The worker's Vault identity. The bootstrap installs the workload
// catalogue and the worker's policy (connectors/secrets.WorkerPolicyHCL),
// creates the AppRole role joinery-worker and leaves its RoleID and one
// SecretID in the state directory, owner-only. The root token is for the
// bootstrap and for tests that inspect Vault; the worker never gets it.

// WorkerAppRole is the AppRole role the worker logs in with.
const WorkerAppRole = "joinery-worker"

// VaultWorkerRoleIDFile is where the bootstrap leaves the worker's RoleID.
func VaultWorkerRoleIDFile(stateDir string) string {
	return filepath.Join(stateDir, "vault", "worker-role-id")
}

// VaultWorkerSecretIDFile is where the bootstrap leaves the worker's SecretID (0600).
func VaultWorkerSecretIDFile(stateDir string) string {
	return filepath.Join(stateDir, "vault", "worker-secret-id")
}

// WorkloadTemplates returns the grant templates of every non-human kind of
// the joiner policy file, with their {placeholders} intact, after the policy
// package has validated the whole file. The workload catalogue is rendered
// from these, and the worker's plans expand the very same templates, so a
// joiner's grants either match its kind's pre-created policy or fail
// clearly (secrets.TypeNoWorkloadPolicy).
func WorkloadTemplates(policyFile string) (map[string][]secrets.GrantTemplate, error) {
	if _, err := policy.Load(policyFile); err != nil {
		return nil, fmt.Errorf("policy %s: %w", policyFile, err)
	}
	data, err := os.ReadFile(policyFile)
	if err != nil {
		return nil, err
	}
	// Only the vault sections; policy.Load above has checked the rest.
	var raw struct {
		Kinds map[string]struct {
			Vault *struct {
				Paths []secrets.GrantTemplate `yaml:"paths"`
			} `yaml:"vault"`
		} `yaml:"kinds"`
	}
	if err := yaml.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("policy %s: %w", policyFile, err)
	}
	out := map[string][]secrets.GrantTemplate{}
	for kind, k := range raw.Kinds {
		if k.Vault != nil && len(k.Vault.Paths) > 0 {
			out[kind] = k.Vault.Paths
		}
	}
	return out, nil
}

// InstallWorkerVaultIdentity is the production-side half of the bootstrap
// (an operator runs it with an admin token): it renders the workload
// catalogue from the joiner policy file, installs it and the worker's
// policy, and creates or updates the worker's AppRole role with roleOpts.
// It returns the role's RoleID. It never issues a SecretID.
func InstallWorkerVaultIdentity(ctx context.Context, admin *secrets.Client, policyFile string, roleOpts secrets.AppRoleOptions) (string, error) {
	tmpls, err := WorkloadTemplates(policyFile)
	if err != nil {
		return "", err
	}
	cat, err := secrets.WorkloadCatalogueFor(tmpls)
	if err != nil {
		return "", fmt.Errorf("workload catalogue from %s: %w", policyFile, err)
	}
	if err := admin.InstallWorkloadPolicies(ctx, cat); err != nil {
		return "", fmt.Errorf("workload policies: %w", err)
	}
	if err := admin.WritePolicy(ctx, secrets.WorkerPolicyName, secrets.WorkerPolicyHCL(secrets.Config{}, cat)); err != nil {
		return "", fmt.Errorf("worker policy: %w", err)
	}
	roleOpts.TokenPolicies = []string{secrets.WorkerPolicyName}
	roleID, err := admin.CreateAppRole(ctx, WorkerAppRole, roleOpts)
	if err != nil {
		return "", fmt.Errorf("worker role: %w", err)
	}
	return roleID, nil
}

// ComposeAccessorPlaceholder stands for the AppRole mount accessor in the
// workload policy files docker-compose's init job loads; it substitutes the
// accessor of the Vault it initialises.
const ComposeAccessorPlaceholder = "@APPROLE_ACCESSOR@"

// ComposeVaultFiles renders what docker-compose's Vault init job (a shell
// script with the vault CLI, no Go) needs to install the same catalogue as
// InstallWorkerVaultIdentity: workload-policies/<name>.hcl per workload
// policy and workload-catalogue.json. File name → content, relative to
// testdata/vault.
func ComposeVaultFiles(cat secrets.WorkloadCatalogue) (map[string]string, error) {
	out := map[string]string{}
	for _, p := range cat.Policies {
		out[filepath.Join("workload-policies", p.Name+".hcl")] = p.HCL(ComposeAccessorPlaceholder)
	}
	data, err := json.MarshalIndent(cat, "", "  ")
	if err != nil {
		return nil, err
	}
	out["workload-catalogue.json"] = string(data) + "\n"
	return out, nil
}

// RenderVaultFiles writes, into dir, the Vault files a bootstrap without Go
// loads for the joiner policy file: joinery-worker.hcl (the worker's
// policy), workload-policies/<name>.hcl (with ComposeAccessorPlaceholder)
// and workload-catalogue.json. Stale workload policy files are removed.
// testdata/vault holds the rendering for testdata/policy/default.yaml, which
// docker-compose's init job loads.
func RenderVaultFiles(policyFile, dir string) error {
	tmpls, err := WorkloadTemplates(policyFile)
	if err != nil {
		return err
	}
	cat, err := secrets.WorkloadCatalogueFor(tmpls)
	if err != nil {
		return fmt.Errorf("workload catalogue from %s: %w", policyFile, err)
	}
	files, err := ComposeVaultFiles(cat)
	if err != nil {
		return err
	}
	files["joinery-worker.hcl"] = secrets.WorkerPolicyHCL(secrets.Config{}, cat)
	wp := filepath.Join(dir, "workload-policies")
	if err := os.MkdirAll(wp, 0o755); err != nil {
		return err
	}
	old, err := filepath.Glob(filepath.Join(wp, "*.hcl"))
	if err != nil {
		return err
	}
	for _, f := range old {
		if _, keep := files[filepath.Join("workload-policies", filepath.Base(f))]; !keep {
			if err := os.Remove(f); err != nil {
				return err
			}
		}
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// policyFile is the joiner policy the stack's worker runs with.
func (c Config) policyFile() string {
	p := envOr("JOINERY_POLICY_FILE", filepath.Join("testdata", "policy", "default.yaml"))
	if !filepath.IsAbs(p) {
		p = filepath.Join(c.RepoDir, p)
	}
	return p
}

// setupVaultWorker gives the dev stack's worker its own identity: the
// catalogue and policy, the role (loopback only, tokens of one hour renewed
// up to four, then a fresh login), and the RoleID and SecretID files. An
// existing SecretID that Vault still knows is kept, so a restart does not
// invalidate a running worker's credentials.
func (c Config) setupVaultWorker(ctx context.Context, addr, rootToken string) error {
	admin, err := secrets.New(ctx, secrets.Config{Addr: addr, Token: rootToken})
	if err != nil {
		return err
	}
	roleID, err := InstallWorkerVaultIdentity(ctx, admin, c.policyFile(), secrets.AppRoleOptions{
		TokenTTL: time.Hour, TokenMaxTTL: 4 * time.Hour,
		TokenBoundCIDRs: []string{"127.0.0.1/32"}, SecretIDBoundCIDRs: []string{"127.0.0.1/32"},
	})
	if err != nil {
		return err
	}
	return writeAppRoleFiles(ctx, addr, rootToken, WorkerAppRole, roleID, VaultWorkerRoleIDFile(c.StateDir), VaultWorkerSecretIDFile(c.StateDir))
}

// writeAppRoleFiles writes role's RoleID to roleIDFile and, unless
// sidFile holds a SecretID Vault still knows, a new SecretID to sidFile.
func writeAppRoleFiles(ctx context.Context, addr, rootToken, role, roleID, roleIDFile, sidFile string) error {
	if err := writeOwnerOnly(roleIDFile, roleID); err != nil {
		return err
	}
	vcfg := vault.DefaultConfig()
	vcfg.Address = addr
	vc, err := vault.NewClient(vcfg)
	if err != nil {
		return err
	}
	vc.SetToken(rootToken)
	if b, err := os.ReadFile(sidFile); err == nil {
		s, err := vc.Logical().WriteWithContext(ctx, "auth/approle/role/"+role+"/secret-id/lookup",
			map[string]any{"secret_id": strings.TrimSpace(string(b))})
		if err == nil && s != nil {
			return nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	s, err := vc.Logical().WriteWithContext(ctx, "auth/approle/role/"+role+"/secret-id", nil)
	if err != nil {
		return fmt.Errorf("%s secret-id: %w", role, err)
	}
	sid, _ := s.Data["secret_id"].(string)
	if sid == "" {
		return fmt.Errorf("%s secret-id: Vault returned none", role)
	}
	return writeOwnerOnly(sidFile, sid)
}

// writeOwnerOnly writes a credential file readable by its owner only. It
// writes a temporary file and renames it, so a worker starting meanwhile
// reads the old value or the new one, never half of one, and a file that
// existed with wider permissions is replaced rather than reused.
func writeOwnerOnly(path, value string) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // after a successful rename there is nothing left to remove
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.WriteString(value + "\n"); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
