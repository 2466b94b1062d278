// Package deploy checks the deployment files against the code. No Docker
// engine runs here, so docker-compose.yml is loaded with compose-go (the
// library docker compose itself uses) and checked for the images, networks,
// ports, volumes and environment names Joinery's configuration defines; the
// OpenLDAP image's entrypoint is run against Debian's slapd installed here
// (slapd_test.go).
package deploy

import (
	"context"
	"maps"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/joinery/joinery/connectors/secrets"
	"github.com/joinery/joinery/internal/config"
	"github.com/joinery/joinery/internal/stack"
)

func repoDir(t *testing.T) string {
	t.Helper()
	repo, err := stack.FindRepoDir()
	require.NoError(t, err)
	return repo
}

// requiredVars are the operator's secrets, read from the `${VAR:?...}`
// references of the file itself.
func requiredVars(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoDir(t), "docker-compose.yml"))
	require.NoError(t, err)
	seen := map[string]bool{}
	for _, m := range regexp.MustCompile(`\$\{([A-Z0-9_]+):\?`).FindAllStringSubmatch(string(data), -1) {
		seen[m[1]] = true
	}
	return slices.Sorted(maps.Keys(seen))
}

// trialEnv gives every required secret a value, as an operator's .env would.
func trialEnv(t *testing.T) map[string]string {
	env := map[string]string{}
	for _, v := range requiredVars(t) {
		env[v] = "test-value-for-" + strings.ToLower(v)
	}
	return env
}

func loadWith(t *testing.T, env map[string]string) (*types.Project, error) {
	t.Helper()
	repo := repoDir(t)
	var pairs []string
	for k, v := range env {
		pairs = append(pairs, k+"="+v)
	}
	opts, err := cli.NewProjectOptions([]string{filepath.Join(repo, "docker-compose.yml")},
		// Only the environment given here: not this machine's, not a .env
		// in the checkout.
		cli.WithWorkingDirectory(repo), cli.WithName("joinery"), cli.WithEnv(pairs))
	require.NoError(t, err)
	opts.Environment = types.Mapping{}
	for k, v := range env {
		opts.Environment[k] = v
	}
	return opts.LoadProject(context.Background())
}

func loadProject(t *testing.T) *types.Project {
	t.Helper()
	p, err := loadWith(t, trialEnv(t))
	require.NoError(t, err, "docker-compose.yml must load and validate with compose-go")
	return p
}

// The operator's secrets: compose refuses to start without each one, names
// it, and env.example lists it. Nothing secret has a default in the file.
func TestComposeRequiresEverySecret(t *testing.T) {
	want := []string{"JOINERY_CODEC_TOKEN", "JOINERY_GRAFANA_ADMIN_PASSWORD", "JOINERY_HRIS_ADMIN_TOKEN", "JOINERY_HRIS_API_KEY", "JOINERY_HRIS_WEBHOOK_SECRET",
		"JOINERY_INTAKE_TOKEN", "JOINERY_LDAP_ADMIN_PASSWORD", "JOINERY_LDAP_BIND_PASSWORD", "JOINERY_LDAP_INBOX_PASSWORD", "JOINERY_POSTGRES_PASSWORD",
		"JOINERY_PSEUDONYM_KEY"}
	require.Equal(t, want, requiredVars(t))
	example, err := os.ReadFile(filepath.Join(repoDir(t), "deploy", "env.example"))
	require.NoError(t, err)
	for _, v := range want {
		require.Regexp(t, regexp.MustCompile(`(?m)^`+v+`=$`), string(example), "deploy/env.example lists %s, empty", v)
		env := trialEnv(t)
		delete(env, v)
		_, err := loadWith(t, env)
		require.Error(t, err, "compose must refuse to start without %s", v)
		require.Contains(t, err.Error(), v)
	}
	// Every secret of the code's configuration that compose sets comes from
	// the operator, never from a literal in the file.
	p := loadProject(t)
	secretVars := map[string]bool{}
	for _, v := range config.Vars() {
		if v.Secret {
			secretVars[v.Name] = true
		}
	}
	env := trialEnv(t)
	supplied := map[string]bool{}
	for _, v := range env {
		supplied[v] = true
	}
	for name, s := range p.Services {
		for k, v := range s.Environment {
			if (secretVars[k] || strings.Contains(k, "PASSWORD") || strings.Contains(k, "SECRET") || strings.HasSuffix(k, "_TOKEN") || strings.HasSuffix(k, "_KEY") || strings.HasSuffix(k, "_PWD")) &&
				!strings.HasSuffix(k, "_FILE") && v != nil && !strings.HasPrefix(*v, "/") {
				require.True(t, supplied[*v], "%s: %s has a value the operator did not supply", name, k)
			}
		}
	}
}

// imageAllowlist is where images may come from: official images of the
// projects Joinery runs, or this repository's Dockerfile.
var imageAllowlist = map[string]bool{
	"postgres":               true,
	"temporalio/server":      true,
	"temporalio/admin-tools": true,
	"temporalio/ui":          true,
	"hashicorp/vault":        true,
	"axllent/mailpit":        true,
	"prom/prometheus":        true,
	"grafana/grafana":        true,
}

func TestComposeImagesAreAllowedAndPinned(t *testing.T) {
	p := loadProject(t)
	df, err := os.ReadFile(filepath.Join(p.WorkingDir, "Dockerfile"))
	require.NoError(t, err)
	want := map[string]string{
		"postgresql": "postgres", "temporal": "temporalio/server", "temporal-schema": "temporalio/admin-tools",
		"temporal-namespace": "temporalio/admin-tools", "temporal-ui": "temporalio/ui", "vault": "hashicorp/vault",
		"mailpit": "axllent/mailpit", "prometheus": "prom/prometheus", "grafana": "grafana/grafana",
		"openldap": "build:openldap", "hris": "build:refhris", "worker": "build:worker", "sweeper": "build:worker", "starter": "build:starter",
		"codec": "build:starter", "certs": "build:bootstrap", "keys": "build:bootstrap", "vault-init": "build:bootstrap",
	}
	require.ElementsMatch(t, slices.Collect(maps.Keys(want)), slices.Collect(maps.Keys(p.Services)))
	for name, s := range p.Services {
		if s.Build != nil {
			require.Equal(t, "build:"+s.Build.Target, want[name], name)
			require.Regexp(t, regexp.MustCompile(`(?m)^FROM \S+ AS `+regexp.QuoteMeta(s.Build.Target)+`$`), string(df),
				"Dockerfile has target %s", s.Build.Target)
			continue
		}
		repo, tag, ok := strings.Cut(s.Image, ":")
		require.True(t, ok, "%s: image %q has no tag", name, s.Image)
		require.True(t, imageAllowlist[repo], "%s: image %s is not on the allowlist", name, repo)
		require.Equal(t, want[name], repo, name)
		requirePinned(t, name, tag)
	}
	// The removed or deprecated images stay out.
	raw, err := os.ReadFile(filepath.Join(p.WorkingDir, "docker-compose.yml"))
	require.NoError(t, err)
	for _, gone := range []string{"bitnami/", "temporalio/auto-setup"} {
		require.NotContains(t, string(raw), gone)
	}
	// The Dockerfile's own bases are pinned too.
	froms := regexp.MustCompile(`(?m)^FROM (\S+)`).FindAllStringSubmatch(string(df), -1)
	require.NotEmpty(t, froms)
	targets := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^FROM \S+ AS (\S+)$`).FindAllStringSubmatch(string(df), -1) {
		targets[m[1]] = true
	}
	for _, m := range froms {
		if targets[m[1]] {
			continue // FROM an earlier stage
		}
		img, tag, ok := strings.Cut(m[1], ":")
		require.True(t, ok, "Dockerfile: FROM %s has no tag", m[1])
		if strings.HasPrefix(img, "gcr.io/distroless/") && regexp.MustCompile(`-debian[0-9]+$`).MatchString(img) {
			// Distroless publishes no version tags: the Debian release is
			// in the image name, the tag names the variant.
			require.Equal(t, "nonroot", tag, "Dockerfile: distroless runs as nonroot")
			continue
		}
		if img == "debian" {
			// A Debian release by its codename: it moves only with that
			// release's point updates.
			require.Regexp(t, `^(bookworm|trixie)(-slim)?$`, tag, "Dockerfile: debian release")
			continue
		}
		requirePinned(t, "Dockerfile", tag)
	}
}

func requirePinned(t *testing.T, name, tag string) {
	t.Helper()
	require.NotEmpty(t, tag, name)
	require.NotContains(t, []string{"latest", "stable", "main", "edge", "nightly"}, tag, "%s: %q is not a pinned tag", name, tag)
	require.Regexp(t, `^v?[0-9]`, tag, "%s: tag %q must name a version", name, tag)
}

// Only the UI, the intake, the inbox, the codec endpoint the UI's browser
// calls and Grafana are published, on 127.0.0.1 unless the operator says
// otherwise; every backend is on the internal network only.
func TestComposePublishesOnlyTheEdgeOnLoopback(t *testing.T) {
	p := loadProject(t)
	published := map[string][]uint32{}
	for name, s := range p.Services {
		for _, port := range s.Ports {
			require.Equal(t, "127.0.0.1", port.HostIP, "%s publishes %d beyond loopback", name, port.Target)
			require.Equal(t, port.Target, mustAtoi(t, port.Published), "%s: published port is the container's", name)
			published[name] = append(published[name], port.Target)
		}
	}
	require.Equal(t, map[string][]uint32{"temporal-ui": {8080}, "starter": {8091, 8092}, "codec": {8094}, "grafana": {3000}},
		sorted(published))

	backend, ok := p.Networks["backend"]
	require.True(t, ok)
	require.True(t, backend.Internal, "the backend network is internal")
	for name, s := range p.Services {
		if s.NetworkMode == "none" {
			continue // a job that needs no network
		}
		nets := slices.Sorted(maps.Keys(s.Networks))
		if _, pub := published[name]; pub {
			require.Contains(t, nets, "edge", "%s is published, so it needs a network with a route", name)
			continue
		}
		require.Equal(t, []string{"backend"}, nets, "%s is a backend: internal network only", name)
	}
	// The intake and inbox listen where their ports are published.
	env := p.Services["starter"].Environment
	require.Equal(t, "0.0.0.0:8091", *env["JOINERY_INTAKE_ADDR"])
	require.Equal(t, "0.0.0.0:8092", *env["JOINERY_INBOX_ADDR"])
	require.Equal(t, "0.0.0.0:8094", *p.Services["codec"].Environment["JOINERY_CODEC_ADDR"])

	// The operator can choose another address, deliberately.
	e := trialEnv(t)
	e["JOINERY_PUBLISH_IP"] = "192.0.2.10"
	p2, err := loadWith(t, e)
	require.NoError(t, err)
	for _, port := range p2.Services["starter"].Ports {
		require.Equal(t, "192.0.2.10", port.HostIP)
	}
}

func mustAtoi(t *testing.T, s string) uint32 {
	t.Helper()
	var n uint32
	for _, c := range s {
		require.True(t, c >= '0' && c <= '9', "port %q", s)
		n = n*10 + uint32(c-'0')
	}
	return n
}

func sorted(m map[string][]uint32) map[string][]uint32 {
	for k := range m {
		slices.Sort(m[k])
	}
	return m
}

// The namespace job registers exactly the search attributes the code
// upserts (internal/stack.SearchAttributes), with their types.
func TestComposeRegistersExactlyJoinerysSearchAttributes(t *testing.T) {
	p := loadProject(t)
	s := p.Services["temporal-namespace"]
	list := s.Environment["JOINERY_SEARCH_ATTRIBUTES"]
	require.NotNil(t, list)
	var got [][2]string
	for _, f := range strings.Fields(*list) {
		name, typ, ok := strings.Cut(f, "=")
		require.True(t, ok, "%q is not name=Type", f)
		got = append(got, [2]string{name, typ})
	}
	require.ElementsMatch(t, stack.SearchAttributes, got)
	require.Len(t, got, len(stack.SearchAttributes), "no attribute twice")
	script, err := os.ReadFile(filepath.Join(p.WorkingDir, "deploy", "temporal", "register.sh"))
	require.NoError(t, err)
	require.Contains(t, string(script), `for sa in $JOINERY_SEARCH_ATTRIBUTES`)
	require.Contains(t, string(script), "--tls-ca-path")
	require.Equal(t, *p.Services["worker"].Environment["JOINERY_TEMPORAL_NAMESPACE"], *s.Environment["JOINERY_NAMESPACE"])
	require.Equal(t, types.ShellCommand{"/bin/sh", "/deploy/register.sh"}, s.Entrypoint)
	schema := p.Services["temporal-schema"]
	require.Equal(t, types.ShellCommand{"/bin/sh", "/deploy/setup-schema.sh"}, schema.Entrypoint)
	sql, err := os.ReadFile(filepath.Join(p.WorkingDir, "deploy", "temporal", "setup-schema.sh"))
	require.NoError(t, err)
	for _, want := range []string{"update-schema", "setup-schema -v 0.0", "create-database", "temporal/versioned", "visibility/versioned"} {
		require.Contains(t, string(sql), want)
	}
	// The server starts only on a current schema.
	require.Equal(t, types.ServiceConditionCompletedSuccessfully, p.Services["temporal"].DependsOn["temporal-schema"].Condition)
}

func TestComposeEnvironmentNamesAreJoinerysOwn(t *testing.T) {
	p := loadProject(t)
	known := map[string]bool{}
	for _, v := range config.Vars() {
		known[v.Name] = true
	}
	required := []string{"JOINERY_TEMPORAL_ADDRESS", "JOINERY_TEMPORAL_TLS_CA_FILE", "JOINERY_LDAP_URL", "JOINERY_LDAP_BIND_DN",
		"JOINERY_LDAP_BASE_DN", "JOINERY_VAULT_ADDR", "JOINERY_HRIS_URL", "JOINERY_HRIS_API_KEY", "JOINERY_POLICY_FILE"}
	for svc, bin := range map[string]config.Binary{"worker": config.Worker, "starter": config.Serve, "codec": ""} {
		env := p.Services[svc].Environment
		for name := range env {
			if strings.HasPrefix(name, "JOINERY_") {
				require.True(t, known[name], "%s sets %s, which the code does not read", svc, name)
			}
		}
		require.NotContains(t, env, config.DevModeVar, "%s: no development mode in a deployment", svc)
		get := func(k string) string {
			if v, ok := env[k]; ok && v != nil {
				return *v
			}
			return ""
		}
		// Every value must satisfy the code's own parser.
		cfg, err := config.Load(get)
		require.NoError(t, err, svc)
		if bin == "" {
			require.NotEmpty(t, cfg.CodecToken)
			require.NotEmpty(t, cfg.CodecKeysFile)
			continue
		}
		for _, name := range required {
			if name == "JOINERY_LDAP_BIND_DN" && bin == config.Serve {
				continue // the inbox binds as its own account (compose_inbox_test.go)
			}
			require.Contains(t, env, name, "%s must set %s", svc, name)
		}
		if bin == config.Worker {
			// The worker's secret-id file only exists in the container; check
			// the rest of what Require asks for.
			require.Equal(t, "joinery-worker", cfg.VaultRoleID)
			require.Equal(t, "/vault-worker/secret-id", cfg.VaultSecretIDFile)
			require.Empty(t, cfg.VaultToken)
			require.Empty(t, cfg.VaultTokenFile)
		} else {
			require.NoError(t, cfg.Require(bin), svc)
		}
		// TLS to every backend that carries secrets, verified with the
		// deployment CA.
		require.True(t, strings.HasPrefix(cfg.LDAPURL, "ldaps://") || cfg.LDAPStartTLS, "%s: LDAP over TLS", svc)
		require.Equal(t, "/ca/ca.pem", cfg.LDAPCAFile, svc)
		require.False(t, cfg.LDAPInsecureSkipVerify, svc)
		require.True(t, strings.HasPrefix(cfg.VaultAddr, "https://"), "%s: Vault over TLS", svc)
		require.Equal(t, "/ca/ca.pem", get("VAULT_CACERT"), "%s: the Vault client trusts the deployment CA", svc)
		require.Equal(t, "/ca/ca.pem", cfg.TemporalTLSCAFile, svc)
		require.NotEqual(t, stack.LDAPBindDN, cfg.LDAPBindDN, "%s binds as the service account, not the admin", svc)
		require.Equal(t, stack.LDAPServiceDN, cfg.LDAPBindDN)
	}
	// Addresses point at services that exist.
	wenv := p.Services["worker"].Environment
	for name, svc := range map[string]string{"JOINERY_TEMPORAL_ADDRESS": "temporal", "JOINERY_LDAP_URL": "openldap",
		"JOINERY_VAULT_ADDR": "vault", "JOINERY_HRIS_URL": "hris", "JOINERY_SMTP_ADDR": "mailpit"} {
		require.Contains(t, *wenv[name], svc+":", name)
		_, ok := p.Services[svc]
		require.True(t, ok)
	}
	// The webhook the HRIS sends reaches the intake.
	require.Equal(t, "http://starter:8091/hris/webhook", *p.Services["hris"].Environment["REFHRIS_WEBHOOK_URL"])
	// The worker and the directory agree on the service account's password.
	require.Equal(t, *wenv["JOINERY_LDAP_BIND_PASSWORD"], *p.Services["openldap"].Environment["SLAPD_SERVICE_PASSWORD"])
	require.NotEqual(t, *p.Services["openldap"].Environment["SLAPD_ROOT_PASSWORD"], *wenv["JOINERY_LDAP_BIND_PASSWORD"])
}

// Who mounts what: the init material only in the Vault job, the signing key
// only in the inbox, TLS keys only in the TLS servers; the worker gets its
// own AppRole credentials, read-only.
func TestComposeVolumesKeepSecretsApart(t *testing.T) {
	p := loadProject(t)
	mounts := map[string][]string{}
	readOnly := map[string]bool{}
	for name, s := range p.Services {
		for _, v := range s.Volumes {
			if v.Type != types.VolumeTypeVolume {
				continue
			}
			mounts[v.Source] = append(mounts[v.Source], name)
			readOnly[name+"/"+v.Source] = v.ReadOnly
		}
	}
	for k := range mounts {
		sort.Strings(mounts[k])
	}
	require.Equal(t, []string{"vault-init"}, mounts["vaultinit"], "the root token and unseal key")
	require.Equal(t, []string{"vault-init", "worker"}, mounts["vaultworker"])
	require.True(t, readOnly["worker/vaultworker"])
	require.Equal(t, []string{"sweeper", "vault-init"}, mounts["vaultsweeper"], "the sweeper's AppRole credentials: never the worker's")
	require.True(t, readOnly["sweeper/vaultsweeper"])
	require.Equal(t, []string{"keys", "starter"}, mounts["inboxkey"], "the inbox's signing key")
	require.True(t, readOnly["starter/inboxkey"])
	require.Equal(t, []string{"certs", "openldap", "temporal", "vault"}, mounts["certs"], "TLS private keys")
	for _, svc := range []string{"temporal", "vault", "openldap"} {
		require.True(t, readOnly[svc+"/certs"], svc)
	}
	for _, svc := range []string{"worker", "starter", "codec"} {
		require.True(t, readOnly[svc+"/keys"], svc)
	}
	// The worker logs in with its AppRole, never with a token, and never in
	// development mode (which would fill in dev secrets).
	for _, svc := range []string{"worker", "sweeper", "starter", "codec"} {
		env := p.Services[svc].Environment
		require.NotContains(t, env, "JOINERY_VAULT_TOKEN_FILE", svc)
		require.NotContains(t, env, "JOINERY_VAULT_TOKEN", svc)
		require.NotContains(t, env, "JOINERY_DEV_MODE", svc)
	}
	wenv := p.Services["worker"].Environment
	require.Equal(t, "joinery-worker", *wenv["JOINERY_VAULT_ROLE_ID"])
	require.Equal(t, "/vault-worker/secret-id", *wenv["JOINERY_VAULT_SECRET_ID_FILE"])
	// The Vault job refuses to keep init material beside the worker's.
	vi := p.Services["vault-init"]
	require.Contains(t, strings.Join(vi.Command, " "), "-init-dir /init -worker-dir /vault-worker")
	require.Equal(t, "https://vault:8200", *vi.Environment["VAULT_ADDR"])
}

// Vault serves TLS with the certificate the certs job issues for it.
func TestComposeVaultListensWithTLS(t *testing.T) {
	p := loadProject(t)
	hcl, err := os.ReadFile(filepath.Join(p.WorkingDir, "deploy", "vault", "vault.hcl"))
	require.NoError(t, err)
	require.NotContains(t, string(hcl), "tls_disable")
	require.Contains(t, string(hcl), `tls_cert_file = "/certs/vault/cert.pem"`)
	require.Contains(t, string(hcl), `tls_key_file  = "/certs/vault/key.pem"`)
	require.Contains(t, string(hcl), `api_addr = "https://vault:8200"`)
	require.Contains(t, strings.Join(p.Services["certs"].Command, " "), "-for vault=")
	tenv := p.Services["temporal"].Environment
	require.Equal(t, "/certs/temporal/cert.pem", *tenv["TEMPORAL_TLS_FRONTEND_CERT"])
	require.Contains(t, strings.Join(p.Services["certs"].Command, " "), "-peer temporal=")
	require.Equal(t, "/certs/openldap/cert.pem", *p.Services["openldap"].Environment["SLAPD_TLS_CERT"])
}

func TestReadmeDocumentsEveryVariable(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(repoDir(t), "README.md"))
	require.NoError(t, err)
	for _, v := range config.Vars() {
		require.Contains(t, string(readme), "`"+v.Name+"`", "README's configuration table lacks %s", v.Name)
	}
}

// testdata/vault/password-policy.hcl documents the password policy for a
// bootstrap without Go; it must be the one the code (and the compose job,
// which installs secrets.InitialPasswordPolicyHCL itself) uses.
func TestVaultPasswordPolicyFileIsTheCodes(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoDir(t), "testdata", "vault", "password-policy.hcl"))
	require.NoError(t, err)
	var lines []string
	for _, l := range strings.Split(string(data), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			lines = append(lines, l)
		}
	}
	require.Equal(t, secrets.InitialPasswordPolicyHCL, strings.Join(lines, "\n"))
}

// Prometheus scrapes the metrics listeners compose gives the worker, the
// intake and the inbox, on the backend network, and loads the alert rules
// from where the file says.
func TestComposePrometheusScrapesJoinerysMetricsListeners(t *testing.T) {
	p := loadProject(t)
	data, err := os.ReadFile(filepath.Join(p.WorkingDir, "deploy", "observability", "prometheus.yml"))
	require.NoError(t, err)
	var prom struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	require.NoError(t, yaml.Unmarshal(data, &prom))
	var targets []string
	for _, sc := range prom.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			targets = append(targets, st.Targets...)
		}
	}
	var want []string
	for svc, vars := range map[string][]string{"worker": {"JOINERY_WORKER_METRICS_ADDR"},
		"starter": {"JOINERY_INTAKE_METRICS_ADDR", "JOINERY_INBOX_METRICS_ADDR"}} {
		for _, v := range vars {
			addr := p.Services[svc].Environment[v]
			require.NotNil(t, addr, "%s sets %s", svc, v)
			host, port, err := net.SplitHostPort(*addr)
			require.NoError(t, err)
			require.Equal(t, "0.0.0.0", host, "%s listens for Prometheus on the backend network", v)
			want = append(want, svc+":"+port)
			for _, pub := range p.Services[svc].Ports {
				require.NotEqual(t, port, pub.Published, "%s: the metrics port is not published", svc)
			}
		}
	}
	require.ElementsMatch(t, want, targets)
	// Compose mounts the rule files where prometheus.yml names them.
	mounted := map[string]bool{}
	for _, v := range p.Services["prometheus"].Volumes {
		mounted[v.Target] = true
	}
	for _, f := range prom.RuleFiles {
		require.True(t, mounted[f], "rule file %s is mounted", f)
	}
	require.True(t, mounted["/etc/prometheus/prometheus.yml"])
}

// Joinery's images run as uid 65532; every named volume one of them writes
// is handed to that uid by the keys job before it starts (a fresh volume
// is root's, and the write would fail).
func TestComposeWritableVolumesBelongToTheirWriter(t *testing.T) {
	p := loadProject(t)
	keys := p.Services["keys"]
	cmd := strings.Join(keys.Command, " ")
	require.Contains(t, cmd, "-owner 65532")
	mountedAt := map[string]string{}
	for _, v := range keys.Volumes {
		mountedAt[v.Source] = v.Target
	}
	for _, svc := range []string{"worker", "sweeper", "starter", "hris"} {
		s := p.Services[svc]
		require.NotNil(t, s.Build, svc)
		for _, v := range s.Volumes {
			if v.Type != types.VolumeTypeVolume || v.ReadOnly {
				continue
			}
			target, ok := mountedAt[v.Source]
			require.True(t, ok, "%s writes volume %s, which the keys job does not prepare", svc, v.Source)
			require.Contains(t, cmd, "-mkdir "+target, "%s: volume %s", svc, v.Source)
			require.Equal(t, types.ServiceConditionCompletedSuccessfully, s.DependsOn["keys"].Condition, "%s waits for the keys job", svc)
		}
	}
}

// The wrapping-token sweeper (the worker image with JOINERY_WORKER_MODE=
// sweeper) holds the one identity that may list and revoke any token by
// accessor. Its adversaries: a compromised worker, which must not reach
// the sweeper's SecretID (so the volume is the sweeper's alone), and a
// compromised sweeper, which must hold nothing else worth having (so no
// directory, HRIS, mail or pseudonym secret, no other Vault credentials,
// no published port, no route out).
func TestComposeSweeperHoldsOnlyItsOwnIdentity(t *testing.T) {
	p := loadProject(t)
	sw, ok := p.Services["sweeper"]
	require.True(t, ok, "compose deploys the sweeper")
	wk := p.Services["worker"]
	require.NotNil(t, sw.Build)
	require.Equal(t, wk.Build.Target, sw.Build.Target, "the worker's image")
	require.Equal(t, wk.Build.Context, sw.Build.Context)
	require.Empty(t, sw.Command, "the worker binary, in the mode its environment names")
	require.Empty(t, sw.Entrypoint)

	// Its mounts: its own AppRole credentials, the codec keys (its Temporal
	// client decodes its inputs with them, as the worker's does), the
	// CA certificate and its own Temporal client certificate; all
	// read-only, no bind mounts.
	got := map[string]string{}
	for _, v := range sw.Volumes {
		require.Equal(t, types.VolumeTypeVolume, v.Type, "sweeper: %s is not a named volume", v.Target)
		require.True(t, v.ReadOnly, "sweeper: %s is read-only", v.Source)
		got[v.Source] = v.Target
	}
	require.Equal(t, map[string]string{"vaultsweeper": "/vault-sweeper", "keys": "/keys", "ca": "/ca", "tlssweeper": "/temporal-tls"}, got)
	for name, s := range p.Services {
		for _, v := range s.Volumes {
			if v.Source == "vaultsweeper" {
				require.Contains(t, []string{"sweeper", "vault-init"}, name, "%s mounts the sweeper's credentials", name)
			}
		}
	}
	for _, v := range wk.Volumes {
		require.NotEqual(t, "vaultsweeper", v.Source, "the worker must not read the sweeper's volume")
	}

	// The job writes the sweeper's credentials where the sweeper reads them.
	vi := p.Services["vault-init"]
	cmd := strings.Join(vi.Command, " ")
	require.Contains(t, cmd, "-sweeper-dir /vault-sweeper")
	jobTarget := ""
	for _, v := range vi.Volumes {
		if v.Source == "vaultsweeper" {
			jobTarget = v.Target
			require.False(t, v.ReadOnly)
		}
	}
	require.Equal(t, "/vault-sweeper", jobTarget)
	require.Equal(t, types.ServiceConditionCompletedSuccessfully, sw.DependsOn["vault-init"].Condition)
	require.Equal(t, types.ServiceConditionCompletedSuccessfully, sw.DependsOn["keys"].Condition)

	// No port, internal network only.
	require.Empty(t, sw.Ports)
	require.Empty(t, sw.Expose)
	require.Equal(t, []string{"backend"}, slices.Sorted(maps.Keys(sw.Networks)))

	// None of the operator's secrets, and no setting of a system it has no
	// business with.
	supplied := map[string]string{}
	for k, v := range trialEnv(t) {
		supplied[v] = k
	}
	for k, v := range sw.Environment {
		require.NotNil(t, v, k)
		_, secret := supplied[*v]
		require.False(t, secret, "sweeper: %s carries the operator's %s", k, supplied[*v])
		for _, banned := range []string{"LDAP", "HRIS", "SMTP", "PSEUDONYM", "DECISION", "INBOX", "INTAKE", "AUDIT", "POLICY_FILE", "CODEC_TOKEN"} {
			require.NotContains(t, k, banned, "sweeper: %s", k)
		}
	}
	known := map[string]bool{}
	for _, v := range config.Vars() {
		known[v.Name] = true
	}
	for k := range sw.Environment {
		if strings.HasPrefix(k, "JOINERY_") {
			require.True(t, known[k], "sweeper sets %s, which the code does not read", k)
		}
	}

	// Its configuration, as the code reads it: sweeper mode, its AppRole
	// (its SecretID file in its own volume), Vault and Temporal over TLS
	// with the deployment CA, the worker's Temporal endpoint, namespace,
	// queue (to check callers) and codec keys, and the sweeper queue the
	// worker's reconciler sends the sweep to.
	env := func(s types.ServiceConfig) func(string) string {
		return func(k string) string {
			if v, ok := s.Environment[k]; ok && v != nil {
				return *v
			}
			return ""
		}
	}
	cfg, err := config.Load(env(sw))
	require.NoError(t, err)
	wcfg, err := config.Load(env(wk))
	require.NoError(t, err)
	require.Equal(t, "sweeper", cfg.WorkerMode)
	require.Equal(t, "joiner", wcfg.WorkerMode)
	require.Equal(t, "joinery-sweeper", cfg.VaultRoleID)
	require.Equal(t, "/vault-sweeper/secret-id", cfg.VaultSecretIDFile)
	require.Empty(t, cfg.VaultToken)
	require.Empty(t, cfg.VaultTokenFile)
	require.Empty(t, cfg.VaultSecretID)
	require.True(t, strings.HasPrefix(cfg.VaultAddr, "https://vault:"), cfg.VaultAddr)
	require.Equal(t, "/ca/ca.pem", env(sw)("VAULT_CACERT"))
	require.Equal(t, wcfg.VaultAddr, cfg.VaultAddr)
	require.Equal(t, wcfg.VaultKVMount, cfg.VaultKVMount)
	require.Equal(t, wcfg.TemporalAddress, cfg.TemporalAddress)
	require.Equal(t, wcfg.TemporalNamespace, cfg.TemporalNamespace)
	require.Equal(t, "/ca/ca.pem", cfg.TemporalTLSCAFile)
	require.Equal(t, wcfg.TaskQueue, cfg.TaskQueue, "the sweeper checks that its callers run on the worker's queue")
	require.Equal(t, wcfg.SweeperTaskQueue, cfg.SweeperTaskQueue, "the worker's reconciler sends the sweep where the sweeper polls")
	require.NotEqual(t, "off", cfg.SweeperTaskQueue)
	require.NotEqual(t, cfg.TaskQueue, cfg.SweeperTaskQueue)
	require.Equal(t, wcfg.CodecKeysFile, cfg.CodecKeysFile, "the same payload codec as the worker")
	require.True(t, strings.HasPrefix(cfg.CodecKeysFile, "/keys/"))
	require.Empty(t, cfg.CodecKeysVaultPath, "its Vault identity cannot read KV")
	require.Empty(t, cfg.PseudonymKey)
	require.Empty(t, cfg.LDAPBindPassword)
	require.Empty(t, cfg.HRISAPIKey)

	// With a SecretID in the file, the binary's own check passes: the
	// sweeper needs nothing the compose file withholds from it.
	sid := filepath.Join(t.TempDir(), "secret-id")
	require.NoError(t, os.WriteFile(sid, []byte("test-secret-id\n"), 0o600))
	withFile := func(k string) string {
		if k == "JOINERY_VAULT_SECRET_ID_FILE" {
			return sid
		}
		return env(sw)(k)
	}
	cfg, err = config.Load(withFile)
	require.NoError(t, err)
	require.NoError(t, cfg.Require(config.Sweeper))
	// Whereas the worker's mode, with the same environment, would ask for
	// what the sweeper must not have.
	require.Error(t, cfg.Require(config.Worker))
}
