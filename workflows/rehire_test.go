package workflows

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/joinery/joinery/activities"
	"github.com/joinery/joinery/internal/decision"
	"github.com/joinery/joinery/internal/policy"
)

const rehireDN = "uid=jose.nunez,ou=people,dc=joinery,dc=test"

var rehireG2 = RehireWorkflowID("200", 2)

func rehireCheck() activities.RehireCheck {
	return activities.RehireCheck{Kind: policy.KindEmployee, PreviousRun: "run-g1", Username: "jose.nunez",
		Plan: policy.RehirePlan{PreviousJoiner: "joiner-200", Joiner: rehireG2, DN: rehireDN, LeftOn: "2026-01-31", Mode: policy.RehireReenable}}
}

// rehireFixture is the joiner fixture for generation 2 of HR record 200,
// who left on 2026-01-31; the take-over and its undo are recorded.
func rehireFixture(t *testing.T) *fixture { return rehireFixtureClaim(t, nil) }

// rehireFixtureClaim is rehireFixture whose take-over fails with claimErr
// (nil: succeeds).
func rehireFixtureClaim(t *testing.T, claimErr error) *fixture {
	f := newFixture(t)
	f.worker.EndDate = "2026-01-31" // HR's termination date: the leaving
	f.env.OnActivity(f.acts.CheckRehire, mock.Anything, mock.Anything).Run(f.record("check-rehire")).Return(rehireCheck(), nil).Maybe()
	f.env.OnActivity(f.acts.ClaimRehire, mock.Anything, mock.Anything).Run(func(a mock.Arguments) {
		in := a.Get(1).(activities.ClaimRehireInput)
		require.Equal(t, rehireCheck().Plan, in.Rehire)
		require.NotEmpty(t, in.Approvals, "the take-over carries the approvals")
		f.calls = append(f.calls, "take-over")
	}).Return(func(context.Context, activities.ClaimRehireInput) (activities.ClaimResult, error) {
		if claimErr != nil {
			return activities.ClaimResult{}, claimErr
		}
		return activities.ClaimResult{Username: "jose.nunez", DN: rehireDN}, nil
	}).Maybe()
	f.env.OnActivity(f.acts.UndoRehire, mock.Anything, mock.Anything).Run(func(a mock.Arguments) {
		in := a.Get(1).(activities.UndoRehireInput)
		require.Equal(t, rehireCheck().Plan, in.Rehire)
		require.Equal(t, "run-g1", in.PreviousRun)
		f.calls = append(f.calls, "undo:rehire")
	}).Return(nil).Maybe()
	return f
}

// rehirePlan is the plan the rehire joiner hashes: the policy's plan plus
// the rehire.
func (f *fixture) rehirePlan() policy.Plan {
	p := f.plan
	rh := rehireCheck().Plan
	p.Rehire = &rh
	return p
}

// approveRehire signs an approval of plan for the g2 run as the inbox does.
func (f *fixture) approveRehire(at time.Duration, plan policy.Plan) {
	f.env.RegisterDelayedCallback(func() {
		h, err := decision.PlanHash(plan)
		require.NoError(f.t, err)
		d := decision.Decision{WorkflowID: rehireG2, RunID: "default-test-run-id", PlanHash: h, PolicyVersion: plan.PolicyVersion,
			Approver: "ada.lovelace", Action: decision.ActionApprove, IssuedAt: f.env.Now(), Nonce: nonce(), Via: "test-inbox"}
		f.env.SignalWorkflow(SignalApprove, ApprovalSignal{Signed: f.sign(d)})
	}, at)
}

func (f *fixture) runAs(id string, in JoinerInput) (JoinerResult, error) {
	f.env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: id})
	f.env.ExecuteWorkflow(Joiner, in)
	require.True(f.t, f.env.IsWorkflowCompleted())
	var res JoinerResult
	err := f.env.GetWorkflowError()
	if err == nil {
		require.NoError(f.t, f.env.GetWorkflowResult(&res))
		return res, nil
	}
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) && ae.HasDetails() {
		_ = ae.Details(&res)
	}
	return res, err
}

func TestRehireReenablesTheOldEntry(t *testing.T) {
	f := rehireFixture(t)
	f.happy()
	f.provisioning()
	f.env.OnActivity(f.acts.PlanJoiner, mock.Anything, mock.Anything).Run(func(a mock.Arguments) {
		require.Empty(t, a.Get(1).(policy.Worker).EndDate, "the leaving date is not an end of the new access")
	}).Return(f.plan, nil)
	f.env.RegisterDelayedCallback(func() {
		st := f.status()
		require.Equal(t, StageAwaitingApproval, st.Stage)
		require.NotNil(t, st.Plan.Rehire, "the approver sees the rehire")
		require.Equal(t, rehireDN, st.Plan.Rehire.DN)
		want, err := decision.PlanHash(f.rehirePlan())
		require.NoError(t, err)
		require.Equal(t, want, st.PlanHash, "the plan hash covers the rehire")
	}, provisionDelay()+30*time.Minute)
	f.approveRehire(provisionDelay()+time.Hour, f.rehirePlan())
	res, err := f.runAs(rehireG2, JoinerInput{HRISID: "200", Source: "cli", Rehire: true})
	require.NoError(t, err)
	require.Equal(t, OutcomeCompleted, res.Outcome)
	require.Equal(t, rehireDN, res.DN)
	require.Equal(t, []string{"check-rehire", "take-over", "grant:all-staff", "grant:engineering", "credential", "writeback"}, f.calls)
	require.Equal(t, "ldap-rehire", res.Resources[0].Kind)
}

// A rescind after the take-over rolls back: groups and credential off,
// the entry re-disabled and handed back — never deleted.
func TestRehireRescindHandsTheEntryBack(t *testing.T) {
	f := rehireFixture(t)
	f.happy()
	f.credDelay = 10 * time.Minute
	f.provisioning()
	f.approveRehire(provisionDelay()+time.Hour, f.rehirePlan())
	f.signalAt(provisionDelay()+time.Hour+5*time.Minute, SignalRescind, RescindSignal{By: "hr.partner"})
	res, err := f.runAs(rehireG2, JoinerInput{HRISID: "200", Source: "cli", Rehire: true})
	require.NoError(t, err)
	require.Equal(t, OutcomeRescinded, res.Outcome)
	// The steps run to the last, then all of it is undone (localsteps.go).
	require.Equal(t, []string{"check-rehire", "take-over", "grant:all-staff", "grant:engineering", "credential", "writeback",
		"undo:writeback", "undo:credential", "undo:group:engineering", "undo:group:all-staff", "undo:rehire"}, f.calls)
	require.NotContains(t, f.calls, "undo:account")
	for _, r := range res.Resources {
		require.NotNil(t, r.UndoneAt, r.Kind)
	}
}

// A failure of the take-over itself (a concurrent rehire won) still runs
// its idempotent undo, and nothing after it happens.
func TestRehireLostTakeOverCreatesNothing(t *testing.T) {
	f := rehireFixtureClaim(t, temporal.NewNonRetryableApplicationError("taken over by another", activities.ErrTypeNotOwner, nil))
	f.happy()
	f.provisioning()
	f.approveRehire(provisionDelay()+time.Hour, f.rehirePlan())
	res, err := f.runAs(rehireG2, JoinerInput{HRISID: "200", Source: "cli", Rehire: true})
	require.Error(t, err)
	require.Equal(t, OutcomeFailed, res.Outcome)
	require.Equal(t, []string{"check-rehire", "take-over", "undo:rehire"}, f.calls)
}

// An approval signed for the plan without the rehire (what an approver saw
// for some other joiner, or a plan a rogue showed) does not count: the
// approver must have signed for re-enabling this entry.
func TestRehireApprovalMustCoverTheRehire(t *testing.T) {
	f := rehireFixture(t)
	f.happy()
	f.provisioning()
	f.approveRehire(provisionDelay()+time.Hour, f.plan)
	res, err := f.runAs(rehireG2, JoinerInput{HRISID: "200", Source: "cli", Rehire: true})
	require.NoError(t, err)
	require.Equal(t, OutcomeRejected, res.Outcome, "nobody approved this plan: it times out")
	require.Equal(t, []string{"check-rehire"}, f.calls)
}

// Never implicitly: a plain start under a generation ID, the rehire flag
// under a plain ID or another person's generation, and a rehire the
// directory says needs an operator, all stop before any change.
func TestRehireStartRefusals(t *testing.T) {
	for name, tc := range map[string]struct {
		id    string
		in    JoinerInput
		calls []string
	}{
		"plain start, generation ID": {rehireG2, JoinerInput{HRISID: "200"}, nil},
		"rehire flag, plain ID":      {JoinerWorkflowID("200"), JoinerInput{HRISID: "200", Rehire: true}, nil},
		"another person's ID":        {RehireWorkflowID("201", 2), JoinerInput{HRISID: "200", Rehire: true}, nil},
	} {
		t.Run(name, func(t *testing.T) {
			f := rehireFixture(t)
			f.happy()
			f.provisioning()
			res, err := f.runAs(tc.id, tc.in)
			require.Error(t, err)
			require.Equal(t, OutcomeFailed, res.Outcome)
			require.Equal(t, tc.calls, f.calls)
		})
	}
	t.Run("needs an operator", func(t *testing.T) {
		f := newFixture(t)
		f.happy()
		f.provisioning()
		f.env.OnActivity(f.acts.CheckRehire, mock.Anything, mock.Anything).Run(f.record("check-rehire")).Return(activities.RehireCheck{},
			temporal.NewNonRetryableApplicationError("not disabled", activities.ErrTypeNeedsOperator, nil, activities.ExistingAccount{DN: rehireDN}))
		res, err := f.runAs(rehireG2, JoinerInput{HRISID: "200", Rehire: true})
		require.Error(t, err)
		require.Equal(t, OutcomeFailed, res.Outcome)
		require.Contains(t, res.Error, "not disabled")
		require.Equal(t, []string{"check-rehire"}, f.calls)
	})
}
