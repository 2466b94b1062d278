package activities

import (
	"context"
	"testing"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/stretchr/testify/require"
)

// suiteTaskQueue is the queue Temporal's workflow test environment
// dispatches activities on.
const suiteTaskQueue = "default-test-taskqueue"

// suiteRuns is Temporal's answer about the test environment's one run: a
// running workflow of type typ on the test environment's queue. The order
// checks ask it as they ask the real server.
type suiteRuns struct{ typ string }

func (s suiteRuns) DescribeWorkflowExecution(_ context.Context, id, run string) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
	return &workflowservice.DescribeWorkflowExecutionResponse{WorkflowExecutionInfo: &workflowpb.WorkflowExecutionInfo{
		Execution: &commonpb.WorkflowExecution{WorkflowId: id, RunId: run}, Type: &commonpb.WorkflowType{Name: s.typ},
		TaskQueue: suiteTaskQueue, Status: enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING}}, nil
}

// withSuiteRuns gives a an answer about its caller, the test environment's
// run of type typ, when the test built it without one. Every test
// environment's run has the same ID, so the verdicts cached for an earlier
// run are dropped.
func withSuiteRuns(a *Activities, typ string) {
	if _, ours := a.Runs.(suiteRuns); a.Runs != nil && !ours {
		return
	}
	a.Runs = suiteRuns{typ: typ}
	b := a.book()
	b.mu.Lock()
	b.callers = ttlMap[string]{ttl: callerTTL, max: runBookMax}
	b.mu.Unlock()
}

// A worker wired without a Temporal client takes no orders: it cannot tell
// Joinery's runs from anyone's (fail closed, not open).
func TestOrdersFailClosedWithoutATemporalClient(t *testing.T) {
	a := &Activities{}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterActivity(a)
	env.RegisterWorkflowWithOptions(func(ctx workflow.Context) error {
		ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute,
			RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 1}})
		return workflow.ExecuteActivity(ctx, a.SearchPseudonyms, PseudonymsInput{Key: "200"}).Get(ctx, nil)
	}, workflow.RegisterOptions{Name: JoinerWorkflowType})
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: "joiner-200"})
	env.ExecuteWorkflow(JoinerWorkflowType)
	require.True(t, env.IsWorkflowCompleted())
	err := env.GetWorkflowError()
	require.ErrorContains(t, err, "no Temporal client to confirm its caller")
}

// countingRuns answers like suiteRuns, but on another task queue (the
// caller is not Joinery's), and counts the questions.
type countingRuns struct{ asked *int }

func (c countingRuns) DescribeWorkflowExecution(ctx context.Context, id, run string) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
	*c.asked++
	resp, err := suiteRuns{typ: JoinerWorkflowType}.DescribeWorkflowExecution(ctx, id, run)
	resp.WorkflowExecutionInfo.TaskQueue = "rogue-queue"
	return resp, err
}

// A local activity is run only by workflow code in this worker's own
// workflow task, so admitRun does not ask Temporal about its caller
// (workflows/localsteps.go); a regular activity task, which any workflow on
// any queue can schedule onto Joinery's queue, is still asked about and
// refused here. The caller's type and ID are checked for both.
func TestOrdersSkipTheQueueCheckOnlyForLocalActivities(t *testing.T) {
	run := func(t *testing.T, typ, id string, local bool) (error, int) {
		asked := 0
		a := &Activities{Runs: countingRuns{asked: &asked}}
		var s testsuite.WorkflowTestSuite
		env := s.NewTestWorkflowEnvironment()
		env.RegisterActivity(a)
		env.RegisterWorkflowWithOptions(func(ctx workflow.Context) error {
			in := ExportAuditInput{Key: "200"}
			if local {
				ctx = workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{StartToCloseTimeout: time.Minute,
					RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 1}})
				return workflow.ExecuteLocalActivity(ctx, "ExportAudit", in).Get(ctx, nil)
			}
			ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute,
				RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 1}})
			return workflow.ExecuteActivity(ctx, a.ExportAudit, in).Get(ctx, nil)
		}, workflow.RegisterOptions{Name: typ})
		env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: id})
		env.ExecuteWorkflow(typ)
		require.True(t, env.IsWorkflowCompleted())
		return env.GetWorkflowError(), asked
	}
	err, asked := run(t, JoinerWorkflowType, "joiner-200", true)
	require.NoError(t, err, "a local activity of the joiner's own run is admitted")
	require.Zero(t, asked, "without asking Temporal")

	err, asked = run(t, JoinerWorkflowType, "joiner-200", false)
	require.ErrorContains(t, err, "not this worker's", "the same order as a regular activity is asked about, and refused")
	require.Equal(t, 1, asked)

	err, _ = run(t, "Evil", "joiner-200", true)
	require.ErrorContains(t, err, "not \"Joiner\"", "the caller's type is checked for a local activity too")
	err, _ = run(t, JoinerWorkflowType, "joiner-201", true)
	require.ErrorContains(t, err, "may only act for its own joiner", "and its ID")
}
