package workflows

import (
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/joinery/joinery/activities"
)

// A joiner for someone who already has a directory entry stops before any
// change, says what it found, lists nothing as created and undoes nothing
// (the story: `starter start 100` for Ada reset her password).
func TestExistingEntryStopsTheJoiner(t *testing.T) {
	for _, tc := range []struct {
		typ     string
		stage   Stage
		outcome string
	}{
		{activities.ErrTypeNeedsOperator, StageNeedsOperator, OutcomeNeedsOperator},
		{activities.ErrTypeAlreadyProvisioned, StageAlreadyProvisioned, OutcomeAlreadyProvisioned},
	} {
		t.Run(tc.typ, func(t *testing.T) {
			f := newFixture(t)
			f.happy()
			found := activities.ExistingAccount{DN: "uid=ada.lovelace,ou=people,dc=joinery,dc=test", EmployeeID: "100", Username: "ada.lovelace"}
			f.env.OnActivity(f.acts.ClaimAccount, mock.Anything, mock.Anything).Return(activities.ClaimResult{},
				temporal.NewNonRetryableApplicationError("entry exists", tc.typ, nil, found))
			f.env.OnActivity(f.acts.DeleteAccount, mock.Anything, mock.Anything).Run(f.record("undo:account")).Return(nil).Maybe()
			f.signalAt(provisionDelay()+time.Hour, SignalApprove, ApprovalSignal{Approver: "ada.lovelace"})
			res, err := f.run()
			require.NoError(t, err)
			require.Equal(t, tc.outcome, res.Outcome)
			require.Equal(t, tc.stage, res.Stage)
			require.Contains(t, res.Error, found.DN)
			require.Contains(t, res.Error, "nothing was changed")
			require.Empty(t, res.Resources, "nothing was created")
			require.Empty(t, res.Undone)
			require.NotContains(t, f.calls, "undo:account", "someone else's entry is never deleted")
		})
	}
}

// A rescind after provisioning but before the start date rolls everything
// back (story: a hire starting in three days was provisioned, and HR's
// rescind the next minute found "no running joiner").
func TestRescindWhileProvisionedRollsBack(t *testing.T) {
	f := newFixture(t)
	f.happy()
	f.provisioning()
	f.signalAt(provisionDelay()+time.Hour, SignalApprove, ApprovalSignal{Approver: "ada.lovelace"})
	f.env.RegisterDelayedCallback(func() {
		require.Equal(t, StageProvisioned, f.status().Stage, "provisioned, open until the start date")
		f.env.SignalWorkflow(SignalRescind, RescindSignal{By: "hr.partner", Reason: "offer withdrawn", Via: "cli"})
	}, provisionDelay()+2*time.Hour)
	res, err := f.run()
	require.NoError(t, err)
	require.Equal(t, OutcomeRescinded, res.Outcome)
	require.Contains(t, f.calls, "undo:account")
	require.Contains(t, f.calls, "undo:credential")
	for _, r := range res.Resources {
		require.NotNil(t, r.UndoneAt, "%s is undone", r.Kind)
	}
}

// After the start date (plus grace) the joiner completes; a late rescind
// would then find no running joiner and must go to the leaver process.
func TestProvisionedJoinerCompletesOnTheStartDate(t *testing.T) {
	f := newFixture(t)
	f.plan.RescindGrace = 12 * time.Hour
	f.happy()
	f.provisioning()
	f.signalAt(provisionDelay()+time.Hour, SignalApprove, ApprovalSignal{Approver: "ada.lovelace"})
	res, err := f.run()
	require.NoError(t, err)
	require.Equal(t, OutcomeCompleted, res.Outcome)
	require.Equal(t, time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC), f.env.Now().UTC(), "open until the hire date plus the grace")
}

// A revoke before the joiner is active ends it like a rescind.
func TestRevokeBeforeActiveEndsLikeARescind(t *testing.T) {
	f := newFixture(t)
	f.happy()
	f.provisioning()
	f.signalAt(time.Hour, SignalRevoke, RescindSignal{By: "security", Reason: "compromised laptop"})
	res, err := f.run()
	require.NoError(t, err)
	require.Equal(t, OutcomeRescinded, res.Outcome)
	require.Empty(t, f.calls)
}

// Cancelling active time-bound access (temporal workflow cancel, the Web
// UI's Cancel) revokes everything before the joiner closes (story: a
// cancelled service account kept its AppRole, policy and groups forever).
func TestCancelActiveServiceAccountRevokesEverything(t *testing.T) {
	f, in := nhiFixture(t)
	f.nhiMocks()
	bothApprove(f)
	f.env.RegisterDelayedCallback(func() {
		require.Equal(t, StageActive, f.status().Stage)
		f.env.CancelWorkflow()
	}, 3*24*time.Hour)
	res, err := f.runInput(in)
	require.NoError(t, err)
	require.Equal(t, OutcomeRevoked, res.Outcome)
	require.Contains(t, res.Error, "cancelled")
	require.Contains(t, f.calls, "revoke:approle@2026-11-04")
	require.Contains(t, f.calls, "revoke:group")
	require.Contains(t, f.calls, "revoke:disable")
}

// Red-team finding: one signal whose payload does not decode must not stop
// the joiner from reading every later signal (here: the rescind).
func TestMalformedSignalDoesNotWedgeTheJoiner(t *testing.T) {
	f := newFixture(t)
	f.happy()
	f.provisioning()
	f.signalAt(time.Hour, SignalHandoverAlarm, raw{map[string]any{"detectedAt": "not a time"}})
	f.signalAt(time.Hour+time.Minute, SignalApprove, raw{"just a string"})
	f.signalAt(2*time.Hour, SignalRescind, RescindSignal{By: "hr", Reason: "offer withdrawn"})
	res, err := f.run()
	require.NoError(t, err)
	require.Equal(t, OutcomeRescinded, res.Outcome, "the rescind after the malformed signals was read")
	require.Less(t, f.env.Now().Sub(time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)), 3*time.Hour)
}

// Red-team finding: an approval given early, before the provisioning date,
// no longer counts when its approver has left by the date; the joiner waits
// for someone who may still decide (here the escalation target).
func TestEarlyApprovalBySomeoneWhoLeftNoLongerCounts(t *testing.T) {
	f := newFixture(t)
	f.happy()
	f.provisioning()
	f.signalAt(time.Hour, SignalApprove, ApprovalSignal{Approver: "ada.lovelace"})
	f.env.RegisterDelayedCallback(func() { f.inactive["ada.lovelace"] = "left on 2026-11-10" }, 9*24*time.Hour)
	f.env.RegisterDelayedCallback(func() {
		require.Empty(t, f.calls, "nothing was provisioned on the withdrawn approval")
		require.Equal(t, StageAwaitingApproval, f.status().Stage)
		f.signal(SignalApprove, ApprovalSignal{Approver: "grace.hopper"})
	}, provisionDelay()+time.Hour)
	res, err := f.run()
	require.NoError(t, err)
	require.Equal(t, OutcomeCompleted, res.Outcome)
	require.Contains(t, f.calls, "claim")
	var last Decision
	for _, d := range res.Approvals {
		if d.Refused == "" {
			last = d
		}
	}
	require.Equal(t, "grace.hopper", last.Approver)
}
