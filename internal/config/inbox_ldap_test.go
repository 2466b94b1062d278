package config

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// The inbox's own directory identity: the dev stack's DN by default, a
// password only in development mode, and never the worker's account.
func TestInboxDirectoryIdentity(t *testing.T) {
	c, err := Load(env(nil))
	require.NoError(t, err)
	require.Equal(t, "cn=joinery-inbox,ou=system,dc=joinery,dc=test", c.InboxLDAPBindDN)
	require.Empty(t, c.InboxLDAPBindPassword, "no default for a secret outside development mode")
	err = c.Require(Inbox)
	require.ErrorContains(t, err, "JOINERY_INBOX_LDAP_BIND_PASSWORD")
	require.ErrorContains(t, err, DevModeVar)
	require.NotContains(t, err.Error(), "JOINERY_LDAP_BIND_PASSWORD", "the worker's password is not what the inbox needs")

	c, err = Load(env(map[string]string{DevModeVar: "true"}))
	require.NoError(t, err)
	require.Equal(t, "dev-joinery-inbox", c.InboxLDAPBindPassword)
	require.NoError(t, c.Require(Inbox))
	require.NotEqual(t, c.LDAPBindPassword, c.InboxLDAPBindPassword)

	// An operator who points the inbox at the worker's account is stopped
	// at start, whatever the spelling of the DN.
	for _, dn := range []string{"cn=joinery-worker,ou=system,dc=joinery,dc=test", "CN=Joinery-Worker, OU=system, DC=joinery, DC=test"} {
		c, err = Load(env(map[string]string{"JOINERY_INBOX_LDAP_BIND_DN": dn, "JOINERY_INBOX_LDAP_BIND_PASSWORD": "p"}))
		require.NoError(t, err)
		err = c.Require(Inbox)
		require.ErrorContains(t, err, "JOINERY_INBOX_LDAP_BIND_DN is the worker's account", dn)
		require.NotContains(t, err.Error(), "=p", "no secret in the error")
	}
	// An empty DN is named too.
	c, err = Load(env(map[string]string{"JOINERY_INBOX_LDAP_BIND_PASSWORD": "p"}))
	require.NoError(t, err)
	c.InboxLDAPBindDN = ""
	require.ErrorContains(t, c.Require(Inbox), "JOINERY_INBOX_LDAP_BIND_DN")

	// The password is a secret: never printed.
	for _, v := range Vars() {
		if v.Name == "JOINERY_INBOX_LDAP_BIND_PASSWORD" {
			require.True(t, v.Secret)
			require.Empty(t, v.Default)
		}
	}
}
