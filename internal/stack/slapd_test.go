package stack

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/joinery/joinery/internal/policy"
)

// The group rules follow the policy's catalogue: one per group and joiner
// container, none for a group the policy does not list.
func TestSlapdAccessFollowsThePolicyGroups(t *testing.T) {
	rules := slapdAccess([]string{"all-staff", "a,b"})
	for _, c := range []string{ldapPeopleDN, ldapServiceAccountsDN} {
		require.Contains(t, rules, `access to dn.base="cn=all-staff,`+ldapGroupsDN+`" attrs=member val.onelevel="`+c+`"`)
		require.Contains(t, rules, `access to dn.base="cn=a\,b,`+ldapGroupsDN+`" attrs=member val.onelevel="`+c+`"`, "group names are DN-escaped")
	}
	require.NotContains(t, rules, "cn=finance")
	require.Equal(t, 4, strings.Count(rules, "attrs=member val.onelevel"))
	// The service account has no rule granting it more than read outside
	// the joiner containers and the listed groups, and nothing in the end.
	require.True(t, strings.HasSuffix(rules, "access to *\n    by dn.exact=\""+LDAPServiceDN+"\" none\n    by dn.exact=\""+LDAPInboxDN+"\" none\n    by users read\n    by * none\n"))
}

// The generated configuration is one slapd accepts, with the dev policy's
// groups in it.
func TestSlapdConfigIsValid(t *testing.T) {
	repo, err := FindRepoDir()
	require.NoError(t, err)
	c := DefaultConfig(repo)
	dir := t.TempDir()
	text, err := c.slapdConfText(dir)
	require.NoError(t, err)
	pol, err := policy.Load(c.slapdPolicyFile())
	require.NoError(t, err)
	for _, g := range pol.Groups {
		require.Contains(t, text, `dn.base="cn=`+g+`,`+ldapGroupsDN+`"`)
	}
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "data"), 0o700))
	conf := filepath.Join(dir, "slapd.conf")
	require.NoError(t, os.WriteFile(conf, []byte(text), 0o600))
	out, err := exec.Command(slapBin("slaptest"), "-u", "-f", conf).CombinedOutput()
	require.NoError(t, err, "slaptest (is slapd installed? make tools): %s", out)
}

// testdata/ldap/joinery-access.ldif.txt is the dev policy's rules for a
// cn=config server; it must say what slapd.conf says.
func TestSlapdAccessLDIFIsCurrent(t *testing.T) {
	repo, err := FindRepoDir()
	require.NoError(t, err)
	c := DefaultConfig(repo)
	pol, err := policy.Load(c.slapdPolicyFile())
	require.NoError(t, err)
	want := slapdAccessLDIF(pol.Groups)
	path := c.testdata("ldap/joinery-access.ldif.txt")
	if os.Getenv("JOINERY_UPDATE_GOLDEN") == "1" {
		require.NoError(t, os.WriteFile(path, []byte(want), 0o644))
	}
	have, err := os.ReadFile(path)
	require.NoError(t, err, "generate it with JOINERY_UPDATE_GOLDEN=1")
	require.Equal(t, want, string(have), "regenerate with JOINERY_UPDATE_GOLDEN=1 go test ./internal/stack -run SlapdAccessLDIF")
	require.Equal(t, len(slapdRules(pol.Groups)), strings.Count(want, "olcAccess: {"))
}
