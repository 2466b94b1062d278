package workflows

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/joinery/joinery/activities"
	"github.com/joinery/joinery/internal/decision"
)

// askedAt is when the fixture's employee joiner asks for approval.
var askedAt = time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)

// floodUntilContinued sends refused decisions (the denial of service: a
// name typed into a signal) a minute before d, and at d makes Temporal
// suggest continue-as-new.
func (f *fixture) floodUntilContinued(d time.Duration) {
	f.env.RegisterDelayedCallback(func() {
		for range 50 {
			f.env.SignalWorkflow(SignalApprove, ApprovalSignal{Approver: "mallory"})
		}
	}, d-time.Minute)
	f.suggestContinueAt(d)
}

// A joiner awaiting approval that a flood of refused decisions pushes to
// continue as new keeps its deadlines: the reminder already sent is not
// sent again, the escalation comes when it was due (72 h after the ask, not
// 72 h after the continuation), a decision signed for the old run is refused
// with the reason, and an approval for the new run provisions.
func TestContinueAsNewAwaitingApprovalKeepsDeadlinesThenApproves(t *testing.T) {
	f := newFixture(t)
	f.happy()
	f.floodUntilContinued(provisionDelay() + 30*time.Hour) // after the reminder, before the escalation
	_, err := f.run()
	next := continuedInput(t, err)
	c := next.Continued
	require.Equal(t, StageAwaitingApproval, c.Stage)
	require.NotNil(t, c.Approval)
	require.True(t, c.Approval.Since.Equal(askedAt), "the wait began when the approval was asked: %s", c.Approval.Since)
	require.Equal(t, []ApprovalDeadline{
		{At: askedAt.Add(72 * time.Hour), Kind: "escalation"},
		{At: askedAt.Add(7 * 24 * time.Hour), Kind: "timeout"},
	}, utcDeadlines(c.Approval.Deadlines), "the reminder went out; escalation and timeout stay where they were")
	require.Equal(t, 50, c.Status.Refused, "the flood is counted")
	require.LessOrEqual(t, len(c.Status.Approvals), maxRefusedKept, "and only the last few are carried")
	require.Equal(t, 1, count(f.notes, "reminder:ada.lovelace"))
	require.Empty(t, f.calls, "nothing was provisioned")
	next.Continued.Prior = []string{"run-one"} // the run before has its own ID, as on a real server

	f2 := nextRun(t, f, next)
	var claimed activities.ClaimInput
	f2.env.OnActivity(f2.acts.ClaimAccount, mock.Anything, mock.Anything).Run(func(a mock.Arguments) {
		claimed = a.Get(1).(activities.ClaimInput)
		f2.calls = append(f2.calls, "claim")
	}).Return(activities.ClaimResult{Username: "jose.nunez", DN: "uid=jose.nunez,ou=people,dc=joinery,dc=test"}, nil)
	f2.happy()
	f2.provisioning()
	var staleRefusal string
	f2.env.RegisterDelayedCallback(func() {
		// Signed in the inbox a moment before the continuation, for run one.
		d := f2.decisionFor("ada.lovelace", decision.ActionApprove, "")
		d.RunID = "run-one"
		f2.env.SignalWorkflow(SignalApprove, ApprovalSignal{Signed: f2.sign(d)})
	}, time.Hour)
	f2.env.RegisterDelayedCallback(func() {
		st := f2.status()
		require.Equal(t, StageAwaitingApproval, st.Stage, "still waiting: the stale decision did not count")
		for _, d := range st.Approvals {
			if d.Refused != "" && d.Approver == "claimed:ada.lovelace" {
				staleRefusal = d.Refused
			}
		}
		require.Contains(t, st.Approvers, "grace.hopper", "escalated on schedule")
		f2.signal(SignalApprove, ApprovalSignal{Approver: "grace.hopper"}) // the inbox signs for this run
	}, askedAt.Add(80*time.Hour).Sub(f.env.Now()))
	res, err := f2.runInput(next)
	require.NoError(t, err)
	require.Equal(t, OutcomeCompleted, res.Outcome)
	require.Contains(t, staleRefusal, "signed for run run-one, an earlier run of this joiner: it has continued as new")
	require.Contains(t, staleRefusal, "decide again in the approval inbox, which signs for the current run")
	require.Equal(t, askedAt.Add(72*time.Hour), f2.asked["escalation"].UTC(), "the escalation came when it was due")
	require.Equal(t, 0, count(f2.notes, "reminder:ada.lovelace"), "the reminder is not sent again")
	require.Equal(t, 0, count(f2.notes, "approval-request:ada.lovelace"), "nobody is asked again: nothing was withdrawn")
	require.Equal(t, 1, count(f2.notes, "escalation:grace.hopper"))
	require.Len(t, claimed.Approvals, 1, "the claim re-verifies the one approval of this run")
	require.Equal(t, []string{"claim", "grant:all-staff", "grant:engineering", "credential", "writeback"}, f2.calls)
	require.True(t, hasEventIn(c.Status.Events, "continued as new (run 2) in stage AwaitingApproval"))
}

// Silence after the continuation still rejects at the original timeout,
// seven days after the ask, not seven days after the continuation.
func TestContinueAsNewAwaitingApprovalTimesOutOnTheOriginalDeadline(t *testing.T) {
	f := newFixture(t)
	f.happy()
	f.floodUntilContinued(provisionDelay() + 5*24*time.Hour) // after the escalation
	_, err := f.run()
	next := continuedInput(t, err)
	require.Equal(t, []ApprovalDeadline{{At: askedAt.Add(7 * 24 * time.Hour), Kind: "timeout"}}, utcDeadlines(next.Continued.Approval.Deadlines))
	require.Contains(t, next.Continued.Status.Approvers, "grace.hopper", "the escalation is carried")
	require.Equal(t, 1, count(f.notes, "escalation:grace.hopper"), "escalated once, in the first run")

	f2 := nextRun(t, f, next)
	f2.happy()
	res, err := f2.runInput(next)
	require.NoError(t, err)
	require.Equal(t, OutcomeRejected, res.Outcome)
	require.Equal(t, askedAt.Add(7*24*time.Hour), f2.env.Now().UTC(), "rejected on the original deadline")
	require.Empty(t, f2.notes, "no reminder, no escalation again")
	last := res.Approvals[len(res.Approvals)-1]
	require.Equal(t, "timeout", last.Via)
	require.Equal(t, "no decision within 168h0m0s", last.Comment)
}

// While the first of two approvals is held, Temporal's suggestion alone
// does not continue the joiner (that would withdraw the approval, and a
// flood could then keep the two from ever meeting in one run): the second
// approval still completes the pair in this run.
func TestSuggestionDoesNotWithdrawAHeldFirstApproval(t *testing.T) {
	f, in := nhiFixture(t)
	var claimed activities.ClaimInput
	f.env.OnActivity(f.acts.ClaimAccount, mock.Anything, mock.Anything).Run(func(a mock.Arguments) {
		claimed = a.Get(1).(activities.ClaimInput)
	}).Return(activities.ClaimResult{Username: "ci-deploybot", DN: "uid=ci-deploybot,ou=service-accounts,dc=joinery,dc=test"}, nil)
	f.nhiMocks()
	f.signalAt(time.Hour, SignalApprove, ApprovalSignal{Approver: "ada.lovelace"})
	f.floodUntilContinued(90 * time.Minute)
	f.env.RegisterDelayedCallback(func() {
		require.Equal(t, StageAwaitingApproval, f.status().Stage, "still waiting, in the same run")
		f.env.SetContinueAsNewSuggested(false) // so that Active does not continue either
		f.signal(SignalApprove, ApprovalSignal{Approver: "grace.hopper"})
	}, 3*time.Hour)
	f.env.RegisterDelayedCallback(func() { f.env.SignalWorkflow(SignalRevoke, RescindSignal{By: "test", Reason: "done"}) }, 4*time.Hour)
	res, err := f.runInput(in)
	require.NoError(t, err, "not continued as new")
	require.Equal(t, OutcomeRevoked, res.Outcome)
	require.Len(t, claimed.Approvals, 2, "both approvals met in one run")
	require.Equal(t, 1, count(f.notes, "approval-request:ada.lovelace"), "nobody was asked again")
}

// With two approvers, the first approval is signed for the run that got
// it: once the history is well past the suggestion, a continuation
// withdraws it (the record says so, which is what lets the inbox ask its
// approver again), the approver is asked again, and the two approvals for
// the new run provision.
func TestContinueAsNewAwaitingSecondApprovalWithdrawsTheFirst(t *testing.T) {
	f, in := nhiFixture(t)
	f.nhiMocks()
	f.signalAt(time.Hour, SignalApprove, ApprovalSignal{Approver: "ada.lovelace"})
	f.env.RegisterDelayedCallback(func() {
		f.env.SetCurrentHistoryLength(partialHoldEvents)
		f.env.SetContinueAsNewSuggested(true)
		f.env.SignalWorkflow(SignalRetryCompensations, "wake")
	}, 90*time.Minute)
	_, err := f.runInput(in)
	next := continuedInput(t, err)
	c := next.Continued
	require.Equal(t, StageAwaitingApproval, c.Stage)
	var ada *Decision
	for i, d := range c.Status.Approvals {
		if d.Approver == "ada.lovelace" {
			ada = &c.Status.Approvals[i]
		}
	}
	require.NotNil(t, ada, "ada's approval stays on record")
	require.False(t, ada.Approved)
	require.Contains(t, ada.Refused, "withdrawn: signed for run default-test-run-id, which continued as new")
	require.Len(t, c.Nonces, 1, "its nonce is carried: the old signal cannot be replayed")
	require.Equal(t, 2, count(f.notes, "approval-request:ada.lovelace"), "asked, then asked again")
	require.Empty(t, f.calls)

	f2 := nextRun(t, f, next)
	var claimed activities.ClaimInput
	f2.env.OnActivity(f2.acts.ClaimAccount, mock.Anything, mock.Anything).Run(func(a mock.Arguments) {
		claimed = a.Get(1).(activities.ClaimInput)
		f2.calls = append(f2.calls, "claim")
	}).Return(activities.ClaimResult{Username: "ci-deploybot", DN: "uid=ci-deploybot,ou=service-accounts,dc=joinery,dc=test"}, nil)
	f2.nhiMocks()
	f2.signalAt(time.Hour, SignalApprove, ApprovalSignal{Approver: "grace.hopper"})
	f2.env.RegisterDelayedCallback(func() {
		require.Equal(t, StageAwaitingApproval, f2.status().Stage, "the second approval alone does not provision")
		f2.signal(SignalApprove, ApprovalSignal{Approver: "ada.lovelace"})
	}, 2*time.Hour)
	f2.env.RegisterDelayedCallback(func() { f2.env.SignalWorkflow(SignalRevoke, RescindSignal{By: "test", Reason: "done"}) }, 3*time.Hour)
	res, err := f2.runInput(next)
	require.NoError(t, err)
	require.Equal(t, OutcomeRevoked, res.Outcome)
	require.Len(t, claimed.Approvals, 2, "both approvals of the new run are re-verified by the claim")
	require.Equal(t, 2, countApproved(res.Approvals, "signal:approve"))
}

// A rollback whose step keeps failing continues as new when the history
// is long; the new run retries exactly what was left (the credential was
// destroyed already and is not touched again), shows CompensationStuck from
// the time it began, and closes only once the directory entry is gone.
func TestContinueAsNewWhileCompensationStuckRetriesWhatIsLeft(t *testing.T) {
	f := newFixture(t)
	f.plan.CompensationStuckAfter = 30 * time.Minute
	f.happy()
	f.signalAt(provisionDelay()+time.Hour, SignalApprove, ApprovalSignal{Approver: "ada.lovelace"})
	e := f.env
	e.OnActivity(f.acts.ClaimAccount, mock.Anything, mock.Anything).Return(activities.ClaimResult{Username: "u", DN: "uid=u,ou=people,dc=joinery,dc=test"}, nil)
	e.OnActivity(f.acts.GrantGroup, mock.Anything, mock.Anything).Run(f.record("grant")).Return(activities.GroupInput{}, nil)
	e.OnActivity(f.acts.IssueCredential, mock.Anything, mock.Anything).Return(activities.CredentialResult{},
		temporal.NewNonRetryableApplicationError("vault sealed for good", "VaultPermanent", nil))
	e.OnActivity(f.acts.RevokeCredential, mock.Anything, mock.Anything).Run(f.record("undo:credential")).Return(nil)
	// The write-back's undo is registered ahead (localsteps.go): nothing to undo.
	e.OnActivity(f.acts.UndoWriteBack, mock.Anything, mock.Anything).Return(nil)
	e.OnActivity(f.acts.RevokeGroup, mock.Anything, mock.Anything).Run(func(a mock.Arguments) {
		f.calls = append(f.calls, "undo:group:"+a.Get(1).(activities.GroupInput).Group)
	}).Return(errors.New("ldap down"))
	e.OnActivity(f.acts.DeleteAccount, mock.Anything, mock.Anything).Run(f.record("undo:account")).Return(nil).Maybe()
	var stuck Status
	e.RegisterDelayedCallback(func() {
		stuck = f.status()
		for range 20 {
			e.SignalWorkflow(SignalRetryCompensations, "flood")
		}
		e.SetContinueAsNewSuggested(true)
		e.SignalWorkflow(SignalRetryCompensations, "wake")
	}, provisionDelay()+2*24*time.Hour)
	_, err := f.run()
	require.Equal(t, StageCompensationStuck, stuck.Stage)
	next := continuedInput(t, err)
	c := next.Continued
	require.Equal(t, StageCompensationStuck, c.Stage)
	require.NotNil(t, c.Unwind)
	require.Equal(t, unwindRollback, c.Unwind.Mode)
	require.Equal(t, StageFailed, c.Unwind.Stage)
	require.Equal(t, "remove from engineering", c.Unwind.Step)
	require.Equal(t, StageRollingBack, c.Unwind.Prev)
	require.NotNil(t, c.Status.StuckSince)
	require.Equal(t, 1, count(f.calls, "undo:credential"))
	require.Zero(t, count(f.calls, "undo:account"), "the entry is still there, and listed as left to undo")
	firstFailed := c.Unwind.FailingSince
	next.Continued.Prior = []string{"run-one"}

	f2 := nextRun(t, f, next)
	f2.happy()
	ldapBack := false
	groupCalls := 0
	f2.env.OnActivity(f2.acts.RevokeGroup, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.GroupInput) error {
		f2.calls = append(f2.calls, "undo:group:"+in.Group)
		groupCalls++
		if !ldapBack {
			return errors.New("ldap still down")
		}
		return nil
	})
	f2.env.OnActivity(f2.acts.DeleteAccount, mock.Anything, mock.Anything).Run(func(a mock.Arguments) {
		f2.calls = append(f2.calls, "undo:account:"+a.Get(1).(activities.AccountRef).DN)
	}).Return(nil)
	f2.env.OnActivity(f2.acts.RevokeCredential, mock.Anything, mock.Anything).Run(f2.record("undo:credential")).Return(nil).Maybe()
	var during Status
	f2.env.RegisterDelayedCallback(func() {
		during = f2.status()
		ldapBack = true
	}, 24*time.Hour)
	res, err := f2.runInput(next)
	require.Equal(t, StageCompensationStuck, during.Stage, "the new run says it is stuck")
	require.NotNil(t, during.StuckSince)
	require.True(t, during.StuckSince.Equal(*c.Status.StuckSince), "stuck since the first run said so")
	require.Error(t, err)
	var ae *temporal.ApplicationError
	require.ErrorAs(t, err, &ae)
	require.Equal(t, ErrTypeJoinerFailed, ae.Type(), "a rolled-back failure, not residue")
	require.Equal(t, OutcomeFailed, res.Outcome)
	require.Zero(t, count(f2.calls, "undo:credential"), "what the first run undid is not undone again")
	require.Greater(t, groupCalls, 2, "it kept retrying the step that was failing")
	require.Equal(t, "undo:account:uid=u,ou=people,dc=joinery,dc=test", f2.calls[len(f2.calls)-1], "the entry goes last, with the first run's DN")
	require.GreaterOrEqual(t, f2.env.Now().Sub(f.env.Now()), 24*time.Hour, "it closed only once everything was undone")
	for _, r := range res.Resources {
		require.NotNil(t, r.UndoneAt, "%s %s is undone", r.Kind, r.ID)
	}
	require.Nil(t, f2.status().StuckSince)
	require.True(t, firstFailed.Before(*c.Status.StuckSince), "the stuck clock ran from the first failure")
}

// A revocation that keeps failing (the AppRole cannot be deleted while
// Vault is down) continues as new; the new run revokes what is left and
// never repeats a step that was done.
func TestContinueAsNewWhileRevocationStuckRevokesWhatIsLeft(t *testing.T) {
	f, in := nhiFixture(t)
	f.plan.CompensationStuckAfter = time.Hour
	e := f.env
	e.OnActivity(f.acts.RevokeWorkload, mock.Anything, mock.Anything).Run(f.record("revoke:approle")).Return(nil)
	e.OnActivity(f.acts.RevokeGroup, mock.Anything, mock.Anything).Run(f.record("revoke:group")).Return(errors.New("ldap down"))
	f.nhiMocks()
	bothApprove(f)
	f.signalAt(3*24*time.Hour, SignalRevoke, RescindSignal{By: "security", Reason: "key leaked"})
	f.suggestContinueAt(4 * 24 * time.Hour)
	_, err := f.runInput(in)
	next := continuedInput(t, err)
	c := next.Continued
	require.Equal(t, StageCompensationStuck, c.Stage)
	require.Equal(t, unwindRevoke, c.Unwind.Mode)
	require.Equal(t, StageRevoked, c.Unwind.Stage)
	require.Equal(t, "remove from ci-deployers", c.Unwind.Step)
	require.Equal(t, 1, count(f.calls, "revoke:approle"))

	f2 := nextRun(t, f, next)
	f2.env.OnActivity(f2.acts.RevokeWorkload, mock.Anything, mock.Anything).Run(f2.record("revoke:approle")).Return(nil).Maybe()
	f2.nhiMocks()
	res, err := f2.runInput(next)
	require.NoError(t, err)
	require.Equal(t, OutcomeRevoked, res.Outcome)
	require.Contains(t, res.Error, "key leaked")
	require.Zero(t, count(f2.calls, "revoke:approle"), "the AppRole was deleted by the first run")
	require.Equal(t, []string{"revoke:group", "revoke:disable"}, f2.calls, "the membership that was failing, then the entry")
	for _, r := range res.Resources {
		require.NotNil(t, r.UndoneAt, "%s %s is revoked", r.Kind, r.ID)
	}
}

// The adversary of the new entry points: anyone who can start a workflow
// on the task queue forges state for the new stages, to have Joinery
// "finish undoing" someone else's entry, or to skip the approval. Each is
// refused before anything runs — without the server's continued-run ID,
// and with it when the state is not whole.
func TestForgedContinuedApprovalAndUnwindStateIsRefused(t *testing.T) {
	base := func(stage Stage) *Continued {
		return &Continued{Run: 2, Prior: []string{"run-one"}, Stage: stage,
			Status: Status{HRISID: "200", Stage: stage},
			Result: JoinerResult{HRISID: "200", DN: "uid=ada.lovelace,ou=people,dc=joinery,dc=test", Groups: []string{"admins"}}}
	}
	wait := &ApprovalWait{Since: askedAt, Deadlines: []ApprovalDeadline{{At: askedAt.Add(time.Hour), Kind: "timeout"}}}
	for name, tc := range map[string]struct {
		runID string
		c     func() *Continued
		want  string
	}{
		"an unwind started by a client": {"", func() *Continued {
			c := base(StageCompensationStuck)
			c.Unwind = &Unwind{Mode: unwindRevoke, Stage: StageRevoked}
			return c
		}, "only accepted from the joiner's own previous run"},
		"an unwind without its state": {"run-one", func() *Continued { return base(StageRevoking) }, "without the rollback or revocation under way"},
		"an unwind of an unknown kind": {"run-one", func() *Continued {
			c := base(StageRollingBack)
			c.Unwind = &Unwind{Mode: "delete-everything"}
			return c
		}, "without the rollback or revocation under way"},
		"an approval wait without deadlines": {"run-one", func() *Continued { return base(StageAwaitingApproval) }, "without the wait's deadlines"},
		"an approval wait already decided": {"run-one", func() *Continued {
			c := base(StageAwaitingApproval)
			c.Approval = wait
			c.Decided = &Decision{Approver: "ada.lovelace", Approved: true}
			return c
		}, "with a decision already made"},
		"an approval wait for another joiner": {"run-one", func() *Continued {
			c := base(StageAwaitingApproval)
			c.Approval = wait
			c.Status.HRISID = "100"
			return c
		}, "for another joiner"},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			f.happy()
			f.provisioning()
			f.env.OnActivity(f.acts.DisableAccount, mock.Anything, mock.Anything).Run(f.record("disable")).Return(nil).Maybe()
			if tc.runID != "" {
				f.env.SetContinuedExecutionRunID(tc.runID)
			}
			_, err := f.runInput(JoinerInput{HRISID: "200", Source: "test", Continued: tc.c()})
			var ae *temporal.ApplicationError
			require.True(t, errors.As(err, &ae), "%v", err)
			require.Equal(t, ErrTypeInvalidInput, ae.Type())
			require.Contains(t, ae.Error(), tc.want)
			require.Empty(t, f.calls, "nothing ran: no undo of someone else's entry, no provisioning")
		})
	}
}

// An early approval withdrawn by a continuation while waiting for the
// date says so in its record (the inbox reads the records to decide who
// may still approve; one shown as counting kept ada from approving again).
func TestWithdrawnEarlyApprovalNoLongerShowsAsCounting(t *testing.T) {
	f := newFixture(t)
	f.happy()
	f.signalAt(time.Hour, SignalApprove, ApprovalSignal{Approver: "ada.lovelace"})
	f.suggestContinueAt(2 * time.Hour)
	_, err := f.run()
	next := continuedInput(t, err)
	require.Zero(t, countApproved(next.Continued.Status.Approvals, "signal:approve"), "no approval shows as counting")
	require.Len(t, next.Continued.Status.Approvals, 1)
	require.Contains(t, next.Continued.Status.Approvals[0].Refused, "withdrawn: signed for run default-test-run-id")
}

func utcDeadlines(ds []ApprovalDeadline) []ApprovalDeadline {
	out := make([]ApprovalDeadline, len(ds))
	for i, d := range ds {
		out[i] = ApprovalDeadline{At: d.At.UTC(), Kind: d.Kind}
	}
	return out
}

func count(list []string, v string) int {
	n := 0
	for _, s := range list {
		if s == v {
			n++
		}
	}
	return n
}

// Cancelling active access whose revocation then keeps failing: the
// cancelled joiner still continues as new (on its disconnected context)
// rather than closing as Canceled with access live, and the next run
// finishes the revocation.
func TestCancelledRevocationThatIsStuckContinuesAndFinishes(t *testing.T) {
	f, in := nhiFixture(t)
	f.plan.CompensationStuckAfter = time.Hour
	f.env.OnActivity(f.acts.RevokeGroup, mock.Anything, mock.Anything).Run(f.record("revoke:group")).Return(errors.New("ldap down"))
	f.nhiMocks()
	bothApprove(f)
	f.env.RegisterDelayedCallback(func() { f.env.CancelWorkflow() }, 3*24*time.Hour)
	f.suggestContinueAt(3*24*time.Hour + 3*time.Hour)
	_, err := f.runInput(in)
	next := continuedInput(t, err)
	require.Equal(t, unwindRevoke, next.Continued.Unwind.Mode)
	require.Contains(t, next.Continued.Unwind.Why, "cancelled")
	require.Equal(t, "remove from ci-deployers", next.Continued.Unwind.Step)

	f2 := nextRun(t, f, next)
	f2.nhiMocks()
	res, err := f2.runInput(next)
	require.NoError(t, err)
	require.Equal(t, OutcomeRevoked, res.Outcome)
	require.Equal(t, []string{"revoke:group", "revoke:disable"}, f2.calls, "what was left, and nothing again")
	for _, r := range res.Resources {
		require.NotNil(t, r.UndoneAt, "%s %s is revoked", r.Kind, r.ID)
	}
}
