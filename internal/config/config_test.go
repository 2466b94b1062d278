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
