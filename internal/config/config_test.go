package config

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaultsPointAtTheDevStack(t *testing.T) {
	c, err := Load(env(nil))
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:7233", c.TemporalAddress)
	require.Equal(t, "ldap://127.0.0.1:3389", c.LDAPURL)
	require.Equal(t, "joinery-joiners", c.TaskQueue)
	require.Equal(t, "openldap", c.LDAPProfile)
	require.Positive(t, c.LDAPTimeout)
}

func TestBadValuesAreNamedAndAllReported(t *testing.T) {
	_, err := Load(env(map[string]string{
		"JOINERY_LDAP_STARTTLS": "maybe",
		"JOINERY_LDAP_TIMEOUT":  "-3s",
		"JOINERY_LDAP_PROFILE":  "novell",
	}))
	require.Error(t, err)
	for _, name := range []string{"JOINERY_LDAP_STARTTLS", "JOINERY_LDAP_TIMEOUT", "JOINERY_LDAP_PROFILE"} {
		require.Contains(t, err.Error(), name)
	}
}

func TestEveryVariableIsDocumentedAndUnique(t *testing.T) {
	seen := map[string]bool{}
	for _, v := range Vars() {
		require.NotEmpty(t, v.Doc, v.Name)
		require.False(t, seen[v.Name], "duplicate %s", v.Name)
		seen[v.Name] = true
	}
}

func TestVaultCredentials(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	require.NoError(t, os.WriteFile(tokenFile, []byte("s.abc\n"), 0o600))
	c := Config{VaultTokenFile: tokenFile}
	tok, sid, err := c.VaultCredentials()
	require.NoError(t, err)
	require.Equal(t, "s.abc", tok)
	require.Empty(t, sid)

	c = Config{VaultToken: "direct", VaultTokenFile: tokenFile}
	tok, _, err = c.VaultCredentials()
	require.NoError(t, err)
	require.Equal(t, "direct", tok, "the variable wins over the file")

	c = Config{VaultRoleID: "role"}
	_, _, err = c.VaultCredentials()
	require.ErrorContains(t, err, "no SecretID")

	sidFile := filepath.Join(dir, "sid")
	require.NoError(t, os.WriteFile(sidFile, []byte("sid-1\n"), 0o600))
	c = Config{VaultRoleID: "role", VaultSecretIDFile: sidFile, VaultTokenFile: tokenFile}
	tok, sid, err = c.VaultCredentials()
	require.NoError(t, err)
	require.Empty(t, tok, "AppRole takes precedence over any token")
	require.Equal(t, "sid-1", sid)

	c = Config{VaultTokenFile: filepath.Join(dir, "missing")}
	_, _, err = c.VaultCredentials()
	require.ErrorContains(t, err, "JOINERY_VAULT_TOKEN_FILE")
}

func TestSecretsDefaultOnlyInDevMode(t *testing.T) {
	secrets := map[string]func(Config) string{
		"JOINERY_LDAP_BIND_PASSWORD":  func(c Config) string { return c.LDAPBindPassword },
		"JOINERY_HRIS_API_KEY":        func(c Config) string { return c.HRISAPIKey },
		"JOINERY_HRIS_WEBHOOK_SECRET": func(c Config) string { return c.HRISWebhookSecret },
		"JOINERY_INTAKE_TOKEN":        func(c Config) string { return c.IntakeToken },
	}
	prod, err := Load(env(nil))
	require.NoError(t, err)
	require.False(t, prod.DevMode, "development mode is off unless asked for")
	dev, err := Load(env(map[string]string{DevModeVar: "true"}))
	require.NoError(t, err)
	require.True(t, dev.DevMode)
	for name, get := range secrets {
		require.Empty(t, get(prod), "%s must have no default outside development mode", name)
		require.NotEmpty(t, get(dev), "%s defaults to the dev stack's value in development mode", name)
	}
	require.Empty(t, prod.VaultTokenFile, "no Vault token file by default")
	require.Empty(t, dev.VaultTokenFile, "not even the dev stack's root token in development mode")

	for _, v := range Vars() {
		if _, ok := secrets[v.Name]; ok {
			require.Empty(t, v.Default, "%s: a secret's default belongs in DevDefault", v.Name)
		}
	}
	_, err = Load(env(map[string]string{DevModeVar: "sometimes"}))
	require.ErrorContains(t, err, DevModeVar)
}

func TestRequireNamesWhatIsMissing(t *testing.T) {
	c, err := Load(env(nil))
	require.NoError(t, err)
	err = c.Require(Worker)
	require.Error(t, err)
	for _, want := range []string{"worker", "JOINERY_LDAP_BIND_PASSWORD", "JOINERY_HRIS_API_KEY", "JOINERY_PSEUDONYM_KEY", "JOINERY_VAULT_ROLE_ID", DevModeVar} {
		require.ErrorContains(t, err, want)
	}
	err = c.Require(Serve)
	require.Error(t, err)
	for _, want := range []string{"starter serve", "JOINERY_INTAKE_TOKEN", "JOINERY_HRIS_WEBHOOK_SECRET", "JOINERY_HRIS_API_KEY"} {
		require.ErrorContains(t, err, want)
	}
	require.NotContains(t, err.Error(), "JOINERY_LDAP_BIND_PASSWORD", "serve does not need the directory password")

	sid := filepath.Join(t.TempDir(), "sid")
	require.NoError(t, os.WriteFile(sid, []byte("sid\n"), 0o600))
	ok := env(map[string]string{
		"JOINERY_LDAP_BIND_PASSWORD": "p", "JOINERY_HRIS_API_KEY": "k", "JOINERY_VAULT_ROLE_ID": "r",
		"JOINERY_VAULT_SECRET_ID_FILE": sid, "JOINERY_INTAKE_TOKEN": "t", "JOINERY_HRIS_WEBHOOK_SECRET": "w",
		"JOINERY_PSEUDONYM_KEY": "a-pseudonym-key-of-at-least-32-bytes",
	})
	_, err = LoadFor(Worker, ok)
	require.NoError(t, err)
	_, err = LoadFor(Serve, ok)
	require.NoError(t, err)
	_, err = LoadFor(Worker, env(map[string]string{DevModeVar: "true"}))
	require.ErrorContains(t, err, "no Vault credentials", "development mode does not hand out Vault credentials")
	require.NotContains(t, err.Error(), "JOINERY_LDAP_BIND_PASSWORD")
}
