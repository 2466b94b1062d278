package activities

// The account activities against a real slapd (a private one, with the dev
// stack's generated configuration and seed), bound as the worker's service
// account and run inside a Joiner workflow of Temporal's test environment
// (runAs), so that the joiner's identity comes from the activity info as it
// does in production, and the order checks pass as they do for a joiner.

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/joinery/joinery/connectors/directory"
	"github.com/joinery/joinery/connectors/hris"
	"github.com/joinery/joinery/internal/policy"
	"github.com/joinery/joinery/internal/stack"
	"github.com/joinery/joinery/internal/stack/stacktest"
)

const adaDN = "uid=ada.lovelace,ou=people,dc=joinery,dc=test"

func privateDirectory(t *testing.T) (*directory.Client, string) {
	t.Helper()
	url := stacktest.PrivateSlapd(t)
	c, err := directory.New(directory.Config{URL: url, BindDN: stack.LDAPServiceDN, BindPassword: stack.LDAPServicePassword, BaseDN: stack.LDAPBaseDN})
	require.NoError(t, err)
	return c, url
}

// rawEntry is dn as the rootdn reads it (password hash included).
func rawEntry(t *testing.T, url, dn string) []string { return stacktest.RawEntry(t, url, dn) }

// planFunc is a Planner that is a function.
type planFunc func(policy.Worker) (policy.Plan, error)

func (f planFunc) Plan(w policy.Worker) (policy.Plan, error) { return f(w) }

// accountActivities are the activities over dir, with an HR record for id
// whose plan names candidates and grants all-staff: the order checks
// re-plan every claim and grant.
func accountActivities(dir *directory.Client, id, first, last string, candidates []string) *Activities {
	hr := &fakeHRIS{fx: &sideEffects{}, workers: map[string]hris.Worker{id: {ID: id, FirstName: first, LastName: last, Status: "Active"}}}
	return &Activities{Directory: dir, HRIS: hr, Policy: planFunc(func(w policy.Worker) (policy.Plan, error) {
		return policy.Plan{Kind: w.Kind, Candidates: candidates, Groups: []policy.Grant{{Group: "all-staff"}},
			Attributes: map[string]string{"mail": "{username}@joinery.test"},
			Approval:   policy.ApprovalPlan{Rule: "manager", Approver: "ada.lovelace"}}, nil
	})}
}

// `starter start 100` for Ada Lovelace, employed since 2018: the claim stops
// with NeedsOperator before any change, naming her entry, and the joiner's
// compensation has nothing to undo. Her entry, password hash included, is
// byte-for-byte what it was.
func TestIntegrationJoinerForAdaNeedsOperator(t *testing.T) {
	dir, url := privateDirectory(t)
	candidates := []string{"ada.lovelace", "alovelace", "ada.lovelace2"}
	a := accountActivities(dir, "100", "Ada", "Lovelace", candidates)
	run := func(fn, in any) error { return runAs(t, a, JoinerWorkflowType, JoinerWorkflowID("100"), fn, in, nil) }
	before := rawEntry(t, url, adaDN)
	require.NotEmpty(t, before)

	err := run(a.ClaimAccount, ClaimInput{
		HRISID: "100", Candidates: candidates,
		Worker:     policy.Worker{HRISID: "100", FirstName: "Ada", LastName: "Lovelace", JobTitle: "Engineering Manager", Department: "Engineering"},
		Attributes: map[string]string{"mail": "{username}@joinery.test"},
		Approvals:  approvedBy(t, a, JoinerWorkflowID("100"), "ada.lovelace"),
	})
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr), "%v", err)
	require.Equal(t, ErrTypeNeedsOperator, appErr.Type())
	require.True(t, appErr.NonRetryable())
	var details ExistingAccount
	require.NoError(t, appErr.Details(&details))
	require.Equal(t, ExistingAccount{DN: adaDN, EmployeeID: "100", Username: "ada.lovelace"}, details)

	// The joiner then rolls back: nothing of this joiner's is there.
	require.NoError(t, run(a.DeleteAccount, AccountRef{HRISID: "100"}))
	require.NoError(t, run(a.DisableAccount, AccountRef{HRISID: "100"}))
	// A DN that lies (Ada's) gets no grant, no password and no removal.
	requireAppErrType(t, run(a.GrantGroup, GroupInput{HRISID: "100", Group: "all-staff", MemberDN: adaDN}), ErrTypeNotOwner)
	require.NoError(t, run(a.DeleteAccount, AccountRef{HRISID: "100", DN: adaDN}),
		"the recorded DN is not trusted: the marker decides, and there is none of this joiner's")

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
// it; a workflow with another ID cannot act for the same person at all.
func TestIntegrationAccountActivitiesOnTheirOwnEntry(t *testing.T) {
	dir, url := privateDirectory(t)
	id := fmt.Sprint(700000 + time.Now().UnixNano()%100000)
	in := ClaimInput{HRISID: id, Candidates: []string{"john.smith", "jsmith", "john.smith" + id},
		Worker: policy.Worker{HRISID: id, FirstName: "John", LastName: "Smith"}}
	a := accountActivities(dir, id, "John", "Smith", in.Candidates)
	wfID := JoinerWorkflowID(id)
	in.Approvals = approvedBy(t, a, wfID, "ada.lovelace")
	run := func(fn, in, out any) error { return runAs(t, a, JoinerWorkflowType, wfID, fn, in, out) }

	var claim ClaimResult
	require.NoError(t, run(a.ClaimAccount, in, &claim))
	require.Equal(t, "john.smith"+id, claim.Username)
	e, err := dir.FindByOwner(context.Background(), wfID)
	require.NoError(t, err)
	require.Equal(t, claim.DN, e.DN)
	require.Equal(t, wfID, e.Owner, "the marker is the workflow ID from the activity info")

	var again ClaimResult
	require.NoError(t, run(a.ClaimAccount, in, &again))
	require.Equal(t, ClaimResult{Username: claim.Username, DN: claim.DN, Existing: true}, again)

	// Another workflow for the same person is refused before the directory
	// is asked; trusted code outside an activity runs as joiner-<id>.
	requireAppErrType(t, runAs(t, a, JoinerWorkflowType, "joiner-other", a.ClaimAccount, in, nil), ErrTypeOrderRefused)
	direct, err := a.ClaimAccount(context.Background(), in)
	require.NoError(t, err)
	require.Equal(t, claim.DN, direct.DN)
	require.True(t, direct.Existing)

	g := GroupInput{HRISID: id, Group: "all-staff", MemberDN: claim.DN}
	require.NoError(t, run(a.GrantGroup, g, nil))
	ok, err := dir.IsMember(context.Background(), dir.GroupDN("all-staff"), claim.DN)
	require.NoError(t, err)
	require.True(t, ok)
	require.NoError(t, run(a.RevokeGroup, g, nil))
	require.NoError(t, run(a.DisableAccount, AccountRef{HRISID: id, DN: claim.DN}, nil))
	require.Contains(t, rawEntry(t, url, claim.DN), "description: "+directory.DisabledMarker)
	require.NoError(t, run(a.DeleteAccount, AccountRef{HRISID: id, DN: claim.DN}, nil))
	require.Nil(t, rawEntry(t, url, claim.DN))
	require.NoError(t, run(a.DeleteAccount, AccountRef{HRISID: id, DN: claim.DN}, nil), "nothing left to undo")
}

func requireAppErrType(t *testing.T, err error, typ string) {
	t.Helper()
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr), "%v", err)
	require.Equal(t, typ, appErr.Type(), "%v", err)
	require.True(t, appErr.NonRetryable())
}
