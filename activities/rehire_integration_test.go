package activities

// The rehire activities against a private slapd, run as Joiner workflows of
// Temporal's test environment (runAs) so the generation comes from the
// activity info, as in production.

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/joinery/joinery/connectors/directory"
	"github.com/joinery/joinery/connectors/hris"
	"github.com/joinery/joinery/internal/policy"
)

// rehirePolicy plans like accountActivities' policy and takes its rehire
// rules from a real policy section.
type rehirePolicy struct {
	planFunc
	rules *policy.Policy
}

func (p rehirePolicy) PlanRehire(prev, gen, dn, left, hire string) (policy.RehirePlan, error) {
	return p.rules.PlanRehire(prev, gen, dn, left, hire)
}

func rehireRules(t *testing.T, section string) *policy.Policy {
	t.Helper()
	p, err := policy.Parse([]byte(`label: t
groups: [all-staff]
naming: {patterns: [{pattern: "{first}.{last}"}]}
kinds: {employee: {ou: people}}
approval: {routes: [{name: d, approver: grace.hopper, timeout: 1d}]}
credentials: {wrap_ttl: 1h}
` + section))
	require.NoError(t, err)
	return p
}

type rehireFixture struct {
	a      *Activities
	dir    *directory.Client
	url    string
	id, dn string
	hr     *fakeHRIS
	g1, g2 string
}

// newRehireFixture makes a leaver: an entry generation 1 of joiner id
// created and then disabled, and an HR record saying they left on
// 2026-01-31 and are rehired on 2026-12-15.
func newRehireFixture(t *testing.T) *rehireFixture {
	t.Helper()
	dir, url := privateDirectory(t)
	id := fmt.Sprint(700000 + len(t.Name())*37%9973)
	ctx := context.Background()
	acct, err := dir.Claim(ctx, "re.hire"+id, directory.Person{EmployeeID: id, Owner: JoinerWorkflowID(id), OwnerRun: "run-g1",
		GivenName: "Re", Surname: "Hire", DisplayName: "Re Hire"})
	require.NoError(t, err)
	require.NoError(t, dir.Disable(ctx, acct.DN, JoinerWorkflowID(id)))
	a := accountActivities(dir, id, "Re", "Hire", []string{"re.hire" + id})
	hr := a.HRIS.(*fakeHRIS)
	hr.workers[id] = hris.Worker{ID: id, FirstName: "Re", LastName: "Hire", Status: "Active", HireDate: "2026-12-15", TerminationDate: "2026-01-31"}
	a.Policy = rehirePolicy{planFunc: a.Policy.(planFunc), rules: rehireRules(t, "rehire: {mode: reenable, max_gap: 365d}\n")}
	return &rehireFixture{a: a, dir: dir, url: url, id: id, dn: acct.DN, hr: hr, g1: JoinerWorkflowID(id), g2: RehireWorkflowID(id, 2)}
}

func (f *rehireFixture) run(t *testing.T, wfID string, fn, in, out any) error {
	t.Helper()
	return runAs(t, f.a, JoinerWorkflowType, wfID, fn, in, out)
}

func requireAppType(t *testing.T, err error, typ string) *temporal.ApplicationError {
	t.Helper()
	var ae *temporal.ApplicationError
	require.ErrorAs(t, err, &ae, "%v", err)
	require.Equal(t, typ, ae.Type(), "%v", err)
	require.True(t, ae.NonRetryable(), "%v", err)
	return ae
}

// The rehire path: checked, taken over with the approval, granted to by
// the new generation, and rolled back to exactly the disabled leaver.
func TestIntegrationRehireActivities(t *testing.T) {
	f := newRehireFixture(t)
	disabled := rawEntry(t, f.url, f.dn)

	var chk RehireCheck
	require.NoError(t, f.run(t, f.g2, f.a.CheckRehire, CheckRehireInput{HRISID: f.id}, &chk))
	require.Equal(t, policy.RehirePlan{PreviousJoiner: f.g1, Joiner: f.g2, DN: f.dn, LeftOn: "2026-01-31", Mode: policy.RehireReenable}, chk.Plan)
	require.Equal(t, "run-g1", chk.PreviousRun)
	require.Equal(t, disabled, rawEntry(t, f.url, f.dn), "the check changes nothing")

	in := ClaimRehireInput{HRISID: f.id, Rehire: chk.Plan, PreviousRun: chk.PreviousRun, Approvals: approvedBy(t, f.a, f.g2, "ada.lovelace")}
	var claim ClaimResult
	require.NoError(t, f.run(t, f.g2, f.a.ClaimRehire, in, &claim))
	require.Equal(t, f.dn, claim.DN)
	e, err := f.dir.FindByEmployeeID(context.Background(), f.id, false)
	require.NoError(t, err)
	require.Equal(t, f.g2, e.Owner, "the marker names the new generation")
	require.Equal(t, "default-test-run-id", e.OwnerRun)
	require.False(t, f.dir.IsDisabled(e))
	// A retry after a lost answer is the same entry, no second change.
	require.NoError(t, f.run(t, f.g2, f.a.ClaimRehire, in, &claim))
	require.True(t, claim.Existing)

	// The credential may go on the entry it holds, and no other account.
	requireRefused(t, f.run(t, f.g2, f.a.IssueCredential, CredentialInput{HRISID: f.id, Username: "ada.lovelace", DN: adaDN,
		Recipient: "ada.lovelace"}, nil))
	// The new generation's ordinary orders go through on the entry.
	grant := GroupInput{HRISID: f.id, Group: "all-staff", MemberDN: f.dn}
	require.NoError(t, f.run(t, f.g2, f.a.GrantGroup, grant, nil))
	// ... and the old generation's do not any more.
	requireAppType(t, f.run(t, f.g1, f.a.GrantGroup, grant, nil), ErrTypeNotOwner)

	// Rollback: groups off, disabled, the old marker back; never deleted.
	require.NoError(t, f.run(t, f.g2, f.a.RevokeGroup, grant, nil))
	undo := UndoRehireInput{HRISID: f.id, Rehire: chk.Plan, PreviousRun: chk.PreviousRun}
	require.NoError(t, f.run(t, f.g2, f.a.UndoRehire, undo, nil))
	require.NoError(t, f.run(t, f.g2, f.a.UndoRehire, undo, nil), "idempotent")
	e, err = f.dir.FindByEmployeeID(context.Background(), f.id, false)
	require.NoError(t, err)
	require.NotNil(t, e)
	require.Equal(t, f.g1, e.Owner)
	require.Equal(t, "run-g1", e.OwnerRun)
	require.True(t, f.dir.IsDisabled(e))
}

// Who tries what, and fails with nothing changed: a rogue workflow with a
// made-up generation, a plain joiner ID, another entry in the order, no
// approval, a generation creating or deleting entries, a hand-back to a
// stranger; and the cases that need an operator.
func TestIntegrationRehireRefusals(t *testing.T) {
	f := newRehireFixture(t)
	before := rawEntry(t, f.url, f.dn)
	unchanged := func() { t.Helper(); require.Equal(t, before, rawEntry(t, f.url, f.dn)) }

	// The wrong generation (the entry is generation 1's: g2 is next).
	requireAppType(t, f.run(t, RehireWorkflowID(f.id, 3), f.a.CheckRehire, CheckRehireInput{HRISID: f.id}, nil), ErrTypeRehireRefused)
	// Generation 1 or another person's joiner is no rehire at all.
	requireRefused(t, f.run(t, f.g1, f.a.CheckRehire, CheckRehireInput{HRISID: f.id}, nil))
	requireRefused(t, f.run(t, RehireWorkflowID("999", 2), f.a.CheckRehire, CheckRehireInput{HRISID: f.id}, nil))
	requireRefused(t, runAs(t, f.a, "Rogue", f.g2, f.a.CheckRehire, CheckRehireInput{HRISID: f.id}, nil))

	var chk RehireCheck
	require.NoError(t, f.run(t, f.g2, f.a.CheckRehire, CheckRehireInput{HRISID: f.id}, &chk))
	proofs := approvedBy(t, f.a, f.g2, "ada.lovelace")
	// No approval.
	requireRefused(t, f.run(t, f.g2, f.a.ClaimRehire, ClaimRehireInput{HRISID: f.id, Rehire: chk.Plan, PreviousRun: chk.PreviousRun}, nil))
	// An approval of another workflow.
	requireRefused(t, f.run(t, f.g2, f.a.ClaimRehire, ClaimRehireInput{HRISID: f.id, Rehire: chk.Plan,
		Approvals: approvedBy(t, f.a, f.g1, "ada.lovelace")}, nil))
	// Another entry (Ada's) in the order.
	other := chk.Plan
	other.DN = adaDN
	requireRefused(t, f.run(t, f.g2, f.a.ClaimRehire, ClaimRehireInput{HRISID: f.id, Rehire: other, Approvals: proofs}, nil))
	// The order names another generation than the caller.
	requireRefused(t, f.run(t, RehireWorkflowID(f.id, 3), f.a.ClaimRehire, ClaimRehireInput{HRISID: f.id, Rehire: chk.Plan, Approvals: proofs}, nil))
	// A generation never creates or deletes an entry.
	requireRefused(t, f.run(t, f.g2, f.a.ClaimAccount, ClaimInput{HRISID: f.id, Candidates: []string{"re.hire" + f.id + "x"}, Approvals: proofs}, nil))
	requireRefused(t, f.run(t, f.g2, f.a.DeleteAccount, AccountRef{HRISID: f.id, DN: f.dn}, nil))
	// No password on the leaver's entry before this generation holds it.
	requireRefused(t, f.run(t, f.g2, f.a.IssueCredential, CredentialInput{HRISID: f.id, Username: "re.hire" + f.id, DN: f.dn,
		Recipient: "ada.lovelace"}, nil))
	// A hand-back to anyone but the generation before.
	stranger := chk.Plan
	stranger.PreviousJoiner = "joiner-intruder"
	requireRefused(t, f.run(t, f.g2, f.a.UndoRehire, UndoRehireInput{HRISID: f.id, Rehire: stranger}, nil))
	// The rollback of a take-over that never happened: nothing to undo.
	require.NoError(t, f.run(t, f.g2, f.a.UndoRehire, UndoRehireInput{HRISID: f.id, Rehire: chk.Plan}, nil))
	unchanged()

	// HR says this is no rehire.
	f.hr.workers[f.id] = hris.Worker{ID: f.id, Status: "Active", HireDate: "2026-12-15"}
	requireAppType(t, f.run(t, f.g2, f.a.CheckRehire, CheckRehireInput{HRISID: f.id}, nil), ErrTypeNotEligible)
	f.hr.workers[f.id] = hris.Worker{ID: f.id, Status: "Inactive", HireDate: "2026-12-15", TerminationDate: "2026-01-31"}
	requireAppType(t, f.run(t, f.g2, f.a.CheckRehire, CheckRehireInput{HRISID: f.id}, nil), ErrTypeNotEligible)
	// Left too long ago for the policy.
	f.hr.workers[f.id] = hris.Worker{ID: f.id, Status: "Active", HireDate: "2026-12-15", TerminationDate: "2020-01-31"}
	requireAppType(t, f.run(t, f.g2, f.a.CheckRehire, CheckRehireInput{HRISID: f.id}, nil), ErrTypeRehireRefused)
	// A policy without a rehire section.
	f.hr.workers[f.id] = hris.Worker{ID: f.id, Status: "Active", HireDate: "2026-12-15", TerminationDate: "2026-01-31"}
	saved := f.a.Policy
	f.a.Policy = rehirePolicy{planFunc: saved.(rehirePolicy).planFunc, rules: rehireRules(t, "")}
	requireAppType(t, f.run(t, f.g2, f.a.CheckRehire, CheckRehireInput{HRISID: f.id}, nil), ErrTypeRehireRefused)
	f.a.Policy = saved
	unchanged()

	// Ada (100): an entry Joinery did not create is never adopted.
	f.hr.workers["100"] = hris.Worker{ID: "100", Status: "Active", HireDate: "2026-12-15", TerminationDate: "2026-01-31"}
	adaBefore := rawEntry(t, f.url, adaDN)
	ae := requireAppType(t, f.run(t, RehireWorkflowID("100", 2), f.a.CheckRehire, CheckRehireInput{HRISID: "100"}, nil), ErrTypeNeedsOperator)
	var found ExistingAccount
	require.NoError(t, ae.Details(&found))
	require.Equal(t, adaDN, found.DN)
	require.Equal(t, adaBefore, rawEntry(t, f.url, adaDN))

	// A live (enabled) account of this person's joiner is not a leaver's.
	liveID := f.id + "1"
	acct, err := f.dir.Claim(context.Background(), "still.here"+liveID, directory.Person{EmployeeID: liveID, Owner: JoinerWorkflowID(liveID),
		OwnerRun: "run-g1", GivenName: "Still", Surname: "Here", DisplayName: "Still Here"})
	require.NoError(t, err)
	f.hr.workers[liveID] = hris.Worker{ID: liveID, Status: "Active", HireDate: "2026-12-15", TerminationDate: "2026-01-31"}
	liveBefore := rawEntry(t, f.url, acct.DN)
	ae = requireAppType(t, f.run(t, RehireWorkflowID(liveID, 2), f.a.CheckRehire, CheckRehireInput{HRISID: liveID}, nil), ErrTypeNeedsOperator)
	require.ErrorContains(t, ae, "not disabled")
	require.Equal(t, liveBefore, rawEntry(t, f.url, acct.DN))

	// A leaver whose memberships were never removed: re-enabling the entry
	// would give that access back before anyone approved it. Stopped, named,
	// nothing changed.
	staleID := f.id + "2"
	ctx := context.Background()
	stale, err := f.dir.Claim(ctx, "stale.groups"+staleID, directory.Person{EmployeeID: staleID, Owner: JoinerWorkflowID(staleID),
		OwnerRun: "run-g1", GivenName: "Stale", Surname: "Groups", DisplayName: "Stale Groups"})
	require.NoError(t, err)
	require.NoError(t, f.dir.AddMember(ctx, f.dir.GroupDN("engineering"), stale.DN, JoinerWorkflowID(staleID)))
	require.NoError(t, f.dir.Disable(ctx, stale.DN, JoinerWorkflowID(staleID)))
	f.hr.workers[staleID] = hris.Worker{ID: staleID, Status: "Active", HireDate: "2026-12-15", TerminationDate: "2026-01-31"}
	staleBefore := rawEntry(t, f.url, stale.DN)
	ae = requireAppType(t, f.run(t, RehireWorkflowID(staleID, 2), f.a.CheckRehire, CheckRehireInput{HRISID: staleID}, nil), ErrTypeNeedsOperator)
	require.ErrorContains(t, ae, "still a member of cn=engineering")
	require.Equal(t, staleBefore, rawEntry(t, f.url, stale.DN))
	// Once the memberships are gone, the rehire may go ahead.
	require.NoError(t, f.dir.RemoveMember(ctx, f.dir.GroupDN("engineering"), stale.DN, JoinerWorkflowID(staleID)))
	require.NoError(t, f.run(t, RehireWorkflowID(staleID, 2), f.a.CheckRehire, CheckRehireInput{HRISID: staleID}, nil))
}
