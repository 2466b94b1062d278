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
	switch c.Stage {
	case StageWaitingStartDate, StageProvisioned, StageActive:
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
	if stage == StageWaitingStartDate {
		j.withdrawEarlyApprovals(ctx)
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
	default: // StageActive (checkContinued admits nothing else)
		return j.active(ctx)
	}
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
