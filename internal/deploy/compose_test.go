// Package deploy checks the deployment files against the code. No Docker
// engine runs here, so docker-compose.yml is loaded with compose-go (the
// library docker compose itself uses) and checked for the services, ports and
// environment names Joinery's configuration defines.
package deploy

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/stretchr/testify/require"

	"github.com/joinery/joinery/connectors/secrets"
	"github.com/joinery/joinery/internal/config"
	"github.com/joinery/joinery/internal/stack"
)

func loadProject(t *testing.T) *types.Project {
	t.Helper()
	repo, err := stack.FindRepoDir()
	require.NoError(t, err)
	opts, err := cli.NewProjectOptions([]string{filepath.Join(repo, "docker-compose.yml")},
		cli.WithWorkingDirectory(repo), cli.WithName("joinery"))
	require.NoError(t, err)
	p, err := opts.LoadProject(context.Background())
	require.NoError(t, err, "docker-compose.yml must load with compose-go")
	return p
}

func TestComposeHasTheProductionLikeServices(t *testing.T) {
	p := loadProject(t)
	want := map[string]string{
		"postgresql":  "postgres:",
		"temporal":    "temporalio/auto-setup:",
		"temporal-ui": "temporalio/ui:",
		"vault":       "hashicorp/vault:",
		"openldap":    "openldap",
	}
	for name, image := range want {
		s, ok := p.Services[name]
		require.True(t, ok, "service %s missing", name)
		require.Contains(t, s.Image, image, name)
	}
	// Joinery's own binaries are built from this repo's Dockerfile targets.
	df, err := os.ReadFile(filepath.Join(p.WorkingDir, "Dockerfile"))
	require.NoError(t, err)
	for _, name := range []string{"worker", "starter", "hris"} {
		s, ok := p.Services[name]
		require.True(t, ok, "service %s missing", name)
		require.NotNil(t, s.Build, "%s is built from the repo", name)
		require.Regexp(t, regexp.MustCompile(`(?m)^FROM .* AS `+regexp.QuoteMeta(s.Build.Target)+`$`), string(df),
			"Dockerfile has target %s", s.Build.Target)
	}
}

func TestComposePortsMatchTheCode(t *testing.T) {
	p := loadProject(t)
	published := func(svc string) []uint32 {
		var out []uint32
		for _, port := range p.Services[svc].Ports {
			out = append(out, port.Target)
		}
		return out
	}
	require.Contains(t, published("temporal"), uint32(7233))
	require.Contains(t, published("temporal-ui"), uint32(8080))
	require.Contains(t, published("vault"), uint32(8200))
	require.Contains(t, published("starter"), uint32(8091))
	require.Contains(t, published("hris"), uint32(8090))
	// The intake listens where the starter's port is published.
	env := p.Services["starter"].Environment
	require.NotNil(t, env["JOINERY_INTAKE_ADDR"])
	require.True(t, strings.HasSuffix(*env["JOINERY_INTAKE_ADDR"], ":8091"))
}

func TestComposeEnvironmentNamesAreJoinerysOwn(t *testing.T) {
	p := loadProject(t)
	known := map[string]bool{}
	for _, v := range config.Vars() {
		known[v.Name] = true
	}
	required := []string{"JOINERY_TEMPORAL_ADDRESS", "JOINERY_LDAP_URL", "JOINERY_LDAP_BIND_DN", "JOINERY_LDAP_BASE_DN",
		"JOINERY_VAULT_ADDR", "JOINERY_HRIS_URL", "JOINERY_HRIS_API_KEY", "JOINERY_POLICY_FILE"}
	for _, svc := range []string{"worker", "starter"} {
		env := p.Services[svc].Environment
		for name := range env {
			if strings.HasPrefix(name, "JOINERY_") {
				require.True(t, known[name], "%s sets %s, which the code does not read", svc, name)
			}
		}
		for _, name := range required {
			require.Contains(t, env, name, "%s must set %s", svc, name)
		}
		// Every value must satisfy the code's own parser.
		_, err := config.Load(func(k string) string {
			if v, ok := env[k]; ok && v != nil {
				return *v
			}
			return ""
		})
		require.NoError(t, err, svc)
	}
	// Addresses point at services that exist.
	wenv := p.Services["worker"].Environment
	for name, svc := range map[string]string{"JOINERY_TEMPORAL_ADDRESS": "temporal", "JOINERY_LDAP_URL": "openldap",
		"JOINERY_VAULT_ADDR": "vault", "JOINERY_HRIS_URL": "hris"} {
		require.Contains(t, *wenv[name], svc+":", name)
		_, ok := p.Services[svc]
		require.True(t, ok)
	}
}

func TestReadmeDocumentsEveryVariable(t *testing.T) {
	repo, err := stack.FindRepoDir()
	require.NoError(t, err)
	readme, err := os.ReadFile(filepath.Join(repo, "README.md"))
	require.NoError(t, err)
	for _, v := range config.Vars() {
		require.Contains(t, string(readme), "`"+v.Name+"`", "README's configuration table lacks %s", v.Name)
	}
}

// The compose bootstrap loads the password policy from a file; it must be the
// one the code and the dev stack use.
func TestComposePasswordPolicyIsTheCodes(t *testing.T) {
	repo, err := stack.FindRepoDir()
	require.NoError(t, err)
	data, err := os.ReadFile(filepath.Join(repo, "testdata", "vault", "password-policy.hcl"))
	require.NoError(t, err)
	var lines []string
	for _, l := range strings.Split(string(data), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			lines = append(lines, l)
		}
	}
	require.Equal(t, secrets.InitialPasswordPolicyHCL, strings.Join(lines, "\n"))
}
