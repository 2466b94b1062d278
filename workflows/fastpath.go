package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// versionFastPath gates the cheaper joiner (issue 12): one version marker
// for every earlier change and the HR reads as local activities. See setup
// in joiner.go.
const versionFastPath = "joiner-fast-path"

// version is workflow.GetVersion for a change older than the fast path: a
// joiner on the fast path takes it at its newest version (1) without
// recording a marker; one started before reads it from its history.
func (j *joiner) version(ctx workflow.Context, changeID string) workflow.Version {
	if j.fast {
		return 1
	}
	return workflow.GetVersion(ctx, changeID, workflow.DefaultVersion, 1)
}

// Local activity options for the joiner's reads on the fast path.
//
// Trade-off. A regular activity costs three history events and a round trip
// through the server's task queue, plus the workflow task that follows (six
// events, about 100 ms each on the dev server). A local activity runs in the
// worker that runs the workflow task and costs one marker event. What
// changes:
//   - Retries happen in the worker (short back-off in the workflow task,
//     longer ones through a timer the SDK schedules), under the same retry
//     policy; ScheduleToClose still bounds them.
//   - Crashes: a local activity's result is recorded only when its workflow
//     task completes. If the worker dies before that, the next worker
//     replays the workflow task and runs the call again. That is why only
//     reads that change nothing go here: CheckEligible, FetchJoiner and
//     SnapshotHRIS read the HRIS; PlanJoiner evaluates the policy and keeps
//     the authoritative re-plan in the worker's memory for the order checks
//     (activities/orders.go), which a second run overwrites with the same
//     thing. Side-effecting writes (claim, grants, credential, write-back,
//     notifications, the audit export) stay regular activities: their
//     at-least-once execution is recorded by the server, and their
//     compensations are registered before they run.
//   - Order checks: activity.GetInfo in a local activity still gives the
//     calling workflow's ID, run ID, type and task queue (the SDK fills them
//     from the workflow's own info), so callerOf, admit and recordPlan see
//     the same caller as for a regular activity. A rogue workflow running
//     Joinery's activities as local activities would run them in its own
//     worker process, with its own credentials, not Joinery's.
var (
	// The HR reads: an HRIS outage should not fail a hire (as optsHRIS).
	optsHRISLocal = workflow.LocalActivityOptions{
		StartToCloseTimeout:    30 * time.Second,
		ScheduleToCloseTimeout: time.Hour,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute,
			NonRetryableErrorTypes: []string{"HRISNotFound", "HRISUnauthorized", "HRISRejected"}},
	}
	// Planning is pure (as optsPlan).
	optsPlanLocal = workflow.LocalActivityOptions{
		StartToCloseTimeout: 10 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 3, NonRetryableErrorTypes: []string{"InvalidJoiner"}},
	}
)

// read runs one of the joiner's read-only activities: a local activity on
// the fast path (by its registered name, so the worker's instance runs it),
// a regular one for joiners started before.
func (j *joiner) read(ctx workflow.Context, name string, act any, arg any, out any) error {
	o, lo := optsHRIS, optsHRISLocal
	if name == "PlanJoiner" {
		o, lo = optsPlan, optsPlanLocal
	}
	return j.readAs(ctx, j.fast, name, act, o, lo, arg, out)
}
