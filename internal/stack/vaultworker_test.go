package stack

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/joinery/joinery/connectors/secrets"
	"github.com/joinery/joinery/internal/policy"
)

// testdata/vault/joinery-worker.hcl is what the bootstrap installs for the
// default joiner policy, and testdata/vault/workload-* what docker-compose's
// init job (no Go there) loads. Regenerate with
// JOINERY_UPDATE_GOLDEN=1 go test ./internal/stack -run TestVaultFilesAreTheRenderedOnes.
func TestVaultFilesAreTheRenderedOnes(t *testing.T) {
	repo, err := FindRepoDir()
	require.NoError(t, err)
	policyFile := filepath.Join(repo, "testdata", "policy", "default.yaml")
	dir := filepath.Join(repo, "testdata", "vault")
	if os.Getenv("JOINERY_UPDATE_GOLDEN") != "" {
		require.NoError(t, RenderVaultFiles(policyFile, dir))
	}
	fresh := t.TempDir()
	require.NoError(t, RenderVaultFiles(policyFile, fresh))
	var names []string
	require.NoError(t, filepath.WalkDir(fresh, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(fresh, p)
			names = append(names, rel)
		}
		return err
	}))
	require.Contains(t, names, "joinery-worker.hcl")
	for _, name := range names {
		want, err := os.ReadFile(filepath.Join(fresh, name))
		require.NoError(t, err)
		got, err := os.ReadFile(filepath.Join(dir, name))
		require.NoError(t, err, "regenerate %s (see the test's comment)", name)
		require.Equal(t, string(want), string(got), "regenerate %s (see the test's comment)", name)
	}
	committed, err := filepath.Glob(filepath.Join(dir, "workload-policies", "*.hcl"))
	require.NoError(t, err)
	rendered, err := filepath.Glob(filepath.Join(fresh, "workload-policies", "*.hcl"))
	require.NoError(t, err)
	require.Len(t, committed, len(rendered), "no stale workload policy files")

	// The worker policy installed by the bootstrap is the same rendering.
	tmpls, err := WorkloadTemplates(policyFile)
	require.NoError(t, err)
	cat, err := secrets.WorkloadCatalogueFor(tmpls)
	require.NoError(t, err)
	want, err := os.ReadFile(filepath.Join(fresh, "joinery-worker.hcl"))
	require.NoError(t, err)
	require.Equal(t, secrets.WorkerPolicyHCL(secrets.Config{}, cat), string(want))
}

// The catalogue is rendered from the same templates the worker's plans
// expand: every non-human kind's plan binds to its kind's policy, and to
// nothing wider.
func TestWorkloadCatalogueFitsThePlans(t *testing.T) {
	repo, err := FindRepoDir()
	require.NoError(t, err)
	file := filepath.Join(repo, "testdata", "policy", "default.yaml")
	pol, err := policy.Load(file)
	require.NoError(t, err)
	tmpls, err := WorkloadTemplates(file)
	require.NoError(t, err)
	require.NotEmpty(t, tmpls)
	cat, err := secrets.WorkloadCatalogueFor(tmpls)
	require.NoError(t, err)
	for kind := range tmpls {
		plan, err := pol.Plan(policy.Worker{
			HRISID: "nhi-deploy-bot-production", FirstName: "deploy-bot", Kind: kind, Environment: "production",
			Purpose: "Deploys the web app", SponsorUsername: "ada.lovelace", ManagerUsername: "grace.hopper",
			HireDate: "2026-09-01", EndDate: "2026-11-01",
		})
		require.NoError(t, err, kind)
		require.NotNil(t, plan.Workload, kind)
		var grants []secrets.GrantTemplate
		for _, g := range plan.Workload.Grants {
			grants = append(grants, secrets.GrantTemplate{Path: g.Path, Capabilities: g.Capabilities})
		}
		md, name, err := secrets.BindWorkload(cat, kind, grants)
		require.NoError(t, err, kind)
		require.Equal(t, secrets.WorkloadPolicyPrefix+kind, name)
		require.Equal(t, map[string]string{"joinery_slot_0": "deploy-bot/production/*", "joinery_slot_1": "deploy-bot/production/*"}, md, kind)
	}
}

func TestWriteOwnerOnlyReplacesAWiderFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "worker-secret-id")
	require.NoError(t, os.WriteFile(p, []byte("old"), 0o644))
	require.NoError(t, writeOwnerOnly(p, "new"))
	info, err := os.Stat(p)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm())
	got, err := os.ReadFile(p)
	require.NoError(t, err)
	require.Equal(t, "new\n", string(got))
	entries, err := os.ReadDir(filepath.Dir(p))
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary file left behind")
}
