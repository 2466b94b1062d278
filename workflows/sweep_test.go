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

// The sweep: the sweeper lists the unindexed old tokens (on its own queue),
// the worker indexes their ledgers, and the sweeper's revoke, which judges
// each accessor again itself, decides; its verdicts make the report.
func TestReconcilerSweepIndexesThenLetsTheSweeperJudge(t *testing.T) {
	env, r, s := sweepEnv(t)
	queues := map[string]string{}
	env.OnActivity(s.SweepListWrappingTokens, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, in activities.SweepListInput) (activities.SweepList, error) {
			queues["list"] = activity.GetInfo(ctx).TaskQueue
			return activities.SweepList{Old: []activities.WrapCandidate{orphanTok, recordedTok}, Young: 2, Recorded: 3, Looked: 9}, nil
		})
	env.OnActivity(r.ReconcileIndexHandovers, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, in activities.IndexHandoversInput) (activities.IndexHandoversResult, error) {
			queues["index"] = activity.GetInfo(ctx).TaskQueue
			require.Len(t, in.Tokens, 2)
			return activities.IndexHandoversResult{Ledgers: 2}, nil
		})
	var asked []string
	env.OnActivity(s.SweepRevokeWrappingTokens, mock.Anything, mock.Anything).Return(
		func(ctx context.Context, in activities.SweepRevokeInput) (activities.SweepRevoked, error) {
			queues["revoke"] = activity.GetInfo(ctx).TaskQueue
			asked = in.Accessors
			// The sweeper found the second one in its index once the
			// worker had indexed its (old) ledger.
			return activities.SweepRevoked{Revoked: []activities.WrapCandidate{orphanTok}, Skipped: []string{"acc-recorded: recorded"}}, nil
		})
	env.ExecuteWorkflow(Reconciler, ReconcileInput{})
	require.NoError(t, env.GetWorkflowError())
	var rep ReconcileReport
	require.NoError(t, env.GetWorkflowResult(&rep))
	require.Equal(t, []string{"acc-orphan", "acc-recorded"}, asked)
	require.NotNil(t, rep.Sweep)
	require.Equal(t, 1, rep.Sweep.Revoked)
	require.Equal(t, 3, rep.Sweep.Recorded)
	require.Equal(t, 2, rep.Sweep.Young)
	require.Equal(t, []activities.WrapCandidate{orphanTok}, rep.Sweep.Orphans)
	require.Len(t, rep.Sweep.Skipped, 1)
	require.Equal(t, "q-sweeper", queues["list"], "the sweeper's calls go to its queue")
	require.Equal(t, "q-sweeper", queues["revoke"])
	require.NotEqual(t, "q-sweeper", queues["index"], "the ledgers are indexed by the worker, not the sweeper")
}

// A dry run asks the sweeper to judge and revoke nothing; it reports what
// would be revoked.
func TestReconcilerSweepDryRunRevokesNothing(t *testing.T) {
	env, r, s := sweepEnv(t)
	env.OnActivity(s.SweepListWrappingTokens, mock.Anything, mock.Anything).Return(activities.SweepList{Old: []activities.WrapCandidate{orphanTok}}, nil)
	env.OnActivity(r.ReconcileIndexHandovers, mock.Anything, mock.Anything).Return(activities.IndexHandoversResult{}, nil)
	var dry []bool
	env.OnActivity(s.SweepRevokeWrappingTokens, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.SweepRevokeInput) (activities.SweepRevoked, error) {
			dry = append(dry, in.DryRun)
			return activities.SweepRevoked{Revoked: []activities.WrapCandidate{orphanTok}}, nil
		})
	env.ExecuteWorkflow(Reconciler, ReconcileInput{DryRun: true})
	require.NoError(t, env.GetWorkflowError())
	var rep ReconcileReport
	require.NoError(t, env.GetWorkflowResult(&rep))
	require.Equal(t, []bool{true}, dry, "the revoke is asked for a dry run")
	require.Len(t, rep.Sweep.Orphans, 1)
	require.Zero(t, rep.Sweep.Revoked)
}

// If the ledgers cannot be indexed, nothing is revoked this run.
func TestReconcilerSweepRevokesNothingWhenIndexingFails(t *testing.T) {
	env, r, s := sweepEnv(t)
	env.OnActivity(s.SweepListWrappingTokens, mock.Anything, mock.Anything).Return(activities.SweepList{Old: []activities.WrapCandidate{orphanTok}}, nil)
	env.OnActivity(r.ReconcileIndexHandovers, mock.Anything, mock.Anything).Return(activities.IndexHandoversResult{},
		temporal.NewNonRetryableApplicationError("vault sealed", "VaultSealed", nil))
	revoked := 0
	env.OnActivity(s.SweepRevokeWrappingTokens, mock.Anything, mock.Anything).Run(func(mock.Arguments) { revoked++ }).
		Return(activities.SweepRevoked{}, nil).Maybe()
	env.ExecuteWorkflow(Reconciler, ReconcileInput{})
	require.NoError(t, env.GetWorkflowError())
	var rep ReconcileReport
	require.NoError(t, env.GetWorkflowResult(&rep))
	require.Zero(t, revoked)
	require.Contains(t, rep.Sweep.Error, "could not be indexed")
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

// Each run hands its findings by kind to the worker's metrics (through an
// activity, so a replay never reports an old run again).
func TestReconcilerRecordsItsFindings(t *testing.T) {
	env, r := reconcilerEnv(t)
	env.OnActivity(r.ReconcileListOrphans, mock.Anything, mock.Anything).Return(twoOrphans, nil)
	var got map[string]int
	env.OnActivity(r.ReconcileRecordMetrics, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.ReconcileMetricsInput) error { got = in.Findings; return nil })
	env.ExecuteWorkflow(Reconciler, ReconcileInput{DryRun: true})
	require.NoError(t, env.GetWorkflowError())
	require.Equal(t, map[string]int{activities.ItemAppRole: 1, activities.ItemEntry: 1, activities.ItemMembership: 1}, got)
}

// A candidate whose ledger could not be indexed (it may be a handover from
// before the index existed) is not sent to the revoke this run.
func TestReconcilerSweepHoldsBackUnindexedLedgers(t *testing.T) {
	env, r, s := sweepEnv(t)
	env.OnActivity(s.SweepListWrappingTokens, mock.Anything, mock.Anything).Return(
		activities.SweepList{Old: []activities.WrapCandidate{orphanTok, recordedTok}}, nil)
	env.OnActivity(r.ReconcileIndexHandovers, mock.Anything, mock.Anything).Return(
		activities.IndexHandoversResult{Ledgers: 1, Failed: []string{"ledger busy"}, Unindexed: []string{"acc-recorded"}}, nil)
	var asked []string
	env.OnActivity(s.SweepRevokeWrappingTokens, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.SweepRevokeInput) (activities.SweepRevoked, error) {
			asked = in.Accessors
			return activities.SweepRevoked{Revoked: []activities.WrapCandidate{orphanTok}}, nil
		})
	env.ExecuteWorkflow(Reconciler, ReconcileInput{})
	require.NoError(t, env.GetWorkflowError())
	var rep ReconcileReport
	require.NoError(t, env.GetWorkflowResult(&rep))
	require.Equal(t, []string{"acc-orphan"}, asked)
	require.Contains(t, rep.Sweep.Failed, "ledger busy")
}
