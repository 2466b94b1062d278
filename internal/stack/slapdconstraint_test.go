package stack

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/stretchr/testify/require"

	"github.com/joinery/joinery/connectors/directory"
)

// The README's recipe for groups that hold only Joinery's joiners
// ("The group-membership residual"), proven on a private slapd with the
// generated rules, the real seed and the worker's real bind, plus the
// slapo-constraint lines the README gives: every added member must be an
// existing Joinery-marked entry. It also shows why the dev stack does not
// generate it: the constraint binds every writer, the rootdn included, so a
// person who predates Joinery can no longer be put into such a group except
// with the Relax control.
func TestSlapdConstraintRecipeForJoineryOnlyGroups(t *testing.T) {
	repo, err := FindRepoDir()
	require.NoError(t, err)
	cfg := DefaultConfig(repo)
	cfg.StateDir = t.TempDir()
	cfg.LDAPPort = freePort(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Seeded, configured and with the service account, then stopped: the
	// same data is served again below with the constraint added.
	stop, err := PrivateSlapd(ctx, cfg)
	require.NoError(t, err)
	stop()

	dir := cfg.dataDir("slapd")
	text, err := os.ReadFile(filepath.Join(dir, "slapd.conf"))
	require.NoError(t, err)
	group := "cn=all-staff," + ldapGroupsDN
	// The whole suffix: a joiner's entry may be a person or a service
	// account, and only Joinery's own adds can carry joineryManaged.
	overlay := "overlay constraint\nconstraint_attribute member uri ldap:///" + LDAPBaseDN +
		"?entryDN?sub?(objectClass=joineryManaged) restrict=\"ldap:///" + group + "??base\"\n"
	conf := strings.Replace(string(text), "moduleload back_mdb\n", "moduleload back_mdb\nmoduleload constraint\n", 1)
	require.Contains(t, conf, "add_content_acl on\n")
	conf = strings.Replace(conf, "add_content_acl on\n", "add_content_acl on\n"+overlay, 1)
	confFile := filepath.Join(dir, "slapd-constraint.conf")
	require.NoError(t, os.WriteFile(confFile, []byte(conf), 0o600))
	url := "ldap://127.0.0.1:" + strconv.Itoa(cfg.LDAPPort)
	srv := exec.Command(slapBin("slapd"), "-f", confFile, "-h", url+"/", "-d", "0")
	var log strings.Builder
	srv.Stdout, srv.Stderr = &log, &log
	require.NoError(t, srv.Start())
	t.Cleanup(func() { _ = srv.Process.Kill(); _ = srv.Wait() })
	var root *ldap.Conn
	require.Eventually(t, func() bool {
		c, err := ldap.DialURL(url)
		if err != nil {
			return false
		}
		if c.Bind(LDAPBindDN, LDAPBindPassword) != nil {
			c.Close()
			return false
		}
		root = c
		return true
	}, 30*time.Second, 100*time.Millisecond, "slapd with the constraint did not start: %s", &log)
	defer root.Close()

	// A joiner's entry, created by the worker through the connector.
	dc, err := directory.New(directory.Config{URL: url, BindDN: LDAPServiceDN, BindPassword: LDAPServicePassword,
		BaseDN: LDAPBaseDN, Profile: directory.OpenLDAPProfile{}})
	require.NoError(t, err)
	p := directory.Person{EmployeeID: "9001", Owner: "joiner-9001", OwnerRun: "run-1", GivenName: "Con", Surname: "Straint"}
	acct, err := dc.Claim(ctx, "con.straint", p)
	require.NoError(t, err)

	w, err := ldap.DialURL(url)
	require.NoError(t, err)
	defer w.Close()
	require.NoError(t, w.Bind(LDAPServiceDN, LDAPServicePassword))
	add := func(conn *ldap.Conn, member string, ctrls ...ldap.Control) error {
		m := ldap.NewModifyRequest(group, ctrls)
		m.Add("member", []string{member})
		return conn.Modify(m)
	}
	violation := func(err error, what string) {
		t.Helper()
		require.True(t, ldap.IsErrorWithCode(err, ldap.LDAPResultConstraintViolation), "%s: want 19, got %v", what, err)
	}
	ada := "uid=ada.lovelace," + ldapPeopleDN
	violation(add(w, ada), "the worker adds a person Joinery did not create")
	violation(add(w, "uid=ghost,"+ldapPeopleDN), "the worker adds a DN that does not exist")
	violation(add(w, "uid=ghost,"+ldapServiceAccountsDN), "nor under the service accounts")
	require.NoError(t, add(w, acct.DN), "the worker adds its joiner's entry")
	require.NoError(t, dc.AddMember(ctx, group, acct.DN, p.Owner), "and so does the connector")

	// Why it is opt-in: the rootdn (and every other writer) is bound too;
	// only the Relax control (manage access) gets past.
	violation(add(root, ada), "the rootdn adds a person Joinery did not create")
	repl := ldap.NewModifyRequest(group, nil)
	repl.Replace("member", []string{acct.DN, ada})
	violation(root.Modify(repl), "a replace that keeps someone Joinery did not create")
	require.NoError(t, add(root, ada, ldap.NewControlString("1.3.6.1.4.1.4203.666.5.12", true, "")), "with Relax")
}
