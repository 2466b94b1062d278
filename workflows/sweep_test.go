package workflows

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/joinery/joinery/activities"
	"github.com/joinery/joinery/connectors/secrets"
)

func sweepEnv(t *testing.T) (*testsuite.TestWorkflowEnvironment, *activities.Reconcile, *activities.Sweep) {
	t.Helper()
	env, r := reconcilerEnv(t)
	s := &activities.Sweep{}
	env.RegisterActivity(s)
	env.OnActivity(r.ReconcileListOrphans, mock.Anything, mock.Anything).Return(activities.ReconcileList{Judged: 1, SweeperQueue: "q-sweeper"}, nil)
	return env, r, s
}

var (
	orphanTok   = activities.WrapCandidate{Accessor: "acc-orphan", Kind: secrets.WrapCredential, Key: "300", Path: "joinery/joiners/300/initial-credential", CreatedAt: time.Unix(1000, 0).UTC()}
	recordedTok = activities.WrapCandidate{Accessor: "acc-recorded", Kind: secrets.WrapCredential, Key: "301", Path: "joinery/joiners/301/initial-credential", CreatedAt: time.Unix(1000, 0).UTC()}
)

// The sweep: the sweeper lists (on its own queue), the worker says which
// tokens the ledgers record, and only the unrecorded one is revoked, by
// the sweeper.
func TestReconcilerSweepRevokesOnlyUnrecordedTokens(t *testing.T) {
	env, r, s := sweepEnv(t)
	queues := map[string]string{}
	env.OnActivity(s.SweepListWrappingTokens, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, in activities.SweepListInput) (activities.SweepList, error) {
			queues["list"] = activity.GetInfo(ctx).TaskQueue
			return activities.SweepList{Old: []activities.WrapCandidate{orphanTok, recordedTok}, Young: 2, Looked: 9}, nil
		})
	env.OnActivity(r.ReconcileRecordedHandovers, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, in activities.RecordedHandoversInput) (activities.RecordedHandovers, error) {
			queues["ledgers"] = activity.GetInfo(ctx).TaskQueue
			require.Len(t, in.Tokens, 2)
			return activities.RecordedHandovers{Recorded: []string{"acc-recorded"}}, nil
		})
	var asked []string
	env.OnActivity(s.SweepRevokeWrappingTokens, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, in activities.SweepRevokeInput) (activities.SweepRevoked, error) {
			queues["revoke"] = activity.GetInfo(ctx).TaskQueue
			asked = in.Accessors
			return activities.SweepRevoked{Revoked: []activities.WrapCandidate{orphanTok}}, nil
		})
	env.ExecuteWorkflow(Reconciler, ReconcileInput{})
	require.NoError(t, env.GetWorkflowError())
	var rep ReconcileReport
	require.NoError(t, env.GetWorkflowResult(&rep))
	require.Equal(t, []string{"acc-orphan"}, asked, "a recorded token is never revoked by the sweep")
	require.NotNil(t, rep.Sweep)
	require.Equal(t, 1, rep.Sweep.Revoked)
	require.Equal(t, 1, rep.Sweep.Recorded)
	require.Equal(t, 2, rep.Sweep.Young)
	require.Equal(t, []activities.WrapCandidate{orphanTok}, rep.Sweep.Orphans)
	require.Equal(t, "q-sweeper", queues["list"], "the sweeper's calls go to its queue")
	require.Equal(t, "q-sweeper", queues["revoke"])
	require.NotEqual(t, "q-sweeper", queues["ledgers"], "the ledgers are read by the worker, not the sweeper")
}

// A dry run lists the unrecorded tokens and revokes nothing.
func TestReconcilerSweepDryRunRevokesNothing(t *testing.T) {
	env, r, s := sweepEnv(t)
	env.OnActivity(s.SweepListWrappingTokens, mock.Anything, mock.Anything).Return(activities.SweepList{Old: []activities.WrapCandidate{orphanTok}}, nil)
	env.OnActivity(r.ReconcileRecordedHandovers, mock.Anything, mock.Anything).Return(activities.RecordedHandovers{}, nil)
	revoked := 0
	env.OnActivity(s.SweepRevokeWrappingTokens, mock.Anything, mock.Anything).Run(func(mock.Arguments) { revoked++ }).
		Return(activities.SweepRevoked{}, nil).Maybe()
	env.ExecuteWorkflow(Reconciler, ReconcileInput{DryRun: true})
	require.NoError(t, env.GetWorkflowError())
	var rep ReconcileReport
	require.NoError(t, env.GetWorkflowResult(&rep))
	require.Zero(t, revoked)
	require.Len(t, rep.Sweep.Orphans, 1)
	require.Zero(t, rep.Sweep.Revoked)
}

// If the ledgers cannot be read, nothing is revoked: "not recorded" is
// never a guess. A sweeper that refuses or is down makes the report say
// so; the reconciler's run still succeeds with the rest of its report.
func TestReconcilerSweepRevokesNothingWhenTheLedgersCannotBeRead(t *testing.T) {
	env, r, s := sweepEnv(t)
	env.OnActivity(s.SweepListWrappingTokens, mock.Anything, mock.Anything).Return(activities.SweepList{Old: []activities.WrapCandidate{orphanTok}}, nil)
	env.OnActivity(r.ReconcileRecordedHandovers, mock.Anything, mock.Anything).Return(activities.RecordedHandovers{},
		temporal.NewNonRetryableApplicationError("vault sealed", "VaultSealed", nil))
	revoked := 0
	env.OnActivity(s.SweepRevokeWrappingTokens, mock.Anything, mock.Anything).Run(func(mock.Arguments) { revoked++ }).
		Return(activities.SweepRevoked{}, nil).Maybe()
	env.ExecuteWorkflow(Reconciler, ReconcileInput{})
	require.NoError(t, env.GetWorkflowError())
	var rep ReconcileReport
	require.NoError(t, env.GetWorkflowResult(&rep))
	require.Zero(t, revoked)
	require.Contains(t, rep.Sweep.Error, "ledgers could not be read")
}

func TestReconcilerSweepReportsASweeperThatRefuses(t *testing.T) {
	env, _, s := sweepEnv(t)
	env.OnActivity(s.SweepListWrappingTokens, mock.Anything, mock.Anything).Return(activities.SweepList{},
		temporal.NewNonRetryableApplicationError("order refused", activities.ErrTypeOrderRefused, errors.New("x")))
	env.ExecuteWorkflow(Reconciler, ReconcileInput{})
	require.NoError(t, env.GetWorkflowError())
	var rep ReconcileReport
	require.NoError(t, env.GetWorkflowResult(&rep))
	require.Contains(t, rep.Sweep.Error, "did not list")
}

// No sweeper deployed (JOINERY_SWEEPER_TASK_QUEUE=off): no sweep, no wait.
func TestReconcilerWithoutSweeperSkipsTheSweep(t *testing.T) {
	env, r := reconcilerEnv(t)
	env.OnActivity(r.ReconcileListOrphans, mock.Anything, mock.Anything).Return(activities.ReconcileList{Judged: 1}, nil)
	env.ExecuteWorkflow(Reconciler, ReconcileInput{})
	require.NoError(t, env.GetWorkflowError())
	var rep ReconcileReport
	require.NoError(t, env.GetWorkflowResult(&rep))
	require.Nil(t, rep.Sweep)
}
