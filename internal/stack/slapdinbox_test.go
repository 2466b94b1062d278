package stack

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/stretchr/testify/require"

	"github.com/joinery/joinery/connectors"
	"github.com/joinery/joinery/connectors/directory"
)

// privateSlapdForInbox starts a slapd of its own (own state directory and
// port) with the generated configuration and seed, so these tests change
// nothing on the shared dev stack.
func privateSlapdForInbox(t *testing.T) (Config, string) {
	t.Helper()
	repo, err := FindRepoDir()
	require.NoError(t, err)
	cfg := DefaultConfig(repo)
	cfg.StateDir = t.TempDir()
	cfg.LDAPPort = freePort(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	stop, err := PrivateSlapd(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(stop)
	return cfg, fmt.Sprintf("ldap://127.0.0.1:%d", cfg.LDAPPort)
}

func bindAs(t *testing.T, url, dn, password string) *ldap.Conn {
	t.Helper()
	c, err := ldap.DialURL(url)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	c.SetTimeout(5 * time.Second)
	require.NoError(t, c.Bind(dn, password), "bind as %s", dn)
	return c
}

// rawEntry is every attribute of dn as the rootdn reads it (nil: absent),
// to show an entry is unchanged after a refused write.
func rawEntry(t *testing.T, root *ldap.Conn, dn string) []string {
	t.Helper()
	res, err := root.Search(ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{"*", "+"}, nil))
	if ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
		return nil
	}
	require.NoError(t, err)
	var out []string
	for _, a := range res.Entries[0].Attributes {
		for _, v := range a.Values {
			out = append(out, a.Name+": "+v)
		}
	}
	sort.Strings(out)
	return out
}

// The adversary: someone who took over the approval inbox (it faces
// browsers) and holds its directory identity. On a real slapd with the
// generated rules and seed, that identity finds a person and reads what
// sign-in needs, and nothing more; every write it tries is refused with
// insufficientAccessRights and changes nothing.
func TestSlapdInboxAccountReadsPeopleAndWritesNothing(t *testing.T) {
	_, url := privateSlapdForInbox(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	root := bindAs(t, url, LDAPBindDN, LDAPBindPassword)
	ada := "uid=ada.lovelace," + ldapPeopleDN

	// A joiner's entry the worker created (so the worker's creator rules
	// apply to it), in a group, with the ownership marker.
	worker, err := directory.New(directory.Config{URL: url, BindDN: LDAPServiceDN, BindPassword: LDAPServicePassword,
		BaseDN: LDAPBaseDN, Profile: directory.OpenLDAPProfile{}})
	require.NoError(t, err)
	p := directory.Person{EmployeeID: "9131", Owner: "joiner-9131", OwnerRun: "run-1", GivenName: "In", Surname: "Box",
		Mail: "in.box@joinery.test"}
	acct, err := worker.Claim(ctx, "in.box", p)
	require.NoError(t, err, "the worker still creates joiners under the new rules")
	group := "cn=all-staff," + ldapGroupsDN
	require.NoError(t, worker.AddMember(ctx, group, acct.DN, p.Owner), "and grants their groups")

	in := bindAs(t, url, LDAPInboxDN, LDAPInboxPassword)

	// It finds a person by username and reads the sign-in attributes.
	res, err := in.Search(ldap.NewSearchRequest(ldapPeopleDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
		"(uid=ada.lovelace)", []string{"uid", "cn", "displayName", "mail", "description", "employeeNumber", "manager",
			"title", "userPassword", "joineryJoiner", "creatorsName"}, nil))
	require.NoError(t, err)
	require.Len(t, res.Entries, 1)
	e := res.Entries[0]
	require.Equal(t, ada, e.DN)
	require.Equal(t, "ada.lovelace", e.GetAttributeValue("uid"))
	require.Equal(t, "Ada Lovelace", e.GetAttributeValue("displayName"))
	require.Equal(t, "ada.lovelace@joinery.test", e.GetAttributeValue("mail"))
	for _, a := range []string{"employeeNumber", "manager", "title", "userPassword", "creatorsName"} {
		require.Empty(t, e.GetAttributeValues(a), "the inbox does not read %s", a)
	}
	// The joiner's entry: found, its marker unreadable.
	res, err = in.Search(ldap.NewSearchRequest(ldapPeopleDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
		"(uid=in.box)", []string{"uid", "mail", "joineryJoiner", "joineryRun", "employeeNumber"}, nil))
	require.NoError(t, err)
	require.Len(t, res.Entries, 1)
	require.Equal(t, "in.box@joinery.test", res.Entries[0].GetAttributeValue("mail"))
	for _, a := range []string{"joineryJoiner", "joineryRun", "employeeNumber"} {
		require.Empty(t, res.Entries[0].GetAttributeValues(a), "the inbox does not read %s", a)
	}
	// Nor can it search on what it may not read.
	for _, f := range []string{"(employeeNumber=100)", "(joineryJoiner=joiner-9131)", "(title=*)"} {
		res, err = in.Search(ldap.NewSearchRequest(ldapPeopleDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
			f, []string{"uid"}, nil))
		require.NoError(t, err)
		require.Empty(t, res.Entries, "search by %s", f)
	}
	// Outside ou=people it sees nothing: not the groups (and so not who is
	// in them), not the service accounts, not the other service
	// identities, not the suffix.
	for _, base := range []string{ldapGroupsDN, ldapServiceAccountsDN, ldapSystemDN, LDAPBaseDN} {
		res, err := in.Search(ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
			"(objectClass=*)", []string{"*"}, nil))
		if err != nil {
			require.True(t, ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject), "%s: %v", base, err)
			continue
		}
		for _, e := range res.Entries {
			if base == LDAPBaseDN && (strings.HasSuffix(e.DN, ldapPeopleDN) || e.DN == LDAPInboxDN) {
				continue // the people again, and its own entry
			}
			require.Failf(t, "the inbox reads outside ou=people", "%s under %s", e.DN, base)
		}
	}

	// Every write is refused, and nothing changes.
	watched := []string{ada, acct.DN, group, LDAPInboxDN, LDAPServiceDN, "uid=grace.hopper," + ldapPeopleDN}
	before := map[string][]string{}
	for _, dn := range watched {
		before[dn] = rawEntry(t, root, dn)
		require.NotNil(t, before[dn], dn)
	}
	denied := func(err error, what string) {
		t.Helper()
		require.Error(t, err, what)
		require.True(t, ldap.IsErrorWithCode(err, ldap.LDAPResultInsufficientAccessRights), "%s: want insufficientAccessRights (50), got %v", what, err)
	}
	modify := func(dn string, f func(*ldap.ModifyRequest)) error {
		m := ldap.NewModifyRequest(dn, nil)
		f(m)
		return in.Modify(m)
	}
	denied(modify(ada, func(m *ldap.ModifyRequest) { m.Replace("mail", []string{"attacker@evil.test"}) }), "change a person's mail")
	denied(modify(ada, func(m *ldap.ModifyRequest) { m.Replace("description", []string{"joinery: account disabled"}) }), "disable a person")
	denied(modify(acct.DN, func(m *ldap.ModifyRequest) { m.Replace("displayName", []string{"Owned"}) }), "change a joiner's entry")
	denied(modify(acct.DN, func(m *ldap.ModifyRequest) { m.Replace("joineryJoiner", []string{"joiner-evil"}) }), "move a marker")
	denied(modify(group, func(m *ldap.ModifyRequest) { m.Add("member", []string{ada}) }), "add a person to a group")
	denied(modify(group, func(m *ldap.ModifyRequest) { m.Delete("member", []string{acct.DN}) }), "remove a joiner from a group")
	denied(modify(group, func(m *ldap.ModifyRequest) { m.Add("member", []string{LDAPInboxDN}) }), "add itself to a group")
	add := ldap.NewAddRequest("uid=intruder,"+ldapPeopleDN, nil)
	add.Attribute("objectClass", []string{"inetOrgPerson"})
	add.Attribute("uid", []string{"intruder"})
	add.Attribute("cn", []string{"Intruder"})
	add.Attribute("sn", []string{"Intruder"})
	add.Attribute("userPassword", []string{"intruder-pass"})
	denied(in.Add(add), "add a person")
	add.DN = "uid=intruder," + ldapServiceAccountsDN
	denied(in.Add(add), "add a service account")
	_, err = in.PasswordModify(ldap.NewPasswordModifyRequest(ada, "", "taken-over-by-the-inbox"))
	denied(err, "Password Modify on a person")
	_, err = in.PasswordModify(ldap.NewPasswordModifyRequest(acct.DN, "", "taken-over-by-the-inbox"))
	denied(err, "Password Modify on a joiner")
	_, err = in.PasswordModify(ldap.NewPasswordModifyRequest(LDAPServiceDN, "", "taken-over-by-the-inbox"))
	denied(err, "Password Modify on the worker's account")
	_, err = in.PasswordModify(ldap.NewPasswordModifyRequest("", "", "locks-the-operator-out"))
	denied(err, "Password Modify on itself")
	denied(modify(ada, func(m *ldap.ModifyRequest) { m.Replace("userPassword", []string{"taken-over"}) }), "replace a person's userPassword")
	denied(in.Del(ldap.NewDelRequest(ada, nil)), "delete a person")
	denied(in.Del(ldap.NewDelRequest(acct.DN, nil)), "delete a joiner's entry")
	denied(in.ModifyDN(ldap.NewModifyDNRequest(ada, "uid=ada.gone", true, "")), "rename a person")
	for _, dn := range watched {
		require.Equal(t, before[dn], rawEntry(t, root, dn), "%s is unchanged", dn)
	}
	require.Nil(t, rawEntry(t, root, "uid=intruder,"+ldapPeopleDN))
	require.Nil(t, rawEntry(t, root, "uid=intruder,"+ldapServiceAccountsDN))

	// The same through the connector the inbox runs: sign-in works with the
	// person's password; a wrong one, a disabled person and the joiner
	// Joinery disabled are refused alike.
	dir, err := directory.New(directory.Config{URL: url, BindDN: LDAPInboxDN, BindPassword: LDAPInboxPassword,
		BaseDN: LDAPBaseDN, Profile: directory.OpenLDAPProfile{}})
	require.NoError(t, err)
	id, err := dir.Authenticate(ctx, "ada.lovelace", "dev-ada-pass")
	require.NoError(t, err)
	require.Equal(t, directory.Identity{Username: "ada.lovelace", DN: ada, DisplayName: "Ada Lovelace", Mail: "ada.lovelace@joinery.test"}, id)
	require.NoError(t, worker.SetPassword(ctx, acct.DN, p.Owner, "In-Box-Pa55-word"))
	id, err = dir.Authenticate(ctx, "in.box", "In-Box-Pa55-word")
	require.NoError(t, err, "a joiner signs in too")
	require.Equal(t, acct.DN, id.DN)
	require.NoError(t, worker.Disable(ctx, acct.DN, p.Owner))
	for user, pw := range map[string]string{"ada.lovelace": "wrong-pass", "edsger.dijkstra": "dev-edsger-pass", "in.box": "In-Box-Pa55-word"} {
		_, err := dir.Authenticate(ctx, user, pw)
		require.ErrorIs(t, err, directory.ErrInvalidCredentials, user)
		var ce *connectors.Error
		require.True(t, errors.As(err, &ce), user)
	}
}

// `devstack up` on a directory seeded before the inbox's account existed
// adds it (ensureLDAPAccounts, the slapd bootstrap), puts its dev password
// back when it was changed, and does nothing when it is there.
func TestSlapdBootstrapAddsTheInboxAccountIdempotently(t *testing.T) {
	cfg, url := privateSlapdForInbox(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	root := bindAs(t, url, LDAPBindDN, LDAPBindPassword)
	require.NoError(t, root.Del(ldap.NewDelRequest(LDAPInboxDN, nil)), "an older directory: no inbox account")
	probe, err := ldap.DialURL(url)
	require.NoError(t, err)
	defer probe.Close()
	require.True(t, ldap.IsErrorWithCode(probe.Bind(LDAPInboxDN, LDAPInboxPassword), ldap.LDAPResultInvalidCredentials))

	require.NoError(t, cfg.ensureLDAPAccounts(ctx))
	bindAs(t, url, LDAPInboxDN, LDAPInboxPassword)
	added := rawEntry(t, root, LDAPInboxDN)
	require.Contains(t, added, "cn: joinery-inbox")
	require.Contains(t, added, "objectClass: simpleSecurityObject")
	require.Contains(t, added, "description: "+inboxAccountDescription)

	// Again: nothing to do, nothing changes.
	require.NoError(t, cfg.ensureLDAPAccounts(ctx))
	require.Equal(t, added, rawEntry(t, root, LDAPInboxDN))

	// A changed password is put back to the dev one.
	_, err = root.PasswordModify(ldap.NewPasswordModifyRequest(LDAPInboxDN, "", "something-else"))
	require.NoError(t, err)
	require.NoError(t, cfg.ensureLDAPAccounts(ctx))
	bindAs(t, url, LDAPInboxDN, LDAPInboxPassword)
	// And the worker's account is as it was.
	bindAs(t, url, LDAPServiceDN, LDAPServicePassword)
}
