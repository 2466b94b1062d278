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
	"github.com/joinery/joinery/internal/decision"
	"github.com/joinery/joinery/internal/policy"
)

// Continue-as-new (version "continue-as-new" >= 1).
//
// A joiner can live for months: a contractor or a service account watched
// until its end date, an employee held in Provisioned until the start date,
// a hire waiting for a far-off provisioning date. Every signal (the refused
// ones too) adds to its history, and Temporal ends a workflow whose history
// passes its hard limits. So, at a quiet moment in those waits, a joiner
// whose history Temporal says is getting long (GetContinueAsNewSuggested),
// or that has passed maxEventsPerRun, continues as new: the next run gets
// the whole state in JoinerInput.Continued — the plan, what was created and
// how to undo it, the decisions and refusals, the audit export's position —
// and resumes the same wait. Same workflow ID, so signals, queries and the
// inbox find it; the server carries the search attributes over and the new
// run sets its stage again.
//
// Decisions are signed for one run (decisions.go). A decision that was
// signed for the run before is refused with that reason; the inbox signs
// for the run it finds when the approver decides, which is the current one.
// Approvals given early, while waiting for the provisioning date, are signed
// for the old run and the claim re-verifies them against its own run, so a
// continuation withdraws them (recorded) and the approvers are asked again
// when the date comes.

// maxEventsPerRun continues a joiner as new before Temporal would suggest
// it (a few thousand events), well below the hard limit (50,000).
const maxEventsPerRun = 10_000

// maxPriorRuns bounds the run chain a joiner remembers.
const maxPriorRuns = 20

// maxCarriedExtensions bounds the extension requests a joiner queued before
// it was active that it carries across; more are dropped and counted.
const maxCarriedExtensions = 20

// Continued is what a joiner carries into its next run. It holds no secret
// (paths, accessors and signatures only), like the rest of its state.
type Continued struct {
	// Run is the number of this run (2 for the first continuation); Prior
	// are the IDs of the runs before it, latest last.
	Run   int      `json:"run"`
	Prior []string `json:"prior,omitempty"`
	// Stage is where the joiner continues: WaitingForStartDate,
	// Provisioned or Active.
	Stage  Stage         `json:"stage"`
	Status Status        `json:"status"`
	Result JoinerResult  `json:"result"`
	Plan   policy.Plan   `json:"plan"`
	Worker policy.Worker `json:"worker"`
	// Snapshot is the HR values the write-back undo restores.
	Snapshot map[string]string `json:"snapshot,omitempty"`
	HireDate string            `json:"hireDate,omitempty"`
	Moves    int               `json:"moves,omitempty"`
	// Decided is the decision that let the joiner provision.
	Decided    *Decision                `json:"decided,omitempty"`
	Extensions []ExtendSignal           `json:"extensions,omitempty"`
	Trust      activities.DecisionTrust `json:"trust"`
	PlanHash   string                   `json:"planHash,omitempty"`
	Nonces     map[string]bool          `json:"nonces,omitempty"`
	DecidedBy  []string                 `json:"decidedBy,omitempty"`
	Published  []string                 `json:"published,omitempty"`
	BreakGlass bool                     `json:"breakGlass,omitempty"`
	Escalated  bool                     `json:"escalated,omitempty"`
	Alarms     int                      `json:"alarms,omitempty"`
	// Sequence numbers of the signal channels and the audit export.
	ApproveSeq     int                  `json:"approveSeq,omitempty"`
	RejectSeq      int                  `json:"rejectSeq,omitempty"`
	ExtSeq         int                  `json:"extSeq,omitempty"`
	AuditSeq       int                  `json:"auditSeq,omitempty"`
	AuditEvents    int                  `json:"auditEvents,omitempty"`
	AuditDecisions int                  `json:"auditDecisions,omitempty"`
	DayStarts      map[string]time.Time `json:"dayStarts,omitempty"`
	// RemindedEnd is the end date the expiry reminder was sent for.
	RemindedEnd string `json:"remindedEnd,omitempty"`
	// Approval is the approval wait a joiner continues in AwaitingApproval;
	// Unwind the rollback or revocation one continues in RollingBack,
	// Revoking or CompensationStuck (version continue-as-new-everywhere).
	Approval *ApprovalWait `json:"approval,omitempty"`
	Unwind   *Unwind       `json:"unwind,omitempty"`
}

func isContinueAsNew(err error) bool {
	var can *workflow.ContinueAsNewError
	return errors.As(err, &can)
}

// checkContinued refuses carried state that the joiner did not hand over
// itself. The adversary: anyone who can start workflows on the task queue.
// A start whose input carries "continued" state could otherwise claim an
// approval nobody gave, or list someone else's entry, group membership or
// AppRole as this joiner's to revoke. Only a run the server started by
// continuing a run of this workflow ID has ContinuedExecutionRunID set, and
// only Joiner code continues a joiner as new.
func (j *joiner) checkContinued(ctx workflow.Context) error {
	if err := j.checkContinuedState(ctx); err != nil {
		return err
	}
	// Version 1 of versionContinuedFrom: the shape of the state is not
	// enough, the run it came from must have been Joinery's joiner (a
	// workflow of another type, or one named Joiner on another task queue,
	// can continue as new into Joiner with state of its choosing).
	// VerifyContinued asks Temporal (activities/continued.go). Runs that
	// began before this check replay without it.
	if workflow.GetVersion(ctx, versionContinuedFrom, workflow.DefaultVersion, 1) < 1 {
		return nil
	}
	err := workflow.ExecuteActivity(withOptions(ctx, optsVerifyContinued), a.VerifyContinued, activities.VerifyContinuedInput{
		Key: j.in.HRISID, PrevRunID: workflow.GetInfo(ctx).ContinuedExecutionRunID}).Get(ctx, nil)
	if err != nil {
		return temporal.NewNonRetryableApplicationError(
			"continued state refused: the run it came from is not this joiner's own previous run; nothing was done", ErrTypeInvalidInput, err)
	}
	return nil
}

// versionContinuedFrom gates the check of the previous run's type, task
// queue and close status.
const versionContinuedFrom = "continued-from-joiner"

// optsVerifyContinued: the check only reads Temporal, so an unreachable
// frontend is retried for ten minutes; a refusal is final.
var optsVerifyContinued = workflow.ActivityOptions{
	StartToCloseTimeout:    30 * time.Second,
	ScheduleToCloseTimeout: 10 * time.Minute,
	RetryPolicy: &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 30 * time.Second,
		NonRetryableErrorTypes: []string{activities.ErrTypeOrderRefused}},
}

// checkContinuedState checks the carried state's shape against what the
// server says started this run.
func (j *joiner) checkContinuedState(ctx workflow.Context) error {
	c := j.in.Continued
	info := workflow.GetInfo(ctx)
	switch {
	case info.ContinuedExecutionRunID == "":
		return temporal.NewNonRetryableApplicationError(
			"continued state is only accepted from the joiner's own previous run (this start was not a continue-as-new); nothing was done",
			ErrTypeInvalidInput, nil)
	case !j.canContinue:
		return temporal.NewNonRetryableApplicationError("this joiner's version does not continue as new", ErrTypeInvalidInput, nil)
	case c.Status.HRISID != j.in.HRISID || c.Result.HRISID != j.in.HRISID:
		return temporal.NewNonRetryableApplicationError("continued state is for another joiner", ErrTypeInvalidInput, nil)
	case len(c.Prior) == 0 || c.Prior[len(c.Prior)-1] != info.ContinuedExecutionRunID:
		return temporal.NewNonRetryableApplicationError("continued state does not name the run it continues", ErrTypeInvalidInput, nil)
	}
	bad := func(why string) error {
		return temporal.NewNonRetryableApplicationError("continued state: "+why+"; nothing was done", ErrTypeInvalidInput, nil)
	}
	switch c.Stage {
	case StageWaitingStartDate, StageProvisioned, StageActive:
		return nil
	case StageAwaitingApproval:
		switch w := c.Approval; {
		case !j.cont.more:
			return bad("this joiner's version does not continue while awaiting approval")
		case w == nil || len(w.Deadlines) == 0:
			return bad("awaiting approval without the wait's deadlines")
		case c.Decided != nil:
			return bad("awaiting approval with a decision already made")
		}
		return nil
	case StageRollingBack, StageRevoking, StageCompensationStuck:
		u := c.Unwind
		switch {
		case !j.cont.more:
			return bad("this joiner's version does not continue while undoing")
		case u == nil || (u.Mode != unwindRollback && u.Mode != unwindRevoke):
			return bad(fmt.Sprintf("stage %s without the rollback or revocation under way", c.Stage))
		case u.Mode == unwindRevoke && c.Result.DN == "":
			return bad("a revocation of nothing")
		}
		return nil
	}
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf("a joiner does not continue in stage %q", c.Stage), ErrTypeInvalidInput, nil)
}

// continueDue says whether this run should hand over to a new one.
func (j *joiner) continueDue(ctx workflow.Context) bool {
	if !j.canContinue {
		return false
	}
	info := workflow.GetInfo(ctx)
	return info.GetContinueAsNewSuggested() || info.GetCurrentHistoryLength() >= maxEventsPerRun
}

// quietForContinue lets every buffered signal and running update finish,
// then says whether nothing is left for this run to act on (quiet is the
// caller's own test: no rescind, no revoke, no decision waiting...). If
// something came in meanwhile the caller handles it and asks again later.
func (j *joiner) quietForContinue(ctx workflow.Context, quiet func() bool) bool {
	if err := workflow.Await(ctx, func() bool {
		return (j.sel == nil || !j.sel.HasPending()) && workflow.AllHandlersFinished(ctx) && !j.applying
	}); err != nil {
		return false
	}
	return quiet()
}

// continueAsNew hands the joiner's state to a new run that resumes in the
// current stage.
func (j *joiner) continueAsNew(ctx workflow.Context) error {
	info := workflow.GetInfo(ctx)
	stage := j.status.Stage
	switch stage {
	case StageWaitingStartDate:
		j.withdrawEarlyApprovals(ctx)
	case StageAwaitingApproval:
		j.withdrawPartialApprovals(ctx)
	}
	ext := j.extensions
	if len(ext) > maxCarriedExtensions {
		j.event(ctx, fmt.Sprintf("%d queued extension requests were dropped when the joiner continued as new (at most %d are carried)",
			len(ext)-maxCarriedExtensions, maxCarriedExtensions))
		j.status.Refused += len(ext) - maxCarriedExtensions
		ext = ext[:maxCarriedExtensions]
	}
	run := 2
	if c := j.in.Continued; c != nil {
		run = c.Run + 1
	}
	prior := append(slices.Clone(j.prior), info.WorkflowExecution.RunID)
	if len(prior) > maxPriorRuns {
		prior = prior[len(prior)-maxPriorRuns:]
	}
	j.event(ctx, fmt.Sprintf("continued as new (run %d) in stage %s after %d events: same joiner, same state",
		run, stage, info.GetCurrentHistoryLength()))
	j.exportAudit(ctx, false)
	c := &Continued{
		Run: run, Prior: prior, Stage: stage, Status: j.status, Result: j.result, Plan: j.plan, Worker: j.worker,
		Snapshot: j.snapshot, HireDate: j.hireDate, Moves: j.moves, Decided: j.decided, Extensions: ext,
		Trust: j.trust, PlanHash: j.planHash, Nonces: j.nonces, DecidedBy: j.decidedBy, Published: j.published,
		BreakGlass: j.breakGlass, Escalated: j.escalated, Alarms: j.alarms,
		ApproveSeq: j.approveSeq, RejectSeq: j.rejectSeq, ExtSeq: j.extSeq,
		AuditSeq: j.auditSeq, AuditEvents: j.auditEvents, AuditDecisions: j.auditDecisions,
		DayStarts: j.dayStarts, RemindedEnd: j.remindedEnd,
	}
	switch stage {
	case StageAwaitingApproval:
		c.Approval = j.cont.wait
	case StageRollingBack, StageRevoking, StageCompensationStuck:
		c.Unwind = j.cont.unwind
	}
	in := j.in
	in.Continued = c
	return workflow.NewContinueAsNewError(ctx, Joiner, in)
}

// withdrawEarlyApprovals drops the approvals given while waiting for the
// provisioning date: they are signed for this run, and the claim of the
// next run would refuse them. The approvers are asked again on the date.
func (j *joiner) withdrawEarlyApprovals(ctx workflow.Context) {
	var who []string
	for _, d := range []*Decision{j.first, j.second, j.decided} {
		if d != nil && d.Approved && !slices.Contains(who, d.Approver) {
			who = append(who, d.Approver)
		}
	}
	for _, d := range []*Decision{j.first, j.second, j.decided} {
		j.markWithdrawn(d, fmt.Sprintf("withdrawn: signed for run %s, which continued as new; the approver is asked again on the provisioning date",
			workflow.GetInfo(ctx).WorkflowExecution.RunID))
	}
	if len(who) > 0 {
		j.event(ctx, fmt.Sprintf("the early approval by %s was signed for run %s and is withdrawn as the joiner continues as new; "+
			"the approval inbox asks again, signing for the new run, when the provisioning date comes",
			strings.Join(who, " and "), workflow.GetInfo(ctx).WorkflowExecution.RunID))
	}
	j.first, j.second, j.decided = nil, nil, nil
	j.proofs, j.proofBy = nil, nil
	j.breakGlass = false
}

// resume restores a continued joiner and goes on where its previous run
// stopped.
func (j *joiner) resume(ctx workflow.Context) (JoinerResult, error) {
	c := j.in.Continued
	j.prior = c.Prior
	j.status, j.result, j.plan, j.worker = c.Status, c.Result, c.Plan, c.Worker
	j.snapshot, j.hireDate, j.moves, j.decided = c.Snapshot, c.HireDate, c.Moves, c.Decided
	j.extensions = c.Extensions
	j.trust, j.planHash, j.decidedBy, j.published = c.Trust, c.PlanHash, c.DecidedBy, c.Published
	if c.Nonces != nil {
		j.nonces = c.Nonces
	}
	j.breakGlass, j.escalated, j.alarms = c.BreakGlass, c.Escalated, c.Alarms
	j.approveSeq, j.rejectSeq, j.extSeq = c.ApproveSeq, c.RejectSeq, c.ExtSeq
	j.auditSeq, j.auditEvents, j.auditDecisions = c.AuditSeq, c.AuditEvents, c.AuditDecisions
	j.remindedEnd = c.RemindedEnd
	if c.DayStarts != nil {
		j.dayStarts = c.DayStarts
	}
	// The joiner's own input stays as it was started; the carried state
	// is not carried again from here (the next continuation builds its own).
	j.in.Continued = nil
	j.planned = true
	// The status's plan is the one the approvers signed for (loadTrust);
	// j.plan may since carry an extended end date or a moved start.
	if j.status.Plan == nil {
		shown := j.plan
		j.status.Plan = &shown
	}
	j.rebuildCompensations()
	j.event(ctx, fmt.Sprintf("run %d continues from run %s in stage %s", c.Run, c.Prior[len(c.Prior)-1], c.Stage))
	// Stage again (JoinerStage, JoinerDeciders, current details): the
	// server carries search attributes over, this makes sure they are
	// this run's.
	j.published = nil
	j.setStage(ctx, c.Stage)
	switch c.Stage {
	case StageWaitingStartDate:
		return j.afterPlanning(ctx, j.snapshot)
	case StageProvisioned:
		return j.provisioned(ctx)
	case StageAwaitingApproval:
		w := c.Approval
		if done, res, err := j.awaitDecision(ctx, w.Since, slices.Clone(w.Deadlines)); done {
			return res, err
		}
		return j.provisionApproved(ctx, j.snapshot)
	case StageRollingBack, StageRevoking, StageCompensationStuck:
		u := *c.Unwind
		j.cont.resumed = &u
		if u.Mode == unwindRevoke {
			return j.revokeAll(ctx, u.Stage, u.Outcome, u.Why)
		}
		return j.rollback(ctx, u.Stage, u.Outcome, u.Why)
	default: // StageActive (checkContinued admits nothing else)
		return j.active(ctx)
	}
}

// withdrawPartialApprovals drops, as the joiner continues in the approval
// wait, the approval that counted but did not decide alone (the first of
// two): it is signed for this run, and the claim of the next run would
// refuse it. Its record says so (the inbox lets its approver decide again,
// for the new run), and the approver is asked again now.
func (j *joiner) withdrawPartialApprovals(ctx workflow.Context) {
	run := workflow.GetInfo(ctx).WorkflowExecution.RunID
	for _, d := range []*Decision{j.first, j.second} {
		if d == nil || !d.Approved {
			continue
		}
		j.markWithdrawn(d, fmt.Sprintf("withdrawn: signed for run %s, which continued as new; decide again in the approval inbox", run))
		j.event(ctx, fmt.Sprintf("the approval by %s was signed for run %s and is withdrawn as the joiner continues as new; "+
			"the approval inbox signs again for the new run", d.Approver, run))
		j.notify(ctx, d.Approver, "approval-request",
			fmt.Sprintf("joiner %s continued as new while waiting for the second approval: please decide again in the approval inbox: %s",
				j.in.HRISID, j.inboxLink()))
	}
	j.first, j.second = nil, nil
	j.proofs, j.proofBy = nil, nil
}

// rebuildCompensations recreates the undo steps of what the previous runs
// created (closures do not survive a continue-as-new; the data they need
// is in the result): a rescind in the Provisioned stage still rolls back
// everything. Order and resource indexes are as they were registered.
func (j *joiner) rebuildCompensations() {
	j.comps = nil
	nonHuman := !policy.IsHumanKind(j.plan.Kind)
	for i, r := range j.status.Resources {
		if r.UndoneAt != nil {
			continue
		}
		var c compensation
		switch r.Kind {
		case "ldap-entry":
			c = compensation{name: "delete directory entry", run: func(ctx workflow.Context) error {
				return workflow.ExecuteActivity(ctx, a.DeleteAccount, activities.AccountRef{HRISID: j.in.HRISID, DN: j.result.DN, NonHuman: nonHuman}).Get(ctx, nil)
			}}
		case "group-membership":
			in := activities.GroupInput{HRISID: j.in.HRISID, Group: r.ID, MemberDN: j.result.DN}
			c = compensation{name: "remove from " + r.ID, run: func(ctx workflow.Context) error {
				return workflow.ExecuteActivity(ctx, a.RevokeGroup, in).Get(ctx, nil)
			}}
		case "vault-approle":
			acc := ""
			if wl := j.result.Workload; wl != nil {
				acc = wl.WrapAccessor
			}
			c = compensation{name: "delete AppRole and policy", run: func(ctx workflow.Context) error {
				return workflow.ExecuteActivity(ctx, a.RevokeWorkload, activities.RevokeWorkloadInput{Key: j.in.HRISID, Accessor: acc}).Get(ctx, nil)
			}}
		case "vault-secret":
			var path, acc string
			if cr := j.result.Credential; cr != nil {
				path, acc = cr.Path, cr.WrapAccessor
			}
			c = compensation{name: "destroy initial credential", run: func(ctx workflow.Context) error {
				return workflow.ExecuteActivity(ctx, a.RevokeCredential, activities.RevokeInput{HRISID: j.in.HRISID, Path: path, Accessor: acc}).Get(ctx, nil)
			}}
		case "hris-field":
			want := j.plan.WriteBackFor(j.result.Username)
			c = compensation{name: "restore HR fields", run: func(ctx workflow.Context) error {
				return workflow.ExecuteActivity(ctx, a.UndoWriteBack, activities.WriteBackInput{
					HRISID: j.in.HRISID, Want: pick(j.snapshot, want), Expected: want}).Get(ctx, nil)
			}}
		default:
			continue
		}
		c.resource = i
		j.comps = append(j.comps, c)
	}
}

// explainRun makes a refusal of a decision signed for an earlier run of
// this joiner say so: the joiner continued as new, and the inbox signs for
// the current run.
func (j *joiner) explainRun(ctx workflow.Context, d decision.Decision, err error) error {
	if err == nil || !errors.Is(err, decision.ErrOtherJoiner) || d.RunID == "" || !slices.Contains(j.prior, d.RunID) {
		return err
	}
	return fmt.Errorf("signed for run %s, an earlier run of this joiner: it has continued as new (run %s now); "+
		"decide again in the approval inbox, which signs for the current run", d.RunID, workflow.GetInfo(ctx).WorkflowExecution.RunID)
}

// Continue-as-new everywhere a joiner can wait long (version
// "continue-as-new-everywhere" >= 1).
//
// Two more waits can grow a joiner's history without bound: the approval
// wait (anyone who can signal the joiner can send refused decisions, or
// retry-compensations, by the thousand: each is an event, and past
// Temporal's hard limit the server terminates the joiner, a denial of
// service), and a rollback or revocation that keeps failing (persist
// retries for days; a terminated joiner there leaves what it granted live,
// with nobody retrying). Both continue as new at a quiet moment, like the
// other waits:
//   - awaiting approval, the next run keeps the wait's absolute deadlines
//     (reminder, escalation, timeout): a continuation neither restarts the
//     timeout nor sends a reminder again. An approval that counted but
//     does not decide alone (the first of two) is signed for this run, so
//     it is withdrawn (on record; the approver is asked again).
//   - unwinding, the next run goes on with what is left: the resources not
//     undone yet (rollback) or the steps not revoked yet (revocation),
//     retrying the step that was failing with its back-off and its
//     CompensationStuck time, and closes only once everything is undone.

// versionContinueEverywhere gates the approval-wait and unwind
// continuations: joiners already running keep waiting, and unwinding, in
// one run, as their histories recorded.
const versionContinueEverywhere = "continue-as-new-everywhere"

// Unwind modes.
const (
	unwindRollback = "rollback"
	unwindRevoke   = "revoke"
)

// ApprovalDeadline is one pending deadline of the approval wait.
type ApprovalDeadline struct {
	At   time.Time `json:"at"`
	Kind string    `json:"kind"` // reminder, escalation or timeout
}

// ApprovalWait is where an approval wait stands when the joiner continues
// as new: since when it waits, and the deadlines still to come.
type ApprovalWait struct {
	Since     time.Time          `json:"since"`
	Deadlines []ApprovalDeadline `json:"deadlines"`
}

// Unwind is a rollback or revocation in progress when the joiner continues
// as new.
type Unwind struct {
	// Mode is rollback or revoke; Stage, Outcome and Why are what the
	// joiner ends with once everything is undone.
	Mode    string `json:"mode"`
	Stage   Stage  `json:"stage"`
	Outcome string `json:"outcome"`
	Why     string `json:"why,omitempty"`
	// Step is the undo step that was failing, since FailingSince, with the
	// next wait Backoff; Prev is the stage it shows once it succeeds.
	Step         string        `json:"step,omitempty"`
	FailingSince time.Time     `json:"failingSince"`
	Backoff      time.Duration `json:"backoff,omitempty"`
	Prev         Stage         `json:"prev,omitempty"`
}

// continuation is the joiner's state for these continuations.
type continuation struct {
	// more is the versionContinueEverywhere gate.
	more bool
	// wait is the approval wait being handed over; unwind the rollback or
	// revocation under way; resumed the failing step a continued run
	// picks up (taken by the first persist).
	wait    *ApprovalWait
	unwind  *Unwind
	resumed *Unwind
}

// unwinding notes the rollback or revocation that has begun.
func (c *continuation) unwinding(mode string, stage Stage, outcome, why string) {
	c.unwind = &Unwind{Mode: mode, Stage: stage, Outcome: outcome, Why: why}
}

// takeResumed returns the failing step a continued run carried, if name is
// that step, and forgets it either way: only the first undo step of the
// new run can be the one that was failing.
func (c *continuation) takeResumed(name string) *Unwind {
	u := c.resumed
	c.resumed = nil
	if u == nil || u.Step != name {
		return nil
	}
	return u
}

// A first-of-two approval is withdrawn by a continuation, and anyone who
// can signal the joiner can force continuations: without a margin, a flood
// would keep the two approvals from ever meeting in one run. So while one
// is held, the joiner continues only once its history is well past
// Temporal's suggestion, still far below the hard limits (50,000 events,
// 50 MB).
const (
	partialHoldEvents = 30_000
	partialHoldBytes  = 20 << 20
)

// approvalContinueDue says whether the approval wait should continue as
// new now.
func (j *joiner) approvalContinueDue(ctx workflow.Context) bool {
	if !j.cont.more || !j.continueDue(ctx) {
		return false
	}
	if j.first == nil && j.second == nil {
		return true
	}
	info := workflow.GetInfo(ctx)
	return info.GetCurrentHistoryLength() >= partialHoldEvents || info.GetCurrentHistorySize() >= partialHoldBytes
}

// approvalTimeout is how long the approval wait lasts before silence
// rejects.
func (j *joiner) approvalTimeout() time.Duration {
	if t := j.plan.Approval.Timeout; t > 0 {
		return t
	}
	return 7 * 24 * time.Hour
}

// awaitDecision waits for the decision, reminding and then escalating at
// the pending deadlines; silence until the timeout rejects. since is when
// the wait began (it outlives continuations).
func (j *joiner) awaitDecision(ctx workflow.Context, since time.Time, pending []ApprovalDeadline) (bool, JoinerResult, error) {
	ap := j.plan.Approval
	// Version 1 also wakes for decisions made by update (they bypass the
	// inbox); under version 0 such a decision waited for the next timer.
	updatesWake := j.laterVersion(ctx, "update-decisions-wake") >= 1
	for j.decided == nil {
		j.drainInbox(ctx)
		if j.decided != nil {
			break
		}
		if j.rescind != nil {
			res, err := j.rollback(ctx, StageRescinded, OutcomeRescinded, "rescinded while awaiting approval")
			return true, res, err
		}
		next := pending[0]
		for _, d := range pending[1:] {
			if d.At.Before(next.At) {
				next = d
			}
		}
		seen := len(j.inbox)
		got, err := workflow.AwaitWithTimeout(ctx, next.At.Sub(workflow.Now(ctx)), func() bool {
			return len(j.inbox) > seen || j.rescind != nil || (updatesWake && j.decided != nil) || j.approvalContinueDue(ctx)
		})
		if err != nil {
			if j.local {
				// A decision already in hand is acted on before the
				// cancel: a re-run of a lost task sees the cancel that
				// the lost run, which provisioned on this decision, did
				// not (localsteps.go); the cancel is acted on where the
				// joiner next waits. The signal goroutine may not have
				// taken a delivered decision yet.
				j.settleSignals(ctx)
				dctx, cancel := j.uncut(ctx)
				j.drainInbox(dctx)
				cancel()
				if j.decided != nil {
					break
				}
			}
			return true, JoinerResult{}, err
		}
		if got {
			if j.approvalContinueDue(ctx) && j.quietForContinue(ctx, func() bool {
				return j.decided == nil && j.rescind == nil && len(j.inbox) == 0
			}) {
				j.cont.wait = &ApprovalWait{Since: since, Deadlines: slices.Clone(pending)}
				return true, JoinerResult{}, j.continueAsNew(ctx)
			}
			continue
		}
		// A deadline passed.
		rest := pending[:0]
		for _, d := range pending {
			if d != next {
				rest = append(rest, d)
			}
		}
		pending = rest
		switch next.Kind {
		case "reminder":
			j.event(ctx, "reminder sent to "+ap.Approver)
			j.notify(ctx, ap.Approver, "reminder", fmt.Sprintf("joiner %s still awaits your approval", j.in.HRISID))
		case "escalation":
			j.event(ctx, fmt.Sprintf("escalated from %s to %s", ap.Approver, ap.EscalateTo))
			j.status.Approvers = appendUnique(j.status.Approvers, ap.EscalateTo)
			j.publishDeciders(ctx)
			j.notify(ctx, ap.EscalateTo, "escalation",
				fmt.Sprintf("joiner %s has waited %s for %s's approval; you may approve or reject it", j.in.HRISID, ap.EscalateAfter, ap.Approver))
		case "timeout":
			j.decided = &Decision{Approver: "policy:" + ap.Rule, Approved: false, At: workflow.Now(ctx), Via: "timeout",
				Comment: fmt.Sprintf("no decision within %s", j.approvalTimeout())}
			j.status.Approvals = append(j.status.Approvals, *j.decided)
			j.publishDeciders(ctx)
		}
	}
	if !j.decided.Approved {
		res, err := j.rollback(ctx, StageRejected, OutcomeRejected,
			fmt.Sprintf("rejected by %s (%s)", j.decided.Approver, j.decided.Via))
		return true, res, err
	}
	return false, JoinerResult{}, nil
}

// markWithdrawn makes the status record of the approval d say that it no
// longer counts. The approval inbox reads the records to tell who has
// approved already: one still shown as counting would keep its approver
// from deciding again, for the new run, and the joiner would wait for a
// decision nobody may give.
func (j *joiner) markWithdrawn(d *Decision, why string) {
	if d == nil || !d.Approved {
		return
	}
	for i := range j.status.Approvals {
		r := &j.status.Approvals[i]
		if r.Approved && r.Refused == "" && r.Approver == d.Approver && r.Nonce == d.Nonce && r.At.Equal(d.At) {
			r.Approved, r.Refused = false, why
		}
	}
}
