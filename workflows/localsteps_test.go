package workflows

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

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
	f.env.OnActivity(f.acts.ClaimAccount, mock.Anything, mock.Anything).Return(activities.ClaimResult{}, busy).Times(3)
	f.provisioning()
	local, regular := f.countActivities()
	f.signalAt(provisionDelay()+time.Hour, SignalApprove, ApprovalSignal{Approver: "ada.lovelace"})
	res, err := f.run()
	require.NoError(t, err)
	require.Equal(t, OutcomeCompleted, res.Outcome)
	require.Equal(t, 3, local["ClaimAccount"], "three quick local attempts")
	require.Equal(t, 1, regular["ClaimAccount"], "then the regular activity")
	require.Equal(t, map[string]int{"ClaimAccount": 1}, regular, "only the failing step left the local path")
	require.Equal(t, []string{"claim", "grant:all-staff", "grant:engineering", "credential", "writeback"}, f.calls)
	found := false
	for _, ev := range f.status().Events {
		found = found || strings.Contains(ev.What, "ClaimAccount: the quick attempts failed")
	}
	require.True(t, found, "the record names the step that went to its regular activity")
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
			}).Return(err).Once()
			f.provisioning()
			local, regular := f.countActivities()
			f.signalAt(provisionDelay()+time.Hour, SignalApprove, ApprovalSignal{Approver: "ada.lovelace"})
			res, jerr := f.run()
			require.Error(t, jerr)
			require.Equal(t, OutcomeFailed, res.Outcome)
			require.Equal(t, 1, local["GrantGroup"], "no second attempt")
			require.Zero(t, regular["GrantGroup"], "no regular activity")
			require.Equal(t, []string{"claim", "grant:all-staff", "undo:group:all-staff", "undo:account"}, f.calls)
		})
	}
}

// A step that hangs past its local attempt budget goes to the regular
// activity too (the timeout is worth retrying); a cancelled joiner's step
// is not retried at all.
func TestWorthRegular(t *testing.T) {
	require.True(t, worthRegular(temporal.NewTimeoutError(0, nil), optsCredential))
	require.True(t, worthRegular(temporal.NewApplicationError("sealed", "VaultSealed"), optsCredential))
	require.True(t, worthRegular(errors.New("some transport error"), optsCredential))
	require.False(t, worthRegular(temporal.NewCanceledError(), optsCredential))
	require.False(t, worthRegular(temporal.NewApplicationError("denied", "VaultPermissionDenied"), optsCredential))
	require.False(t, worthRegular(temporal.NewNonRetryableApplicationError("refused", activities.ErrTypeOrderRefused, nil), optsNotify))
}

// The local attempts keep each step's own non-retryable types and stay
// within a short budget, each attempt no longer than the step's own.
func TestLocalFirstOptions(t *testing.T) {
	lo := localFirst(optsDirectory)
	require.Equal(t, optsDirectory.RetryPolicy.NonRetryableErrorTypes, lo.RetryPolicy.NonRetryableErrorTypes)
	require.Equal(t, int32(3), lo.RetryPolicy.MaximumAttempts)
	require.Equal(t, localAttempt, lo.StartToCloseTimeout)
	require.Equal(t, localBudget, lo.ScheduleToCloseTimeout)
	require.Equal(t, optsAudit.StartToCloseTimeout, localFirst(optsAudit).StartToCloseTimeout)
}
