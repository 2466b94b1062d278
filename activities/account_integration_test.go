package activities

// The account activities against a real slapd (a private one, with the dev
// stack's generated configuration and seed), bound as the worker's service
// account and run in Temporal's activity test environment, so that the
// joiner's identity comes from the activity info as it does in production.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/joinery/joinery/connectors/directory"
	"github.com/joinery/joinery/internal/policy"
	"github.com/joinery/joinery/internal/stack"
)

// testWorkflowID is the workflow ID Temporal's activity test environment
// reports in activity.GetInfo.
const testWorkflowID = "default-test-workflow-id"

const adaDN = "uid=ada.lovelace,ou=people,dc=joinery,dc=test"

func privateDirectory(t *testing.T) (*directory.Client, string) {
	t.Helper()
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
	if err != nil {
		t.Fatalf("a private slapd is needed and could not start: %v", err)
	}
	t.Cleanup(stop)
	url := cfg.Endpoints().LDAPURL
	c, err := directory.New(directory.Config{URL: url, BindDN: stack.LDAPServiceDN, BindPassword: stack.LDAPServicePassword, BaseDN: stack.LDAPBaseDN})
	require.NoError(t, err)
	return c, url
}

// rawEntry renders dn's every attribute (operational ones and the password
// hash included) as the rootdn reads it.
func rawEntry(t *testing.T, url, dn string) []string {
	t.Helper()
	conn, err := ldap.DialURL(url)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.Bind(stack.LDAPBindDN, stack.LDAPBindPassword))
	res, err := conn.Search(ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{"*", "+"}, nil))
	if ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
		return nil
	}
	require.NoError(t, err)
	var out []string
	for _, a := range res.Entries[0].Attributes {
		for _, v := range a.ByteValues {
			out = append(out, a.Name+": "+string(v))
		}
	}
	sort.Strings(out)
	return out
}

func activityEnv(t *testing.T, a *Activities) *testsuite.TestActivityEnvironment {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(a)
	return env
}

// `starter start 100` for Ada Lovelace, employed since 2018: the claim stops
// with NeedsOperator before any change, naming her entry, and the joiner's
// compensation has nothing to undo. Her entry, password hash included, is
// byte-for-byte what it was.
func TestIntegrationJoinerForAdaNeedsOperator(t *testing.T) {
	dir, url := privateDirectory(t)
	a := &Activities{Directory: dir}
	env := activityEnv(t, a)
	before := rawEntry(t, url, adaDN)
	require.NotEmpty(t, before)

	_, err := env.ExecuteActivity(a.ClaimAccount, ClaimInput{
		HRISID: "100", Candidates: []string{"ada.lovelace", "alovelace", "ada.lovelace2"},
		Worker:     policy.Worker{HRISID: "100", FirstName: "Ada", LastName: "Lovelace", JobTitle: "Engineering Manager", Department: "Engineering"},
		Attributes: map[string]string{"mail": "{username}@joinery.test"},
	})
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr), "%v", err)
	require.Equal(t, ErrTypeNeedsOperator, appErr.Type())
	require.True(t, appErr.NonRetryable())
	var details ExistingAccount
	require.NoError(t, appErr.Details(&details))
	require.Equal(t, ExistingAccount{DN: adaDN, EmployeeID: "100", Username: "ada.lovelace"}, details)

	// The joiner then rolls back: nothing of this joiner's is there.
	_, err = env.ExecuteActivity(a.DeleteAccount, AccountRef{HRISID: "100"})
	require.NoError(t, err)
	_, err = env.ExecuteActivity(a.DisableAccount, AccountRef{HRISID: "100"})
	require.NoError(t, err)
	// A DN that lies (Ada's) gets no grant, no password and no removal.
	_, err = env.ExecuteActivity(a.GrantGroup, GroupInput{HRISID: "100", Group: "all-staff", MemberDN: adaDN})
	requireAppErrType(t, err, ErrTypeNotOwner)
	_, err = env.ExecuteActivity(a.DeleteAccount, AccountRef{HRISID: "100", DN: adaDN})
	require.NoError(t, err, "the recorded DN is not trusted: the marker decides, and there is none of this joiner's")

	require.Equal(t, before, rawEntry(t, url, adaDN), "ada's entry is byte-for-byte unchanged")
	for _, l := range before {
		if len(l) > 13 && l[:13] == "userPassword:" {
			return
		}
	}
	t.Fatal("the snapshot includes the password hash")
}

// A new joiner's own entry: claimed with this workflow's marker, granted,
// disabled and deleted by the activities; a second claim (a retry) adopts
// it; a joiner with another workflow ID for the same person is
// AlreadyProvisioned.
func TestIntegrationAccountActivitiesOnTheirOwnEntry(t *testing.T) {
	dir, url := privateDirectory(t)
	a := &Activities{Directory: dir}
	env := activityEnv(t, a)
	id := fmt.Sprint(700000 + time.Now().UnixNano()%100000)
	in := ClaimInput{HRISID: id, Candidates: []string{"john.smith", "jsmith", "john.smith" + id},
		Worker: policy.Worker{HRISID: id, FirstName: "John", LastName: "Smith"}}

	v, err := env.ExecuteActivity(a.ClaimAccount, in)
	require.NoError(t, err)
	var claim ClaimResult
	require.NoError(t, v.Get(&claim))
	require.Equal(t, "john.smith"+id, claim.Username)
	e, err := dir.FindByOwner(context.Background(), testWorkflowID)
	require.NoError(t, err)
	require.Equal(t, claim.DN, e.DN)
	require.Equal(t, testWorkflowID, e.Owner, "the marker is the workflow ID from the activity info")

	v, err = env.ExecuteActivity(a.ClaimAccount, in)
	require.NoError(t, err)
	var again ClaimResult
	require.NoError(t, v.Get(&again))
	require.Equal(t, ClaimResult{Username: claim.Username, DN: claim.DN, Existing: true}, again)

	// Outside an activity the caller is trusted code; it runs as joiner-<id>,
	// which did not create this entry.
	_, err = a.ClaimAccount(context.Background(), in)
	requireAppErrType(t, err, ErrTypeAlreadyProvisioned)
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr))
	var details ExistingAccount
	require.NoError(t, appErr.Details(&details))
	require.Equal(t, testWorkflowID, details.Joiner)
	require.Equal(t, claim.DN, details.DN)

	g := GroupInput{HRISID: id, Group: "all-staff", MemberDN: claim.DN}
	_, err = env.ExecuteActivity(a.GrantGroup, g)
	require.NoError(t, err)
	ok, err := dir.IsMember(context.Background(), dir.GroupDN("all-staff"), claim.DN)
	require.NoError(t, err)
	require.True(t, ok)
	_, err = env.ExecuteActivity(a.RevokeGroup, g)
	require.NoError(t, err)
	_, err = env.ExecuteActivity(a.DisableAccount, AccountRef{HRISID: id, DN: claim.DN})
	require.NoError(t, err)
	require.Contains(t, rawEntry(t, url, claim.DN), "description: "+directory.DisabledMarker)
	_, err = env.ExecuteActivity(a.DeleteAccount, AccountRef{HRISID: id, DN: claim.DN})
	require.NoError(t, err)
	require.Nil(t, rawEntry(t, url, claim.DN))
	_, err = env.ExecuteActivity(a.DeleteAccount, AccountRef{HRISID: id, DN: claim.DN})
	require.NoError(t, err, "nothing left to undo")
}

func requireAppErrType(t *testing.T, err error, typ string) {
	t.Helper()
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr), "%v", err)
	require.Equal(t, typ, appErr.Type(), "%v", err)
	require.True(t, appErr.NonRetryable())
}
