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
	"go.temporal.io/sdk/testsuite"

	"github.com/joinery/joinery/activities"
	"github.com/joinery/joinery/internal/decision"
	"github.com/joinery/joinery/internal/policy"
)

// fixture drives one joiner in the test environment with mocked activities.
type fixture struct {
	t      *testing.T
	env    *testsuite.TestWorkflowEnvironment
	acts   *activities.Activities
	worker policy.Worker
	plan   policy.Plan
	calls  []string
	// notes records notifications as kind:to; asked is when each kind first went out.
	notes []string
	asked map[string]time.Time
	// credDelay makes IssueCredential take that long (to land signals mid-step).
	credDelay time.Duration
	// onWriteBack, when set, sees every WriteBack input.
	onWriteBack func(activities.WriteBackInput)
	// claimedAt is when ClaimAccount ran.
	claimedAt time.Time
	// signer is the test's approval inbox; inactive lists people the live
	// standing check reports as gone.
	signer   *decision.FileSigner
	inactive map[string]string
	// verifyContinued answers VerifyContinued (nil: the previous run was
	// the joiner's own); verified counts the checks.
	verifyContinued func(activities.VerifyContinuedInput) error
	verified        int
}

const testHire = "2026-12-01"

func newFixture(t *testing.T) *fixture {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	// Start "now" well before the provisioning date (hire - 7 days).
	env.SetStartTime(time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC))
	f := &fixture{t: t, env: env, acts: &activities.Activities{}, asked: map[string]time.Time{},
		signer: testSigner(t), inactive: map[string]string{}}
	f.worker = policy.Worker{HRISID: "200", FirstName: "José", LastName: "Ñúñez", Department: "Engineering",
		Location: "DE-Berlin", ManagerUsername: "ada.lovelace", ManagersManagerUsername: "grace.hopper",
		HireDate: testHire, Kind: policy.KindEmployee}
	f.plan = policy.Plan{
		PolicyVersion: "test@sha256:abc", Kind: policy.KindEmployee,
		Candidates: []string{"jose.nunez", "jnunez", "jose.nunez2"},
		UsernameRules: []policy.CandidateRule{{Candidate: "jose.nunez", Pattern: "{first}.{last}", Rule: "naming.patterns[0]"},
			{Candidate: "jnunez", Pattern: "{f}{last}", Rule: "naming.patterns[1]"}, {Candidate: "jose.nunez2", Pattern: "{first}.{last}{n}", Rule: "naming.counter", N: 2}},
		Groups:     []policy.Grant{{Group: "all-staff", Rule: "everyone"}, {Group: "engineering", Rule: "eng", Condition: `worker.department == "Engineering"`}},
		Attributes: map[string]string{"mail": "{username}@joinery.test"},
		Approval: policy.ApprovalPlan{Approver: "ada.lovelace", EscalateTo: "grace.hopper", Rule: "manager",
			ReminderAfter: 24 * time.Hour, EscalateAfter: 72 * time.Hour, Timeout: 7 * 24 * time.Hour},
		WriteBack:          []string{"customUsername", "workEmail"},
		WriteBackTemplates: map[string]string{"workEmail": "{username}@joinery.test", "customUsername": "{username}"},
		ProvisionLeadDays:  7, CredentialTTL: 72 * time.Hour,
	}
	env.RegisterActivity(f.acts)
	env.RegisterActivity(&activities.Eligibility{})
	// The HR record is a pending hire of the kind asked for (the
	// eligibility rules have tests of their own in activities).
	env.OnActivity((&activities.Eligibility{}).CheckEligible, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.CheckEligibleInput) (activities.EligibleResult, error) {
			if in.Kind == "" {
				return activities.EligibleResult{Kind: policy.KindEmployee}, nil
			}
			return activities.EligibleResult{Kind: in.Kind}, nil
		}).Maybe()
	// A continued run checks its previous run with Temporal
	// (activities/continued_integration_test.go checks against the server).
	env.OnActivity(f.acts.VerifyContinued, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.VerifyContinuedInput) error {
			f.verified++
			if f.verifyContinued != nil {
				return f.verifyContinued(in)
			}
			return nil
		}).Maybe()
	return f
}

func (f *fixture) record(name string) func(mock.Arguments) {
	return func(mock.Arguments) { f.calls = append(f.calls, name) }
}

// happy mocks every activity to succeed; tests override what they need.
func (f *fixture) happy() {
	e := f.env
	e.OnActivity(f.acts.FetchJoiner, mock.Anything, mock.Anything).Return(f.worker, nil).Maybe()
	e.OnActivity(f.acts.PlanJoiner, mock.Anything, mock.Anything).Return(f.plan, nil).Maybe()
	e.OnActivity(f.acts.SnapshotHRIS, mock.Anything, mock.Anything).Return(map[string]string{"workEmail": "", "customUsername": ""}, nil).Maybe()
	f.trustMocks()
	e.OnActivity(f.acts.Notify, mock.Anything, mock.Anything).Run(func(a mock.Arguments) {
		n := a.Get(1).(activities.Notification)
		f.notes = append(f.notes, n.Kind+":"+n.To)
		if _, ok := f.asked[n.Kind]; !ok {
			f.asked[n.Kind] = f.env.Now()
		}
	}).Return(nil).Maybe()
}

func (f *fixture) provisioning() {
	e := f.env
	e.OnActivity(f.acts.ClaimAccount, mock.Anything, mock.Anything).Run(func(mock.Arguments) {
		f.calls = append(f.calls, "claim")
		f.claimedAt = f.env.Now()
	}).Return(activities.ClaimResult{Username: "jose.nunez", DN: "uid=jose.nunez,ou=people,dc=joinery,dc=test"}, nil).Maybe()
	e.OnActivity(f.acts.GrantGroup, mock.Anything, mock.Anything).Run(func(a mock.Arguments) {
		f.calls = append(f.calls, "grant:"+a.Get(1).(activities.GroupInput).Group)
	}).Return(func(_ context.Context, in activities.GroupInput) (activities.GroupInput, error) { return in, nil }).Maybe()
	e.OnActivity(f.acts.IssueCredential, mock.Anything, mock.Anything).Run(f.record("credential")).After(f.credDelay).
		Return(activities.CredentialResult{Path: "joinery/joiners/200/initial-credential", Version: 1, WrapAccessor: "acc-1", DeliveredTo: "ada.lovelace"}, nil).Maybe()
	e.OnActivity(f.acts.WriteBack, mock.Anything, mock.Anything).Run(func(a mock.Arguments) {
		f.calls = append(f.calls, "writeback")
		if f.onWriteBack != nil {
			f.onWriteBack(a.Get(1).(activities.WriteBackInput))
		}
	}).Return(activities.WriteBackOutput{Written: []string{"customUsername", "workEmail"}}, nil).Maybe()
	f.compensations(nil)
}

func (f *fixture) compensations(err error) {
	e := f.env
	e.OnActivity(f.acts.DeleteAccount, mock.Anything, mock.Anything).Run(f.record("undo:account")).Return(err).Maybe()
	e.OnActivity(f.acts.RevokeGroup, mock.Anything, mock.Anything).Run(func(a mock.Arguments) {
		f.calls = append(f.calls, "undo:group:"+a.Get(1).(activities.GroupInput).Group)
	}).Return(nil).Maybe()
	e.OnActivity(f.acts.RevokeCredential, mock.Anything, mock.Anything).Run(f.record("undo:credential")).Return(nil).Maybe()
	e.OnActivity(f.acts.UndoWriteBack, mock.Anything, mock.Anything).Run(f.record("undo:writeback")).Return(nil).Maybe()
}

// signalAt sends a signal after d. An approval or extension given as a
// name (ApprovalSignal{Approver: ...}, ExtendSignal{By: ...}) is signed by
// the test inbox as that person at the moment it is sent; raw{...} sends a
// payload exactly as given (unsigned, forged, ...).
func (f *fixture) signalAt(d time.Duration, name string, payload any) {
	f.env.RegisterDelayedCallback(func() { f.signal(name, payload) }, d)
}

// provisionAt is when the joiner asks for approval: hire date - lead days.
func provisionDelay() time.Duration {
	return time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC).Sub(time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC))
}

func (f *fixture) run() (JoinerResult, error) {
	f.env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: JoinerWorkflowID("200")})
	f.env.ExecuteWorkflow(Joiner, JoinerInput{HRISID: "200", Source: "test"})
	require.True(f.t, f.env.IsWorkflowCompleted())
	var res JoinerResult
	err := f.env.GetWorkflowError()
	if err == nil {
		require.NoError(f.t, f.env.GetWorkflowResult(&res))
		return res, nil
	}
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) && ae.HasDetails() {
		require.NoError(f.t, ae.Details(&res))
	}
	return res, err
}

func (f *fixture) status() Status {
	v, err := f.env.QueryWorkflow(QueryStatus)
	require.NoError(f.t, err)
	var st Status
	require.NoError(f.t, v.Get(&st))
	return st
}

func TestJoinerApprovedProvisionsEverything(t *testing.T) {
	f := newFixture(t)
	f.happy()
	f.provisioning()
	f.env.RegisterDelayedCallback(func() {
		st := f.status()
		require.Equal(t, StageAwaitingApproval, st.Stage)
		require.Equal(t, "test@sha256:abc", st.PolicyVersion)
		require.Equal(t, []string{"jose.nunez", "jnunez", "jose.nunez2"}, st.Plan.Candidates, "the approver can read the plan")
		f.signal(SignalApprove, ApprovalSignal{Approver: "ada.lovelace", Comment: "welcome"})
	}, provisionDelay()+time.Hour)
	res, err := f.run()
	require.NoError(t, err)
	require.Equal(t, OutcomeCompleted, res.Outcome)
	require.Equal(t, "jose.nunez", res.Username)
	require.Equal(t, "{first}.{last} (naming.patterns[0])", res.UsernameRule)
	require.Equal(t, []string{"all-staff", "engineering"}, res.Groups)
	require.Equal(t, "test@sha256:abc", res.PolicyVersion, "the final state names its policy version")
	require.Equal(t, "acc-1", res.Credential.WrapAccessor)
	require.Equal(t, []string{"claim", "grant:all-staff", "grant:engineering", "credential", "writeback"}, f.calls)
	require.Len(t, res.Approvals, 1)
	require.True(t, res.Approvals[0].Approved)
	require.Len(t, res.Resources, 5, "entry, two memberships, secret, HR fields")
	for _, r := range res.Resources {
		require.Nil(t, r.UndoneAt)
	}
}

func TestJoinerRejectedCreatesNothing(t *testing.T) {
	f := newFixture(t)
	f.happy()
	f.provisioning()
	f.signalAt(provisionDelay()+time.Hour, SignalReject, ApprovalSignal{Approver: "ada.lovelace", Comment: "position closed"})
	res, err := f.run()
	require.NoError(t, err)
	require.Equal(t, OutcomeRejected, res.Outcome)
	require.Empty(t, f.calls, "no side effect may run without approval")
	require.Contains(t, res.Error, "rejected by ada.lovelace")
}

func TestJoinerApprovalTimeoutRejects(t *testing.T) {
	f := newFixture(t)
	f.happy()
	f.provisioning()
	res, err := f.run()
	require.NoError(t, err)
	require.Equal(t, OutcomeRejected, res.Outcome)
	require.Equal(t, "timeout", res.Approvals[0].Via)
	require.Empty(t, f.calls)
	require.Equal(t, []string{"approval-request:ada.lovelace", "reminder:ada.lovelace", "escalation:grace.hopper"}, f.notes)
}

func TestJoinerEscalationLetsTheManagersManagerDecide(t *testing.T) {
	f := newFixture(t)
	f.happy()
	f.provisioning()
	// Before escalation grace.hopper is not an approver: refused, recorded.
	f.signalAt(provisionDelay()+time.Hour, SignalApprove, ApprovalSignal{Approver: "grace.hopper"})
	// After 72h she is.
	f.signalAt(provisionDelay()+73*time.Hour, SignalApprove, ApprovalSignal{Approver: "grace.hopper", Comment: "covering for Ada"})
	res, err := f.run()
	require.NoError(t, err)
	require.Equal(t, OutcomeCompleted, res.Outcome)
	require.Len(t, res.Approvals, 2)
	require.NotEmpty(t, res.Approvals[0].Refused)
	require.Equal(t, "grace.hopper", res.Approvals[1].Approver)
	require.Empty(t, res.Approvals[1].Refused)
}

func TestJoinerWrongApproverIsRefusedAndRecorded(t *testing.T) {
	f := newFixture(t)
	f.happy()
	f.provisioning()
	f.signalAt(provisionDelay()+time.Hour, SignalApprove, ApprovalSignal{Approver: "mallory"})
	f.signalAt(provisionDelay()+2*time.Hour, SignalApprove, ApprovalSignal{Approver: ""})
	f.env.RegisterDelayedCallback(func() {
		st := f.status()
		require.Equal(t, StageAwaitingApproval, st.Stage, "a refused approval changes nothing")
		require.Len(t, st.Approvals, 2)
		f.signal(SignalApprove, ApprovalSignal{Approver: "ADA.LOVELACE"})
	}, provisionDelay()+3*time.Hour)
	res, err := f.run()
	require.NoError(t, err)
	require.Equal(t, OutcomeCompleted, res.Outcome)
	require.Contains(t, res.Approvals[0].Refused, "not an approver")
	require.Contains(t, res.Approvals[1].Refused, "unsigned")
}

func TestJoinerDecideUpdate(t *testing.T) {
	f := newFixture(t)
	f.happy()
	f.provisioning()
	f.env.RegisterDelayedCallback(func() {
		f.env.UpdateWorkflow(UpdateDecide, "u1", &testsuite.TestUpdateCallback{
			OnReject:   func(err error) { require.ErrorContains(t, err, "not an approver") },
			OnAccept:   func() { t.Fatal("mallory's signed decision must be refused by the validator") },
			OnComplete: func(any, error) {},
		}, f.signed(ApprovalSignal{Approver: "mallory", Approve: true}))
		f.env.UpdateWorkflow(UpdateDecide, "u2", &testsuite.TestUpdateCallback{
			OnReject:   func(err error) { require.ErrorContains(t, err, "unsigned") },
			OnAccept:   func() { t.Fatal("an unsigned update must be rejected by the validator") },
			OnComplete: func(any, error) {},
		}, ApprovalSignal{Approver: "ada.lovelace", Approve: true})
		f.env.UpdateWorkflow(UpdateDecide, "u3", &testsuite.TestUpdateCallback{
			OnReject: func(err error) { t.Fatalf("rejected: %v", err) },
			OnAccept: func() {},
			OnComplete: func(out any, err error) {
				require.NoError(t, err)
				require.Equal(t, "approved", out)
			},
		}, f.signed(ApprovalSignal{Approver: "ada.lovelace", Approve: true}))
	}, provisionDelay()+time.Hour)
	res, err := f.run()
	require.NoError(t, err)
	require.Equal(t, OutcomeCompleted, res.Outcome)
	require.Len(t, res.Approvals, 1, "validator-refused updates never reach history or state")
	require.Equal(t, "update/test-inbox", res.Approvals[0].Via)
	require.Equal(t, "u3", res.Approvals[0].UpdateID)
	decidedAt := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC).Add(provisionDelay() + time.Hour)
	require.Less(t, f.claimedAt.Sub(decidedAt), time.Minute, "provisioning starts as soon as the update decides, not at the next reminder")
}

func TestJoinerRescindBeforeAccountsExist(t *testing.T) {
	f := newFixture(t)
	f.happy()
	f.provisioning()
	f.signalAt(2*time.Hour, SignalRescind, RescindSignal{By: "hr.partner", Reason: "offer withdrawn"})
	res, err := f.run()
	require.NoError(t, err)
	require.Equal(t, OutcomeRescinded, res.Outcome)
	require.Empty(t, f.calls)
}

func TestJoinerRescindAfterAccountsExistRollsBack(t *testing.T) {
	f := newFixture(t)
	f.happy()
	// The rescind lands while the credential is being issued.
	f.credDelay = 10 * time.Minute
	f.provisioning()
	f.signalAt(provisionDelay()+time.Hour, SignalApprove, ApprovalSignal{Approver: "ada.lovelace"})
	f.signalAt(provisionDelay()+time.Hour+5*time.Minute, SignalRescind, RescindSignal{By: "hr.partner"})
	res, err := f.run()
	require.NoError(t, err)
	require.Equal(t, OutcomeRescinded, res.Outcome)
	// The steps run to the last (the write-back too), then all of it is
	// undone: a rescind is acted on after the last step (localsteps.go).
	require.Equal(t, []string{"claim", "grant:all-staff", "grant:engineering", "credential", "writeback",
		"undo:writeback", "undo:credential", "undo:group:engineering", "undo:group:all-staff", "undo:account"}, f.calls)
	for _, r := range res.Resources {
		require.NotNil(t, r.UndoneAt, r.Kind)
	}
}

// A failure injected after each side effect undoes what came before, in
// reverse order (the failing step's own compensation runs too: it is
// registered first and is idempotent); on the local path, after the claim,
// the undos of the steps not yet run too (registered ahead).
func TestJoinerFailureAfterEachStepCompensatesInReverse(t *testing.T) {
	boom := temporal.NewNonRetryableApplicationError("injected", activities.ErrTypeInjectedFault, nil)
	cases := []struct {
		step string
		want []string
	}{
		// Once the claim succeeded, every undo the plan may need is
		// registered ahead (localsteps.go, registerAhead): a failure undoes
		// all of it, in reverse order; undoing what was never made changes
		// nothing.
		{"claim", []string{"claim", "undo:account"}},
		{"grant", []string{"claim", "grant:all-staff",
			"undo:writeback", "undo:credential", "undo:group:engineering", "undo:group:all-staff", "undo:account"}},
		{"credential", []string{"claim", "grant:all-staff", "grant:engineering", "credential",
			"undo:writeback", "undo:credential", "undo:group:engineering", "undo:group:all-staff", "undo:account"}},
		{"writeback", []string{"claim", "grant:all-staff", "grant:engineering", "credential", "writeback",
			"undo:writeback", "undo:credential", "undo:group:engineering", "undo:group:all-staff", "undo:account"}},
	}
	for _, tc := range cases {
		t.Run(tc.step, func(t *testing.T) {
			f := newFixture(t)
			f.happy()
			f.signalAt(provisionDelay()+time.Hour, SignalApprove, ApprovalSignal{Approver: "ada.lovelace"})
			e := f.env
			fail := func(step string) error {
				if step == tc.step {
					return boom
				}
				return nil
			}
			e.OnActivity(f.acts.ClaimAccount, mock.Anything, mock.Anything).Run(f.record("claim")).
				Return(activities.ClaimResult{Username: "jose.nunez", DN: "uid=jose.nunez"}, fail("claim"))
			grants := 0
			e.OnActivity(f.acts.GrantGroup, mock.Anything, mock.Anything).Run(func(a mock.Arguments) {
				f.calls = append(f.calls, "grant:"+a.Get(1).(activities.GroupInput).Group)
			}).Return(func(_ context.Context, in activities.GroupInput) (activities.GroupInput, error) {
				grants++
				if grants == 1 {
					return activities.GroupInput{}, fail("grant")
				}
				return in, nil
			}).Maybe()
			e.OnActivity(f.acts.IssueCredential, mock.Anything, mock.Anything).Run(f.record("credential")).
				Return(activities.CredentialResult{Path: "p", Version: 1}, fail("credential")).Maybe()
			e.OnActivity(f.acts.WriteBack, mock.Anything, mock.Anything).Run(f.record("writeback")).
				Return(activities.WriteBackOutput{}, fail("writeback")).Maybe()
			f.compensations(nil)
			res, err := f.run()
			require.Error(t, err)
			var ae *temporal.ApplicationError
			require.ErrorAs(t, err, &ae)
			require.Equal(t, ErrTypeJoinerFailed, ae.Type())
			require.Equal(t, OutcomeFailed, res.Outcome)
			require.Equal(t, tc.want, f.calls)
			require.NotEmpty(t, res.Undone)
		})
	}
}

// A compensation that keeps failing never becomes a silent leftover and is
// never given up: the joiner shows CompensationStuck after the policy's
// threshold, keeps retrying with back-off (or at once when an operator
// sends retry-compensations), and closes only once everything is undone.
func TestJoinerCompensationThatKeepsFailingIsRetriedUntilItSucceeds(t *testing.T) {
	f := newFixture(t)
	f.plan.CompensationStuckAfter = 30 * time.Minute
	f.happy()
	f.signalAt(provisionDelay()+time.Hour, SignalApprove, ApprovalSignal{Approver: "ada.lovelace"})
	e := f.env
	e.OnActivity(f.acts.ClaimAccount, mock.Anything, mock.Anything).Return(activities.ClaimResult{Username: "u", DN: "uid=u"}, nil)
	e.OnActivity(f.acts.GrantGroup, mock.Anything, mock.Anything).Return(activities.GroupInput{},
		temporal.NewNonRetryableApplicationError("schema", "DirectorySchemaViolation", nil))
	e.OnActivity(f.acts.RevokeGroup, mock.Anything, mock.Anything).Return(nil)
	// Registered ahead on the local path (localsteps.go): nothing to undo.
	e.OnActivity(f.acts.RevokeCredential, mock.Anything, mock.Anything).Return(nil)
	e.OnActivity(f.acts.UndoWriteBack, mock.Anything, mock.Anything).Return(nil)
	ldapBack := false
	deletes := 0
	e.OnActivity(f.acts.DeleteAccount, mock.Anything, mock.Anything).Return(func(context.Context, activities.AccountRef) error {
		deletes++
		if !ldapBack {
			return errors.New("ldap down")
		}
		return nil
	})
	var stuck Status
	f.env.RegisterDelayedCallback(func() {
		stuck = f.status()
		ldapBack = true
		f.env.SignalWorkflow(SignalRetryCompensations, nil)
	}, provisionDelay()+3*24*time.Hour)
	res, err := f.run()
	require.Equal(t, StageCompensationStuck, stuck.Stage, "after the threshold the joiner says it is stuck")
	require.NotNil(t, stuck.StuckSince)
	require.Positive(t, stuck.UndoAttempts)
	require.Error(t, err)
	var ae *temporal.ApplicationError
	require.ErrorAs(t, err, &ae)
	require.Equal(t, ErrTypeJoinerFailed, ae.Type(), "it ends as a rolled-back failure, not as residue")
	require.Equal(t, OutcomeFailed, res.Outcome)
	require.Contains(t, res.Undone, "delete directory entry")
	require.Greater(t, deletes, 15, "it kept trying well past one activity's retry budget")
	for _, r := range res.Resources {
		require.NotNil(t, r.UndoneAt, "%s %s is undone", r.Kind, r.ID)
	}
}

// The HR record decides the start date: a start-date signal makes the
// joiner re-read it. HR moved it, so the timer moves; a signal naming a date
// HR does not have (anyone with Temporal access can send one) moves nothing.
func TestJoinerStartDateChangeMovesTheTimer(t *testing.T) {
	f := newFixture(t)
	hrDate := testHire
	f.env.OnActivity(f.acts.FetchJoiner, mock.Anything, mock.Anything).Return(
		func(context.Context, activities.FetchInput) (policy.Worker, error) {
			w := f.worker
			w.HireDate = hrDate
			return w, nil
		})
	f.happy()
	f.provisioning()
	f.env.RegisterDelayedCallback(func() {
		hrDate = "2026-12-15" // HR moves the date, then its webhook signals
		f.signal(SignalStartDateChange, StartDateSignal{HireDate: "2026-12-15", By: "hr"})
	}, time.Hour)
	f.signalAt(time.Hour+time.Minute, SignalStartDateChange, StartDateSignal{HireDate: "2026-11-02", By: "mallory"})
	f.signalAt(time.Hour+2*time.Minute, SignalStartDateChange, StartDateSignal{HireDate: "not-a-date", By: "hr"})
	// Approve well after the new provisioning date (Dec 8).
	f.signalAt(40*24*time.Hour, SignalApprove, ApprovalSignal{Approver: "ada.lovelace"})
	res, err := f.run()
	require.NoError(t, err)
	require.Equal(t, OutcomeCompleted, res.Outcome)
	require.Equal(t, time.Date(2026, 12, 8, 0, 0, 0, 0, time.UTC), f.asked["approval-request"].UTC(), "approval is asked on the moved provisioning date")
}

func TestJoinerInvalidInputChangesNothing(t *testing.T) {
	for _, id := range []string{"", "../etc", "a b", string(make([]byte, 80))} {
		f := newFixture(t)
		f.env.ExecuteWorkflow(Joiner, JoinerInput{HRISID: id})
		err := f.env.GetWorkflowError()
		var ae *temporal.ApplicationError
		require.ErrorAs(t, err, &ae, "id %q", id)
		require.Equal(t, ErrTypeInvalidInput, ae.Type())
	}
	f := newFixture(t)
	f.env.ExecuteWorkflow(Joiner, JoinerInput{HRISID: "200", Kind: "robot"})
	require.ErrorContains(t, f.env.GetWorkflowError(), `kind "robot"`)
}

func TestJoinerPolicyValidationFailureCreatesNothing(t *testing.T) {
	f := newFixture(t)
	f.env.OnActivity(f.acts.FetchJoiner, mock.Anything, mock.Anything).Return(f.worker, nil)
	f.env.OnActivity(f.acts.PlanJoiner, mock.Anything, mock.Anything).Return(policy.Plan{},
		temporal.NewNonRetryableApplicationError("worker.hireDate: required", activities.ErrTypeInvalidJoiner, nil))
	f.provisioning()
	res, err := f.run()
	require.Error(t, err)
	require.Equal(t, OutcomeFailed, res.Outcome)
	require.Contains(t, res.Error, "worker.hireDate")
	require.Empty(t, f.calls)
	require.Empty(t, res.Undone)
}

func TestJoinerSecondApproverIsRequired(t *testing.T) {
	cases := []struct {
		name    string
		signals []ApprovalSignal
		outcome string
		refused int
	}{
		{"both approve", []ApprovalSignal{{Approver: "ada.lovelace", Approve: true}, {Approver: "alan.turing", Approve: true}}, OutcomeCompleted, 0},
		{"second first, then approver", []ApprovalSignal{{Approver: "alan.turing", Approve: true}, {Approver: "ada.lovelace", Approve: true}}, OutcomeCompleted, 0},
		{"one person cannot approve twice", []ApprovalSignal{{Approver: "ada.lovelace", Approve: true}, {Approver: "ada.lovelace", Approve: true}, {Approver: "alan.turing", Approve: true}}, OutcomeCompleted, 1},
		{"second approver rejects", []ApprovalSignal{{Approver: "ada.lovelace", Approve: true}, {Approver: "alan.turing"}}, OutcomeRejected, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.plan.Approval.SecondApprover = "alan.turing"
			f.happy()
			f.provisioning()
			for i, s := range tc.signals {
				name := SignalReject
				if s.Approve {
					name = SignalApprove
				}
				f.signalAt(provisionDelay()+time.Duration(i+1)*time.Hour, name, s)
			}
			// After only the first approval nothing may be provisioned.
			f.env.RegisterDelayedCallback(func() {
				require.Empty(t, f.calls, "one approval is not enough")
			}, provisionDelay()+time.Hour+30*time.Minute)
			res, err := f.run()
			require.NoError(t, err)
			require.Equal(t, tc.outcome, res.Outcome)
			refused := 0
			for _, d := range res.Approvals {
				if d.Refused != "" {
					refused++
				}
			}
			require.Equal(t, tc.refused, refused)
			require.Contains(t, f.notes, "approval-request:alan.turing")
		})
	}
}

func TestJoinerEarlyDecisions(t *testing.T) {
	t.Run("a rejection before the provisioning date ends the joiner at once", func(t *testing.T) {
		f := newFixture(t)
		f.happy()
		f.provisioning()
		f.signalAt(time.Hour, SignalReject, ApprovalSignal{Approver: "ada.lovelace", Comment: "role withdrawn"})
		res, err := f.run()
		require.NoError(t, err)
		require.Equal(t, OutcomeRejected, res.Outcome)
		require.Less(t, f.env.Now().Sub(time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)), 2*time.Hour, "no waiting for the date")
		require.Empty(t, f.calls)
	})
	t.Run("an early approval is kept and provisioning starts on the date", func(t *testing.T) {
		f := newFixture(t)
		f.happy()
		f.provisioning()
		f.signalAt(time.Hour, SignalApprove, ApprovalSignal{Approver: "ada.lovelace"})
		res, err := f.run()
		require.NoError(t, err)
		require.Equal(t, OutcomeCompleted, res.Outcome)
		require.Contains(t, f.calls, "claim")
		require.Equal(t, time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC), f.asked["approval-request"].UTC())
	})
}

func TestJoinerEarlyRejectionByUpdate(t *testing.T) {
	f := newFixture(t)
	f.happy()
	f.provisioning()
	f.env.RegisterDelayedCallback(func() {
		f.env.UpdateWorkflow(UpdateDecide, "early", &testsuite.TestUpdateCallback{
			OnReject: func(err error) { t.Fatalf("rejected: %v", err) },
			OnAccept: func() {},
			OnComplete: func(out any, err error) {
				require.NoError(t, err)
				require.Equal(t, "rejected", out)
			},
		}, f.signed(ApprovalSignal{Approver: "ada.lovelace", Comment: "no"}))
	}, time.Hour)
	res, err := f.run()
	require.NoError(t, err)
	require.Equal(t, OutcomeRejected, res.Outcome)
	require.Less(t, f.env.Now().Sub(time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)), 2*time.Hour)
}
