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
