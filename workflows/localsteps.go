package workflows

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/joinery/joinery/activities"
	"github.com/joinery/joinery/internal/policy"
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
//   - The re-run sees more than the lost run did. A task is also lost when
//     the server refuses its completion (a signal came while a task that
//     closes the joiner ran: UnhandledCommand), and the re-run then starts
//     with a rescind, a cancel or a changed re-plan in hand that the lost
//     run did not have. Two adversary reviews reproduced on a real server
//     what that did: a partial rollback, a cancelled joiner with nothing
//     recorded, a decision by update gone with the task, and a step the
//     re-run's re-plan refused leaving the lost run's later steps without an
//     undo. So, on this path:
//   - right after the claim every undo the plan may need is registered
//     (registerAhead; undoing what was never made changes nothing), and
//     a refused claim answers with this run's own entry
//     (activities.ClaimAccount);
//   - a rescind that came in the current task is acted on after the
//     last step (joiner.go, check and done), one from an earlier task —
//     which the lost run saw too — stops the steps;
//   - each step's local attempts run on a disconnected context, and a
//     decision in hand is applied before a cancel (awaitDecision,
//     waitForProvisioningDate, decideUpdate, the standing checks: uncut,
//     settleSignals), which is then acted on where the joiner next waits
//     (the Provisioned hold: the hire keeps the access it was approved
//     for, as for a cancel just after provisioning; a rescind that came
//     with the cancel rolls back);
//   - a decision by update ends its task before the first step
//     (decidedByUpdateNow);
//   - the audit file keeps both runs' exports (activities/auditlog.go: a
//     key re-sent with other content is appended as a re-run).
//     TestIntegrationSignalDuringLocalSteps lands a rescind and a cancel
//     during the steps on the dev stack's Temporal.
//   - Retries. The local attempts are few: three tries of the step's own
//     attempt timeout within that timeout and 5 s, so an attempt that times
//     out is not tried again locally. A step still failing then on an error
//     that may pass runs again as a regular activity under the step's full
//     options (options.go: half an hour for the directory and Vault, two
//     hours for the write-back), so an outage is ridden out as before —
//     recorded by the server, visible as a pending activity, its stage
//     searchable, and cancellable. A permanent error (non-retryable, or of a
//     type the step's policy never retries) ends the step at once, as it
//     would have.
//   - Compensations stay regular activities: a rollback is the slow path, and
//     each undo is recorded by the server as it happens.
//   - Order checks. activity.GetInfo in a local activity gives the calling
//     workflow's ID, run, type and queue, as for a regular one. A local
//     activity can only be run by workflow code running in this worker, so
//     admitRun need not ask Temporal which queue the caller runs on.
//
// What it costs (README "Benchmark"): a terminate, a reset or a workflow
// task timeout does not stop a chain already running in a worker (about a
// second of steps), and those steps are in no history; a terminate never
// compensates anyway, and the reconciler finds the entries it leaves. A
// re-run also reads the approvers' standing again: an approver who left in
// the second between the lost run and its re-run makes the re-run refuse the
// decision, and the lost run's account is the reconciler's to find.
const fastLocalSteps = 2

// Budget of a step's local attempts before it runs as a regular activity:
// localAttempt when the step's options set no attempt timeout, and
// localSlack beyond one attempt for the quick retries.
const (
	localAttempt = 10 * time.Second
	localSlack   = 5 * time.Second
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

// settleSignals waits until the signal goroutine (setupHandlers) has taken
// every signal already delivered and the update handlers have finished
// (a decision by update is applied there): after a cancel, the decisions in
// hand must be seen before the cancel is acted on. It waits on a context
// disconnected from ctx: the cancelled one would not wait.
func (j *joiner) settleSignals(ctx workflow.Context) {
	ctx, cancel := workflow.NewDisconnectedContext(ctx)
	defer cancel()
	// Yield once: the signal goroutine, woken by the delivery, runs before
	// this one resumes (a selector blocked in Select holds a delivered
	// value, so HasPending does not show it).
	yielded := false
	workflow.Go(ctx, func(workflow.Context) { yielded = true })
	_ = workflow.Await(ctx, func() bool {
		return yielded && (j.sel == nil || !j.sel.HasPending()) && !j.applying && workflow.AllHandlersFinished(ctx)
	})
}

// uncut is ctx, disconnected on the local path: for applying a decision
// and the approvers' standing checks, which decide whether an approval
// counts. A re-run of a lost task that sees a cancel the lost run did not
// must reach the same decision as the lost run, which provisioned on it
// (see the top of this file). The cancel func must be called.
func (j *joiner) uncut(ctx workflow.Context) (workflow.Context, func()) {
	if !j.local {
		return ctx, func() {}
	}
	dctx, cancel := workflow.NewDisconnectedContext(ctx)
	return dctx, cancel
}

// decidedByUpdateNow says whether a decision by update counted in the
// current workflow task. A signal is in history before the task that reads
// it, so a re-run of a lost task still has the decision; an update is
// accepted by the completion of the task that applied it, and a lost task
// (a crash, or a completion the server refused because a signal or a
// cancel came meanwhile) loses the update with it — the approval inbox's
// decision would be gone while the steps it allowed had run (the dev
// stack's Temporal drops it: TestIntegrationSignalDuringLocalSteps). So the
// first step after such a decision, the audit export of the decisions, runs
// as a regular activity: scheduling it ends the task, which records the
// update's acceptance, and the steps run in the next task. It costs a
// decision by update five history events and one round trip (about 100 ms
// on the dev server); a decision by signal, nothing.
func (j *joiner) decidedByUpdateNow(ctx workflow.Context) bool {
	return j.local && j.updateTask != 0 && workflow.GetInfo(ctx).GetCurrentHistoryLength() == j.updateTask
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
		// Disconnected: a cancel must not cut the chain part-way (see the
		// top of this file); the regular activity below is cancellable.
		lctx, cancel := j.uncut(ctx)
		err := workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(lctx, localFirst(o)), name, arg).Get(lctx, out)
		cancel()
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
// types and attempt timeout (a slow but working server is not given a
// second, overlapping attempt), and a budget that lets quick failures be
// retried twice but moves an outage to the regular activity within seconds.
func localFirst(o workflow.ActivityOptions) workflow.LocalActivityOptions {
	rp := &temporal.RetryPolicy{InitialInterval: 200 * time.Millisecond, BackoffCoefficient: 2,
		MaximumInterval: 2 * time.Second, MaximumAttempts: 3}
	if o.RetryPolicy != nil {
		rp.NonRetryableErrorTypes = o.RetryPolicy.NonRetryableErrorTypes
	}
	attempt := o.StartToCloseTimeout
	if attempt <= 0 {
		attempt = localAttempt
	}
	return workflow.LocalActivityOptions{StartToCloseTimeout: attempt, ScheduleToCloseTimeout: attempt + localSlack, RetryPolicy: rp}
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
// inside one workflow task (the provisioning steps after the claim, and the
// Provisioned hold when the start date has already come): upserting each
// would cost an event that the next one overwrites before anyone could
// search for it. They are upserted when the joiner waits in one
// (flushStage): a step gone to its regular activity, or the hold waiting
// for the start date. ClaimingUsername, the first, is upserted as it is
// set, so a joiner whose chain is slow is found as provisioning, not as
// still awaiting approval.
var deferredStages = []Stage{StageGrantingGroups, StageIssuingSecret, StageWritingBack, StageProvisioned}

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
	ups := append(j.pendingSA, SAStage.ValueSet(string(s)))
	j.pendingSA = nil
	if deciders {
		ups = append(ups, d)
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx, ups...); err != nil {
		workflow.GetLogger(ctx).Warn("search attribute upsert failed", "error", err)
	}
}

// flushStage upserts a deferred stage (setStageLocal), and the search
// attributes planning left for the next upsert, before the joiner waits.
func (j *joiner) flushStage(ctx workflow.Context) {
	if !j.stageDue && len(j.pendingSA) == 0 {
		return
	}
	ups := j.pendingSA
	j.pendingSA = nil
	if j.stageDue {
		ups = append(ups, SAStage.ValueSet(string(j.status.Stage)))
	}
	j.stageDue = false
	if err := workflow.UpsertTypedSearchAttributes(ctx, ups...); err != nil {
		workflow.GetLogger(ctx).Warn("search attribute upsert failed", "error", err)
	}
}

// registerAhead registers, right after the claim, the undo of every step
// the plan may take after it — each group's removal, the credential's or
// the workload's revocation, the write-back's restore — before those steps
// run (rehire: the groups only; its credential and write-back are regular
// activities). A re-run of a lost task re-checks each order against a fresh
// re-plan, and a worker that restarted meanwhile (or another worker) holds
// no memory of the lost run's plan: after a policy or HR change it may
// refuse a step the lost run made, and a joiner that registered each undo
// only as its step ran would roll back without it (adversary review). Each
// undo resolves what it acts on when it runs (the entry's DN and username
// from the claim, the credential's path and accessor if issued, else the
// joiner's own path and ledger) and succeeds when there is nothing to
// undo. The steps then take their resource over (claimAhead).
func (j *joiner) registerAhead(ctx workflow.Context, plan policy.Plan, snapshot map[string]string, groupsOnly bool) {
	if !j.local {
		return
	}
	ahead := func(name, kind, id string, run func(workflow.Context) error) {
		j.status.Resources = append(j.status.Resources, Resource{Kind: kind, ID: id, CreatedAt: workflow.Now(ctx), Ahead: true})
		j.comps = append(j.comps, compensation{name: name, resource: len(j.status.Resources) - 1, run: run})
	}
	key := j.in.HRISID
	for _, g := range plan.Groups {
		group := g.Group
		ahead("remove from "+group, "group-membership", group, func(ctx workflow.Context) error {
			return workflow.ExecuteActivity(ctx, a.RevokeGroup, activities.GroupInput{HRISID: key, Group: group, MemberDN: j.result.DN}).Get(ctx, nil)
		})
	}
	if groupsOnly {
		return
	}
	if plan.Workload != nil {
		ahead("delete AppRole and policy", "vault-approle", "joinery-"+key, func(ctx workflow.Context) error {
			acc := ""
			if wl := j.result.Workload; wl != nil {
				acc = wl.WrapAccessor
			}
			return workflow.ExecuteActivity(ctx, a.RevokeWorkload, activities.RevokeWorkloadInput{Key: key, Accessor: acc}).Get(ctx, nil)
		})
	} else if policy.IsHumanKind(plan.Kind) {
		ahead("destroy initial credential", "vault-secret", "initial-credential", func(ctx workflow.Context) error {
			in := activities.RevokeInput{HRISID: key}
			if c := j.result.Credential; c != nil {
				in.Path, in.Accessor = c.Path, c.WrapAccessor
			}
			return workflow.ExecuteActivity(ctx, a.RevokeCredential, in).Get(ctx, nil)
		})
	}
	if want := plan.WriteBackFor(j.result.Username); len(want) > 0 && j.hasHRRecord() {
		ahead("restore HR fields", "hris-field", strings.Join(sortedKeys(want), ","), func(ctx workflow.Context) error {
			return workflow.ExecuteActivity(ctx, a.UndoWriteBack, activities.WriteBackInput{
				HRISID: key, Want: pick(snapshot, want), Expected: want}).Get(ctx, nil)
		})
	}
}

// claimAhead hands a step the resource registerAhead registered for it
// (same compensation name): its undo is already in place, so the step
// records what it made there instead of registering it again.
func (j *joiner) claimAhead(ctx workflow.Context, name, id string) (int, bool) {
	if !j.local {
		return 0, false
	}
	for _, c := range j.comps {
		if r := &j.status.Resources[c.resource]; c.name == name && r.Ahead {
			r.ID, r.CreatedAt, r.Ahead = id, workflow.Now(ctx), false
			return c.resource, true
		}
	}
	return 0, false
}
