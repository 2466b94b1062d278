package workflows

import (
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/joinery/joinery/activities"
)

// A continued run whose previous run Temporal does not confirm as this
// joiner's own (VerifyContinued refuses: a workflow of another type, or on
// another task queue, continued into Joiner) fails before anything: no
// revocation of the forged resources, no grant, no notification, no audit
// record, no stage published.
func TestForgedContinuedStateIsRefusedAndNothingIsDone(t *testing.T) {
	for _, forged := range []struct {
		name  string
		forge func(c *Continued)
	}{
		{"active with a membership nobody granted", func(c *Continued) {
			c.Status.Resources = append(c.Status.Resources, Resource{Kind: "group-membership", ID: "finance"})
			c.Result.Groups = append(c.Result.Groups, "finance")
		}},
		{"revoking someone else's entry", func(c *Continued) {
			c.Stage = StageRevoking
			c.Result.DN = "uid=ada.lovelace,ou=people,dc=joinery,dc=test"
			c.Unwind = &Unwind{Mode: unwindRevoke, Stage: StageRevoked, Outcome: OutcomeRevoked, Why: "forged"}
		}},
	} {
		t.Run(forged.name, func(t *testing.T) {
			f, in := nhiFixture(t)
			f.nhiMocks()
			bothApprove(f)
			f.suggestContinueAt(5 * 24 * time.Hour)
			_, err := f.runInput(in)
			next := continuedInput(t, err)
			require.Zero(t, f.verified, "a first run has nothing to verify")
			forged.forge(next.Continued)

			f2 := nextRun(t, f, next)
			var asked []activities.VerifyContinuedInput
			f2.verifyContinued = func(in activities.VerifyContinuedInput) error {
				asked = append(asked, in)
				return temporal.NewNonRetryableApplicationError(
					"order refused: verify-continued: the previous run is a workflow of type \"Rogue\", not \"Joiner\"", activities.ErrTypeOrderRefused, nil)
			}
			var acted []string
			for _, act := range []any{f2.acts.RevokeWorkload, f2.acts.RevokeGroup, f2.acts.DisableAccount, f2.acts.DeleteAccount,
				f2.acts.RevokeCredential, f2.acts.UndoWriteBack} {
				f2.env.OnActivity(act, mock.Anything, mock.Anything).Run(func(mock.Arguments) { acted = append(acted, "side effect") }).Return(nil).Maybe()
			}
			f2.env.OnActivity(f2.acts.ExportAudit, mock.Anything, mock.Anything).Run(func(mock.Arguments) { acted = append(acted, "audit") }).
				Return(activities.ExportAuditResult{}, nil).Maybe()
			f2.env.OnActivity(f2.acts.SearchPseudonyms, mock.Anything, mock.Anything).Run(func(mock.Arguments) { acted = append(acted, "pseudonyms") }).
				Return(map[string]string{}, nil).Maybe()
			f2.nhiMocks()
			_, err = f2.runInput(next)
			require.Error(t, err)
			require.Contains(t, err.Error(), "continued state refused")
			require.Contains(t, err.Error(), `of type "Rogue", not "Joiner"`, "the refusal says why")
			require.Equal(t, []activities.VerifyContinuedInput{{Key: in.HRISID, PrevRunID: next.Continued.Prior[len(next.Continued.Prior)-1]}}, asked,
				"the check names the run the server says this one continues")
			require.Empty(t, acted, "nothing is revoked, granted or recorded")
			require.Empty(t, f2.calls)
			require.Empty(t, f2.notes, "nobody is notified")
		})
	}
}

// A genuine continuation is checked once, and goes on.
func TestGenuineContinuationIsVerifiedOnce(t *testing.T) {
	f, in := nhiFixture(t)
	f.nhiMocks()
	bothApprove(f)
	f.suggestContinueAt(5 * 24 * time.Hour)
	_, err := f.runInput(in)
	next := continuedInput(t, err)
	f2 := nextRun(t, f, next)
	for _, act := range []any{f2.acts.RevokeWorkload, f2.acts.RevokeGroup, f2.acts.DisableAccount} {
		f2.env.OnActivity(act, mock.Anything, mock.Anything).Return(nil)
	}
	f2.nhiMocks()
	res, err := f2.runInput(next)
	require.NoError(t, err)
	require.Equal(t, OutcomeExpired, res.Outcome)
	require.Equal(t, 1, f2.verified)
}
