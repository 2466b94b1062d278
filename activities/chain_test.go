package activities

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
)

// chainRuns answers with each run's first run (absent: NotFound).
type chainRuns map[string]string

func (c chainRuns) DescribeWorkflowExecution(_ context.Context, id, run string) (*workflowservice.DescribeWorkflowExecutionResponse, error) {
	first, ok := c[run]
	if !ok {
		return nil, serviceerror.NewNotFound("workflow execution not found")
	}
	return &workflowservice.DescribeWorkflowExecutionResponse{WorkflowExecutionInfo: &workflowpb.WorkflowExecutionInfo{
		Execution: &commonpb.WorkflowExecution{WorkflowId: id, RunId: run}, FirstRunId: first}}, nil
}

// An earlier run's entry is this run's to act on only within one chain: a
// reset or a continue-as-new of the creating run, never a new life of the
// workflow ID started after the joiner closed, and never a run Temporal
// has forgotten.
func TestSameChain(t *testing.T) {
	a := &Activities{Runs: chainRuns{"r1": "r1", "r2-reset": "r1", "r3-can": "r1", "x1-new": "x1"}}
	ctx := context.Background()
	for _, c := range []struct {
		a, b string
		want bool
	}{
		{"r2-reset", "r1", true}, {"r3-can", "r1", true},
		{"x1-new", "r1", false}, {"x1-new", "gone", false}, {"gone", "r1", false},
	} {
		got, err := a.sameChain(ctx, "joiner-1", c.a, c.b)
		require.NoError(t, err)
		require.Equal(t, c.want, got, "%s vs %s", c.a, c.b)
	}
	got, err := (&Activities{}).sameChain(ctx, "joiner-1", "x1-new", "r1")
	require.NoError(t, err)
	require.True(t, got, "without a Temporal client the check keeps its earlier behaviour")
}
