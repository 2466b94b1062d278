package workflows

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// fastLocalSteps is level 2 of versionFastPath (issue 12): a joiner started
// since runs every step — the writes too — as a local activity first, takes
// the last three version gates ("pseudonymous-search-attributes",
// "update-decisions-wake", "audit-export") at their newest version without
// recording them, and upserts its search attributes fewer times. Joiners
// that recorded level 1 (or none) replay as they ran.
//
// Why: a regular activity costs three history events, a round trip through
// the server's task queue and the workflow task that follows (three more
// events); on the dev server that is about 100 ms a step, and the eleven
// steps after an approval are most of a joiner's latency and events. A local
// activity runs in the worker that runs the workflow task, and costs one
// marker event; the steps after an approval run in one workflow task.
//
// What a local activity changes, and why each step stays correct:
//   - Crashes. A local activity's result is recorded only when its workflow
//     task completes. A worker that dies mid-task loses every step that task
//     ran; the next worker replays the task and runs them again, from the
//     first. Every step is idempotent and re-checks its order against the
//     joiner (activities/orders.go), as it must be for a regular activity's
//     retry anyway: the claim finds the entry its marker names, a group
//     grant finds the membership, the write-back finds its values set, the
//     audit export re-sends the same sequence numbers. IssueCredential issues
//     afresh: it ends the earlier handover first (its ledger), so one
//     credential and one live wrapping token remain, and the approver gets a
//     second message whose token is the live one. A wrapped read whose answer
//     the crash lost is the sweeper's (connectors/secrets/sweep.go), as
//     before. The reliability suite kills the worker after each of these
//     writes (internal/reliability).
//   - Retries. The local attempts are few and short (localFirst): three
//     tries within 15 s, each at most 10 s. A step still failing then on an
//     error that may pass runs again as a regular activity under the step's
//     full options (options.go: half an hour for the directory and Vault, two
//     hours for the write-back), so an outage is ridden out as before —
//     recorded by the server, visible as a pending activity, its stage
//     searchable. A permanent error (non-retryable, or of a type the step's
//     policy never retries) ends the step at once, as it would have.
//   - Signals. A signal that comes while the steps run is delivered with the
//     next workflow task, so a rescind during provisioning is acted on when
//     the steps finish (about a second), not between two of them; the
//     Provisioned hold then rolls everything back, as for a rescind that
//     comes just after.
//   - Compensations stay regular activities: a rollback is the slow path, and
//     each undo is recorded by the server as it happens.
//   - Order checks. activity.GetInfo in a local activity gives the calling
//     workflow's ID, run, type and queue, as for a regular one. A local
//     activity can only be run by workflow code running in this worker, so
//     admitRun need not ask Temporal which queue the caller runs on.
const fastLocalSteps = 2

// Budget of a step's local attempts before it runs as a regular activity.
const (
	localAttempt = 10 * time.Second
	localBudget  = 15 * time.Second
)

// laterVersion is workflow.GetVersion for a change made before level 2 of
// the fast path and kept out of level 1: a joiner at level 2 takes it at
// its newest version (1) without recording a marker.
func (j *joiner) laterVersion(ctx workflow.Context, changeID string) workflow.Version {
	if j.local {
		return 1
	}
	return workflow.GetVersion(ctx, changeID, workflow.DefaultVersion, 1)
}

// readAs runs a read that changes nothing: a local activity under lo when
// local (by its registered name, so the worker's instance runs it), else a
// regular activity under o. arg nil means the activity takes no argument.
func (j *joiner) readAs(ctx workflow.Context, local bool, name string, act any, o workflow.ActivityOptions,
	lo workflow.LocalActivityOptions, arg any, out any) error {
	var args []any
	if arg != nil {
		args = []any{arg}
	}
	if local {
		return workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, lo), name, args...).Get(ctx, out)
	}
	return workflow.ExecuteActivity(withOptions(ctx, o), act, args...).Get(ctx, out)
}

// step runs one of the joiner's side-effecting steps under options o. On
// the local path it runs as a local activity first (localFirst); when those
// attempts fail on an error that may pass, it runs as a regular activity
// under o. Joiners before level 2 run it as a regular activity, as their
// histories recorded.
func (j *joiner) step(ctx workflow.Context, name string, act any, o workflow.ActivityOptions, arg any, out any) error {
	if j.local {
		err := workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, localFirst(o)), name, arg).Get(ctx, out)
		if err == nil || !worthRegular(err, o) {
			return err
		}
		// The slow path: operators look for stuck joiners by stage.
		j.flushStage(ctx)
		j.event(ctx, fmt.Sprintf("%s: the quick attempts failed (%s); retrying under the step's full retry policy",
			name, rootMessage(err)))
	}
	return workflow.ExecuteActivity(withOptions(ctx, o), act, arg).Get(ctx, out)
}

// localFirst is the local-activity form of o: the same non-retryable
// types, and a budget short enough that an outage moves the step to a
// regular activity within seconds.
func localFirst(o workflow.ActivityOptions) workflow.LocalActivityOptions {
	rp := &temporal.RetryPolicy{InitialInterval: 200 * time.Millisecond, BackoffCoefficient: 2,
		MaximumInterval: 2 * time.Second, MaximumAttempts: 3}
	if o.RetryPolicy != nil {
		rp.NonRetryableErrorTypes = o.RetryPolicy.NonRetryableErrorTypes
	}
	attempt := localAttempt
	if o.StartToCloseTimeout > 0 && o.StartToCloseTimeout < attempt {
		attempt = o.StartToCloseTimeout
	}
	return workflow.LocalActivityOptions{StartToCloseTimeout: attempt, ScheduleToCloseTimeout: localBudget, RetryPolicy: rp}
}

// worthRegular says whether a step whose local attempts failed with err
// should run again as a regular activity: not when the joiner is being
// cancelled, nor when the error is permanent (non-retryable, or of a type
// o's policy never retries), since the regular activity would fail alike.
// Timeouts and transient errors are worth it.
func worthRegular(err error, o workflow.ActivityOptions) bool {
	if temporal.IsCanceledError(err) {
		return false
	}
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) {
		if ae.NonRetryable() {
			return false
		}
		if o.RetryPolicy != nil && slices.Contains(o.RetryPolicy.NonRetryableErrorTypes, ae.Type()) {
			return false
		}
	}
	return true
}

// deferredStages are the stages a joiner on the local path passes through
// inside one workflow task (the provisioning steps, and the Provisioned
// hold when the start date has already come): upserting each would cost an
// event that the next one overwrites before anyone could search for it.
// They are upserted when the joiner waits in one (flushStage): a step gone
// to its regular activity, or the hold waiting for the start date.
var deferredStages = []Stage{StageClaimingUsername, StageGrantingGroups, StageIssuingSecret, StageWritingBack, StageProvisioned}

// setStageLocal is setStage on the local path: the stage and any change of
// the deciders in one upsert, or, for a deferred stage, none yet. A rehire
// generation upserts every stage: its steps run partly as regular
// activities (rehire.go).
func (j *joiner) setStageLocal(ctx workflow.Context, s Stage) {
	d, deciders := j.decidersUpdate()
	if !deciders && j.rehire == nil && slices.Contains(deferredStages, s) {
		j.stageDue = true
		return
	}
	j.stageDue = false
	ups := []temporal.SearchAttributeUpdate{SAStage.ValueSet(string(s))}
	if deciders {
		ups = append(ups, d)
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx, ups...); err != nil {
		workflow.GetLogger(ctx).Warn("search attribute upsert failed", "error", err)
	}
}

// flushStage upserts a deferred stage (setStageLocal) before the joiner
// waits in it.
func (j *joiner) flushStage(ctx workflow.Context) {
	if !j.stageDue {
		return
	}
	j.stageDue = false
	if err := workflow.UpsertTypedSearchAttributes(ctx, SAStage.ValueSet(string(j.status.Stage))); err != nil {
		workflow.GetLogger(ctx).Warn("search attribute upsert failed", "error", err)
	}
}
