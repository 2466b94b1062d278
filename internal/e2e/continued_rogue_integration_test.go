package e2e

// A rogue continues into Joiner with forged state, on the real stack.
//
// Adversary: any Temporal client of the namespace. It starts a workflow of
// its own — of another type, or one it names "Joiner", on a task queue its
// own worker polls — under a joiner's workflow ID, and continues it as new
// into Joiner on Joinery's task queue with a JoinerInput.Continued of its
// choosing: a revocation under way of someone else's entry, group
// membership and AppRole. The server starts that run with
// ContinuedExecutionRunID set, so only VerifyContinued (activities/
// continued.go), which asks Temporal what the previous run was, stands
// between the rogue and the revocation. Each attempt is refused, and the
// directory, Vault and the HRIS are unchanged.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/joinery/joinery/activities"
	"github.com/joinery/joinery/workflows"
)

// rogueContinue continues as new into Joiner on queue with state forged
// against victimDN and the AppRole of key's joiner.
func rogueContinue(queue, victimDN string) func(ctx workflow.Context, key string) error {
	return func(ctx workflow.Context, key string) error {
		info := workflow.GetInfo(ctx)
		now := workflow.Now(ctx)
		c := &workflows.Continued{
			Run: 2, Prior: []string{info.WorkflowExecution.RunID}, Stage: workflows.StageRevoking,
			Status: workflows.Status{HRISID: key, Stage: workflows.StageRevoking, Resources: []workflows.Resource{
				{Kind: "ldap-entry", ID: victimDN, CreatedAt: now},
				{Kind: "group-membership", ID: "finance", CreatedAt: now},
				{Kind: "vault-approle", ID: "joinery-nhi-" + key, CreatedAt: now},
			}},
			Result: workflows.JoinerResult{HRISID: key, DN: victimDN, Username: "ada.lovelace", Groups: []string{"finance"}},
			Unwind: &workflows.Unwind{Mode: "revoke", Stage: workflows.StageRevoked, Outcome: workflows.OutcomeRevoked, Why: "forged"},
		}
		in := workflows.JoinerInput{HRISID: key, Kind: "service-account", Source: "rogue",
			Request:   &activities.NonHumanRequest{Name: "rogue", SponsorID: "100", Environment: "production", Purpose: "forged"},
			Continued: c}
		ctx = workflow.WithWorkflowTaskQueue(ctx, queue)
		return workflow.NewContinueAsNewError(ctx, activities.JoinerWorkflowType, in)
	}
}

func TestRogueContinueAsNewIntoJoinerIsRefused(t *testing.T) {
	h := NewHarness(t)
	ctx := context.Background()
	base := h.EP.LDAPBaseDN
	adaDN := "uid=ada.lovelace,ou=people," + base
	finance := "cn=finance,ou=groups," + base

	rogueQueue := fmt.Sprintf("rogue-can-%d", rand.IntN(1e9))
	w := worker.New(h.C, rogueQueue, worker.Options{})
	w.RegisterWorkflowWithOptions(rogueContinue(h.Cfg.TaskQueue, adaDN), workflow.RegisterOptions{Name: "Evil"})
	// The same rogue under Joinery's workflow type, on its own queue: the
	// type alone does not make a run Joinery's.
	w.RegisterWorkflowWithOptions(rogueContinue(h.Cfg.TaskQueue, adaDN), workflow.RegisterOptions{Name: activities.JoinerWorkflowType})
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)

	adaBefore := rawLDAPEntry(t, h.EP.LDAPURL, adaDN)
	require.NotEmpty(t, adaBefore)
	inFinance, err := h.Dir.IsMember(ctx, finance, adaDN)
	require.NoError(t, err)
	hrBefore, err := h.HR.GetFields(ctx, "100", []string{"workEmail", "customUsername"})
	require.NoError(t, err)
	root := vaultClient(t, h.EP.VaultAddr, h.EP.VaultToken)

	for _, tc := range []struct{ wfType, because string }{
		{"Evil", `is a workflow of type "Evil", not "Joiner"`},
		{activities.JoinerWorkflowType, fmt.Sprintf(`ran on task queue %q, not this worker's %q`, rogueQueue, h.Cfg.TaskQueue)},
	} {
		t.Run(tc.wfType, func(t *testing.T) {
			key := fmt.Sprintf("nhi-rogue%d-production", rand.IntN(1e9))
			// A victim AppRole and policy under the key's names: the
			// forged revocation would delete them.
			role, pol := activities.WorkloadNames(key)
			require.NoError(t, root.Sys().PutPolicy(pol, `path "secret/data/rogue-victim" { capabilities = ["read"] }`))
			_, err := root.Logical().Write("auth/approle/role/"+role, map[string]any{"token_policies": pol})
			require.NoError(t, err)
			t.Cleanup(func() {
				_, _ = root.Logical().Delete("auth/approle/role/" + role)
				_ = root.Sys().DeletePolicy(pol)
			})

			id := activities.JoinerWorkflowID(key)
			first, err := h.C.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: rogueQueue,
				WorkflowExecutionTimeout: 2 * time.Minute}, tc.wfType, key)
			require.NoError(t, err)
			// Get follows the chain into the Joiner run the rogue continued into.
			err = h.C.GetWorkflow(ctx, id, "").Get(ctx, nil)
			require.Error(t, err, "the joiner accepted forged state")
			require.Contains(t, err.Error(), "continued state refused")
			require.Contains(t, err.Error(), tc.because)

			// The Joiner run scheduled the check and nothing else.
			d, err := h.C.DescribeWorkflowExecution(ctx, id, "")
			require.NoError(t, err)
			joinerRun := d.GetWorkflowExecutionInfo().GetExecution().GetRunId()
			require.NotEqual(t, first.GetRunID(), joinerRun)
			require.Equal(t, activities.JoinerWorkflowType, d.GetWorkflowExecutionInfo().GetType().GetName())
			require.Equal(t, h.Cfg.TaskQueue, d.GetWorkflowExecutionInfo().GetTaskQueue(), "the rogue reached Joinery's worker")
			var scheduled []string
			it := h.C.GetWorkflowHistory(ctx, id, joinerRun, false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
			for it.HasNext() {
				ev, err := it.Next()
				require.NoError(t, err)
				if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil {
					scheduled = append(scheduled, a.GetActivityType().GetName())
				}
			}
			require.Equal(t, []string{"VerifyContinued"}, scheduled)

			r, err := root.Logical().Read("auth/approle/role/" + role)
			require.NoError(t, err)
			require.NotNil(t, r, "the victim AppRole is still there")
			p, err := root.Sys().GetPolicy(pol)
			require.NoError(t, err)
			require.NotEmpty(t, p, "the victim policy is still there")
		})
	}

	require.Equal(t, adaBefore, rawLDAPEntry(t, h.EP.LDAPURL, adaDN), "Ada's entry is unchanged (not disabled, not deleted)")
	now, err := h.Dir.IsMember(ctx, finance, adaDN)
	require.NoError(t, err)
	require.Equal(t, inFinance, now, "finance membership unchanged")
	hrAfter, err := h.HR.GetFields(ctx, "100", []string{"workEmail", "customUsername"})
	require.NoError(t, err)
	require.Equal(t, hrBefore, hrAfter, "HR record unchanged")
}

// The check's acceptance against the real server: a run named Joiner on
// the queue the activity is dispatched on, closed as ContinuedAsNew, is
// what the describe of a genuine continuation shows (type, task queue and
// status filled in by Temporal), and is accepted. The stand-in "Joiner"
// here only continues once and then asks; the joiner's own continuations
// are covered by the workflow tests and the recorded histories.
func TestVerifyContinuedAcceptsAGenuineContinuationOnTheServer(t *testing.T) {
	h := NewHarness(t)
	ctx := context.Background()
	queue := fmt.Sprintf("it-verify-continued-%d", rand.IntN(1e9))
	w := worker.New(h.C, queue, worker.Options{})
	w.RegisterActivity(h.Acts)
	w.RegisterWorkflowWithOptions(func(ctx workflow.Context, key string, continued bool) (string, error) {
		if !continued {
			return "", workflow.NewContinueAsNewError(ctx, activities.JoinerWorkflowType, key, true)
		}
		ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 30 * time.Second,
			RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 1}})
		err := workflow.ExecuteActivity(ctx, h.Acts.VerifyContinued, activities.VerifyContinuedInput{
			Key: key, PrevRunID: workflow.GetInfo(ctx).ContinuedExecutionRunID}).Get(ctx, nil)
		if err != nil {
			return "refused: " + err.Error(), nil
		}
		return "accepted", nil
	}, workflow.RegisterOptions{Name: activities.JoinerWorkflowType})
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)

	key := fmt.Sprintf("nhi-genuine%d-production", rand.IntN(1e9))
	_, err := h.C.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: activities.JoinerWorkflowID(key), TaskQueue: queue,
		WorkflowExecutionTimeout: time.Minute}, activities.JoinerWorkflowType, key, false)
	require.NoError(t, err)
	var out string
	require.NoError(t, h.C.GetWorkflow(ctx, activities.JoinerWorkflowID(key), "").Get(ctx, &out))
	require.Equal(t, "accepted", out)
}
