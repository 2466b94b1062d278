package workflows

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/joinery/joinery/activities"
	"github.com/joinery/joinery/internal/policy"
)

var t0 = time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)

// nhiFixture is a production pipeline owned by ada.lovelace, second
// approver grace.hopper, ending 2026-12-31.
func nhiFixture(t *testing.T) (*fixture, JoinerInput) {
	f := newFixture(t)
	f.worker = policy.Worker{HRISID: "nhi-deploy-bot-production", FirstName: "deploy-bot", Kind: policy.KindPipeline,
		Environment: "production", Purpose: "deploys", SponsorUsername: "ada.lovelace", ManagerUsername: "grace.hopper",
		HireDate: "2026-11-01", EndDate: "2026-12-31"}
	f.plan = policy.Plan{PolicyVersion: "test@sha256:nhi", Kind: policy.KindPipeline, OU: "service-accounts",
		Candidates: []string{"ci-deploybot"}, UsernameRules: []policy.CandidateRule{{Candidate: "ci-deploybot", Pattern: "ci-{first}", Rule: "naming.patterns[3]"}},
		Groups:    []policy.Grant{{Group: "ci-deployers", Rule: "ci-deployers"}},
		Approval:  policy.ApprovalPlan{Rule: "production-machine", Approver: "ada.lovelace", SecondApprover: "grace.hopper", Timeout: 7 * 24 * time.Hour},
		WriteBack: []string{"customAccessStatus"}, WriteBackTemplates: map[string]string{"customAccessStatus": "active"},
		HireDate: "2026-11-01", EndDate: "2026-12-31", MaxLifetime: 365 * 24 * time.Hour, ExpiryReminder: 14 * 24 * time.Hour,
		Owner: "ada.lovelace",
		Workload: &policy.WorkloadPlan{Grants: []policy.VaultGrant{{Path: "secret/data/workloads/deploy-bot/production/*", Capabilities: []string{"read"}}},
			TokenTTL: time.Hour, TokenMaxTTL: 4 * time.Hour, SecretIDNumUses: 1, SecretIDTTL: 24 * time.Hour, WrapTTL: 24 * time.Hour}}
	in := JoinerInput{HRISID: "nhi-deploy-bot-production", Kind: policy.KindPipeline, Source: "test",
		Request: &activities.NonHumanRequest{Name: "deploy-bot", SponsorID: "100", Environment: "production", Purpose: "deploys",
			StartDate: "2026-11-01", EndDate: "2026-12-31", Tools: []string{"kubectl apply"}}}
	return f, in
}

func (f *fixture) nhiMocks() {
	e := f.env
	e.OnActivity(f.acts.ResolveNonHuman, mock.Anything, mock.Anything).Return(f.worker, nil).Maybe()
	f.trustMocks()
	e.OnActivity(f.acts.PlanJoiner, mock.Anything, mock.Anything).Return(f.plan, nil).Maybe()
	e.OnActivity(f.acts.Notify, mock.Anything, mock.Anything).Run(func(a mock.Arguments) {
		n := a.Get(1).(activities.Notification)
		f.notes = append(f.notes, n.Kind+":"+n.To)
		if _, ok := f.asked[n.Kind]; !ok {
			f.asked[n.Kind] = f.env.Now()
		}
	}).Return(nil).Maybe()
	e.OnActivity(f.acts.ClaimAccount, mock.Anything, mock.Anything).Run(func(a mock.Arguments) {
		require.True(f.t, a.Get(1).(activities.ClaimInput).NonHuman, "non-human entries go to their own OU")
		f.calls = append(f.calls, "claim")
	}).Return(activities.ClaimResult{Username: "ci-deploybot", DN: "uid=ci-deploybot,ou=service-accounts,dc=joinery,dc=test"}, nil).Maybe()
	e.OnActivity(f.acts.GrantGroup, mock.Anything, mock.Anything).Run(f.record("grant")).Return(activities.GroupInput{}, nil).Maybe()
	e.OnActivity(f.acts.IssueWorkloadCredential, mock.Anything, mock.Anything).Run(f.record("approle")).
		Return(activities.WorkloadResult{RoleName: "joinery-nhi-deploy-bot-production", RoleID: "role-1", PolicyName: "joinery-nhi-nhi-deploy-bot-production",
			WrapAccessor: "acc", DeliveredTo: "ada.lovelace"}, nil).Maybe()
	e.OnActivity(f.acts.RevokeWorkload, mock.Anything, mock.Anything).Run(func(mock.Arguments) {
		f.calls = append(f.calls, "revoke:approle@"+f.env.Now().UTC().Format(time.DateOnly))
	}).Return(nil).Maybe()
	e.OnActivity(f.acts.RevokeGroup, mock.Anything, mock.Anything).Run(f.record("revoke:group")).Return(nil).Maybe()
	e.OnActivity(f.acts.DisableAccount, mock.Anything, mock.Anything).Run(f.record("revoke:disable")).Return(nil).Maybe()
	e.OnActivity(f.acts.WriteBack, mock.Anything, mock.Anything).Run(func(a mock.Arguments) {
		f.calls = append(f.calls, "writeback:"+a.Get(1).(activities.WriteBackInput).Want[AccessStatusField])
	}).Return(activities.WriteBackOutput{}, nil).Maybe()
}

func (f *fixture) runInput(in JoinerInput) (JoinerResult, error) {
	f.env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: JoinerWorkflowID(in.HRISID)})
	f.env.ExecuteWorkflow(Joiner, in)
	require.True(f.t, f.env.IsWorkflowCompleted())
	var res JoinerResult
	if err := f.env.GetWorkflowError(); err != nil {
		var ae *temporal.ApplicationError
		if ok := asAppErr(err, &ae); ok && ae.HasDetails() {
			require.NoError(f.t, ae.Details(&res))
		}
		return res, err
	}
	require.NoError(f.t, f.env.GetWorkflowResult(&res))
	return res, nil
}

func bothApprove(f *fixture) {
	f.signalAt(time.Hour, SignalApprove, ApprovalSignal{Approver: "ada.lovelace"})
	f.signalAt(2*time.Hour, SignalApprove, ApprovalSignal{Approver: "grace.hopper"})
}

func TestNonHumanSponsorMustBeActive(t *testing.T) {
	f, in := nhiFixture(t)
	f.env.OnActivity(f.acts.ResolveNonHuman, mock.Anything, mock.Anything).Return(policy.Worker{},
		temporal.NewNonRetryableApplicationError("sponsorId 102: the sponsor is not an active employee", activities.ErrTypeInvalidJoiner, nil))
	f.nhiMocks()
	res, err := f.runInput(in)
	require.Error(t, err)
	require.Equal(t, OutcomeFailed, res.Outcome)
	require.Contains(t, res.Error, "not an active employee")
	require.Empty(t, f.calls)
}

func TestNonHumanInputNeedsANonHumanKind(t *testing.T) {
	f, in := nhiFixture(t)
	in.Kind = policy.KindEmployee
	f.env.ExecuteWorkflow(Joiner, in)
	require.ErrorContains(t, f.env.GetWorkflowError(), "non-human kinds")
}

func TestNonHumanLifecycleUntilExpiry(t *testing.T) {
	f, in := nhiFixture(t)
	f.nhiMocks()
	bothApprove(f)
	f.env.RegisterDelayedCallback(func() {
		st := f.status()
		require.Equal(t, StageActive, st.Stage)
		require.Equal(t, "2026-12-31", st.EndDate)
		require.Equal(t, "ada.lovelace", st.Owner)
		require.Equal(t, "role-1", st.Workload.RoleID)
	}, 10*24*time.Hour)
	res, err := f.runInput(in)
	require.NoError(t, err)
	require.Equal(t, OutcomeExpired, res.Outcome)
	require.Equal(t, []string{"claim", "grant", "approle", "revoke:approle@2027-01-01", "revoke:group", "revoke:disable"}, f.calls,
		"no password, no HR write-back for a machine; revoked the day after its end date")
	require.Equal(t, time.Date(2026, 12, 18, 0, 0, 0, 0, time.UTC), f.asked["expiry-reminder"].UTC(), "reminded 14 days before")
	require.Equal(t, []string{"kubectl apply"}, res.Tools, "an agent's tools are on record")
	require.Len(t, res.Revoked, 3)
	for _, r := range res.Resources {
		require.NotNil(t, r.UndoneAt, r.Kind)
	}
}

func TestNonHumanExtensions(t *testing.T) {
	f, in := nhiFixture(t)
	f.nhiMocks()
	bothApprove(f)
	f.signalAt(5*24*time.Hour, SignalExtend, ExtendSignal{EndDate: "2027-03-31", By: "mallory"})
	f.signalAt(5*24*time.Hour+time.Minute, SignalExtend, ExtendSignal{EndDate: "2028-06-30", By: "ada.lovelace"})
	f.signalAt(5*24*time.Hour+2*time.Minute, SignalExtend, ExtendSignal{EndDate: "2027-01-31", By: "ada.lovelace", Comment: "migration slipped"})
	res, err := f.runInput(in)
	require.NoError(t, err)
	require.Equal(t, OutcomeExpired, res.Outcome)
	require.Equal(t, "2027-01-31", res.EndDate)
	require.Contains(t, f.calls, "revoke:approle@2027-02-01", "expiry moved with the accepted extension")
	var refused []string
	for _, d := range res.Approvals {
		if strings.HasPrefix(d.Via, "signal:extend") && d.Refused != "" {
			refused = append(refused, d.Refused)
		}
	}
	require.Len(t, refused, 2)
	require.Contains(t, refused[0], "only the owner")
	require.Contains(t, refused[1], "at most 365 days")
}

func TestNonHumanRevokedEarly(t *testing.T) {
	f, in := nhiFixture(t)
	f.nhiMocks()
	bothApprove(f)
	f.signalAt(3*24*time.Hour, SignalRevoke, RescindSignal{By: "security", Reason: "key leaked"})
	res, err := f.runInput(in)
	require.NoError(t, err)
	require.Equal(t, OutcomeRevoked, res.Outcome)
	require.Contains(t, f.calls, "revoke:approle@2026-11-04")
	require.Contains(t, res.Error, "key leaked")
}

func TestContractorExpiryWritesTheEndStateBack(t *testing.T) {
	f := newFixture(t)
	f.worker.Kind, f.worker.EndDate = policy.KindContractor, "2026-12-15"
	f.plan.Kind, f.plan.EndDate, f.plan.Owner = policy.KindContractor, "2026-12-15", "ada.lovelace"
	f.plan.MaxLifetime, f.plan.ExpiryReminder = 365*24*time.Hour, 7*24*time.Hour
	f.plan.WriteBack = append(f.plan.WriteBack, AccessStatusField)
	f.plan.WriteBackTemplates[AccessStatusField] = "active"
	var statuses []string
	f.onWriteBack = func(in activities.WriteBackInput) {
		statuses = append(statuses, in.Want[AccessStatusField]+"<-"+in.Expected[AccessStatusField])
	}
	f.happy()
	f.provisioning()
	f.env.OnActivity(f.acts.DisableAccount, mock.Anything, mock.Anything).Run(f.record("revoke:disable")).Return(nil)
	f.signalAt(provisionDelay()+time.Hour, SignalApprove, ApprovalSignal{Approver: "ada.lovelace"})
	res, err := f.run()
	require.NoError(t, err)
	require.Equal(t, OutcomeExpired, res.Outcome)
	require.Equal(t, []string{"active<-", "expired<-active"}, statuses, "written at provisioning, then the end state over Joinery's own value")
	require.Contains(t, f.calls, "undo:credential", "the initial credential is destroyed at expiry")
	require.Contains(t, f.calls, "revoke:disable")
}

func asAppErr(err error, target **temporal.ApplicationError) bool {
	return errors.As(err, target)
}
