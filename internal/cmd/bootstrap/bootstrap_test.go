package main

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"
	"github.com/stretchr/testify/require"

	"github.com/joinery/joinery/connectors/secrets"
	"github.com/joinery/joinery/internal/codec"
	"github.com/joinery/joinery/internal/stack"
)

func uidFor() string { return fmt.Sprint(os.Getuid()) }

// Certificates: one CA, one leaf per service for its name, each key
// readable by its owner only; a second run keeps them; a missing key makes
// the job issue everything again under a new CA.
func TestCertsIssueOncePerServiceAndRenewTogether(t *testing.T) {
	dir := t.TempDir()
	pub := filepath.Join(t.TempDir(), "ca.pem")
	args := []string{"-dir", dir, "-ca-out", pub, "-for", "temporal=" + uidFor(), "-for", "vault=" + uidFor() + ":" + fmt.Sprint(os.Getgid())}
	require.NoError(t, runCerts(args))
	ca, err := readCert(filepath.Join(dir, "ca.pem"))
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	for _, n := range []string{"temporal", "vault"} {
		c, err := readCert(filepath.Join(dir, n, "cert.pem"))
		require.NoError(t, err)
		_, err = c.Verify(x509.VerifyOptions{DNSName: n, Roots: pool})
		require.NoError(t, err, n)
		_, err = c.Verify(x509.VerifyOptions{DNSName: "other", Roots: pool})
		require.Error(t, err, "%s's certificate is for its name only", n)
		st, err := os.Stat(filepath.Join(dir, n, "key.pem"))
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o400), st.Mode().Perm(), "%s key", n)
		st, err = os.Stat(filepath.Join(dir, n))
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o700), st.Mode().Perm(), "%s dir", n)
	}
	// The client copy is the CA certificate and nothing else.
	a, _ := os.ReadFile(filepath.Join(dir, "ca.pem"))
	b, _ := os.ReadFile(pub)
	require.Equal(t, a, b)
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	require.Equal(t, []string{"ca.pem", "temporal", "vault"}, names, "no CA key is kept")

	before, _ := os.ReadFile(filepath.Join(dir, "vault", "cert.pem"))
	require.NoError(t, runCerts(args))
	after, _ := os.ReadFile(filepath.Join(dir, "vault", "cert.pem"))
	require.Equal(t, before, after, "current certificates are kept")

	require.NoError(t, os.Remove(filepath.Join(dir, "temporal", "key.pem")))
	require.NoError(t, runCerts(args))
	after, _ = os.ReadFile(filepath.Join(dir, "vault", "cert.pem"))
	require.NotEqual(t, before, after, "all are issued again together")
	ca2, err := readCert(filepath.Join(dir, "ca.pem"))
	require.NoError(t, err)
	require.False(t, ca.Equal(ca2), "under a new CA")
	b, _ = os.ReadFile(pub)
	a, _ = os.ReadFile(filepath.Join(dir, "ca.pem"))
	require.Equal(t, a, b, "the client copy follows")

	// Bad input: a clear error, nothing written.
	for _, bad := range [][]string{{"-dir", dir}, {"-for", "x=1"}, {"-dir", dir, "-for", "../x=1"}, {"-dir", dir, "-for", "x=root"}} {
		require.Error(t, runCerts(bad), "%v", bad)
	}
	_, err = os.Stat(filepath.Join(dir, "x"))
	require.True(t, os.IsNotExist(err))
}

// Keys: the codec key and the inbox's signing key are made once and never
// replaced; the signing key must sit apart from what the worker mounts.
func TestKeysAreMadeOnceAndKeptApart(t *testing.T) {
	keys, inbox, audit := t.TempDir(), t.TempDir(), filepath.Join(t.TempDir(), "audit")
	args := []string{"-codec", filepath.Join(keys, "codec.keys"), "-decision-key", filepath.Join(inbox, "decision-ed25519.pem"),
		"-decision-public", filepath.Join(keys, "decision-public.keys"), "-owner", uidFor(), "-mkdir", audit}
	require.NoError(t, runKeys(args))
	first, err := os.ReadFile(filepath.Join(keys, "codec.keys"))
	require.NoError(t, err)
	_, err = codec.LoadKeyFile(filepath.Join(keys, "codec.keys"))
	require.NoError(t, err, "the codec accepts the key file (mode, format)")
	require.NoError(t, runKeys(args))
	again, _ := os.ReadFile(filepath.Join(keys, "codec.keys"))
	require.Equal(t, first, again, "a second run keeps the codec key")
	st, err := os.Stat(filepath.Join(inbox, "decision-ed25519.pem"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o400), st.Mode().Perm())
	st, err = os.Stat(audit)
	require.NoError(t, err)
	require.True(t, st.IsDir())

	// The private signing key beside the public keys would put it in the
	// worker's volume.
	err = runKeys([]string{"-codec", filepath.Join(keys, "codec.keys"), "-decision-key", filepath.Join(keys, "decision.pem"),
		"-decision-public", filepath.Join(keys, "decision-public.keys")})
	require.ErrorContains(t, err, "directory of its own")
	_, err = os.Stat(filepath.Join(keys, "decision.pem"))
	require.True(t, os.IsNotExist(err))
}

// privateVault starts a Vault server of this test's own, with TLS from the
// certs step, on a free port; it is stopped by PID at cleanup.
func privateVault(t *testing.T) (addr, caFile string, stop func()) {
	t.Helper()
	repo, err := stack.FindRepoDir()
	require.NoError(t, err)
	bin := filepath.Join(repo, "bin", "vault")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("bin/vault missing (make tools): %v", err)
	}
	certs := t.TempDir()
	require.NoError(t, runCerts([]string{"-dir", certs, "-for", "vault=" + uidFor()}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	dir := t.TempDir()
	hcl := fmt.Sprintf(`storage "file" { path = %q }
listener "tcp" {
  address = "127.0.0.1:%d"
  tls_cert_file = %q
  tls_key_file = %q
}
api_addr = "https://127.0.0.1:%d"
disable_mlock = true
`, filepath.Join(dir, "data"), port, filepath.Join(certs, "vault", "cert.pem"), filepath.Join(certs, "vault", "key.pem"), port)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.hcl"), []byte(hcl), 0o600))
	logf, err := os.Create(filepath.Join(dir, "vault.log"))
	require.NoError(t, err)
	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "server", "-config="+filepath.Join(dir, "config.hcl"))
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.Env = []string{"VAULT_LOG_LEVEL=warn", "HOME=" + dir}
		require.NoError(t, cmd.Start())
		return cmd
	}
	cmd := start()
	stopped := false
	stop = func() {
		if !stopped {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			stopped = true
		}
	}
	t.Cleanup(func() { stop(); logf.Close() })
	return fmt.Sprintf("https://127.0.0.1:%d", port), filepath.Join(certs, "ca.pem"), stop
}

// The Vault step, against a real Vault over TLS: the init material lands in
// the init directory only, the worker's directory gets a RoleID and a
// SecretID that log in to exactly the worker's policy, which cannot write
// policies; a second run keeps the SecretID; plain http and a shared
// directory are refused.
func TestVaultBootstrapKeepsInitMaterialFromTheWorker(t *testing.T) {
	addr, ca, _ := privateVault(t)
	t.Setenv("VAULT_ADDR", addr)
	t.Setenv("VAULT_CACERT", ca)
	repo, err := stack.FindRepoDir()
	require.NoError(t, err)
	initDir, workerDir := t.TempDir(), filepath.Join(t.TempDir(), "worker")
	args := []string{"-init-dir", initDir, "-worker-dir", workerDir, "-policy", filepath.Join(repo, "testdata", "policy", "default.yaml"), "-owner", uidFor()}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	require.NoError(t, runVault(ctx, args))

	var keys initMaterial
	data, err := os.ReadFile(filepath.Join(initDir, "init.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(data, &keys))
	require.NotEmpty(t, keys.RootToken)
	st, _ := os.Stat(filepath.Join(initDir, "init.json"))
	require.Equal(t, os.FileMode(0o400), st.Mode().Perm())

	entries, err := os.ReadDir(workerDir)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	require.Equal(t, []string{"role-id", "secret-id"}, names, "the worker's directory holds its AppRole credentials, nothing else")
	for _, n := range names {
		b, _ := os.ReadFile(filepath.Join(workerDir, n))
		require.NotContains(t, string(b), keys.RootToken)
		require.NotContains(t, string(b), keys.UnsealKey)
	}
	roleID, _ := os.ReadFile(filepath.Join(workerDir, "role-id"))
	secretID, _ := os.ReadFile(filepath.Join(workerDir, "secret-id"))
	require.Equal(t, WorkerRoleID, strings.TrimSpace(string(roleID)))

	cfg := vault.DefaultConfig()
	require.NoError(t, cfg.Error)
	cli, err := vault.NewClient(cfg)
	require.NoError(t, err)
	cli.ClearToken()
	login, err := cli.Logical().Write("auth/approle/login", map[string]any{
		"role_id": strings.TrimSpace(string(roleID)), "secret_id": strings.TrimSpace(string(secretID))})
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"default", "joinery-worker"}, login.Auth.Policies)
	// The worker's identity cannot make itself more.
	wc, err := cli.Clone()
	require.NoError(t, err)
	wc.SetToken(login.Auth.ClientToken)
	_, err = wc.Logical().Write("sys/policies/acl/joinery-nhi-x", map[string]any{"policy": `path "*" { capabilities = ["sudo"] }`})
	requireForbidden(t, err)
	_, err = wc.Logical().Read("sys/auth")
	requireForbidden(t, err)

	// A second run (the job runs at every `up`) keeps the SecretID the
	// worker holds.
	require.NoError(t, runVault(ctx, args))
	again, _ := os.ReadFile(filepath.Join(workerDir, "secret-id"))
	require.Equal(t, secretID, again)

	// Refusals: plain http (the unseal key would cross in clear), and the
	// init material in the worker's directory.
	t.Setenv("VAULT_ADDR", strings.Replace(addr, "https://", "http://", 1))
	require.ErrorContains(t, runVault(ctx, args), "is not https")
	t.Setenv("VAULT_ADDR", addr)
	require.ErrorContains(t, runVault(ctx, []string{"-init-dir", workerDir, "-worker-dir", workerDir}), "must not share a directory")
}

// After a restart Vault is sealed; the job unseals it with the kept key
// and leaves the worker's credentials working.
func TestVaultBootstrapUnsealsAfterRestart(t *testing.T) {
	addr, ca, _ := privateVault(t)
	t.Setenv("VAULT_ADDR", addr)
	t.Setenv("VAULT_CACERT", ca)
	repo, err := stack.FindRepoDir()
	require.NoError(t, err)
	initDir, workerDir := t.TempDir(), t.TempDir()
	args := []string{"-init-dir", initDir, "-worker-dir", workerDir, "-policy", filepath.Join(repo, "testdata", "policy", "default.yaml")}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	require.NoError(t, runVault(ctx, args))
	// Seal it (what a restart does) and run the job again.
	var keys initMaterial
	data, _ := os.ReadFile(filepath.Join(initDir, "init.json"))
	require.NoError(t, json.Unmarshal(data, &keys))
	cfg := vault.DefaultConfig()
	cli, err := vault.NewClient(cfg)
	require.NoError(t, err)
	cli.SetToken(keys.RootToken)
	require.NoError(t, cli.Sys().Seal())
	st, err := cli.Sys().SealStatus()
	require.NoError(t, err)
	require.True(t, st.Sealed)
	require.NoError(t, runVault(ctx, args))
	st, err = cli.Sys().SealStatus()
	require.NoError(t, err)
	require.False(t, st.Sealed)
	// With the init material gone the job says so instead of initialising
	// again (which Vault would refuse anyway) or carrying on.
	require.NoError(t, os.Rename(filepath.Join(initDir, "init.json"), filepath.Join(t.TempDir(), "kept.json")))
	require.ErrorContains(t, runVault(ctx, args), "is initialised but")
	_, err = os.Stat(filepath.Join(initDir, "init.json"))
	require.True(t, os.IsNotExist(err), "nothing new written")
}

func requireForbidden(t *testing.T, err error) {
	t.Helper()
	require.Error(t, err)
	var re *vault.ResponseError
	require.ErrorAs(t, err, &re)
	require.Equal(t, http.StatusForbidden, re.StatusCode, "%v", err)
}

// The sweeper's identity, against a real Vault over TLS. The adversaries:
// a compromised worker, which must not be able to become the sweeper (its
// token-store sudo would let it list and revoke every token), and a
// compromised sweeper, which must get nothing beyond the token store's
// accessor operations (no KV, no policies, no AppRole, no new tokens).
func TestVaultBootstrapInstallsTheSweeperApart(t *testing.T) {
	addr, ca, _ := privateVault(t)
	t.Setenv("VAULT_ADDR", addr)
	t.Setenv("VAULT_CACERT", ca)
	repo, err := stack.FindRepoDir()
	require.NoError(t, err)
	initDir, workerDir, sweeperDir := t.TempDir(), filepath.Join(t.TempDir(), "worker"), filepath.Join(t.TempDir(), "sweeper")
	args := []string{"-init-dir", initDir, "-worker-dir", workerDir, "-sweeper-dir", sweeperDir,
		"-policy", filepath.Join(repo, "testdata", "policy", "default.yaml"), "-owner", uidFor()}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	require.NoError(t, runVault(ctx, args))

	// The sweeper's directory: its RoleID and SecretID, owner-only.
	entries, err := os.ReadDir(sweeperDir)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	require.Equal(t, []string{"role-id", "secret-id"}, names)
	st, err := os.Stat(sweeperDir)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), st.Mode().Perm())
	for _, n := range names {
		st, err := os.Stat(filepath.Join(sweeperDir, n))
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o400), st.Mode().Perm(), n)
	}
	read := func(dir, name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		require.NoError(t, err)
		return strings.TrimSpace(string(b))
	}
	require.Equal(t, SweeperRoleID, read(sweeperDir, "role-id"))
	sweeperSID := read(sweeperDir, "secret-id")
	require.NotEqual(t, read(workerDir, "secret-id"), sweeperSID)

	var keys initMaterial
	data, err := os.ReadFile(filepath.Join(initDir, "init.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(data, &keys))
	cfg := vault.DefaultConfig()
	require.NoError(t, cfg.Error)
	root, err := vault.NewClient(cfg)
	require.NoError(t, err)
	root.SetToken(keys.RootToken)
	require.NotContains(t, sweeperSID, keys.RootToken)

	// What Vault holds is exactly the code's policy text, and the role
	// carries that policy alone with short tokens.
	pol, err := root.Sys().GetPolicyWithContext(ctx, secrets.SweeperPolicyName)
	require.NoError(t, err)
	require.Equal(t, secrets.SweeperPolicyHCL(secrets.Config{}), pol)
	role, err := root.Logical().ReadWithContext(ctx, "auth/approle/role/"+SweeperAppRole)
	require.NoError(t, err)
	require.NotNil(t, role)
	require.Equal(t, []any{secrets.SweeperPolicyName}, role.Data["token_policies"])
	require.Equal(t, fmt.Sprint(int(sweeperTokenTTL/time.Second)), fmt.Sprint(role.Data["token_ttl"]))
	require.Equal(t, fmt.Sprint(int(sweeperTokenMaxTTL/time.Second)), fmt.Sprint(role.Data["token_max_ttl"]))

	login := func(roleID, secretID string) (*vault.Client, *vault.SecretAuth) {
		t.Helper()
		c, err := root.Clone()
		require.NoError(t, err)
		c.ClearToken()
		s, err := c.Logical().WriteWithContext(ctx, "auth/approle/login", map[string]any{"role_id": roleID, "secret_id": secretID})
		require.NoError(t, err)
		c.SetToken(s.Auth.ClientToken)
		return c, s.Auth
	}
	sweeper, sauth := login(read(sweeperDir, "role-id"), sweeperSID)
	// default stays: it is what lets the client renew and look up its own
	// token (auth/token/renew-self, lookup-self).
	require.ElementsMatch(t, []string{secrets.SweeperPolicyName}, sauth.Policies)
	require.Equal(t, int(sweeperTokenTTL/time.Second), sauth.LeaseDuration)
	worker, wauth := login(read(workerDir, "role-id"), read(workerDir, "secret-id"))
	require.ElementsMatch(t, []string{"default", secrets.WorkerPolicyName}, wauth.Policies)

	// The sweeper can do its job: list accessors (sudo), look one up and
	// revoke a token by its accessor.
	victim, err := root.Auth().Token().CreateWithContext(ctx, &vault.TokenCreateRequest{Policies: []string{"default"}, TTL: "10m"})
	require.NoError(t, err)
	list, err := sweeper.Logical().ListWithContext(ctx, "auth/token/accessors")
	require.NoError(t, err)
	require.NotNil(t, list)
	require.Contains(t, list.Data["keys"], victim.Auth.Accessor)
	_, err = sweeper.Logical().WriteWithContext(ctx, "auth/token/lookup-accessor", map[string]any{"accessor": victim.Auth.Accessor})
	require.NoError(t, err)
	_, err = sweeper.Logical().WriteWithContext(ctx, "auth/token/revoke-accessor", map[string]any{"accessor": victim.Auth.Accessor})
	require.NoError(t, err)
	_, err = root.Auth().Token().LookupWithContext(ctx, victim.Auth.ClientToken)
	require.Error(t, err, "the token revoked by accessor is gone")

	// ... and nothing else.
	_, err = sweeper.Logical().ReadWithContext(ctx, "secret/data/joinery/anyone")
	requireForbidden(t, err)
	_, err = sweeper.Logical().ListWithContext(ctx, "secret/metadata/joinery")
	requireForbidden(t, err)
	_, err = sweeper.Logical().WriteWithContext(ctx, "sys/policies/acl/joinery-nhi-x", map[string]any{"policy": `path "*" { capabilities = ["sudo"] }`})
	requireForbidden(t, err)
	_, err = sweeper.Logical().ReadWithContext(ctx, "sys/auth")
	requireForbidden(t, err)
	for _, r := range []string{stack.WorkerAppRole, SweeperAppRole, "joinery-nhi-x"} {
		_, err = sweeper.Logical().WriteWithContext(ctx, "auth/approle/role/"+r+"/secret-id", nil)
		requireForbidden(t, err)
	}
	_, err = sweeper.Auth().Token().CreateWithContext(ctx, &vault.TokenCreateRequest{Policies: []string{"default"}})
	requireForbidden(t, err)

	// The worker cannot become the sweeper or do what it does.
	_, err = worker.Logical().WriteWithContext(ctx, "auth/approle/role/"+SweeperAppRole+"/secret-id", nil)
	requireForbidden(t, err)
	_, err = worker.Logical().ReadWithContext(ctx, "auth/approle/role/"+SweeperAppRole+"/role-id")
	requireForbidden(t, err)
	_, err = worker.Logical().WriteWithContext(ctx, "auth/approle/role/"+SweeperAppRole, map[string]any{"token_policies": []string{"root"}})
	requireForbidden(t, err)
	_, err = worker.Logical().WriteWithContext(ctx, "sys/policies/acl/"+secrets.SweeperPolicyName, map[string]any{"policy": `path "*" { capabilities = ["sudo"] }`})
	requireForbidden(t, err)
	_, err = worker.Logical().ListWithContext(ctx, "auth/token/accessors")
	requireForbidden(t, err)
	_, err = worker.Logical().WriteWithContext(ctx, "auth/token/revoke-accessor", map[string]any{"accessor": sauth.Accessor})
	requireForbidden(t, err)

	// A second run keeps the sweeper's SecretID; one Vault no longer knows
	// (destroyed by an operator) is replaced.
	require.NoError(t, runVault(ctx, args))
	require.Equal(t, sweeperSID, read(sweeperDir, "secret-id"))
	_, err = root.Logical().WriteWithContext(ctx, "auth/approle/role/"+SweeperAppRole+"/secret-id/destroy", map[string]any{"secret_id": sweeperSID})
	require.NoError(t, err)
	require.NoError(t, runVault(ctx, args))
	fresh := read(sweeperDir, "secret-id")
	require.NotEqual(t, sweeperSID, fresh)
	_, again := login(SweeperRoleID, fresh)
	require.ElementsMatch(t, []string{secrets.SweeperPolicyName}, again.Policies)

	// A run without -sweeper-dir leaves the worker alone and installs
	// nothing new for the sweeper.
	require.NoError(t, runVault(ctx, []string{"-init-dir", initDir, "-worker-dir", workerDir,
		"-policy", filepath.Join(repo, "testdata", "policy", "default.yaml"), "-owner", uidFor()}))
	require.Equal(t, fresh, read(sweeperDir, "secret-id"))
}

// Directories that share files are refused before anything happens: no
// directory is created and Vault is not contacted (VAULT_ADDR is unset).
func TestVaultBootstrapRefusesSharedDirectories(t *testing.T) {
	t.Setenv("VAULT_ADDR", "")
	base := t.TempDir()
	d := func(p string) string { return filepath.Join(base, p) }
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-init-dir", d("a"), "-worker-dir", d("w"), "-sweeper-dir", d("w")}, "must not share a directory"},
		{[]string{"-init-dir", d("a"), "-worker-dir", d("w"), "-sweeper-dir", d("w/s")}, "must not share a directory"},
		{[]string{"-init-dir", d("a"), "-worker-dir", d("w"), "-sweeper-dir", d("a/")}, "must not share a directory"},
		{[]string{"-init-dir", d("a/w"), "-worker-dir", d("w"), "-sweeper-dir", d("a")}, "must not share a directory"},
		{[]string{"-init-dir", d("a"), "-worker-dir", d("a/w")}, "must not share a directory"},
		{[]string{"-init-dir", d("a"), "-worker-dir", d("a/../a")}, "must not share a directory"},
		{[]string{"-init-dir", d("a"), "-sweeper-dir", d("s")}, "-worker-dir are required"},
		{[]string{"-init-dir", d("a"), "-worker-dir", d("w"), d("s")}, "unexpected arguments"},
	} {
		err := runVault(context.Background(), tc.args)
		require.ErrorContains(t, err, tc.want, "%v", tc.args)
	}
	left, err := os.ReadDir(base)
	require.NoError(t, err)
	require.Empty(t, left, "nothing created")
	// A relative path names the same directory as its absolute form.
	t.Chdir(base)
	require.ErrorContains(t, separateDirs(map[string]string{"a": "w", "b": d("w/s")}), "must not share a directory")
	// Siblings with a common name prefix are not nested.
	require.NoError(t, separateDirs(map[string]string{"a": d("w"), "b": d("w2"), "c": d("ww/x"), "unused": ""}))
	// Without VAULT_ADDR, separate directories get as far as asking for it.
	require.ErrorContains(t, runVault(context.Background(), []string{"-init-dir", d("a"), "-worker-dir", d("w"), "-sweeper-dir", d("s")}), "VAULT_ADDR is required")
}
