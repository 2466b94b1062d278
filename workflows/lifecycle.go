package workflows

import (
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/joinery/joinery/activities"
	"github.com/joinery/joinery/internal/policy"
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
	// A run continued as new while this step was failing (continued.go)
	// goes on with its back-off and its CompensationStuck time.
	resumed := j.cont.takeResumed(name)
	if err == nil {
		if resumed != nil && j.status.StuckSince != nil {
			j.event(ctx, fmt.Sprintf("%s succeeded after %d rounds", name, j.status.UndoAttempts))
			j.status.StuckSince = nil
		}
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
	back := time.Minute
	prev := j.status.Stage
	if resumed != nil {
		first, back, prev = resumed.FailingSince, max(resumed.Backoff, time.Minute), resumed.Prev
		if j.status.StuckSince != nil {
			j.setStage(ctx, StageCompensationStuck)
		}
	} else {
		j.event(ctx, fmt.Sprintf("could not %s; retrying until it succeeds: %s", name, rootMessage(err)))
	}
	// handOver continues as new when Temporal says the history is long and
	// nothing is left to handle: days of rounds, and retry-now signals
	// anyone with Temporal access can send, would reach the history's hard
	// limit, and a terminated joiner leaves what it granted live. On dctx:
	// a cancelled joiner still finishes its undo. The next run retries this
	// step first.
	handOver := func() (bool, error) {
		if !j.cont.more || !j.continueDue(dctx) || !j.quietForContinue(dctx, func() bool { return true }) {
			return false, nil
		}
		u := j.cont.unwind
		u.Step, u.FailingSince, u.Backoff, u.Prev = name, first, back, prev
		return true, j.continueAsNew(dctx)
	}
	for err != nil {
		j.status.UndoAttempts++
		if j.status.StuckSince == nil && workflow.Now(ctx).Sub(first) >= stuckAfter {
			at := workflow.Now(ctx)
			j.status.StuckSince = &at
			j.event(ctx, fmt.Sprintf("CompensationStuck: %q has failed for %s (last error: %s); still retrying, or send %q to retry now",
				name, stuckAfter, rootMessage(err), SignalRetryCompensations))
			j.setStage(ctx, StageCompensationStuck)
		}
		if done, cerr := handOver(); done {
			return cerr
		}
		asked := j.retryNow
		tried := workflow.Now(ctx)
		// dctx: a cancelled workflow still finishes its undo.
		woke, werr := workflow.AwaitWithTimeout(dctx, back, func() bool {
			return j.retryNow != asked || (j.cont.more && j.continueDue(dctx))
		})
		if werr != nil {
			return werr
		}
		// Before the retry-now gap: a flood of retry-now signals is what
		// made the history long, and the next run retries at once anyway.
		if woke {
			if done, cerr := handOver(); done {
				return cerr
			}
		}
		// An operator's retry-now runs at most once a minute, so a flood of
		// them is not a storm of calls against a system that is down.
		if gap := time.Minute - workflow.Now(ctx).Sub(tried); j.hardened && gap > 0 {
			if !j.cont.more {
				if werr := workflow.Sleep(dctx, gap); werr != nil {
					return werr
				}
			} else {
				// The flood goes on during the gap: hand over as soon
				// as the history is long, not a minute later.
				long, werr := workflow.AwaitWithTimeout(dctx, gap, func() bool { return j.continueDue(dctx) })
				if werr != nil {
					return werr
				}
				if long {
					if done, cerr := handOver(); done {
						return cerr
					}
				}
			}
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
		until := j.dayStart(ctx, hire).Add(j.plan.RescindGrace)
		wait := until.Sub(workflow.Now(ctx))
		if j.rescind != nil {
			res, err := j.rollback(ctx, StageRescinded, OutcomeRescinded, "rescinded before the start date: everything provisioned was rolled back")
			return true, res, err
		}
		if wait <= 0 {
			return false, JoinerResult{}, nil
		}
		// The hold waits: the Provisioned stage must be searchable now
		// (on the local path it may not have been upserted yet).
		j.flushStage(ctx)
		moves, asked := j.moves, j.moveAsked
		if j.continueDue(ctx) && j.quietForContinue(ctx, func() bool { return j.rescind == nil && j.moveAsked == asked }) {
			return true, JoinerResult{}, j.continueAsNew(ctx)
		}
		_, err = workflow.AwaitWithTimeout(ctx, wait, func() bool {
			return j.rescind != nil || j.moves != moves || j.moveAsked != asked || j.continueDue(ctx)
		})
		if err != nil {
			if j.local {
				// A rescind that came with the cancel is acted on first:
				// the signal goroutine may not have taken it yet.
				j.settleSignals(ctx)
				if j.rescind != nil {
					res, err := j.rollback(ctx, StageRescinded, OutcomeRescinded, "rescinded before the start date: everything provisioned was rolled back")
					return true, res, err
				}
			}
			// Cancelled while waiting for the start: the hire keeps the
			// access it was approved for; the joiner completes early.
			return false, JoinerResult{}, nil
		}
		if j.moveAsked != asked {
			j.checkHireDate(ctx)
		}
	}
}

// maxMoveChecks bounds how many start-date signals make a joiner re-read
// its HR record; later ones are dropped (a flood cannot grow the joiner).
const maxMoveChecks = 20

// checkHireDate re-reads the hire date from the HR record after a
// start-date signal: a date only HR can move, so an operator or a forged
// signal cannot provision early or end the Provisioned hold.
func (j *joiner) checkHireDate(ctx workflow.Context) {
	if !j.hasHRRecord() {
		j.event(ctx, "a non-human joiner has no HR start date to move; ignored")
		return
	}
	var w policy.Worker
	if err := workflow.ExecuteActivity(withOptions(ctx, optsHRIS), a.FetchJoiner,
		activities.FetchInput{HRISID: j.in.HRISID, Kind: j.in.Kind}).Get(ctx, &w); err != nil {
		j.event(ctx, "could not re-read the hire date from HR; it stays "+j.hireDate+": "+rootMessage(err))
		return
	}
	if w.HireDate == j.hireDate {
		j.event(ctx, "HR's hire date is still "+j.hireDate)
		return
	}
	if _, err := time.Parse(time.DateOnly, w.HireDate); err != nil {
		j.event(ctx, fmt.Sprintf("HR's hire date %q is not a date; it stays %s", clip(w.HireDate), j.hireDate))
		return
	}
	if j.moveLimits {
		// Version "start-move-limits": the approved end date and the
		// kind's maximum lifetime still hold from the new start. A move
		// that breaks them changes nothing and is recorded; the owner is
		// told, since HR has to fix the record (or rescind the hire).
		if err := j.plan.CheckStartMove(w.HireDate); err != nil {
			j.event(ctx, fmt.Sprintf("REFUSED the start-date move from %s to %s (HR record): %s; the start stays %s",
				j.hireDate, clip(w.HireDate), err, j.hireDate))
			j.notify(ctx, j.plan.Owner, "outcome", fmt.Sprintf("HR moved the start of joiner %s to %s, which Joinery refused: %s. "+
				"The start stays %s; correct the HR record, or rescind the hire and start it again.", j.in.HRISID, clip(w.HireDate), err, j.hireDate))
			return
		}
		// Extensions count the lifetime from the start that holds now.
		j.plan.HireDate = w.HireDate
	}
	j.event(ctx, fmt.Sprintf("start date moved from %s to %s (HR record)", j.hireDate, w.HireDate))
	j.hireDate = w.HireDate
	j.moves++
}

// seedDayStarts records the local midnights the plan computed for its own
// dates (provisioning, start, the day after the end), so the joiner only
// asks the DayStart activity for dates that come later.
func (j *joiner) seedDayStarts() {
	p := j.plan
	if !j.siteTime || p.TimeZone == "" {
		return
	}
	if p.ProvisionAt != nil && p.ProvisionDate != "" {
		j.dayStarts[p.ProvisionDate] = *p.ProvisionAt
	}
	if p.StartsAt != nil && p.HireDate != "" {
		j.dayStarts[p.HireDate] = *p.StartsAt
	}
	if next, err := policy.NextDay(p.EndDate); err == nil && p.ExpiresAt != nil {
		j.dayStarts[next] = *p.ExpiresAt
	}
}

// dayStart is when the calendar day day (a UTC midnight, as time.Parse of
// a YYYY-MM-DD date gives) begins at the joiner's site: local midnight in
// the plan's zone (version "site-local-midnight"), else 00:00 UTC as
// before. Workflow code never reads the time zone database: the instant
// comes from the plan or from the DayStart activity, recorded in history.
func (j *joiner) dayStart(ctx workflow.Context, day time.Time) time.Time {
	if !j.siteTime || j.plan.TimeZone == "" || j.plan.TimeZone == "UTC" {
		return day
	}
	date := day.Format(time.DateOnly)
	if t, ok := j.dayStarts[date]; ok {
		return t
	}
	var t time.Time
	if err := workflow.ExecuteActivity(withOptions(ctx, optsPlan), a.DayStart,
		activities.DayStartInput{Zone: j.plan.TimeZone, Date: date}).Get(ctx, &t); err != nil {
		// The zone was checked when the policy loaded; should the lookup
		// still fail, 00:00 UTC is the documented fallback, on record.
		j.event(ctx, fmt.Sprintf("could not compute local midnight of %s in %s; using 00:00 UTC: %s", date, j.plan.TimeZone, rootMessage(err)))
		t = day
	}
	j.dayStarts[date] = t
	return t
}

// dropGoneApprovals withdraws approvals (given early, before the
// provisioning date) whose approver has since left: they no longer count,
// and the joiner waits for someone who may still decide.
func (j *joiner) dropGoneApprovals(ctx workflow.Context, gone map[string]string) {
	drop := func(d *Decision) bool {
		if d == nil || d.BreakGlass || !d.Approved {
			return false
		}
		why, out := gone[strings.ToLower(d.Approver)]
		if out {
			j.event(ctx, fmt.Sprintf("the approval by %s no longer counts: %s", d.Approver, why))
		}
		return out
	}
	if drop(j.first) {
		j.first = nil
	}
	if drop(j.second) {
		j.second = nil
	}
	if j.decided != nil && j.decided.Approved && drop(j.decided) {
		j.decided = nil
	}
	var keep []activities.ApprovalProof
	var keepBy []string
	for i, p := range j.proofs {
		if _, out := gone[strings.ToLower(j.proofBy[i])]; out && !p.BreakGlass {
			continue
		}
		keep, keepBy = append(keep, p), append(keepBy, j.proofBy[i])
	}
	j.proofs, j.proofBy = keep, keepBy
}
