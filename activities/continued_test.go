package activities

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/temporal"
)

// fakeRuns answers DescribeWorkflowExecution with one run (or err).
type fakeRuns struct {
	id, run, typ, queue string
	status              enums.WorkflowExecutionStatus
	err                 error
	asked               []string
}

func (f *fakeRuns) DescribeWorkflowExecution(_ context.Context, id, run string) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
	f.asked = append(f.asked, id+"/"+run)
	if f.err != nil {
		return nil, f.err
	}
	if id == f.id && run == testRun {
		// The calling run itself (the order checks may ask about it): a
		// running Joiner on the worker's queue.
		return &workflowservice.DescribeWorkflowExecutionResponse{WorkflowExecutionInfo: &workflowpb.WorkflowExecutionInfo{
			Execution: &commonpb.WorkflowExecution{WorkflowId: id, RunId: run},
			Type:      &commonpb.WorkflowType{Name: JoinerWorkflowType}, TaskQueue: testQueue, Status: enums.WORKFLOW_EXECUTION_STATUS_RUNNING,
		}}, nil
	}
	if id != f.id || run != f.run {
		return nil, serviceerror.NewNotFound("workflow execution not found")
	}
	return &workflowservice.DescribeWorkflowExecutionResponse{WorkflowExecutionInfo: &workflowpb.WorkflowExecutionInfo{
		Execution: &commonpb.WorkflowExecution{WorkflowId: id, RunId: run},
		Type:      &commonpb.WorkflowType{Name: f.typ}, TaskQueue: f.queue, Status: f.status,
	}}, nil
}

// The test environment's activity runs on this queue, for this run.
const (
	testQueue = "default-test-taskqueue"
	testRun   = "default-test-run-id"
)

func TestVerifyContinuedAcceptsOnlyAJoinerOnThisQueueThatContinued(t *testing.T) {
	const key, prev = "nhi-bot-production", "prev-run"
	id := JoinerWorkflowID(key)
	good := func() *fakeRuns {
		return &fakeRuns{id: id, run: prev, typ: JoinerWorkflowType, queue: testQueue, status: enums.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW}
	}
	in := VerifyContinuedInput{Key: key, PrevRunID: prev}

	f := good()
	require.NoError(t, runAs(t, &Activities{Runs: f}, JoinerWorkflowType, id, (&Activities{}).VerifyContinued, in, nil))
	require.Contains(t, f.asked, id+"/"+prev, "the caller's own workflow ID, as the server reports it")

	for name, c := range map[string]struct {
		runs         func(f *fakeRuns)
		wfType, wfID string
		in           VerifyContinuedInput
		because      string
	}{
		"previous run of another type":     {runs: func(f *fakeRuns) { f.typ = "Evil" }, because: `type "Evil", not "Joiner"`},
		"previous Joiner on another queue": {runs: func(f *fakeRuns) { f.queue = "rogue" }, because: `task queue "rogue", not this worker's`},
		"previous run still running":       {runs: func(f *fakeRuns) { f.status = enums.WORKFLOW_EXECUTION_STATUS_RUNNING }, because: "not continued as new"},
		"previous run terminated":          {runs: func(f *fakeRuns) { f.status = enums.WORKFLOW_EXECUTION_STATUS_TERMINATED }, because: "not continued as new"},
		"unknown previous run":             {in: VerifyContinuedInput{Key: key, PrevRunID: "nope"}, because: "Temporal has no run nope"},
		"no previous run":                  {in: VerifyContinuedInput{Key: key}, because: "no previous run named"},
		"continues from itself":            {in: VerifyContinuedInput{Key: key, PrevRunID: testRun}, because: "cannot continue from itself"},
		"caller is not a Joiner":           {wfType: "Evil", because: `not "Joiner"`},
		"caller is another joiner":         {wfID: JoinerWorkflowID("someone-else"), because: "may only act for its own joiner"},
	} {
		t.Run(name, func(t *testing.T) {
			f := good()
			if c.runs != nil {
				c.runs(f)
			}
			wfType, wfID, vin := JoinerWorkflowType, id, in
			if c.wfType != "" {
				wfType = c.wfType
			}
			if c.wfID != "" {
				wfID = c.wfID
			}
			if c.in != (VerifyContinuedInput{}) {
				vin = c.in
			}
			err := runAs(t, &Activities{Runs: f}, wfType, wfID, (&Activities{}).VerifyContinued, vin, nil)
			requireRefused(t, err)
			require.ErrorContains(t, err, c.because)
		})
	}

	// Without a Temporal client nothing is accepted; Temporal unreachable
	// is retried (not a refusal).
	err := runAs(t, &Activities{}, JoinerWorkflowType, id, (&Activities{}).VerifyContinued, in, nil)
	requireRefused(t, err)
	f = good()
	f.err = serviceerror.NewUnavailable("frontend down")
	err = runAs(t, &Activities{Runs: f}, JoinerWorkflowType, id, (&Activities{}).VerifyContinued, in, nil)
	require.Error(t, err)
	var ae *temporal.ApplicationError
	require.True(t, errors.As(err, &ae))
	require.False(t, ae.NonRetryable(), "%v", err)
	// Outside an activity there is no queue to compare with: refused too.
	requireRefused(t, good().verifyDirect(t, in))
}

func (f *fakeRuns) verifyDirect(t *testing.T, in VerifyContinuedInput) error {
	t.Helper()
	return (&Activities{Runs: f}).VerifyContinued(context.Background(), in)
}
