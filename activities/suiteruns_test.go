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
