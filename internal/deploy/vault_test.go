package deploy

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"
	"github.com/stretchr/testify/require"

	"github.com/joinery/joinery/connectors/secrets"
	"github.com/joinery/joinery/internal/config"
)

// The compose file's Vault, run: bin/vault (the release compose pins) with
// deploy/vault/vault.hcl — only its container paths and listen address
// mapped — initialised by the vault-init job's own command line and
// environment. The worker then logs in with exactly what compose gives it
// (its JOINERY_VAULT_* and VAULT_CACERT, the files in its volume) through
// the worker's connector, over TLS; the init material is only in the
// job's volume. So does the sweeper, with its own volume, and its token
// carries the sweeper's policy alone, whose text in Vault is exactly
// secrets.SweeperPolicyHCL: token accessors only, no KV, no sys.
func TestComposeVaultInitialisesAndTheWorkerLogsIn(t *testing.T) {
	p := loadProject(t)
	bin := filepath.Join(repoDir(t), "bin", "vault")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("bin/vault missing (make tools): %v", err)
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	require.NoError(t, err)
	_, tag, _ := strings.Cut(p.Services["vault"].Image, ":")
	require.Contains(t, string(out), "Vault v"+tag+",", "compose pins the Vault release tested here")

	boot := buildCmd(t, "bootstrap")
	root := t.TempDir()
	vol := func(name string) string { return filepath.Join(root, name) }
	// The certs job's command, with its volumes here.
	certsCmd := strings.ReplaceAll(strings.Join(p.Services["certs"].Command, " "), "/certs", vol("certs"))
	certsCmd = strings.ReplaceAll(certsCmd, "/ca/", vol("ca")+"/")
	certsCmd = strings.ReplaceAll(certsCmd, " /clients", " "+vol("clients"))
	args := strings.Fields(certsCmd)
	for i, a := range args {
		if strings.HasPrefix(a, "vault=") || strings.HasPrefix(a, "temporal=") || strings.HasPrefix(a, "openldap=") {
			// Every key owned by this test's uid: it runs all servers.
			args[i] = strings.SplitN(a, "=", 2)[0] + fmt.Sprintf("=%d", os.Getuid())
		}
	}
	out, err = exec.Command(boot, args...).CombinedOutput()
	require.NoError(t, err, "%s", out)

	hcl, err := os.ReadFile(filepath.Join(p.WorkingDir, "deploy", "vault", "vault.hcl"))
	require.NoError(t, err)
	port := freePort(t)
	conf := strings.NewReplacer("/vault/file", vol("vaultdata"), "/certs/", vol("certs")+"/",
		`"0.0.0.0:8200"`, fmt.Sprintf(`"127.0.0.1:%d"`, port)).Replace(string(hcl))
	require.NoError(t, os.MkdirAll(vol("config"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(vol("config"), "vault.hcl"), []byte(conf), 0o600))
	srv := exec.Command(bin, "server", "-config="+vol("config"))
	srv.Env = []string{"HOME=" + root, "VAULT_LOG_LEVEL=warn"}
	logf, err := os.Create(filepath.Join(root, "vault.log"))
	require.NoError(t, err)
	srv.Stdout, srv.Stderr = logf, logf
	require.NoError(t, srv.Start())
	t.Cleanup(func() { _ = srv.Process.Kill(); _ = srv.Wait(); logf.Close() })

	// The vault-init job: its command and environment, its volumes here.
	job := p.Services["vault-init"]
	mapPaths := strings.NewReplacer("/init", vol("vaultinit"), "/vault-worker", vol("vaultworker"), "/vault-sweeper", vol("vaultsweeper"),
		"/ca/ca.pem", filepath.Join(vol("ca"), "ca.pem"), "/app/policy/", filepath.Join(repoDir(t), "testdata", "policy")+"/",
		"https://vault:8200", fmt.Sprintf("https://127.0.0.1:%d", port))
	var jobArgs []string
	for _, a := range job.Command {
		if a == "65532" {
			a = fmt.Sprint(os.Getuid())
		}
		jobArgs = append(jobArgs, mapPaths.Replace(a))
	}
	cmd := exec.Command(boot, jobArgs...)
	for k, v := range job.Environment {
		cmd.Env = append(cmd.Env, k+"="+mapPaths.Replace(*v))
	}
	// The certificate names the service "vault"; 127.0.0.1 is in it too.
	out, err = cmd.CombinedOutput()
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(root, "vault.log"))
		t.Fatalf("vault-init: %v: %s\nvault log: %s", err, out, log)
	}
	_, err = os.Stat(filepath.Join(vol("vaultinit"), "init.json"))
	require.NoError(t, err, "the init material is in the job's volume")
	entries, err := os.ReadDir(vol("vaultworker"))
	require.NoError(t, err)
	require.Len(t, entries, 2, "the worker's volume holds role-id and secret-id only")

	// The worker, configured as compose configures it.
	wenv := p.Services["worker"].Environment
	get := func(k string) string {
		v, ok := wenv[k]
		if !ok || v == nil {
			return ""
		}
		return strings.NewReplacer("/vault-worker/", vol("vaultworker")+"/", "https://vault:8200", fmt.Sprintf("https://127.0.0.1:%d", port)).Replace(*v)
	}
	cfg, err := config.Load(get)
	require.NoError(t, err)
	token, secretID, err := cfg.VaultCredentials()
	require.NoError(t, err)
	require.Empty(t, token, "no token: AppRole")
	roleID := cfg.VaultRoleID
	t.Setenv("VAULT_CACERT", strings.Replace(get("VAULT_CACERT"), "/ca/ca.pem", filepath.Join(vol("ca"), "ca.pem"), 1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// As internal/run builds the worker's Vault connector.
	_, err = secrets.New(ctx, secrets.Config{Addr: cfg.VaultAddr, RoleID: roleID, SecretID: secretID,
		KVMount: cfg.VaultKVMount, PasswordPolicy: cfg.VaultPasswordPolicy})
	require.NoError(t, err, "the worker logs in with AppRole over TLS")

	// Without the deployment CA the worker does not trust the server.
	t.Setenv("VAULT_CACERT", "")
	_, err = secrets.New(ctx, secrets.Config{Addr: cfg.VaultAddr, RoleID: roleID, SecretID: secretID})
	require.Error(t, err)

	// The sweeper, configured as compose configures it.
	entries, err = os.ReadDir(vol("vaultsweeper"))
	require.NoError(t, err)
	require.Len(t, entries, 2, "the sweeper's volume holds role-id and secret-id only")
	senv := p.Services["sweeper"].Environment
	sget := func(k string) string {
		v, ok := senv[k]
		if !ok || v == nil {
			return ""
		}
		return strings.NewReplacer("/vault-sweeper/", vol("vaultsweeper")+"/", "https://vault:8200", fmt.Sprintf("https://127.0.0.1:%d", port)).Replace(*v)
	}
	scfg, err := config.Load(sget)
	require.NoError(t, err)
	require.NoError(t, scfg.Require(config.Sweeper))
	stoken, ssecretID, err := scfg.VaultCredentials()
	require.NoError(t, err)
	require.Empty(t, stoken)
	require.NotEqual(t, secretID, ssecretID, "its own SecretID, not the worker's")
	sroleID, err := os.ReadFile(filepath.Join(vol("vaultsweeper"), "role-id"))
	require.NoError(t, err)
	require.Equal(t, scfg.VaultRoleID, strings.TrimSpace(string(sroleID)), "compose names the RoleID the job fixed")
	t.Setenv("VAULT_CACERT", strings.Replace(sget("VAULT_CACERT"), "/ca/ca.pem", filepath.Join(vol("ca"), "ca.pem"), 1))
	_, err = secrets.New(ctx, secrets.Config{Addr: scfg.VaultAddr, RoleID: scfg.VaultRoleID, SecretID: ssecretID, KVMount: scfg.VaultKVMount})
	require.NoError(t, err, "the sweeper logs in with its AppRole over TLS")
	// Its token and the policy behind it, as Vault sees them.
	vcfg := vault.DefaultConfig() // the deployment CA from VAULT_CACERT
	require.NoError(t, vcfg.Error)
	vcfg.Address = scfg.VaultAddr
	vc, err := vault.NewClient(vcfg)
	require.NoError(t, err)
	vc.ClearToken()
	login, err := vc.Logical().WriteWithContext(ctx, "auth/approle/login", map[string]any{"role_id": scfg.VaultRoleID, "secret_id": ssecretID})
	require.NoError(t, err)
	require.ElementsMatch(t, []string{secrets.SweeperPolicyName}, login.Auth.Policies, "the sweeper's token carries its policy only, not even default")
	require.ElementsMatch(t, []string{secrets.SweeperPolicyName}, login.Auth.TokenPolicies)
	require.Empty(t, login.Auth.IdentityPolicies)
	var keys struct {
		RootToken string `json:"root_token"`
	}
	initJSON, err := os.ReadFile(filepath.Join(vol("vaultinit"), "init.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(initJSON, &keys))
	vc.SetToken(keys.RootToken)
	installed, err := vc.Sys().GetPolicyWithContext(ctx, secrets.SweeperPolicyName)
	require.NoError(t, err)
	require.Equal(t, secrets.SweeperPolicyHCL(secrets.Config{KVMount: cfg.VaultKVMount}), installed, "the job installs the code's sweeper policy, verbatim")
	paths := regexp.MustCompile(`(?m)^\s*path\s+"([^"]+)"`).FindAllStringSubmatch(installed, -1)
	require.NotEmpty(t, paths)
	for _, m := range paths {
		require.Contains(t, []string{"auth/token/accessors", "auth/token/accessors/", "auth/token/lookup-accessor", "auth/token/revoke-accessor",
			"auth/token/renew-self", "auth/token/lookup-self",
			cfg.VaultKVMount + "/data/" + secrets.DefaultPathPrefix + "/+/initial-credential-handovers-index",
			cfg.VaultKVMount + "/data/" + secrets.DefaultPathPrefix + "/+/secret-id-handovers-index"},
			m[1], "the sweeper's policy grants %s", m[1])
	}
	// Vault's own answer for the paths a compromised sweeper would want.
	for path, want := range map[string][]string{
		"auth/token/accessors":                         {"list", "sudo"},
		"auth/token/revoke-accessor":                   {"update"},
		"auth/token/lookup-accessor":                   {"update"},
		cfg.VaultKVMount + "/data/joinery/someone":     {"deny"},
		cfg.VaultKVMount + "/metadata/joinery/someone": {"deny"},
		"sys/policies/acl/joinery-sweeper":             {"deny"},
		"sys/auth":                                     {"deny"},
		"auth/approle/role/joinery-worker/secret-id":   {"deny"},
		"auth/approle/role/joinery-sweeper/secret-id":  {"deny"},
		"auth/token/create":                            {"deny"},
	} {
		caps, err := vc.Sys().CapabilitiesWithContext(ctx, login.Auth.ClientToken, path)
		require.NoError(t, err, path)
		require.ElementsMatch(t, want, caps, "sweeper on %s", path)
	}
}
