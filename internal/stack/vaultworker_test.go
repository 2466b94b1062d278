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
// default joiner policy (docker-compose loads it as is). Regenerate with
// JOINERY_UPDATE_GOLDEN=1 go test ./internal/stack -run TestWorkerPolicyFile.
func TestWorkerPolicyFileIsTheRenderedOne(t *testing.T) {
	repo, err := FindRepoDir()
	require.NoError(t, err)
	tmpls, err := WorkloadTemplates(filepath.Join(repo, "testdata", "policy", "default.yaml"))
	require.NoError(t, err)
	cat, err := secrets.WorkloadCatalogueFor(tmpls)
	require.NoError(t, err)
	want := secrets.WorkerPolicyHCL(secrets.Config{}, cat)
	file := filepath.Join(repo, "testdata", "vault", "joinery-worker.hcl")
	if os.Getenv("JOINERY_UPDATE_GOLDEN") != "" {
		require.NoError(t, os.WriteFile(file, []byte(want), 0o644))
	}
	got, err := os.ReadFile(file)
	require.NoError(t, err)
	require.Equal(t, want, string(got), "regenerate %s (see the test's comment)", file)

	// docker-compose's init job has no Go: it loads the workload policies
	// and the catalogue from these files, substituting the AppRole accessor.
	files, err := ComposeVaultFiles(cat)
	require.NoError(t, err)
	dir := filepath.Join(repo, "testdata", "vault")
	if os.Getenv("JOINERY_UPDATE_GOLDEN") != "" {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, "workload-policies"), 0o755))
		for name, text := range files {
			require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644))
		}
	}
	for name, text := range files {
		got, err := os.ReadFile(filepath.Join(dir, name))
		require.NoError(t, err, "regenerate %s", name)
		require.Equal(t, text, string(got), "regenerate %s (see the test's comment)", name)
	}
	entries, err := os.ReadDir(filepath.Join(dir, "workload-policies"))
	require.NoError(t, err)
	require.Len(t, entries, len(cat.Policies), "no stale workload policy files")
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
