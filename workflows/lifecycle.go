package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/workflow"
)

// Lifecycle safety: what Joinery granted always ends, and nothing is left
// half-undone because a server was down for longer than a retry window.

// SignalRetryCompensations makes a joiner whose rollback or revocation is
// stuck try again now instead of at its next back-off.
const SignalRetryCompensations = "retry-compensations"

const (
	// defaultStuckAfter is used when a plan predates the policy setting.
	defaultStuckAfter = time.Hour
	// maxUndoBackoff caps the wait between rounds of a stuck undo step.
	maxUndoBackoff = 6 * time.Hour
)

// persist runs one undo step until it succeeds. Each round is an activity
// with its own short retry policy (optsCompensation); between rounds the
// joiner waits with back-off (or until an operator sends
// retry-compensations), and past the policy's threshold it shows
// CompensationStuck, and keeps trying. A joiner never closes while
// something it granted may still be live. Before the
// "compensation-never-gives-up" version, a failed step was final.
func (j *joiner) persist(ctx, dctx workflow.Context, name string, run func() error) error {
	err := run()
	if err == nil {
		return nil
	}
	if workflow.GetVersion(ctx, "compensation-never-gives-up", workflow.DefaultVersion, 1) < 1 {
		return err
	}
	stuckAfter := j.plan.CompensationStuckAfter
	if stuckAfter <= 0 {
		stuckAfter = defaultStuckAfter
	}
	first := workflow.Now(ctx)
	j.event(ctx, fmt.Sprintf("could not %s; retrying until it succeeds: %s", name, rootMessage(err)))
	back := time.Minute
	prev := j.status.Stage
	for err != nil {
		j.status.UndoAttempts++
		if j.status.StuckSince == nil && workflow.Now(ctx).Sub(first) >= stuckAfter {
			at := workflow.Now(ctx)
			j.status.StuckSince = &at
			j.event(ctx, fmt.Sprintf("CompensationStuck: %q has failed for %s (last error: %s); still retrying, or send %q to retry now",
				name, stuckAfter, rootMessage(err), SignalRetryCompensations))
			j.setStage(ctx, StageCompensationStuck)
		}
		asked := j.retryNow
		// dctx: a cancelled workflow still finishes its undo.
		if _, werr := workflow.AwaitWithTimeout(dctx, back, func() bool { return j.retryNow != asked }); werr != nil {
			return werr
		}
		back = min(back*2, maxUndoBackoff)
		err = run()
	}
	if j.status.StuckSince != nil {
		j.event(ctx, fmt.Sprintf("%s succeeded after %d rounds", name, j.status.UndoAttempts))
		j.status.StuckSince = nil
		j.setStage(ctx, prev)
	}
	return nil
}

// holdUntilStart keeps a provisioned employee joiner open until the hire
// date plus the policy's grace: a rescinded offer or an HR termination
// before the start rolls everything back (story: an offer withdrawn a
// minute after provisioning kept its account). A start-date move moves the
// end of the hold. It reports whether the joiner ended here.
func (j *joiner) holdUntilStart(ctx workflow.Context) (bool, JoinerResult, error) {
	j.setStage(ctx, StageProvisioned)
	for {
		hire, err := time.Parse(time.DateOnly, j.hireDate)
		if err != nil {
			return false, JoinerResult{}, nil // no readable date: nothing to wait for
		}
		until := hire.Add(j.plan.RescindGrace)
		wait := until.Sub(workflow.Now(ctx))
		if j.rescind != nil {
			res, err := j.rollback(ctx, StageRescinded, OutcomeRescinded, "rescinded before the start date: everything provisioned was rolled back")
			return true, res, err
		}
		if wait <= 0 {
			return false, JoinerResult{}, nil
		}
		moves := j.moves
		_, err = workflow.AwaitWithTimeout(ctx, wait, func() bool { return j.rescind != nil || j.moves != moves })
		if err != nil {
			// Cancelled while waiting for the start: the hire keeps the
			// access it was approved for; the joiner completes early.
			return false, JoinerResult{}, nil
		}
	}
}
