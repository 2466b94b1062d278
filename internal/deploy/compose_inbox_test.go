package deploy

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/stretchr/testify/require"

	"github.com/joinery/joinery/connectors/directory"
	"github.com/joinery/joinery/internal/config"
	"github.com/joinery/joinery/internal/run"
	"github.com/joinery/joinery/internal/stack"
)

// inboxEnvOf is a compose service's environment as config.Load reads it.
func inboxEnvOf(t *testing.T, svc map[string]*string) func(string) string {
	t.Helper()
	return func(k string) string {
		if v, ok := svc[k]; ok && v != nil {
			return *v
		}
		return ""
	}
}

// The starter (intake and approval inbox) is the service people's browsers
// reach. Whoever takes it over holds what its environment holds, so it gets
// the inbox's read-only directory identity and not the worker's password
// (or DN): the openldap image sets the inbox account's password from the
// same operator secret, which compose requires and which is neither the
// worker's nor the admin's.
func TestComposeStarterHasTheInboxIdentityNotTheWorkers(t *testing.T) {
	env := trialEnv(t)
	p, err := loadWith(t, env)
	require.NoError(t, err)
	senv := p.Services["starter"].Environment
	wenv := p.Services["worker"].Environment
	lenv := p.Services["openldap"].Environment

	require.NotContains(t, senv, "JOINERY_LDAP_BIND_PASSWORD", "the starter never gets the worker's directory password")
	require.NotContains(t, senv, "JOINERY_LDAP_BIND_DN", "nor names the worker's account")
	for k, v := range senv {
		if v != nil {
			require.NotEqual(t, env["JOINERY_LDAP_BIND_PASSWORD"], *v, "starter: %s carries the worker's password", k)
			require.NotEqual(t, env["JOINERY_LDAP_ADMIN_PASSWORD"], *v, "starter: %s carries the admin's password", k)
		}
	}
	require.Equal(t, stack.LDAPInboxDN, *senv["JOINERY_INBOX_LDAP_BIND_DN"])
	require.Equal(t, env["JOINERY_LDAP_INBOX_PASSWORD"], *senv["JOINERY_INBOX_LDAP_BIND_PASSWORD"])
	require.Equal(t, env["JOINERY_LDAP_INBOX_PASSWORD"], *lenv["SLAPD_INBOX_PASSWORD"], "the directory and the inbox agree on its password")
	// And the worker does not get the inbox's.
	require.NotContains(t, wenv, "JOINERY_INBOX_LDAP_BIND_PASSWORD")
	require.NotContains(t, wenv, "JOINERY_INBOX_LDAP_BIND_DN")
	// The same directory, over TLS with the deployment CA.
	for _, k := range []string{"JOINERY_LDAP_URL", "JOINERY_LDAP_CA_FILE", "JOINERY_LDAP_BASE_DN"} {
		require.NotNil(t, senv[k], k)
		require.Equal(t, *wenv[k], *senv[k], k)
	}

	// What the code makes of it: the inbox may start, with its own identity.
	cfg, err := config.Load(inboxEnvOf(t, senv))
	require.NoError(t, err)
	require.NoError(t, cfg.Require(config.Inbox))
	require.NoError(t, cfg.Require(config.Serve))
	require.Empty(t, cfg.LDAPBindPassword)
	require.Equal(t, stack.LDAPInboxDN, cfg.InboxLDAPBindDN)

	// The secret is the operator's: compose refuses to start without it,
	// naming it, and env.example lists it.
	delete(env, "JOINERY_LDAP_INBOX_PASSWORD")
	_, err = loadWith(t, env)
	require.ErrorContains(t, err, "JOINERY_LDAP_INBOX_PASSWORD")
	example, err := os.ReadFile(filepath.Join(repoDir(t), "deploy", "env.example"))
	require.NoError(t, err)
	require.Contains(t, string(example), "\nJOINERY_LDAP_INBOX_PASSWORD=\n")
}

// Run for real: the openldap image's entrypoint with the compose openldap
// service's environment (demo people on, so someone can sign in), and the
// inbox's directory client configured from the compose starter's
// environment (only the URL mapped to this machine), as `starter serve`
// builds it (starter/serve.go inboxDirectoryConfig). A manager signs in;
// the inbox's own bind, over ldaps://, can change nothing; slapd keeps no
// inbox password in its environment.
func TestComposeInboxIdentityWorksAgainstTheImageAndWritesNothing(t *testing.T) {
	if _, err := os.Stat(stack.SlapdBinary()); err != nil {
		t.Fatalf("slapd is not installed (make tools): %v", err)
	}
	p := loadProject(t)
	lenv := map[string]string{"SLAPD_DEMO_PEOPLE": "true"}
	for _, k := range []string{"SLAPD_ROOT_PASSWORD", "SLAPD_SERVICE_PASSWORD", "SLAPD_INBOX_PASSWORD"} {
		v := p.Services["openldap"].Environment[k]
		require.NotNil(t, v, k)
		lenv[k] = *v
	}
	r, err := startSlapdinit(t, lenv)
	require.NoError(t, err)
	senv := p.Services["starter"].Environment
	cfg, err := config.Load(func(k string) string {
		switch k {
		case "JOINERY_LDAP_URL":
			return r.ldapsURL
		case "JOINERY_LDAP_CA_FILE":
			return r.caFile
		}
		return inboxEnvOf(t, senv)(k)
	})
	require.NoError(t, err)
	dc := run.DirectoryConfig(cfg)
	dc.BindDN, dc.BindPassword = cfg.InboxLDAPBindDN, cfg.InboxLDAPBindPassword
	dir, err := directory.New(dc)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	id, err := dir.Authenticate(ctx, "ada.lovelace", "dev-ada-pass")
	require.NoError(t, err, "a manager signs in through the inbox's identity")
	require.Equal(t, "uid=ada.lovelace,ou=people,"+stack.LDAPBaseDN, id.DN)
	_, err = dir.Authenticate(ctx, "ada.lovelace", "wrong")
	require.ErrorIs(t, err, directory.ErrInvalidCredentials)

	// The inbox's bind itself: a person's attribute, a group, a password.
	c := r.dialS(t)
	require.NoError(t, c.Bind(cfg.InboxLDAPBindDN, cfg.InboxLDAPBindPassword))
	m := ldap.NewModifyRequest(id.DN, nil)
	m.Replace("mail", []string{"attacker@evil.test"})
	require.True(t, ldap.IsErrorWithCode(c.Modify(m), ldap.LDAPResultInsufficientAccessRights))
	g := ldap.NewModifyRequest("cn=all-staff,ou=groups,"+stack.LDAPBaseDN, nil)
	g.Add("member", []string{id.DN})
	require.True(t, ldap.IsErrorWithCode(c.Modify(g), ldap.LDAPResultInsufficientAccessRights))
	_, err = c.PasswordModify(ldap.NewPasswordModifyRequest(id.DN, "", "taken-over-by-the-inbox"))
	require.True(t, ldap.IsErrorWithCode(err, ldap.LDAPResultInsufficientAccessRights), "%v", err)
	// It is not the worker: the worker's password is not its.
	require.Error(t, r.dialS(t).Bind(cfg.InboxLDAPBindDN, lenv["SLAPD_SERVICE_PASSWORD"]))

	environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", r.pid))
	require.NoError(t, err)
	require.Contains(t, string(environ), "SLAPD_TLS_CERT=", "this is the process slapdinit started")
	require.False(t, strings.Contains(string(environ), lenv["SLAPD_INBOX_PASSWORD"]), "slapd keeps no inbox password")
}
