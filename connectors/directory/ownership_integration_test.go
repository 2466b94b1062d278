package directory

// Joinery only changes what it created, proven against the private slapd
// (generated slapd.conf: joinery.schema and the service account's access
// rules). Two layers are tested: the connector's own checks (claims stop
// for people already in the directory; changes assert the owner) and,
// underneath, the directory refusing the service account's bind whatever
// request it sends.

import (
	"context"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/stretchr/testify/require"

	"github.com/joinery/joinery/connectors"
	"github.com/joinery/joinery/internal/stack"
)

// snapshot renders every attribute of dn, user and operational, password
// hash included, as the rootdn reads it: equal snapshots mean the entry is
// byte-for-byte unchanged (entryCSN and modifyTimestamp move on any write).
func snapshot(t *testing.T, dn string) []string {
	t.Helper()
	e := rawEntry(t, dn)
	require.NotNil(t, e, dn)
	var out []string
	for _, a := range e.Attributes {
		for _, v := range a.ByteValues {
			out = append(out, a.Name+": "+string(v))
		}
	}
	sort.Strings(out)
	return out
}

// existing asserts err is a claim stopped by an existing entry of type typ
// and returns the entry's description.
func existing(t *testing.T, err error, typ string) *ExistingEntryError {
	t.Helper()
	requireType(t, err, typ, false)
	var found *ExistingEntryError
	require.True(t, errors.As(err, &found), "%v carries the entry found", err)
	return found
}

// A joiner for someone already in the directory, without Joinery's marker
// (Ada, employed since 2018): NeedsOperator, and her entry, password hash
// included, is exactly as it was. The same for a disabled former employee
// and for an entry in the other container.
func TestIntegrationClaimStopsForPeopleAlreadyThere(t *testing.T) {
	c, _ := integrationClient(t)
	ctx := context.Background()
	ada := "uid=ada.lovelace," + seedPeople
	before := snapshot(t, ada)
	require.Contains(t, before, "userPassword: {SSHA}K+wegovg40VhxdnMZrmdW17euIKPLNTPHazB6A==")

	hire := Person{EmployeeID: "100", Owner: "joiner-100", OwnerRun: "run-" + tag(t), GivenName: "Ada", Surname: "Lovelace",
		DisplayName: "Ada Lovelace", Mail: "ada.lovelace@joinery.test"}
	for _, candidates := range [][]string{{"ada.lovelace"}, {"ada.lovelace", "alovelace-" + tag(t)}} {
		_, err := c.ClaimFirst(ctx, candidates, hire)
		found := existing(t, err, TypeNeedsOperator)
		require.ErrorIs(t, err, ErrNeedsOperator)
		require.True(t, sameDN(ada, found.DN))
		require.Equal(t, "100", found.EmployeeID)
		require.Empty(t, found.Owner)
	}
	require.Equal(t, before, snapshot(t, ada), "ada's entry is unchanged")
	taken, err := c.Taken(ctx, []string{"alovelace-" + tag(t)})
	require.NoError(t, err)
	require.Empty(t, holderCount(t, integrationSlapd(t), "alovelace-"+tag(t)), "no second entry either: %v", taken)

	// The employee number is matched in both containers, whatever the kind.
	hire.NonHuman = true
	_, err = c.ClaimFirst(ctx, []string{"ada-bot-" + tag(t)}, hire)
	existing(t, err, TypeNeedsOperator)

	// A disabled former employee is still someone: no silent re-use.
	edsger := "uid=edsger.dijkstra," + seedPeople
	before = snapshot(t, edsger)
	_, err = c.ClaimFirst(ctx, []string{"edsger.dijkstra2"}, Person{EmployeeID: "102", Owner: "joiner-102", DisplayName: "Edsger Dijkstra"})
	found := existing(t, err, TypeNeedsOperator)
	require.True(t, sameDN(edsger, found.DN))
	require.Equal(t, before, snapshot(t, edsger))
}

// An entry carrying another joiner's marker, or this joiner's from an earlier
// run, is AlreadyProvisioned; only this run's own entry is adopted.
func TestIntegrationClaimAlreadyProvisioned(t *testing.T) {
	c, _ := integrationClient(t)
	ctx := context.Background()
	p := person(t, "Already", "There")
	first, err := c.ClaimFirst(ctx, []string{"already-" + tag(t)}, p)
	require.NoError(t, err)
	deleteLater(t, c, first.DN)
	before := snapshot(t, first.DN)

	// This run again (a retry after a lost answer): the same entry.
	again, err := c.ClaimFirst(ctx, []string{"other-" + tag(t), "already-" + tag(t)}, p)
	require.NoError(t, err)
	require.Equal(t, Account{Username: first.Username, DN: first.DN, Existing: true}, again)

	// Another joiner for the same person.
	other := p
	other.Owner, other.OwnerRun = "joiner-other-"+tag(t), "run-x"
	_, err = c.ClaimFirst(ctx, []string{"again-" + tag(t)}, other)
	found := existing(t, err, TypeAlreadyProvisioned)
	require.ErrorIs(t, err, ErrAlreadyProvisioned)
	require.True(t, sameDN(first.DN, found.DN))
	require.Equal(t, p.Owner, found.Owner)
	require.Equal(t, p.OwnerRun, found.OwnerRun)

	// The same joiner's earlier run (the person's earlier joiner ended and
	// a new one started with the same workflow ID): not adopted either.
	rerun := p
	rerun.OwnerRun = "run-later-" + tag(t)
	_, err = c.ClaimFirst(ctx, []string{"already-" + tag(t)}, rerun)
	existing(t, err, TypeAlreadyProvisioned)
	_, err = c.Claim(ctx, first.Username, rerun)
	require.ErrorIs(t, err, ErrUsernameTaken, "Claim of the held name does not adopt an earlier run's entry")
	require.Equal(t, before, snapshot(t, first.DN))
}

// Two joiners for one person under different joiner IDs, claiming at the
// same moment with different names: at most one account remains, and the
// other joiner is told the person is already provisioned.
func TestIntegrationClaimRaceForOnePerson(t *testing.T) {
	c, _ := integrationClient(t)
	ctx := context.Background()
	run := tag(t)
	for round := range 20 {
		base := person(t, "Same", "Person")
		people := []Person{base, base}
		people[1].Owner, people[1].OwnerRun = base.Owner+"-b", base.OwnerRun+"-b"
		names := [][]string{{fmt.Sprintf("same-%s-%02d-a", run, round)}, {fmt.Sprintf("same-%s-%02d-b", run, round)}}
		accts := make([]Account, 2)
		errs := make([]error, 2)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range people {
			wg.Go(func() {
				<-start
				// What Temporal does with a retryable conflict: try
				// again after a (jittered) backoff.
				for attempt := range 5 {
					accts[i], errs[i] = c.ClaimFirst(ctx, names[i], people[i])
					if !connectors.IsRetryable(errs[i]) {
						return
					}
					time.Sleep(time.Duration(attempt+1) * time.Duration(1+mrand.IntN(20)) * time.Millisecond)
				}
			})
		}
		close(start)
		wg.Wait()
		winners := 0
		for i := range people {
			if errs[i] == nil {
				winners++
				deleteLater(t, c, accts[i].DN)
			} else {
				existing(t, errs[i], TypeAlreadyProvisioned)
			}
		}
		require.Equal(t, 1, winners, "round %d: one joiner provisions the person, the other is told so: %v", round, errs)
		res, err := rootConn(t).Search(ldap.NewSearchRequest(seedBase, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
			"(employeeNumber="+base.EmployeeID+")", []string{"1.1"}, nil))
		require.NoError(t, err)
		require.Len(t, res.Entries, winners, "round %d: only the winner's entry remains", round)
	}
}

// Every change takes the expected owner: another joiner's entry, or one
// Joinery did not create, is refused by the connector and stays unchanged.
func TestIntegrationChangesCheckTheOwner(t *testing.T) {
	t.Run("assertion control", func(t *testing.T) {
		c, _ := integrationClient(t)
		changesCheckTheOwner(t, c)
	})
	// The read-then-check path Active Directory takes (no RFC 4528), run
	// against slapd with a profile that does not assert.
	t.Run("read then check", func(t *testing.T) {
		c, _ := integrationClient(t, func(cfg *Config) { cfg.Profile = noAssertion{} })
		changesCheckTheOwner(t, c)
	})
}

// noAssertion is the OpenLDAP profile of a server without the assertion
// control.
type noAssertion struct{ OpenLDAPProfile }

func (noAssertion) AssertsOwner() bool { return false }

func changesCheckTheOwner(t *testing.T, c *Client) {
	t.Helper()
	ctx := context.Background()
	p := person(t, "Owned", "Entry")
	acct, err := c.Claim(ctx, "owned-"+tag(t), p)
	require.NoError(t, err)
	deleteLater(t, c, acct.DN)
	group := c.GroupDN("all-staff")
	before := snapshot(t, acct.DN)
	groupBefore := snapshot(t, group)

	intruder := "joiner-intruder-" + tag(t)
	ada := "uid=ada.lovelace," + seedPeople
	adaBefore := snapshot(t, ada)
	for _, dn := range []string{acct.DN, ada} {
		requireType(t, c.SetPassword(ctx, dn, intruder, "Stolen-Pa55"), TypeNotOwner, false)
		requireType(t, c.Disable(ctx, dn, intruder), TypeNotOwner, false)
		err := c.Delete(ctx, dn, intruder)
		requireType(t, err, TypeNotOwner, false)
		require.ErrorIs(t, err, ErrNotOwner)
		requireType(t, c.AddMember(ctx, group, dn, intruder), TypeNotOwner, false)
		requireType(t, c.RemoveMember(ctx, group, dn, intruder), TypeNotOwner, false)
	}
	require.Equal(t, before, snapshot(t, acct.DN))
	require.Equal(t, adaBefore, snapshot(t, ada))
	require.Equal(t, groupBefore, snapshot(t, group))

	// The assertion control alone refuses too.
	ctrl, err := assertionControl(c.ownerFilter(intruder))
	require.NoError(t, err)
	conn := workerConn(t)
	err = conn.Del(ldap.NewDelRequest(acct.DN, []ldap.Control{ctrl}))
	require.True(t, ldap.IsErrorWithCode(err, ldap.LDAPResultAssertionFailed), "%v", err)

	// The owner itself may.
	require.NoError(t, c.AddMember(ctx, group, acct.DN, p.Owner))
	require.NoError(t, c.RemoveMember(ctx, group, acct.DN, p.Owner))
	require.NoError(t, c.Disable(ctx, acct.DN, p.Owner))
	found, err := c.FindByOwner(ctx, p.Owner)
	require.NoError(t, err)
	require.True(t, sameDN(acct.DN, found.DN))
	require.NoError(t, c.Delete(ctx, acct.DN, p.Owner))
	found, err = c.FindByOwner(ctx, p.Owner)
	require.NoError(t, err)
	require.Nil(t, found)
	// A dangling member value names nobody: removing it is allowed.
	require.NoError(t, c.RemoveMember(ctx, group, acct.DN, p.Owner))
}

// workerConn is a raw connection bound as the worker's service account: it
// sends requests the connector would never send, to prove the directory
// refuses them on its own.
func workerConn(t *testing.T) *ldap.Conn {
	t.Helper()
	conn, err := ldap.DialURL(integrationSlapd(t).LDAPURL)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	require.NoError(t, conn.Bind(stack.LDAPServiceDN, stack.LDAPServicePassword))
	return conn
}

func requireDenied(t *testing.T, err error, what string) {
	t.Helper()
	require.Error(t, err, what)
	require.True(t, ldap.IsErrorAnyOf(err, ldap.LDAPResultInsufficientAccessRights, ldap.LDAPResultNoSuchObject),
		"%s: want insufficientAccessRights, got %v", what, err)
}

// The service account's access rules (slapd.conf generated by
// internal/stack): what the worker's bind may and may not do, whatever it
// sends.
func TestIntegrationServiceAccountAccess(t *testing.T) {
	c, _ := integrationClient(t)
	ctx := context.Background()
	w := workerConn(t)
	root := rootConn(t)
	ada := "uid=ada.lovelace," + seedPeople
	adaBefore := snapshot(t, ada)

	// A group outside the policy's catalogue, and a second service
	// identity with a password, made by the rootdn for this test.
	outside := "cn=payroll-admins-" + tag(t) + ",ou=groups," + seedBase
	g := ldap.NewAddRequest(outside, nil)
	g.Attribute("objectClass", []string{"groupOfNames"})
	g.Attribute("member", []string{"cn=placeholder,ou=groups," + seedBase})
	require.NoError(t, root.Add(g))
	t.Cleanup(func() { _ = rootConn(t).Del(ldap.NewDelRequest(outside, nil)) })
	admin := "cn=ldap-admin-" + tag(t) + ",ou=system," + seedBase
	a := ldap.NewAddRequest(admin, nil)
	a.Attribute("objectClass", []string{"applicationProcess", "simpleSecurityObject"})
	a.Attribute("userPassword", []string{"{SSHA}K+wegovg40VhxdnMZrmdW17euIKPLNTPHazB6A=="})
	require.NoError(t, root.Add(a))
	t.Cleanup(func() { _ = rootConn(t).Del(ldap.NewDelRequest(admin, nil)) })

	// Allowed: claim (create) with the marker, then manage its own entry.
	p := person(t, "Acl", "Own")
	acct, err := c.ClaimFirst(ctx, []string{"acl-own-" + tag(t)}, p)
	require.NoError(t, err)
	deleteLater(t, c, acct.DN)
	pw := "Acl-Pa55-" + tag(t)
	require.NoError(t, c.SetPassword(ctx, acct.DN, p.Owner, pw))
	require.NoError(t, bind(t, integrationSlapd(t), acct.DN, pw))
	for _, grp := range []string{"all-staff", "engineering", "ci-deployers"} {
		require.NoError(t, c.AddMember(ctx, c.GroupDN(grp), acct.DN, p.Owner), grp)
		require.NoError(t, c.RemoveMember(ctx, c.GroupDN(grp), acct.DN, p.Owner), grp)
	}

	t.Run("add outside the joiner containers", func(t *testing.T) {
		for _, parent := range []string{"ou=groups," + seedBase, "ou=system," + seedBase, seedBase} {
			req := ldap.NewAddRequest("uid=evil-"+tag(t)+","+parent, nil)
			req.Attribute("objectClass", []string{"inetOrgPerson"})
			req.Attribute("cn", []string{"evil"})
			req.Attribute("sn", []string{"evil"})
			requireDenied(t, w.Add(req), parent)
		}
	})
	t.Run("delete a seed person", func(t *testing.T) {
		requireDenied(t, w.Del(ldap.NewDelRequest(ada, nil)), "delete")
		requireDenied(t, w.ModifyDN(ldap.NewModifyDNRequest(ada, "uid=ada.gone", true, "")), "rename")
	})
	t.Run("set a seed person's password", func(t *testing.T) {
		_, err := w.PasswordModify(ldap.NewPasswordModifyRequest(ada, "", "Stolen-Pa55"))
		requireDenied(t, err, "password modify")
		m := ldap.NewModifyRequest(ada, nil)
		m.Replace("userPassword", []string{"Stolen-Pa55"})
		requireDenied(t, w.Modify(m), "replace userPassword")
		m = ldap.NewModifyRequest(ada, nil)
		m.Replace("description", []string{DisabledMarker})
		requireDenied(t, w.Modify(m), "disable")
	})
	t.Run("mark a seed person as Joinery's", func(t *testing.T) {
		m := ldap.NewModifyRequest(ada, nil)
		m.Add("objectClass", []string{ManagedClass})
		m.Add(JoinerAttribute, []string{p.Owner})
		requireDenied(t, w.Modify(m), "add the marker")
		m = ldap.NewModifyRequest(ada, nil)
		m.Add(JoinerAttribute, []string{p.Owner})
		requireDenied(t, w.Modify(m), "add the marker attribute alone")
	})
	t.Run("forge the creator", func(t *testing.T) {
		// creatorsName is what the ownership rules trust: a client cannot
		// set it, not even with the Relax control (that needs manage).
		for _, ctrls := range [][]ldap.Control{nil, {ldap.NewControlString("1.3.6.1.4.1.4203.666.5.12", true, "")}} {
			forged := "uid=forged-" + tag(t) + "," + seedPeople
			req := ldap.NewAddRequest(forged, ctrls)
			req.Attribute("objectClass", []string{"inetOrgPerson"})
			req.Attribute("cn", []string{"forged"})
			req.Attribute("sn", []string{"forged"})
			req.Attribute("creatorsName", []string{"cn=admin," + seedBase})
			require.Error(t, w.Add(req), "relax=%v", ctrls != nil)
			require.Nil(t, rawEntry(t, forged))
		}
		m := ldap.NewModifyRequest(ada, []ldap.Control{ldap.NewControlString("1.3.6.1.4.1.4203.666.5.12", true, "")})
		m.Replace("creatorsName", []string{stack.LDAPServiceDN})
		require.Error(t, w.Modify(m))
	})
	t.Run("change its own entry's marker", func(t *testing.T) {
		m := ldap.NewModifyRequest(acct.DN, nil)
		m.Replace(JoinerAttribute, []string{"joiner-someone-else"})
		requireDenied(t, w.Modify(m), "replace the marker")
		m = ldap.NewModifyRequest(acct.DN, nil)
		m.Delete(JoinerAttribute, nil)
		requireDenied(t, w.Modify(m), "delete the marker")
		require.Equal(t, p.Owner, markerOf(t, acct.DN))
	})
	t.Run("grant a group outside the policy", func(t *testing.T) {
		m := ldap.NewModifyRequest(outside, nil)
		m.Add("member", []string{acct.DN})
		requireDenied(t, w.Modify(m), "payroll-admins")
		// Nor a policy group to something that is not a joiner's entry.
		m = ldap.NewModifyRequest(c.GroupDN("all-staff"), nil)
		m.Add("member", []string{admin})
		requireDenied(t, w.Modify(m), "a service identity into all-staff")
	})
	t.Run("read passwords and other identities", func(t *testing.T) {
		res, err := w.Search(ldap.NewSearchRequest(seedBase, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
			"(objectClass=*)", []string{"userPassword"}, nil))
		require.NoError(t, err)
		for _, e := range res.Entries {
			require.Empty(t, e.GetAttributeValues("userPassword"), "%s: no password is readable", e.DN)
			if !sameDN(e.DN, stack.LDAPServiceDN) {
				require.NotContains(t, e.DN, "ou=system", "other service identities are invisible")
			}
		}
		_, err = w.Search(ldap.NewSearchRequest(admin, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false,
			"(objectClass=*)", []string{"*"}, nil))
		require.True(t, ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject), "the admin entry is not even disclosed: %v", err)
		ok, err := w.Compare(ada, "userPassword", "dev-ada-pass")
		require.False(t, ok && err == nil, "no compare against a password either")
	})

	// People keep signing in and changing their own password.
	pconn, err := ldap.DialURL(integrationSlapd(t).LDAPURL)
	require.NoError(t, err)
	defer pconn.Close()
	require.NoError(t, pconn.Bind("uid=alan.turing,"+seedPeople, "dev-alan-pass"))
	_, err = pconn.PasswordModify(ldap.NewPasswordModifyRequest("", "dev-alan-pass", "dev-alan-pass-2"))
	require.NoError(t, err)
	require.NoError(t, bind(t, integrationSlapd(t), "uid=alan.turing,"+seedPeople, "dev-alan-pass-2"))
	_, err = pconn.PasswordModify(ldap.NewPasswordModifyRequest("", "dev-alan-pass-2", "dev-alan-pass"))
	require.NoError(t, err)

	// Allowed to the end: disable and delete its own entry.
	require.NoError(t, c.Disable(ctx, acct.DN, p.Owner))
	require.True(t, ldap.IsErrorWithCode(bind(t, integrationSlapd(t), acct.DN, pw), ldap.LDAPResultInvalidCredentials))
	require.NoError(t, c.Delete(ctx, acct.DN, p.Owner))
	require.Nil(t, rawEntry(t, acct.DN))

	require.Equal(t, adaBefore, snapshot(t, ada), "nothing above touched ada")
}

// A dev machine with an older directory: a slapd running a configuration the
// code no longer generates, and a database seeded before the service account
// existed. The next start of the stack (here PrivateSlapd, which runs the
// same ensure as Up) restarts slapd with the generated rules and adds the
// account, so the worker can bind.
func TestIntegrationStackUpgradesAnOlderDirectory(t *testing.T) {
	repo, err := stack.FindRepoDir()
	require.NoError(t, err)
	cfg := stack.DefaultConfig(repo)
	cfg.StateDir = t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	cfg.LDAPPort = l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	stop, err := stack.PrivateSlapd(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(stop)
	url := cfg.Endpoints().LDAPURL

	// Make it old: no service account, and a configuration file that is not
	// what the code generates (as after pulling new access rules).
	old, err := ldap.DialURL(url)
	require.NoError(t, err)
	defer old.Close()
	require.NoError(t, old.Bind(stack.LDAPBindDN, stack.LDAPBindPassword))
	require.NoError(t, old.Del(ldap.NewDelRequest(stack.LDAPServiceDN, nil)))
	require.NoError(t, old.Del(ldap.NewDelRequest(stack.LDAPInboxDN, nil)))
	require.NoError(t, old.Del(ldap.NewDelRequest("ou=system,"+seedBase, nil)))
	conf := filepath.Join(cfg.StateDir, "slapd", "slapd.conf")
	generated, err := os.ReadFile(conf)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(conf, []byte("# an older generation\n"+string(generated)), 0o600))
	probe, err := ldap.DialURL(url)
	require.NoError(t, err)
	require.True(t, ldap.IsErrorWithCode(probe.Bind(stack.LDAPServiceDN, stack.LDAPServicePassword), ldap.LDAPResultInvalidCredentials))
	probe.Close()

	stop2, err := stack.PrivateSlapd(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(stop2)

	now, err := os.ReadFile(conf)
	require.NoError(t, err)
	require.Equal(t, string(generated), string(now), "the configuration is regenerated")
	_, err = old.Search(ldap.NewSearchRequest(seedBase, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false, "(objectClass=*)", nil, nil))
	require.Error(t, err, "slapd was restarted: the connection from before is gone")
	w, err := ldap.DialURL(url)
	require.NoError(t, err)
	defer w.Close()
	require.NoError(t, w.Bind(stack.LDAPServiceDN, stack.LDAPServicePassword), "the service account was added")
	in, err := ldap.DialURL(url)
	require.NoError(t, err)
	require.NoError(t, in.Bind(stack.LDAPInboxDN, stack.LDAPInboxPassword), "and the inbox's")
	in.Close()
	_, err = w.PasswordModify(ldap.NewPasswordModifyRequest("uid=ada.lovelace,"+seedPeople, "", "Stolen-Pa55"))
	requireDenied(t, err, "and it is scoped")

	// Unchanged configuration: no restart.
	stop3, err := stack.PrivateSlapd(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(stop3)
	_, err = w.Search(ldap.NewSearchRequest(seedBase, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false, "(objectClass=*)", nil, nil))
	require.NoError(t, err, "an up-to-date slapd keeps running")
}
