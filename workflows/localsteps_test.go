package workflows

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/joinery/joinery/activities"
)

// A step whose quick local attempts fail on an error that may pass (LDAP
// busy) runs again as a regular activity under the step's full policy, and
// the joiner completes; the record says so. The local attempts stop at
// three.
func TestLocalStepFallsBackToRegularActivity(t *testing.T) {
	f := newFixture(t)
	f.happy()
	busy := temporal.NewApplicationError("ldap busy", "DirectoryUnavailable")
	// Busy for every local attempt, fine for the regular activity.
	f.env.OnActivity(f.acts.ClaimAccount, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, _ activities.ClaimInput) (activities.ClaimResult, error) {
			if activity.GetInfo(ctx).IsLocalActivity {
				return activities.ClaimResult{}, busy
			}
			f.calls = append(f.calls, "claim")
			return activities.ClaimResult{Username: "jose.nunez", DN: "uid=jose.nunez,ou=people,dc=joinery,dc=test"}, nil
		})
	f.provisioning()
	local, regular := f.countActivities()
	f.signalAt(provisionDelay()+time.Hour, SignalApprove, ApprovalSignal{Approver: "ada.lovelace"})
	res, err := f.run()
	require.NoError(t, err)
	require.Equal(t, OutcomeCompleted, res.Outcome)
	// Three unless the test clock's skipping ran the budget out first.
	require.GreaterOrEqual(t, local["ClaimAccount"], 1)
	require.LessOrEqual(t, local["ClaimAccount"], 3, "at most three quick local attempts")
	require.Equal(t, map[string]int{"ClaimAccount": 1}, regular, "then one regular activity, for the failing step only")
	require.Equal(t, []string{"claim", "grant:all-staff", "grant:engineering", "credential", "writeback"}, f.calls)
	found := false
	for _, ev := range f.status().Events {
		found = found || strings.Contains(ev.What, "ClaimAccount: the quick attempts failed")
	}
	require.True(t, found, "the record names the step that went to its regular activity")
}

// A rescind that is already there when the approval is acted on — what a
// re-run of a lost workflow task sees when the rescind came after the lost
// run had provisioned (localsteps.go) — does not stop the steps part-way:
// every step runs and registers its undo, then all of it is rolled back, so
// nothing the lost run made is left.
func TestLocalPathRescindWithTheApprovalUndoesEverything(t *testing.T) {
	f := newFixture(t)
	f.happy()
	f.provisioning()
	f.env.RegisterDelayedCallback(func() {
		f.signal(SignalApprove, ApprovalSignal{Approver: "ada.lovelace"})
		f.signal(SignalRescind, RescindSignal{By: "hr.partner", Reason: "offer withdrawn"})
	}, provisionDelay()+time.Hour)
	res, err := f.run()
	require.NoError(t, err)
	require.Equal(t, OutcomeRescinded, res.Outcome)
	require.Equal(t, []string{"claim", "grant:all-staff", "grant:engineering", "credential", "writeback",
		"undo:writeback", "undo:credential", "undo:group:engineering", "undo:group:all-staff", "undo:account"}, f.calls)
	require.Len(t, res.Resources, 5)
	for _, r := range res.Resources {
		require.NotNil(t, r.UndoneAt, "%s %s undone", r.Kind, r.ID)
	}
}

// A cancel that is already there when the approval is acted on — what a
// re-run of a lost task sees when the cancel came while the lost run
// provisioned — does not cut the chain: every step runs and is recorded
// with its undo, and the cancel is acted on where the joiner next waits
// (the Provisioned hold completes early, keeping the access it was
// approved for).
func TestLocalPathCancelWithTheApprovalLeavesNothingUnrecorded(t *testing.T) {
	f := newFixture(t)
	f.happy()
	f.provisioning()
	f.env.RegisterDelayedCallback(func() {
		f.signal(SignalApprove, ApprovalSignal{Approver: "ada.lovelace"})
		f.env.CancelWorkflow()
	}, provisionDelay()+time.Hour)
	res, err := f.run()
	require.NoError(t, err)
	require.Equal(t, []string{"claim", "grant:all-staff", "grant:engineering", "credential", "writeback"}, f.calls,
		"the chain ran to its end")
	require.Equal(t, OutcomeCompleted, res.Outcome, "the hold, cancelled, completes early")
	require.Len(t, res.Resources, 5, "every step's resource is recorded, with its undo")
}

// A rescind from an earlier task — here while the credential ran as a
// regular activity after its quick attempts failed — stops the steps at
// the next check: the write-back does not run, and everything made is
// undone. (A rescind from the current task waits for the last step:
// TestLocalPathRescindWithTheApprovalUndoesEverything.)
func TestLocalPathRescindFromAnEarlierTaskStopsTheSteps(t *testing.T) {
	f := newFixture(t)
	f.happy()
	sealed := temporal.NewApplicationError("sealed", "VaultSealed")
	f.env.OnActivity(f.acts.IssueCredential, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, _ activities.CredentialInput) (activities.CredentialResult, error) {
			if activity.GetInfo(ctx).IsLocalActivity {
				return activities.CredentialResult{}, sealed
			}
			f.calls = append(f.calls, "credential")
			return activities.CredentialResult{Path: "joinery/joiners/200/initial-credential", Version: 1}, nil
		}).After(10 * time.Minute)
	f.provisioning()
	f.signalAt(provisionDelay()+time.Hour, SignalApprove, ApprovalSignal{Approver: "ada.lovelace"})
	// The test environment keeps no history: its length (which tells
	// tasks apart) is set as a server's would grow.
	f.env.RegisterDelayedCallback(func() {
		f.env.SetCurrentHistoryLength(40)
		f.signal(SignalRescind, RescindSignal{By: "hr.partner"})
	}, provisionDelay()+time.Hour+5*time.Minute)
	f.env.RegisterDelayedCallback(func() { f.env.SetCurrentHistoryLength(45) }, provisionDelay()+time.Hour+6*time.Minute)
	res, err := f.run()
	require.NoError(t, err)
	require.Equal(t, OutcomeRescinded, res.Outcome)
	require.NotContains(t, f.calls, "writeback", "the rescind stopped the steps")
	require.Contains(t, f.calls, "undo:credential")
	require.Contains(t, f.calls, "undo:account")
}

// A permanent error ends the step at once: neither more local attempts
// nor a regular activity, and the joiner rolls back what it made — the
// same outcome the regular activity had.
func TestLocalStepPermanentErrorDoesNotFallBack(t *testing.T) {
	for name, err := range map[string]error{
		"non-retryable":                 temporal.NewNonRetryableApplicationError("injected", activities.ErrTypeInjectedFault, nil),
		"type the policy never retries": temporal.NewApplicationError("schema", "DirectorySchemaViolation"),
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			f.happy()
			f.env.OnActivity(f.acts.GrantGroup, mock.Anything, mock.Anything).Run(func(a mock.Arguments) {
				f.calls = append(f.calls, "grant:"+a.Get(1).(activities.GroupInput).Group)
			}).Return(activities.GroupInput{}, err).Once()
			f.provisioning()
			local, regular := f.countActivities()
			f.signalAt(provisionDelay()+time.Hour, SignalApprove, ApprovalSignal{Approver: "ada.lovelace"})
			res, jerr := f.run()
			require.Error(t, jerr)
			require.Equal(t, OutcomeFailed, res.Outcome)
			require.Equal(t, 1, local["GrantGroup"], "no second attempt")
			require.Zero(t, regular["GrantGroup"], "no regular activity")
			require.Equal(t, []string{"claim", "grant:all-staff",
				"undo:writeback", "undo:credential", "undo:group:engineering", "undo:group:all-staff", "undo:account"}, f.calls)
		})
	}
}

// A step that hangs past its local attempt budget goes to the regular
// activity too (the timeout is worth retrying); a cancelled step is not
// retried at all, nor a permanent error.
func TestWorthRegular(t *testing.T) {
	require.True(t, worthRegular(temporal.NewTimeoutError(0, nil), optsCredential))
	require.True(t, worthRegular(temporal.NewApplicationError("sealed", "VaultSealed"), optsCredential))
	require.True(t, worthRegular(errors.New("some transport error"), optsCredential))
	require.False(t, worthRegular(temporal.NewCanceledError(), optsCredential))
	require.False(t, worthRegular(temporal.NewApplicationError("denied", "VaultPermissionDenied"), optsCredential))
	require.False(t, worthRegular(temporal.NewNonRetryableApplicationError("refused", activities.ErrTypeOrderRefused, nil), optsNotify))
}

// The local attempts keep each step's own non-retryable types and attempt
// timeout, and a budget of one attempt plus a few seconds.
func TestLocalFirstOptions(t *testing.T) {
	lo := localFirst(optsDirectory)
	require.Equal(t, optsDirectory.RetryPolicy.NonRetryableErrorTypes, lo.RetryPolicy.NonRetryableErrorTypes)
	require.Equal(t, int32(3), lo.RetryPolicy.MaximumAttempts)
	require.Equal(t, optsDirectory.StartToCloseTimeout, lo.StartToCloseTimeout, "no shorter attempt than the regular one")
	require.Equal(t, optsDirectory.StartToCloseTimeout+localSlack, lo.ScheduleToCloseTimeout, "a timed-out attempt is not retried locally")
	require.Equal(t, localAttempt, localFirst(workflow.ActivityOptions{}).StartToCloseTimeout)
}
