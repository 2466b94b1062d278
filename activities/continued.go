package activities

// Continued state: where a joiner's carried state really came from.
//
// A joiner continues as new (workflows/continued.go) by handing its whole
// state — plan, decisions, what it created and how to undo it — to the next
// run in JoinerInput.Continued. The joiner accepts such state only from a run
// the server started by continuing a run of the same workflow ID
// (ContinuedExecutionRunID), but that alone does not say WHAT continued.
//
// Adversary: any Temporal client of the namespace. It can start a workflow of
// another type (registered on a worker of its own, on a task queue of its
// own — even one it names "Joiner") under a joiner's workflow ID and have it
// continue as new into Joiner on Joinery's task queue, with a forged
// Continued: approvals nobody gave, someone else's entry, group membership or
// AppRole listed as "created" for the joiner to revoke. The server fills in
// ContinuedExecutionRunID either way. What the adversary cannot choose is
// what the server says about that previous run: its type, the task queue it
// ran on and how it closed. Joinery's worker is the only one polling
// Joinery's task queue, so a previous run of type Joiner on that queue ran
// Joinery's Joiner code, and that code continues only with state it built
// itself (and which it accepted, by this same check, if it was continued in
// turn). So VerifyContinued confirms, with Temporal, that the run the caller
// continues from:
//   - is the caller's own workflow ID (the describe names it) and not the
//     caller's own run;
//   - has workflow type Joiner;
//   - ran on the task queue this worker polls (the activity's queue, as the
//     server reports it);
//   - closed as ContinuedAsNew.
//
// Not checkable here: the carried state's own facts against the previous run.
// A closed run answers no query, and the previous run's memo and search
// attributes are written by whatever code ran it — for a genuine Joiner run
// they say nothing the chain of genuine runs does not already guarantee, and
// for a rogue run they are the adversary's to choose. Who started the first
// run of the chain (Joinery's starter or another client) is out of scope: a
// first run carries no state, and the joiner plans it from the HR record.
//
// The check reads Temporal only; it changes nothing, so it can be retried.

import (
	"context"
	"errors"
	"fmt"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
)

// StepVerifyContinued names the continued-state check in refusals and in the
// security log.
const StepVerifyContinued = "verify-continued"

// ContinuedRuns is what VerifyContinued asks Temporal; client.Client
// implements it.
type ContinuedRuns interface {
	DescribeWorkflowExecution(ctx context.Context, workflowID, runID string) (*workflowservice.DescribeWorkflowExecutionResponse, error)
}

// VerifyContinuedInput names the run a continued joiner says it continues.
type VerifyContinuedInput struct {
	// Key is the joiner's key (HRIS ID or non-human key).
	Key string `json:"key"`
	// PrevRunID is the run this one continues: the workflow's
	// ContinuedExecutionRunID, as the server started it.
	PrevRunID string `json:"prevRunId"`
}

// VerifyContinued refuses, non-retryably (OrderRefused, logged as a security
// event), carried state whose previous run was not a Joiner on this worker's
// task queue that continued as new. Temporal being unreachable is retried.
func (a *Activities) VerifyContinued(ctx context.Context, in VerifyContinuedInput) error {
	o, err := a.admit(ctx, StepVerifyContinued, in.Key, "accept state continued from run "+in.PrevRunID)
	if err != nil {
		return err
	}
	if !o.c.inActivity {
		// The task queue to hold the previous run to is the one the
		// server dispatched this activity on; without it there is nothing
		// to compare with, so trusted callers get no pass either.
		return a.refuse(o, "the continued-state check runs only as an activity (it compares with the task queue it was dispatched on)")
	}
	if a.Runs == nil {
		return temporal.NewNonRetryableApplicationError(
			"continued-state check: the worker has no Temporal client to describe the previous run (Activities.Runs); refusing", ErrTypeOrderRefused, nil)
	}
	switch {
	case in.PrevRunID == "":
		return a.refuse(o, "no previous run named")
	case in.PrevRunID == o.c.run:
		return a.refuse(o, "a run cannot continue from itself")
	}
	resp, err := a.Runs.DescribeWorkflowExecution(ctx, o.c.id, in.PrevRunID)
	var nf *serviceerror.NotFound
	var inv *serviceerror.InvalidArgument
	switch {
	case errors.As(err, &nf):
		return a.refuse(o, fmt.Sprintf("Temporal has no run %s of workflow %s", in.PrevRunID, o.c.id))
	case errors.As(err, &inv):
		return a.refuse(o, fmt.Sprintf("Temporal refuses to describe run %q: %s", in.PrevRunID, inv.Message))
	case err != nil:
		return fmt.Errorf("describe the previous run %s of %s: %w", in.PrevRunID, o.c.id, err)
	}
	info := resp.GetWorkflowExecutionInfo()
	queue := activity.GetInfo(ctx).TaskQueue
	switch typ := info.GetType().GetName(); {
	case info.GetExecution().GetWorkflowId() != o.c.id || info.GetExecution().GetRunId() != in.PrevRunID:
		return a.refuse(o, fmt.Sprintf("Temporal described another run (%s/%s)", info.GetExecution().GetWorkflowId(), info.GetExecution().GetRunId()))
	case typ != JoinerWorkflowType:
		return a.refuse(o, fmt.Sprintf("the previous run %s is a workflow of type %q, not %q: only a joiner hands over a joiner's state", in.PrevRunID, typ, JoinerWorkflowType))
	case info.GetTaskQueue() != queue:
		return a.refuse(o, fmt.Sprintf("the previous run %s ran on task queue %q, not this worker's %q: it was not Joinery's joiner", in.PrevRunID, info.GetTaskQueue(), queue))
	case info.GetStatus() != enums.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW:
		return a.refuse(o, fmt.Sprintf("the previous run %s is %s, not continued as new", in.PrevRunID, info.GetStatus()))
	}
	return nil
}
