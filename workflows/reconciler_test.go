package workflows

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/joinery/joinery/activities"
)

func reconcilerEnv(t *testing.T) (*testsuite.TestWorkflowEnvironment, *activities.Reconcile) {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	r := &activities.Reconcile{}
	env.RegisterActivity(r)
	env.RegisterWorkflow(Reconciler)
	return env, r
}

var twoOrphans = activities.ReconcileList{
	Judged: 4, Live: 1, Kept: 1,
	Orphans: []activities.Orphan{
		{Key: "nhi-bot-prod", WorkflowID: "joiner-nhi-bot-prod", Status: "Terminated", Items: []activities.ReconcileItem{
			{Kind: activities.ItemAppRole, ID: "joinery-nhi-bot-prod"},
			{Kind: activities.ItemEntry, ID: "uid=bot,ou=service-accounts,dc=joinery,dc=test"}}},
		{Key: "300", WorkflowID: "joiner-300", Status: "Terminated", Items: []activities.ReconcileItem{
			{Kind: activities.ItemMembership, ID: "cn=contractors,ou=groups,dc=joinery,dc=test"}},
			Young: []activities.ReconcileItem{{Kind: activities.ItemSecret, ID: "joinery/joiners/300/initial-credential"}}},
	},
}

// A dry run reports what it found and never calls the revoke activity.
func TestReconcilerDryRunRevokesNothing(t *testing.T) {
	env, r := reconcilerEnv(t)
	env.OnActivity(r.ReconcileListOrphans, mock.Anything, mock.Anything).Return(twoOrphans, nil)
	revoked := 0
	env.OnActivity(r.ReconcileRevokeOrphan, mock.Anything, mock.Anything).Run(func(mock.Arguments) { revoked++ }).
		Return(activities.Orphan{}, nil).Maybe()
	env.ExecuteWorkflow(Reconciler, ReconcileInput{DryRun: true})
	require.NoError(t, env.GetWorkflowError())
	var rep ReconcileReport
	require.NoError(t, env.GetWorkflowResult(&rep))
	require.Zero(t, revoked, "a dry run acts on nothing")
	require.True(t, rep.DryRun)
	require.Equal(t, 3, rep.Found)
	require.Equal(t, 0, rep.Revoked)
	require.Equal(t, 1, rep.Young)
	require.Equal(t, 4, rep.Judged)
	require.Len(t, rep.Orphans, 2)
}

// A real run revokes each orphan by key only, reports per item what the
// activity did, and keeps going past an orphan whose revocation failed.
func TestReconcilerRevokesEachOrphanByKey(t *testing.T) {
	env, r := reconcilerEnv(t)
	env.OnActivity(r.ReconcileListOrphans, mock.Anything, mock.Anything).Return(twoOrphans, nil)
	var asked []activities.ReconcileRevokeInput
	env.OnActivity(r.ReconcileRevokeOrphan, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.ReconcileRevokeInput) (activities.Orphan, error) {
			asked = append(asked, in)
			if in.Key == "300" {
				return activities.Orphan{}, errors.New("ldap down")
			}
			o := twoOrphans.Orphans[0]
			o.Items = []activities.ReconcileItem{{Kind: activities.ItemAppRole, ID: "joinery-nhi-bot-prod", Done: true},
				{Kind: activities.ItemEntry, ID: "uid=bot,ou=service-accounts,dc=joinery,dc=test", Done: true}}
			return o, nil
		})
	env.ExecuteWorkflow(Reconciler, ReconcileInput{})
	require.NoError(t, env.GetWorkflowError())
	var rep ReconcileReport
	require.NoError(t, env.GetWorkflowResult(&rep))
	require.Equal(t, []string{"nhi-bot-prod", "300", "300", "300", "300", "300"}, keysOf(asked), "one call per orphan, the failing one retried")
	require.Equal(t, 3, rep.Found)
	require.Equal(t, 2, rep.Revoked)
	require.Equal(t, 1, rep.Failed)
	require.Len(t, rep.Errors, 1)
	require.Contains(t, rep.Errors[0], "300")
}

func keysOf(in []activities.ReconcileRevokeInput) []string {
	out := make([]string, len(in))
	for i, x := range in {
		out[i] = x.Key
	}
	return out
}

// Bad input is refused before anything runs.
func TestReconcilerRefusesNegativeBounds(t *testing.T) {
	env, _ := reconcilerEnv(t)
	env.ExecuteWorkflow(Reconciler, ReconcileInput{MaxJoiners: -1})
	require.Error(t, env.GetWorkflowError())
}

// The listing comes in pages: each call resumes after the last key the
// previous one judged, and the report adds them up.
func TestReconcilerPagesThroughTheListing(t *testing.T) {
	env, r := reconcilerEnv(t)
	var afters []string
	env.OnActivity(r.ReconcileListOrphans, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.ReconcileListInput) (activities.ReconcileList, error) {
			afters = append(afters, in.After)
			if in.After == "" {
				return activities.ReconcileList{Judged: 500, Clean: 500, Next: "299"}, nil
			}
			return activities.ReconcileList{Judged: 3, Kept: 3}, nil
		})
	env.ExecuteWorkflow(Reconciler, ReconcileInput{DryRun: true})
	require.NoError(t, env.GetWorkflowError())
	var rep ReconcileReport
	require.NoError(t, env.GetWorkflowResult(&rep))
	require.Equal(t, []string{"", "299"}, afters)
	require.Equal(t, 503, rep.Judged)
	require.Equal(t, 3, rep.Kept)
	require.False(t, rep.More)
}
