package workflows

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/joinery/joinery/activities"
)

// continuedInput returns the input a run that continued as new hands to
// the next one.
func continuedInput(t *testing.T, err error) JoinerInput {
	t.Helper()
	var can *workflow.ContinueAsNewError
	require.True(t, errors.As(err, &can), "want a continue-as-new, got %v", err)
	var next JoinerInput
	require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(can.Input, &next))
	require.NotNil(t, next.Continued)
	return next
}

// nextRun is a fresh test environment for the run after f's, starting when
// f's run ended, with the same inbox key, worker and plan.
func nextRun(t *testing.T, f *fixture, in JoinerInput) *fixture {
	f2 := newFixture(t)
	f2.signer, f2.worker, f2.plan = f.signer, f.worker, f.plan
	f2.env.SetStartTime(f.env.Now())
	f2.env.SetContinuedExecutionRunID(in.Continued.Prior[len(in.Continued.Prior)-1])
	f2.env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: JoinerWorkflowID(in.HRISID)})
	return f2
}

// suggestContinueAt makes Temporal suggest continue-as-new after d and wakes
// the joiner with a harmless signal.
func (f *fixture) suggestContinueAt(d time.Duration) {
	f.env.RegisterDelayedCallback(func() {
		f.env.SetContinueAsNewSuggested(true)
		f.env.SignalWorkflow(SignalRetryCompensations, "wake")
	}, d)
}

// A service account active for months continues as new when Temporal
// suggests it; the next run plans nothing again, keeps its decisions, and
// at the end date revokes exactly what the first run granted.
func TestContinueAsNewCarriesActiveAccessAndRevokesIt(t *testing.T) {
	f, in := nhiFixture(t)
	f.nhiMocks()
	bothApprove(f)
	f.suggestContinueAt(5 * 24 * time.Hour)
	_, err := f.runInput(in)
	next := continuedInput(t, err)
	c := next.Continued
	require.Equal(t, StageActive, c.Stage)
	require.Equal(t, 2, c.Run)
	require.Equal(t, []string{"default-test-run-id"}, c.Prior)
	require.Equal(t, "uid=ci-deploybot,ou=service-accounts,dc=joinery,dc=test", c.Result.DN)
	require.Equal(t, []string{"ci-deployers"}, c.Result.Groups)
	require.Equal(t, "joinery-nhi-deploy-bot-production", c.Result.Workload.RoleName)
	require.Len(t, c.Status.Approvals, 2, "both approvals are carried")
	require.Len(t, c.Nonces, 2, "used nonces are carried, so a decision cannot be replayed into the next run")
	require.Equal(t, in.Request, next.Request, "the joiner's own input is unchanged")
	require.Equal(t, []string{"claim", "grant", "approle"}, f.calls)

	f2 := nextRun(t, f, next)
	var revoked []string
	f2.env.OnActivity(f2.acts.RevokeWorkload, mock.Anything, mock.Anything).Run(func(a mock.Arguments) {
		revoked = append(revoked, "approle:"+a.Get(1).(activities.RevokeWorkloadInput).Key)
	}).Return(nil)
	f2.env.OnActivity(f2.acts.RevokeGroup, mock.Anything, mock.Anything).Run(func(a mock.Arguments) {
		g := a.Get(1).(activities.GroupInput)
		revoked = append(revoked, "group:"+g.Group+":"+g.MemberDN)
	}).Return(nil)
	f2.env.OnActivity(f2.acts.DisableAccount, mock.Anything, mock.Anything).Run(func(a mock.Arguments) {
		revoked = append(revoked, "disable:"+a.Get(1).(activities.AccountRef).DN+"@"+f2.env.Now().UTC().Format(time.DateOnly))
	}).Return(nil)
	f2.env.OnActivity(f2.acts.ResolveNonHuman, mock.Anything, mock.Anything).Run(f2.record("resolve")).Return(f.worker, nil).Maybe()
	f2.env.OnActivity(f2.acts.PlanJoiner, mock.Anything, mock.Anything).Run(f2.record("plan")).Return(f.plan, nil).Maybe()
	f2.nhiMocks()
	f2.env.RegisterDelayedCallback(func() {
		st := f2.status()
		require.Equal(t, StageActive, st.Stage, "queries answer from the new run")
		require.Equal(t, "ci-deploybot", st.Username)
		require.Len(t, st.Resources, 3)
	}, time.Hour)
	// The extension ada signed in the first run cannot be replayed, and a
	// fresh one for this run counts.
	f2.signalAt(2*time.Hour, SignalExtend, ExtendSignal{EndDate: "2027-01-15", By: "ada.lovelace"})
	res, err := f2.runInput(next)
	require.NoError(t, err)
	require.Equal(t, OutcomeExpired, res.Outcome)
	require.NotContains(t, f2.calls, "plan", "the next run does not plan again")
	require.NotContains(t, f2.calls, "resolve")
	require.NotContains(t, f2.calls, "claim", "nothing is created again")
	require.Equal(t, []string{
		"approle:nhi-deploy-bot-production",
		"group:ci-deployers:uid=ci-deploybot,ou=service-accounts,dc=joinery,dc=test",
		"disable:uid=ci-deploybot,ou=service-accounts,dc=joinery,dc=test@2027-01-16",
	}, revoked, "what the first run granted is revoked, after the extended end date")
	require.Len(t, res.Resources, 3)
	for _, r := range res.Resources {
		require.NotNil(t, r.UndoneAt, "%s %s is revoked", r.Kind, r.ID)
	}
	require.Equal(t, 2, countApproved(res.Approvals, "signal:approve"), "the first run's approvals are in the final record")
	require.True(t, hasEventIn(f2.status().Events, "continued as new (run 2)"), "the handover is on record")
	require.Contains(t, f2.notes, "expiry-reminder:ada.lovelace")
}

// Decisions signed for the run before are refused with the reason; a
// decision already used there cannot be replayed (its nonce is carried).
func TestDecisionsForTheOldRunAreRefusedAfterContinueAsNew(t *testing.T) {
	f, in := nhiFixture(t)
	f.nhiMocks()
	bothApprove(f)
	var used ExtendSignal
	f.env.RegisterDelayedCallback(func() {
		d := f.decisionFor("ada.lovelace", "extend", "")
		d.EndDate = "2027-01-20"
		used = ExtendSignal{Signed: f.sign(d)}
		f.env.SignalWorkflow(SignalExtend, used)
	}, 4*24*time.Hour)
	f.suggestContinueAt(4*24*time.Hour + time.Minute)
	_, err := f.runInput(in)
	next := continuedInput(t, err)
	require.Equal(t, "2027-01-20", next.Continued.Plan.EndDate)
	// As on a real server, the run before has its own ID.
	next.Continued.Prior = []string{"run-one"}

	f2 := nextRun(t, f, next)
	f2.nhiMocks()
	f2.env.RegisterDelayedCallback(func() {
		d := f2.decisionFor("ada.lovelace", "extend", "")
		d.RunID, d.EndDate = "run-one", "2027-02-01"
		f2.env.SignalWorkflow(SignalExtend, ExtendSignal{Signed: f2.sign(d)})
		f2.env.SignalWorkflow(SignalExtend, used) // replayed from the first run, still fresh
	}, time.Minute)
	res, err := f2.runInput(next)
	require.NoError(t, err)
	require.Equal(t, "2027-01-20", res.EndDate, "neither moved the end date")
	var refused []string
	for _, d := range res.Approvals {
		if d.Refused != "" {
			refused = append(refused, d.Refused)
		}
	}
	require.Len(t, refused, 2)
	require.Contains(t, refused[0], "signed for run run-one, an earlier run of this joiner: it has continued as new")
	require.Contains(t, refused[0], "decide again in the approval inbox")
	require.NotContains(t, refused[1], "continued as new", "the replay is refused for what it is")
}

// An employee held in Provisioned until the start date continues as new;
// a rescind in the next run rolls back everything the first run created.
func TestContinueAsNewWhileProvisionedThenRescindRollsBack(t *testing.T) {
	f := newFixture(t)
	f.happy()
	f.provisioning()
	f.signalAt(provisionDelay()+time.Hour, SignalApprove, ApprovalSignal{Approver: "ada.lovelace"})
	f.env.RegisterDelayedCallback(func() {
		require.Equal(t, StageProvisioned, f.status().Stage)
		f.env.SetCurrentHistoryLength(maxEventsPerRun) // the bound, without a suggestion
		f.env.SignalWorkflow(SignalRetryCompensations, "wake")
	}, provisionDelay()+2*time.Hour)
	_, err := f.run()
	next := continuedInput(t, err)
	require.Equal(t, StageProvisioned, next.Continued.Stage)
	require.Equal(t, map[string]string{"workEmail": "", "customUsername": ""}, next.Continued.Snapshot)

	f2 := nextRun(t, f, next)
	f2.happy()
	var undone []string
	f2.env.OnActivity(f2.acts.DeleteAccount, mock.Anything, mock.Anything).Run(func(a mock.Arguments) {
		undone = append(undone, "account:"+a.Get(1).(activities.AccountRef).DN)
	}).Return(nil)
	f2.env.OnActivity(f2.acts.RevokeGroup, mock.Anything, mock.Anything).Run(func(a mock.Arguments) {
		undone = append(undone, "group:"+a.Get(1).(activities.GroupInput).Group)
	}).Return(nil)
	f2.env.OnActivity(f2.acts.RevokeCredential, mock.Anything, mock.Anything).Run(func(a mock.Arguments) {
		r := a.Get(1).(activities.RevokeInput)
		undone = append(undone, "credential:"+r.Path+":"+r.Accessor)
	}).Return(nil)
	f2.env.OnActivity(f2.acts.UndoWriteBack, mock.Anything, mock.Anything).Run(func(a mock.Arguments) {
		w := a.Get(1).(activities.WriteBackInput)
		undone = append(undone, "writeback:"+w.Expected["customUsername"])
	}).Return(nil)
	f2.signalAt(time.Hour, SignalRescind, RescindSignal{By: "hr.partner", Reason: "offer withdrawn", Via: "webhook"})
	res, err := f2.runInput(JoinerInput{HRISID: "200", Source: "test", Continued: next.Continued})
	require.NoError(t, err)
	require.Equal(t, OutcomeRescinded, res.Outcome)
	require.Equal(t, []string{
		"writeback:jose.nunez",
		"credential:joinery/joiners/200/initial-credential:acc-1",
		"group:engineering", "group:all-staff",
		"account:uid=jose.nunez,ou=people,dc=joinery,dc=test",
	}, undone, "in reverse order of creation, with the first run's DN, path and accessor")
	for _, r := range res.Resources {
		require.NotNil(t, r.UndoneAt, "%s %s is undone", r.Kind, r.ID)
	}
}

// Early approvals are signed for the run that got them: a continuation
// while waiting for the provisioning date withdraws them (on record), and
// the approver is asked again when the date comes.
func TestContinueAsNewWhileWaitingWithdrawsEarlyApprovals(t *testing.T) {
	f := newFixture(t)
	f.happy()
	f.signalAt(time.Hour, SignalApprove, ApprovalSignal{Approver: "ada.lovelace"})
	f.suggestContinueAt(2 * time.Hour)
	_, err := f.run()
	next := continuedInput(t, err)
	require.Equal(t, StageWaitingStartDate, next.Continued.Stage)
	require.Nil(t, next.Continued.Decided, "the early approval is withdrawn")
	require.True(t, hasEventIn(next.Continued.Status.Events, "early approval by ada.lovelace was signed for run"))

	f2 := nextRun(t, f, next)
	f2.happy()
	f2.provisioning()
	f2.signalAt(provisionDelay()-2*time.Hour+time.Hour, SignalApprove, ApprovalSignal{Approver: "ada.lovelace"})
	res, err := f2.runInput(JoinerInput{HRISID: "200", Source: "test", Continued: next.Continued})
	require.NoError(t, err)
	require.Equal(t, OutcomeCompleted, res.Outcome)
	require.Equal(t, time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC), f2.asked["approval-request"].UTC(), "asked again on the date")
	require.Contains(t, f2.calls, "claim")
}

// The adversary: anyone who can start a workflow on the task queue sends
// "continued" state of their own — an approval nobody gave, or someone
// else's entry and groups to revoke. It is refused before anything runs.
func TestForgedContinuedStateIsRefused(t *testing.T) {
	forged := func() *Continued {
		return &Continued{Run: 2, Prior: []string{"run-one"}, Stage: StageActive,
			Status:  Status{HRISID: "200", Stage: StageActive},
			Result:  JoinerResult{HRISID: "200", DN: "uid=ada.lovelace,ou=people,dc=joinery,dc=test", Groups: []string{"admins"}},
			Decided: &Decision{Approver: "ada.lovelace", Approved: true}}
	}
	for name, tc := range map[string]struct {
		runID  string
		mutate func(*Continued)
		want   string
	}{
		"a plain start":              {"", nil, "only accepted from the joiner's own previous run"},
		"another joiner's state":     {"run-one", func(c *Continued) { c.Status.HRISID, c.Result.HRISID = "100", "100" }, "for another joiner"},
		"a run it does not continue": {"run-two", nil, "does not name the run it continues"},
		"a stage it never continues": {"run-one", func(c *Continued) { c.Stage = StageClaimingUsername }, "does not continue in stage"},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			f.happy()
			f.provisioning()
			f.env.OnActivity(f.acts.DisableAccount, mock.Anything, mock.Anything).Run(f.record("disable")).Return(nil).Maybe()
			if tc.runID != "" {
				f.env.SetContinuedExecutionRunID(tc.runID)
			}
			c := forged()
			if tc.mutate != nil {
				tc.mutate(c)
			}
			_, err := f.runInput(JoinerInput{HRISID: "200", Source: "test", Continued: c})
			var ae *temporal.ApplicationError
			require.True(t, errors.As(err, &ae), "%v", err)
			require.Equal(t, ErrTypeInvalidInput, ae.Type())
			require.Contains(t, ae.Error(), tc.want)
			require.Empty(t, f.calls, "nothing ran: no revoke of someone else's entry or groups")
		})
	}
}

func countApproved(ds []Decision, via string) int {
	n := 0
	for _, d := range ds {
		if d.Approved && d.Refused == "" && strings.HasPrefix(d.Via, via) {
			n++
		}
	}
	return n
}

func hasEventIn(evs []Event, what string) bool {
	for _, e := range evs {
		if strings.Contains(e.What, what) {
			return true
		}
	}
	return false
}

// Nothing that arrives as the joiner hands over is lost: a revoke in the
// same moment as Temporal's suggestion is acted on by this run (no
// continuation), and an extension is applied before the state is handed on.
func TestSignalsAtTheHandoverAreHandledFirst(t *testing.T) {
	t.Run("revoke", func(t *testing.T) {
		f, in := nhiFixture(t)
		f.nhiMocks()
		bothApprove(f)
		f.env.RegisterDelayedCallback(func() {
			f.env.SetContinueAsNewSuggested(true)
			f.env.SignalWorkflow(SignalRevoke, RescindSignal{By: "security", Reason: "key leaked"})
		}, 3*24*time.Hour)
		res, err := f.runInput(in)
		require.NoError(t, err, "revoked, not continued")
		require.Equal(t, OutcomeRevoked, res.Outcome)
		require.Contains(t, f.calls, "revoke:approle@2026-11-04")
	})
	t.Run("extension", func(t *testing.T) {
		f, in := nhiFixture(t)
		f.nhiMocks()
		bothApprove(f)
		f.env.RegisterDelayedCallback(func() {
			f.env.SetContinueAsNewSuggested(true)
			f.signal(SignalExtend, ExtendSignal{EndDate: "2027-02-28", By: "ada.lovelace"})
		}, 3*24*time.Hour)
		_, err := f.runInput(in)
		next := continuedInput(t, err)
		require.Equal(t, "2027-02-28", next.Continued.Plan.EndDate, "applied by this run, then carried")
		require.Equal(t, "2027-02-28", next.Continued.Result.EndDate)
		require.Empty(t, next.Continued.Extensions, "nothing left queued")
	})
}
