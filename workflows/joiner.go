package workflows

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/joinery/joinery/activities"
	"github.com/joinery/joinery/internal/policy"
)

// a and e are only used for method references; the worker registers the
// real ones.
var (
	a *activities.Activities
	e *activities.Eligibility
)

var validHRISID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// ValidateHRISID checks an HR record ID before it becomes part of a workflow
// ID, an LDAP employeeNumber and a Vault path.
func ValidateHRISID(id string) error {
	if !validHRISID.MatchString(id) {
		return fmt.Errorf("hrisId %q: want 1-64 characters of letters, digits, '.', '_' or '-', starting with a letter or digit", id)
	}
	return nil
}

// Error types a joiner fails with.
const (
	ErrTypeInvalidInput       = "InvalidJoinerInput"
	ErrTypeJoinerFailed       = "JoinerFailed"
	ErrTypeCompensationFailed = "CompensationFailed"
)

// errRescinded stops provisioning when the offer is withdrawn mid-flight.
var errRescinded = errors.New("offer rescinded")

// Joiner provisions one joiner: validate against policy, wait until the
// provisioning date, get the approver's decision, then claim a username,
// create the account, grant birthright groups, issue the initial credential
// and write the finalised attributes back to the HRIS. Any failure after the
// first side effect, a rejection or a rescind undoes what was created.
func Joiner(ctx workflow.Context, in JoinerInput) (JoinerResult, error) {
	j := &joiner{in: in}
	if err := j.setup(ctx); err != nil {
		return JoinerResult{}, err
	}
	var res JoinerResult
	var err error
	if in.Continued != nil {
		// A run continued from an earlier one (continued.go) picks up
		// where that one stopped instead of planning again.
		res, err = j.resume(ctx)
	} else {
		res, err = j.run(ctx)
	}
	if isContinueAsNew(err) {
		return res, err // the next run exports the final record
	}
	// The final record, on every way out, into the export that outlives
	// Temporal's retention.
	j.exportAudit(ctx, true)
	return res, err
}

type compensation struct {
	name     string
	resource int // index into status.Resources, -1 if none
	run      func(ctx workflow.Context) error
}

type joiner struct {
	in      JoinerInput
	status  Status
	plan    policy.Plan
	planned bool
	worker  policy.Worker

	// inbox holds approval attempts in arrival order; approve() consumes it.
	inbox []queued
	seen  int
	// approveSeq and rejectSeq count the signals of each channel, extSeq
	// the extend signals, so a recorded decision names the event it came in.
	approveSeq, rejectSeq, extSeq int
	decided                       *Decision
	// first and second hold the approvals so far when the policy asks for
	// two people (a second approver); decided is set once both agree.
	first, second *Decision
	rescind       *RescindSignal
	hireDate      string
	moves         int

	comps  []compensation
	result JoinerResult

	// Time-bound access (contractors, non-humans).
	extensions []ExtendSignal
	extSeen    int
	revoke     *RescindSignal

	// Signed decisions (see decisions.go). signed is the version gate;
	// trust and planHash are recorded once, at planning.
	signed     bool
	trust      activities.DecisionTrust
	planHash   string
	nonces     map[string]bool
	applying   bool
	decidedBy  []string
	published  []string
	breakGlass bool
	escalated  bool
	alarms     int
	// proofs are the approvals that counted, as signed, for the claim
	// activity to re-verify; proofBy names each one's approver.
	proofs  []activities.ApprovalProof
	proofBy []string
	// moveAsked counts start-date signals (each a prompt to re-read HR).
	moveAsked int
	// hardened is the "signed-decisions-hardening" version gate.
	hardened bool
	// siteTime ("site-local-midnight"): provisioning and expiry at local
	// midnight of the site's zone; dayStarts caches those instants by date
	// (from the plan, or the DayStart activity for later dates).
	siteTime  bool
	dayStarts map[string]time.Time
	// moveLimits ("start-move-limits"): a start HR moves is checked
	// against the end date and the kind's maximum lifetime.
	moveLimits bool
	// canContinue ("continue-as-new"): a long-lived joiner continues as
	// new (continued.go); sel is the signal selector (drained first),
	// snapshot the HR values the write-back undo restores, prior the
	// runs before this one.
	canContinue bool
	sel         workflow.Selector
	snapshot    map[string]string
	prior       []string
	// rehire is set on a rehire generation (rehire.go).
	rehire *activities.RehireCheck
	// remindedEnd is the end date the expiry reminder was sent for.
	remindedEnd string
	// retryNow counts retry-compensations signals.
	retryNow int
	// auditSeq numbers the entries exported to the audit file so far;
	// auditEvents and auditDecisions are how many of status.Events and
	// status.Approvals they cover.
	auditSeq, auditEvents, auditDecisions int
	// cont: continue-as-new in the approval wait and in a rollback or
	// revocation (continued.go).
	cont continuation
	// fast is the "joiner-fast-path" version gate (fastpath.go); local is
	// its level 2 (localsteps.go): every step a local activity first.
	fast, local bool
	// stageDue: a stage set on the local path that no upsert has carried
	// to the search attributes yet (localsteps.go, flushStage).
	stageDue bool
	// updateTask is the history length of the workflow task in which a
	// decision by update last counted (localsteps.go, decidedByUpdateNow).
	updateTask int
	// rescindTask is the history length of the workflow task in which the
	// rescind (or a revoke before activation) came (localsteps.go: check).
	rescindTask int
	// pendingSA are search attribute updates for the next upsert
	// (localsteps.go, setStageLocal).
	pendingSA []temporal.SearchAttributeUpdate
}

func (j *joiner) setup(ctx workflow.Context) error {
	if err := ValidateHRISID(j.in.HRISID); err != nil {
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeInvalidInput, nil)
	}
	if j.in.Kind != "" && !policy.IsKnownKind(j.in.Kind) {
		return temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("kind %q: want one of %s", j.in.Kind, strings.Join(policy.Kinds(), ", ")),
			ErrTypeInvalidInput, nil)
	}
	if r := j.in.Request; r != nil {
		if policy.IsHumanKind(j.in.Kind) || j.in.Kind == "" {
			return temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("kind %q: a request without an HR record is for non-human kinds (service-account, pipeline, ai-agent)", j.in.Kind),
				ErrTypeInvalidInput, nil)
		}
		if r.Name == "" || r.SponsorID == "" {
			return temporal.NewNonRetryableApplicationError("request.name and request.sponsorId are required", ErrTypeInvalidInput, nil)
		}
	}
	j.status = Status{HRISID: j.in.HRISID, Stage: StageValidating}
	j.result = JoinerResult{HRISID: j.in.HRISID}
	j.nonces = map[string]bool{}
	// Version 1: only decisions signed by the approval inbox (or a
	// break-glass decision where policy allows) count. Joiners started
	// before keep the name-based approvals their histories recorded.
	// "joiner-fast-path" (issue 12): one version marker instead of one per
	// change below. Each GetVersion writes a marker event and, with it, an
	// upsert of the TemporalChangeVersion search attribute (two events);
	// a joiner started since this version takes every earlier change
	// below (and in joiner.go's hot path) at its newest version without
	// recording them, and runs its HR reads as local activities
	// (fastpath.go). Joiners started before keep
	// calling each GetVersion, as their histories recorded.
	// Level 2 (fastLocalSteps, localsteps.go) also runs every step as a
	// local activity first and takes the last three gates unrecorded.
	level := workflow.GetVersion(ctx, versionFastPath, workflow.DefaultVersion, fastLocalSteps)
	j.fast, j.local = level >= 1, level >= fastLocalSteps
	if j.fast {
		j.signed, j.hardened, j.siteTime, j.moveLimits, j.canContinue, j.cont.more = true, true, true, true, true, true
	} else {
		j.setupVersions(ctx)
	}
	j.dayStarts = map[string]time.Time{}
	if j.in.Continued != nil {
		if err := j.checkContinued(ctx); err != nil {
			return err
		}
	}
	return j.setupHandlers(ctx)
}

// setupVersions reads the version gates one by one, as joiners started
// before "joiner-fast-path" recorded them.
func (j *joiner) setupVersions(ctx workflow.Context) {
	j.signed = workflow.GetVersion(ctx, "signed-decisions", workflow.DefaultVersion, 1) >= 1
	// Version 1 of "signed-decisions-hardening" (after an adversary
	// review): decisions must name this run, the HR record decides start
	// dates, early approvals by people who left are withdrawn, a revoke
	// before activation rescinds, and retry-now is rate-limited. Joiners
	// that started with signed decisions but before this keep what their
	// histories recorded (testdata/histories/v2-*.json replays them).
	j.hardened = j.signed && workflow.GetVersion(ctx, "signed-decisions-hardening", workflow.DefaultVersion, 1) >= 1
	// Lifecycle versions after the hardening (issue 10): local midnight of
	// the site, start moves checked against the end date and lifetime,
	// continue-as-new. Joiners already running keep 00:00 UTC, unchecked
	// moves and one run, as their histories recorded.
	j.siteTime = j.hardened && workflow.GetVersion(ctx, "site-local-midnight", workflow.DefaultVersion, 1) >= 1
	j.moveLimits = j.hardened && workflow.GetVersion(ctx, "start-move-limits", workflow.DefaultVersion, 1) >= 1
	j.canContinue = j.hardened && workflow.GetVersion(ctx, "continue-as-new", workflow.DefaultVersion, 1) >= 1
	j.cont.more = j.canContinue && workflow.GetVersion(ctx, versionContinueEverywhere, workflow.DefaultVersion, 1) >= 1
}

// setupHandlers registers the query, the update and the signal handlers.
func (j *joiner) setupHandlers(ctx workflow.Context) error {
	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (Status, error) { return j.status, nil }); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateDecide, j.decideUpdate,
		workflow.UpdateHandlerOptions{Validator: j.validateDecide}); err != nil {
		return err
	}
	approveCh := workflow.GetSignalChannel(ctx, SignalApprove)
	rejectCh := workflow.GetSignalChannel(ctx, SignalReject)
	rescindCh := workflow.GetSignalChannel(ctx, SignalRescind)
	moveCh := workflow.GetSignalChannel(ctx, SignalStartDateChange)
	extendCh := workflow.GetSignalChannel(ctx, SignalExtend)
	revokeCh := workflow.GetSignalChannel(ctx, SignalRevoke)
	alarmCh := workflow.GetSignalChannel(ctx, SignalHandoverAlarm)
	retryCh := workflow.GetSignalChannel(ctx, SignalRetryCompensations)
	workflow.Go(ctx, func(ctx workflow.Context) {
		// One selector, reused. Each handler reads with ReceiveAsync: a
		// blocking Receive skips a payload that does not decode and then
		// waits for the next one on that channel, which would stop this
		// goroutine, and with it every signal, after one malformed signal.
		sel := workflow.NewSelector(ctx)
		j.sel = sel
		{
			sel.AddReceive(approveCh, func(c workflow.ReceiveChannel, _ bool) {
				var s ApprovalSignal
				if !c.ReceiveAsync(&s) {
					return // nothing decodable: a malformed payload is dropped, not waited on
				}
				s.Approve = true
				j.approveSeq++
				j.inbox = append(j.inbox, queued{s: s, via: "signal:approve", seq: j.approveSeq})
			})
			sel.AddReceive(rejectCh, func(c workflow.ReceiveChannel, _ bool) {
				var s ApprovalSignal
				if !c.ReceiveAsync(&s) {
					return // nothing decodable: a malformed payload is dropped, not waited on
				}
				s.Approve = false
				j.rejectSeq++
				j.inbox = append(j.inbox, queued{s: s, via: "signal:reject", seq: j.rejectSeq})
			})
			sel.AddReceive(retryCh, func(c workflow.ReceiveChannel, _ bool) {
				var ignored any
				if !c.ReceiveAsync(&ignored) {
					return // nothing decodable: a malformed payload is dropped, not waited on
				}
				j.retryNow++
			})
			sel.AddReceive(alarmCh, func(c workflow.ReceiveChannel, _ bool) {
				var al HandoverAlarm
				if !c.ReceiveAsync(&al) {
					return // nothing decodable: a malformed payload is dropped, not waited on
				}
				j.noteAlarm(ctx, al)
			})
			sel.AddReceive(rescindCh, func(c workflow.ReceiveChannel, _ bool) {
				var s RescindSignal
				if !c.ReceiveAsync(&s) {
					return // nothing decodable: a malformed payload is dropped, not waited on
				}
				if j.rescind == nil {
					if j.signed {
						s.By, s.Reason, s.Via = clip(s.By), clip(s.Reason), clip(s.Via)
					}
					j.rescind = &s
					j.rescindTask = workflow.GetInfo(ctx).GetCurrentHistoryLength()
					j.event(ctx, fmt.Sprintf("offer rescinded by %s: %s", orUnknown(s.By), s.Reason))
				}
			})
			sel.AddReceive(moveCh, func(c workflow.ReceiveChannel, _ bool) {
				var s StartDateSignal
				if !c.ReceiveAsync(&s) {
					return // nothing decodable: a malformed payload is dropped, not waited on
				}
				if j.hardened {
					// The HR record decides the start date, not a signal
					// anyone with Temporal access can send: the signal only
					// makes the joiner read the record again (bounded).
					if j.moveAsked >= maxMoveChecks {
						return
					}
					j.moveAsked++
					j.event(ctx, fmt.Sprintf("start-date change to %q announced by %s; the HR record decides",
						clip(s.HireDate), clip(orUnknown(s.By))))
					return
				}
				if _, err := time.Parse(time.DateOnly, s.HireDate); err != nil {
					j.event(ctx, fmt.Sprintf("ignored start-date change %q from %s: want YYYY-MM-DD", s.HireDate, orUnknown(s.By)))
					return
				}
				j.event(ctx, fmt.Sprintf("start date moved from %s to %s by %s", j.hireDate, s.HireDate, orUnknown(s.By)))
				j.hireDate = s.HireDate
				j.moves++
			})
			sel.AddReceive(extendCh, func(c workflow.ReceiveChannel, _ bool) {
				var s ExtendSignal
				if !c.ReceiveAsync(&s) {
					return // nothing decodable: a malformed payload is dropped, not waited on
				}
				j.extensions = append(j.extensions, s)
			})
			sel.AddReceive(revokeCh, func(c workflow.ReceiveChannel, _ bool) {
				var s RescindSignal
				if !c.ReceiveAsync(&s) {
					return // nothing decodable: a malformed payload is dropped, not waited on
				}
				if j.revoke == nil {
					if j.signed {
						s.By, s.Reason, s.Via = clip(s.By), clip(s.Reason), clip(s.Via)
					}
					j.revoke = &s
					j.event(ctx, fmt.Sprintf("revocation requested by %s: %s", orUnknown(s.By), s.Reason))
				}
				// A revoke before the joiner is active ends it like a
				// rescind (joiners started since signed decisions).
				if j.hardened && j.rescind == nil && j.status.Stage != StageActive && j.status.Stage != StageRevoking {
					j.rescind = &s
					j.rescindTask = workflow.GetInfo(ctx).GetCurrentHistoryLength()
				}
			})
		}
		for {
			sel.Select(ctx)
		}
	})
	return nil
}

func (j *joiner) run(ctx workflow.Context) (JoinerResult, error) {
	logger := workflow.GetLogger(ctx)

	// 1. Validate: read the HR record and plan against policy. Nothing is
	// created until the plan is valid, so bad input changes nothing.
	var w policy.Worker
	if r := j.in.Request; r != nil {
		// A non-human joiner has no HR record: its sponsor's does the vouching.
		if err := workflow.ExecuteActivity(withOptions(ctx, optsHRIS), a.ResolveNonHuman,
			activities.ResolveInput{Key: j.in.HRISID, Kind: j.in.Kind, Request: *r}).Get(ctx, &w); err != nil {
			return j.fail(ctx, "validate the request and its sponsor", err)
		}
		j.result.Tools = r.Tools
	} else {
		// Version 1: the HR record, not the caller, decides whether this is
		// a pending hire and of which kind (an existing employee, a leaver
		// or an already provisioned record gets no joiner), checked here
		// too and not only at the intake, since any Temporal client can
		// start a workflow.
		if j.isRehireStart(ctx) {
			// A rehire (rehire.go): its own check instead of eligibility.
			if err := j.startRehire(ctx); err != nil {
				return j.fail(ctx, "check the rehire", err)
			}
		} else if j.version(ctx, "check-eligible") >= 1 {
			var er activities.EligibleResult
			if err := j.read(ctx, "CheckEligible", e.CheckEligible,
				activities.CheckEligibleInput{HRISID: j.in.HRISID, Kind: j.in.Kind}, &er); err != nil {
				return j.fail(ctx, "check that the HR record is a pending hire", err)
			}
			j.in.Kind = er.Kind
		}
		if err := j.read(ctx, "FetchJoiner", a.FetchJoiner,
			activities.FetchInput{HRISID: j.in.HRISID, Kind: j.in.Kind}, &w); err != nil {
			return j.fail(ctx, "read the HR record", err)
		}
	}
	if j.rehire != nil {
		w = rehireWorker(w)
	}
	j.worker = w
	j.hireDate = w.HireDate
	var plan policy.Plan
	if err := j.read(ctx, "PlanJoiner", a.PlanJoiner, w, &plan); err != nil {
		return j.fail(ctx, "plan against policy", err)
	}
	j.plan = plan
	if j.rehire != nil {
		j.plan.Rehire = &j.rehire.Plan // what the approver signs for
	}
	j.status.Plan = &j.plan
	j.seedDayStarts()
	if j.signed {
		if err := j.loadTrust(ctx); err != nil {
			return j.fail(ctx, "load the approval inbox's keys", err)
		}
	}
	j.planned = true
	j.status.PolicyVersion = plan.PolicyVersion
	j.result.PolicyVersion = plan.PolicyVersion
	j.status.Approvers = j.allowedApprovers()
	j.status.SecondApprover = plan.Approval.SecondApprover
	if j.local {
		// Upserted with the next stage, in this task (localsteps.go).
		j.pendingSA = append(j.pendingSA, j.plannedSearchAttributes(ctx, w)...)
	} else {
		_ = workflow.UpsertTypedSearchAttributes(ctx, j.plannedSearchAttributes(ctx, w)...)
	}
	logger.Info("joiner planned", "hrisId", j.in.HRISID, "policy", plan.PolicyVersion, "candidates", len(plan.Candidates))

	j.result.Owner, j.result.EndDate = plan.Owner, plan.EndDate
	j.status.Owner, j.status.EndDate = plan.Owner, plan.EndDate
	var snapshot map[string]string
	if j.hasHRRecord() {
		if err := j.read(ctx, "SnapshotHRIS", a.SnapshotHRIS,
			activities.SnapshotInput{HRISID: j.in.HRISID, Fields: plan.WriteBack}, &snapshot); err != nil {
			return j.fail(ctx, "read the HR fields Joinery owns", err)
		}
	}
	j.snapshot = snapshot
	return j.afterPlanning(ctx, snapshot)
}

// afterPlanning is a planned joiner's way on: wait for the date, approval,
// provisioning, then the time-bound watch or the Provisioned hold. A run
// continued while waiting for its date starts here again.
func (j *joiner) afterPlanning(ctx workflow.Context, snapshot map[string]string) (JoinerResult, error) {
	// 2. Wait for the provisioning date; a start-date change moves the timer.
	if done, res, err := j.waitForProvisioningDate(ctx); done {
		return res, err
	}

	// 3. Approval by the approver the policy names.
	if done, res, err := j.approve(ctx); done {
		return res, err
	}
	return j.provisionApproved(ctx, snapshot)
}

// provisionApproved provisions an approved joiner (a run continued while
// awaiting approval comes here once decided) and goes on to the time-bound
// watch or the Provisioned hold.
func (j *joiner) provisionApproved(ctx workflow.Context, snapshot map[string]string) (JoinerResult, error) {
	j.exportAudit(ctx, false) // the decisions that counted, before anything is created

	// 4. Provision under a saga: each step registers its (idempotent)
	// compensation before it runs, so a step that half-happened is undone too.
	if err := j.provision(ctx, snapshot); err != nil {
		if errors.Is(err, errRescinded) {
			return j.rollback(ctx, StageRescinded, OutcomeRescinded, "rescinded during provisioning")
		}
		var ex *existingAccountError
		if errors.As(err, &ex) {
			j.event(ctx, ex.Error())
			return j.rollback(ctx, ex.stage(), ex.outcome(), ex.Error())
		}
		return j.rollback(ctx, StageFailed, OutcomeFailed, err.Error())
	}

	// Version 1 keeps time-bound joiners (an end date) running until the end
	// date; joiners started before that complete here, as they recorded.
	if j.version(ctx, "time-bound-access") >= 1 && j.plan.EndDate != "" {
		j.notify(ctx, j.plan.Owner, "outcome", fmt.Sprintf("%s is provisioned as %s until %s; the wrapped credential is in your handover inbox",
			strings.TrimSpace(j.worker.FirstName+" "+j.worker.LastName), j.result.Username, j.plan.EndDate))
		return j.active(ctx)
	}
	// Version 1 keeps an employee joiner open until the start date, so a
	// rescind or a termination before the start still rolls back.
	held := j.version(ctx, "provisioned-until-start") >= 1 && j.hasHRRecord()
	if held {
		j.notify(ctx, j.plan.Approval.Approver, "outcome",
			fmt.Sprintf("%s %s is provisioned as %s; the initial credential's wrapped token is in your handover inbox",
				j.worker.FirstName, j.worker.LastName, j.result.Username))
		return j.provisioned(ctx)
	}
	return j.complete(ctx, false)
}

// provisioned holds a provisioned employee joiner until its start date
// (a run continued in the Provisioned stage resumes here), then completes.
func (j *joiner) provisioned(ctx workflow.Context) (JoinerResult, error) {
	if done, res, err := j.holdUntilStart(ctx); done {
		return res, err
	}
	return j.complete(ctx, true)
}

// complete ends a provisioned joiner as Completed; the approver is told
// here unless they were told when the Provisioned hold began.
func (j *joiner) complete(ctx workflow.Context, held bool) (JoinerResult, error) {
	j.setStage(ctx, StageCompleted)
	j.result.Outcome = OutcomeCompleted
	j.result.Stage = StageCompleted
	j.finish()
	if !held {
		j.notify(ctx, j.plan.Approval.Approver, "outcome",
			fmt.Sprintf("%s %s is provisioned as %s; the initial credential's wrapped token is in your handover inbox",
				j.worker.FirstName, j.worker.LastName, j.result.Username))
	}
	_ = workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) })
	return j.result, nil
}

// hasHRRecord is false for non-human joiners, which Joinery never writes
// back to the HRIS.
func (j *joiner) hasHRRecord() bool { return j.in.Request == nil }

func (j *joiner) waitForProvisioningDate(ctx workflow.Context) (bool, JoinerResult, error) {
	// Version 1 acts on decisions while waiting (an early rejection ends the
	// joiner). Joiners already waiting under version 0 keep waking only for
	// rescinds and date moves, which is what their histories recorded.
	early := j.version(ctx, "decisions-while-waiting") >= 1
	for {
		hire, err := time.Parse(time.DateOnly, j.hireDate)
		if err != nil {
			// The plan validated the hire date; a bad one here came from a
			// signal that was already refused, so provision now.
			return false, JoinerResult{}, nil
		}
		at := j.dayStart(ctx, hire.AddDate(0, 0, -j.plan.ProvisionLeadDays))
		j.status.ProvisionAt = &at
		wait := at.Sub(workflow.Now(ctx))
		if wait <= 0 {
			return false, JoinerResult{}, nil
		}
		if j.status.Stage != StageWaitingStartDate {
			j.setStage(ctx, StageWaitingStartDate)
		}
		moves, seen, asked := j.moves, len(j.inbox), j.moveAsked
		woke, err := workflow.AwaitWithTimeout(ctx, wait, func() bool {
			return j.rescind != nil || j.moves != moves || j.moveAsked != asked ||
				(early && (len(j.inbox) != seen || (j.decided != nil && !j.decided.Approved))) || j.continueDue(ctx)
		})
		cancelled := false
		if err != nil {
			if !j.local || workflow.Now(ctx).Before(at) {
				return true, JoinerResult{}, err
			}
			// The date came with the cancel: go on as if the timer had
			// fired (a rescind or a rejection in hand is acted on below),
			// to the approval, where a decision in hand is acted on before
			// the cancel (awaitDecision, localsteps.go).
			cancelled, woke = true, false
			j.settleSignals(ctx)
		}
		if j.moveAsked != asked {
			j.checkHireDate(ctx)
		}
		if j.rescind != nil {
			res, err := j.rollback(ctx, StageRescinded, OutcomeRescinded, "rescinded before the provisioning date")
			return true, res, err
		}
		// Decisions may come early: a rejection ends the joiner now, an
		// approval is kept for when the date comes.
		if early {
			dctx, cancel := j.uncut(ctx) // applied even with a cancel (above)
			j.drainInbox(dctx)
			cancel()
		}
		if j.decided != nil && !j.decided.Approved {
			res, err := j.rollback(ctx, StageRejected, OutcomeRejected,
				fmt.Sprintf("rejected by %s (%s) before the provisioning date", j.decided.Approver, j.decided.Via))
			return true, res, err
		}
		if !woke || cancelled {
			return false, JoinerResult{}, nil // the provisioning date came
		}
		if j.continueDue(ctx) && j.quietForContinue(ctx, func() bool {
			return j.rescind == nil && len(j.inbox) == 0 && j.moveAsked == asked && (j.decided == nil || j.decided.Approved)
		}) {
			return true, JoinerResult{}, j.continueAsNew(ctx)
		}
	}
}

// approve waits for an allowed approver's decision, reminding and then
// escalating to the manager's manager; silence until the timeout rejects.
func (j *joiner) approve(ctx workflow.Context) (bool, JoinerResult, error) {
	ap := j.plan.Approval
	if j.signed {
		gone := j.refreshApprovers(ctx)
		if j.hardened {
			// Early approvals were checked when they came; whoever gave
			// one must still be here now.
			j.dropGoneApprovals(ctx, gone)
		}
	}
	j.setStage(ctx, StageAwaitingApproval)
	if j.signed {
		for _, to := range j.status.Approvers {
			j.notify(ctx, to, "approval-request",
				fmt.Sprintf("please decide on joiner %s (%s %s, %s) in the approval inbox: %s",
					j.in.HRISID, j.worker.FirstName, j.worker.LastName, j.worker.JobTitle, j.inboxLink()))
		}
	} else {
		j.notify(ctx, ap.Approver, "approval-request",
			fmt.Sprintf("please approve joiner %s (%s %s, %s): signal %q on workflow %s",
				j.in.HRISID, j.worker.FirstName, j.worker.LastName, j.worker.JobTitle, SignalApprove, JoinerWorkflowID(j.in.HRISID)))
	}
	// Joiners started before the second approver was notified must replay
	// without this activity, hence the version marker.
	if v := j.version(ctx, "notify-second-approver"); v >= 1 && ap.SecondApprover != "" {
		j.notify(ctx, ap.SecondApprover, "approval-request",
			fmt.Sprintf("joiner %s needs your approval as second approver (route %q) besides %s's", j.in.HRISID, ap.Rule, ap.Approver))
	}
	start := workflow.Now(ctx)
	var pending []ApprovalDeadline
	if ap.ReminderAfter > 0 {
		pending = append(pending, ApprovalDeadline{start.Add(ap.ReminderAfter), "reminder"})
	}
	if ap.EscalateAfter > 0 && ap.EscalateTo != "" && !j.escalated {
		pending = append(pending, ApprovalDeadline{start.Add(ap.EscalateAfter), "escalation"})
	}
	pending = append(pending, ApprovalDeadline{start.Add(j.approvalTimeout()), "timeout"})
	return j.awaitDecision(ctx, start, pending)
}

// drainInbox applies queued approval signals in arrival order.
func (j *joiner) drainInbox(ctx workflow.Context) {
	if j.signed {
		// Every message is applied (a late one is refused and counted, not
		// left unhandled), and applied ones are dropped so a flood of
		// refused signals cannot grow the joiner's memory.
		for len(j.inbox) > 0 {
			q := j.inbox[0]
			j.inbox = j.inbox[1:]
			_, _ = j.applySigned(ctx, q)
		}
		return
	}
	for ; j.seen < len(j.inbox) && j.decided == nil; j.seen++ {
		s := j.inbox[j.seen].s
		if _, err := j.apply(ctx, s, "signal"); err != nil {
			j.event(ctx, fmt.Sprintf("refused a decision from %q: %v", s.Approver, err))
		}
	}
}

// apply records one decision. The approver (or a delegate, or after
// escalation the manager's manager) decides; where the policy names a second
// approver, both must approve and either may reject. Anyone else is refused,
// and the refusal is recorded too.
func (j *joiner) apply(ctx workflow.Context, s ApprovalSignal, via string) (string, error) {
	d := Decision{Approver: s.Approver, Approved: s.Approve, Comment: s.Comment, At: workflow.Now(ctx), Via: via}
	role, reason := j.role(s.Approver)
	if reason != "" {
		d.Refused = reason
		j.status.Approvals = append(j.status.Approvals, d)
		return "", errors.New(reason)
	}
	return j.record(ctx, d, role), nil
}

// record applies a decision that counts, in the capacity role: a rejection
// decides; an approval decides once every required approver has approved.
func (j *joiner) record(ctx workflow.Context, d Decision, role string) string {
	j.status.Approvals = append(j.status.Approvals, d)
	if !d.Approved {
		j.decided = &d
		return "rejected"
	}
	if role == "second" {
		j.second = &d
	} else {
		j.first = &d
	}
	second := j.plan.Approval.SecondApprover
	if j.first != nil && (second == "" || j.second != nil) {
		j.decided = &d
		return "approved"
	}
	waiting := second
	if j.first == nil {
		waiting = strings.Join(j.status.Approvers, " or ")
	}
	j.event(ctx, fmt.Sprintf("approval by %s recorded; waiting for %s", d.Approver, waiting))
	return "recorded; waiting for " + waiting
}

// role says in which capacity someone may decide, or why they may not.
func (j *joiner) role(approver string) (string, string) {
	if approver == "" {
		return "", "no approver identity given"
	}
	second := j.plan.Approval.SecondApprover
	if j.signed && j.in.Request != nil && second == "" && j.in.RequestedBy != "" && strings.EqualFold(approver, j.in.RequestedBy) {
		return "", fmt.Sprintf("%s requested this joiner and cannot be its only approver", approver)
	}
	if second != "" && strings.EqualFold(approver, second) {
		if j.second != nil {
			return "", "already approved as second approver"
		}
		return "second", ""
	}
	for _, ok := range j.status.Approvers {
		if strings.EqualFold(ok, approver) {
			if j.first != nil {
				return "", fmt.Sprintf("the approver's decision was already given by %s", j.first.Approver)
			}
			return "first", ""
		}
	}
	allowed := strings.Join(j.status.Approvers, ", ")
	if second != "" {
		allowed += " (and " + second + " as second approver)"
	}
	if allowed == "" {
		return "", "no approver is known yet"
	}
	return "", fmt.Sprintf("not an approver for this joiner (policy route %q allows %s)", j.plan.Approval.Rule, allowed)
}

func (j *joiner) validateDecide(ctx workflow.Context, s ApprovalSignal) error {
	if j.signed {
		return j.validateSigned(ctx, s)
	}
	if strings.TrimSpace(s.Approver) == "" {
		return errors.New("approver is required")
	}
	if j.decided != nil {
		return fmt.Errorf("already decided by %s", j.decided.Approver)
	}
	switch j.status.Stage {
	case StageValidating, StageWaitingStartDate, StageAwaitingApproval:
		return nil
	}
	return fmt.Errorf("joiner is %s: no decision is pending", j.status.Stage)
}

// decideUpdate is the synchronous approval: the caller learns at once
// whether the decision counted. A refused sender is recorded in history.
func (j *joiner) decideUpdate(ctx workflow.Context, s ApprovalSignal) (string, error) {
	// On the local path a decision is applied even when a cancel came with
	// it (localsteps.go: a re-run of a lost task sees the cancel the lost
	// run, which provisioned on this decision, did not).
	ctx, cancel := j.uncut(ctx)
	defer cancel()
	if err := workflow.Await(ctx, func() bool { return j.planned || j.decided != nil }); err != nil {
		return "", err
	}
	if j.decided != nil {
		return "", fmt.Errorf("already decided by %s", j.decided.Approver)
	}
	if j.signed {
		out, err := j.applySigned(ctx, queued{s: s, via: "update", updateID: workflow.GetCurrentUpdateInfo(ctx).ID})
		if err != nil {
			return "", temporal.NewApplicationError("refused: "+err.Error(), "DecisionRefused")
		}
		if j.local {
			// Counted (alone, or as one of two approvals): the steps wait
			// until its acceptance is in history (localsteps.go).
			j.updateTask = workflow.GetInfo(ctx).GetCurrentHistoryLength()
		}
		return out, nil
	}
	out, err := j.apply(ctx, s, "update")
	if err != nil {
		return "", temporal.NewApplicationError("refused: "+err.Error(), "NotAnApprover")
	}
	return out, nil
}

func (j *joiner) allowedApprovers() []string {
	var out []string
	ap := j.plan.Approval
	if ap.Approver != "" {
		out = append(out, ap.Approver)
	}
	for _, d := range ap.Delegates {
		out = appendUnique(out, d)
	}
	return out
}

// provision runs the side effects. It returns errRescinded if the offer is
// withdrawn between steps.
func (j *joiner) provision(ctx workflow.Context, snapshot map[string]string) error {
	// check acts on a rescind between two steps. On the local path it
	// does not act on one that came in the current workflow task: every
	// step runs, registering its compensation, and that rescind is acted on
	// after the last one (done), so that a re-run of a lost task — which
	// sees the rescind from its start — undoes everything the lost run did
	// (localsteps.go). A rescind from an earlier task (while a step ran as
	// a regular activity) the lost run saw too: it stops the steps.
	check := func() error {
		if j.rescind == nil || (j.local && j.rescindTask >= workflow.GetInfo(ctx).GetCurrentHistoryLength()) {
			return nil
		}
		return errRescinded
	}
	done := func() error {
		if j.rescind != nil {
			return errRescinded
		}
		return nil
	}
	plan := j.plan
	nonHuman := !policy.IsHumanKind(plan.Kind)
	if j.rehire != nil {
		return j.provisionRehire(ctx, snapshot, check, done)
	}

	if j.local {
		// A rescind from an earlier task (with the decision) stops before
		// anything is made (check, localsteps.go).
		if err := check(); err != nil {
			return err
		}
	}
	// Claim the username and create the entry (one LDAP add per candidate).
	j.setStage(ctx, StageClaimingUsername)
	j.register(ctx, "delete directory entry", "ldap-entry", "employeeNumber="+j.in.HRISID, func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(ctx, a.DeleteAccount, activities.AccountRef{HRISID: j.in.HRISID, DN: j.result.DN, NonHuman: nonHuman}).Get(ctx, nil)
	})
	var claim activities.ClaimResult
	if err := j.step(ctx, "ClaimAccount", a.ClaimAccount, optsDirectory, activities.ClaimInput{
		HRISID: j.in.HRISID, Candidates: plan.Candidates, NonHuman: nonHuman, Worker: j.worker, Attributes: plan.Attributes,
		Request: j.in.Request, Approvals: j.proofs,
	}, &claim); err != nil {
		var ae *temporal.ApplicationError
		if errors.As(err, &ae) && (ae.Type() == activities.ErrTypeNeedsOperator || ae.Type() == activities.ErrTypeAlreadyProvisioned) {
			// The person already has an entry, and it is not this joiner's:
			// nothing was created, so nothing is listed or undone. Never
			// adopt it silently; say what was found.
			j.comps = j.comps[:len(j.comps)-1]
			j.status.Resources = j.status.Resources[:len(j.status.Resources)-1]
			ex := &existingAccountError{typ: ae.Type()}
			_ = ae.Details(&ex.found)
			return ex
		}
		return fmt.Errorf("claim a username: %w", err)
	}
	j.result.Username, j.result.DN = claim.Username, claim.DN
	j.status.Username, j.status.DN = claim.Username, claim.DN
	j.result.UsernameRule = plan.RuleFor(claim.Username)
	j.status.Resources[len(j.status.Resources)-1].ID = claim.DN
	j.event(ctx, fmt.Sprintf("username %s claimed (%s)", claim.Username, j.result.UsernameRule))
	if err := check(); err != nil {
		return err
	}
	// Every undo the plan may need, before the steps that need them
	// (localsteps.go, registerAhead).
	j.registerAhead(ctx, plan, snapshot, false)

	// Birthright groups.
	if err := j.grantGroups(ctx, plan, claim.DN, check); err != nil {
		return err
	}

	j.setStage(ctx, StageIssuingSecret)
	if plan.Workload != nil {
		// A workload gets an AppRole whose token policy is generated from its
		// grants; the SecretID goes to the sponsor wrapped.
		var wl activities.WorkloadResult
		res := j.register(ctx, "delete AppRole and policy", "vault-approle", "joinery-"+j.in.HRISID, func(ctx workflow.Context) error {
			return workflow.ExecuteActivity(ctx, a.RevokeWorkload, activities.RevokeWorkloadInput{Key: j.in.HRISID, Accessor: wl.WrapAccessor}).Get(ctx, nil)
		})
		if err := j.step(ctx, "IssueWorkloadCredential", a.IssueWorkloadCredential, optsCredential, activities.WorkloadInput{
			Key: j.in.HRISID, Kind: plan.Kind, Username: claim.Username, Recipient: plan.Owner, Workload: *plan.Workload, Request: j.in.Request,
			Comment: fmt.Sprintf("Joinery workload %s (%s, %s), owner %s, until %s; policy %s", claim.Username, plan.Kind,
				j.worker.Environment, plan.Owner, plan.EndDate, plan.PolicyVersion),
		}, &wl); err != nil {
			return fmt.Errorf("issue the workload's AppRole: %w", err)
		}
		ref := wl
		j.result.Workload, j.status.Workload = &ref, &ref
		j.status.Resources[res].ID = wl.RoleName + " (policy " + wl.PolicyName + ")"
	} else if policy.IsHumanKind(plan.Kind) {
		// Initial credential: generated, set, stored and wrapped inside one
		// activity; history only ever sees the path and the accessor.
		var cred activities.CredentialResult
		res := j.register(ctx, "destroy initial credential", "vault-secret", "initial-credential", func(ctx workflow.Context) error {
			return workflow.ExecuteActivity(ctx, a.RevokeCredential, activities.RevokeInput{
				HRISID: j.in.HRISID, Path: cred.Path, Accessor: cred.WrapAccessor}).Get(ctx, nil)
		})
		if err := j.step(ctx, "IssueCredential", a.IssueCredential, optsCredential, activities.CredentialInput{
			HRISID: j.in.HRISID, Username: claim.Username, DN: claim.DN, Recipient: plan.Approval.Approver, WrapTTL: plan.CredentialTTL,
		}, &cred); err != nil {
			return fmt.Errorf("issue the initial credential: %w", err)
		}
		j.status.Resources[res].ID = fmt.Sprintf("%s (v%d)", cred.Path, cred.Version)
		j.result.Credential = &CredentialRef{Path: cred.Path, Version: cred.Version, WrapAccessor: cred.WrapAccessor,
			ExpiresAt: cred.ExpiresAt, DeliveredTo: cred.DeliveredTo}
	}
	if err := check(); err != nil {
		return err
	}

	// Write back only the fields Joinery owns, never over an HR edit.
	want := plan.WriteBackFor(claim.Username)
	if len(want) > 0 && j.hasHRRecord() {
		j.setStage(ctx, StageWritingBack)
		j.register(ctx, "restore HR fields", "hris-field", strings.Join(sortedKeys(want), ","), func(ctx workflow.Context) error {
			return workflow.ExecuteActivity(ctx, a.UndoWriteBack, activities.WriteBackInput{
				HRISID: j.in.HRISID, Want: pick(snapshot, want), Expected: want}).Get(ctx, nil)
		})
		var wb activities.WriteBackOutput
		if err := j.step(ctx, "WriteBack", a.WriteBack, optsHRISWrite, activities.WriteBackInput{
			HRISID: j.in.HRISID, Want: want, Expected: pick(snapshot, want),
		}, &wb); err != nil {
			return fmt.Errorf("write back to the HRIS: %w", err)
		}
		st := &WriteBackState{Written: wb.Written, AlreadySet: wb.AlreadySet}
		for _, c := range wb.Conflicts {
			st.Conflicts = append(st.Conflicts, FieldConflict{Field: c.Field, Expected: c.Expected, Current: c.Current, Wanted: c.Wanted})
			j.event(ctx, fmt.Sprintf("write-back conflict on %s: HR changed it since the joiner started; left as is", c.Field))
		}
		j.result.WriteBack = st
	}
	return done()
}

// register records a resource and its compensation before the step runs.
func (j *joiner) register(ctx workflow.Context, name, kind, id string, run func(ctx workflow.Context) error) int {
	if r, ok := j.claimAhead(ctx, name, id); ok {
		return r // registered ahead on the local path (localsteps.go)
	}
	j.status.Resources = append(j.status.Resources, Resource{Kind: kind, ID: id, CreatedAt: workflow.Now(ctx)})
	j.comps = append(j.comps, compensation{name: name, resource: len(j.status.Resources) - 1, run: run})
	return len(j.status.Resources) - 1
}

// rollback runs the compensations in reverse on a disconnected context (so a
// cancelled joiner still cleans up), each retried; one that keeps failing
// becomes the final state rather than being swallowed.
func (j *joiner) rollback(ctx workflow.Context, stage Stage, outcome, why string) (JoinerResult, error) {
	var errs []error
	if len(j.comps) > 0 {
		j.setStage(ctx, StageRollingBack)
		j.cont.unwinding(unwindRollback, stage, outcome, why)
		dctx, cancel := workflow.NewDisconnectedContext(ctx)
		defer cancel()
		dctx = withOptions(dctx, optsCompensation)
		for i := len(j.comps) - 1; i >= 0; i-- {
			c := j.comps[i]
			err := j.persist(ctx, dctx, c.name, func() error { return c.run(dctx) })
			if isContinueAsNew(err) {
				return j.result, err // the next run undoes what is left (continued.go)
			}
			now := workflow.Now(ctx)
			r := &j.status.Resources[c.resource]
			if err != nil {
				r.UndoError = err.Error()
				errs = append(errs, fmt.Errorf("%s: %w", c.name, err))
				continue
			}
			r.UndoneAt = &now
			j.result.Undone = append(j.result.Undone, c.name)
		}
		j.comps = nil
	}
	j.result.Outcome = outcome
	j.result.Error = why
	if len(errs) > 0 {
		j.setStage(ctx, StageCompensationFailed)
		j.result.Outcome = OutcomeCompensationFailed
		j.result.Stage = StageCompensationFailed
		j.finish()
		return j.result, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("joiner %s: %s, and rollback left something behind: %v", j.in.HRISID, why, errors.Join(errs...)),
			ErrTypeCompensationFailed, nil, j.result)
	}
	j.setStage(ctx, stage)
	j.result.Stage = stage
	j.finish()
	if outcome == OutcomeFailed {
		return j.result, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("joiner %s failed: %s; rolled back: %s", j.in.HRISID, why, strings.Join(j.result.Undone, ", ")),
			ErrTypeJoinerFailed, nil, j.result)
	}
	return j.result, nil
}

// fail ends a joiner that failed before any side effect.
func (j *joiner) fail(ctx workflow.Context, what string, err error) (JoinerResult, error) {
	return j.rollback(ctx, StageFailed, OutcomeFailed, fmt.Sprintf("could not %s: %v", what, rootMessage(err)))
}

func (j *joiner) finish() {
	j.result.Approvals = j.status.Approvals
	j.result.Resources = j.status.Resources
}

func (j *joiner) setStage(ctx workflow.Context, s Stage) {
	j.status.Stage = s
	if j.local {
		j.setStageLocal(ctx, s) // localsteps.go: one upsert, or none yet
	} else {
		if err := workflow.UpsertTypedSearchAttributes(ctx, SAStage.ValueSet(string(s))); err != nil {
			workflow.GetLogger(ctx).Warn("search attribute upsert failed", "error", err)
		}
		j.publishDeciders(ctx)
	}
	workflow.SetCurrentDetails(ctx, j.details())
}

// details is the Web UI's "current details": which joiner, what it waits
// for; no secrets and minimal personal data (no names, only the HR ID).
func (j *joiner) details() string {
	var b strings.Builder
	fmt.Fprintf(&b, "**Joiner %s** — stage **%s**\n\n", j.in.HRISID, j.status.Stage)
	if j.planned {
		fmt.Fprintf(&b, "- kind: %s\n- policy: %s\n- approver: %s\n", j.plan.Kind, j.plan.PolicyVersion, strings.Join(j.status.Approvers, ", "))
	}
	switch {
	case j.status.Stage == StageAwaitingApproval && j.signed:
		fmt.Fprintf(&b, "- waiting for: a decision signed in the approval inbox, %s (a signal with only a name is refused)\n", j.inboxLink())
	case j.status.Stage == StageAwaitingApproval:
		fmt.Fprintf(&b, "- waiting for: signal `%s` with {\"approver\": \"%s\"}\n", SignalApprove, j.plan.Approval.Approver)
	}
	if j.breakGlass {
		b.WriteString("- **BREAK-GLASS**: decided by an operator without the approval inbox (see approvals)\n")
	}
	if j.status.Refused > 0 {
		fmt.Fprintf(&b, "- refused decisions: %d (the last %d are in the status query)\n", j.status.Refused, maxRefusedKept)
	}
	if j.status.Username != "" {
		fmt.Fprintf(&b, "- username: %s\n", j.status.Username)
	}
	return b.String()
}

// inboxLink is where the people who may decide find this joiner.
func (j *joiner) inboxLink() string {
	base := strings.TrimRight(j.trust.InboxURL, "/")
	if base == "" {
		return "the approval inbox"
	}
	return base + "/joiners/" + JoinerWorkflowID(j.in.HRISID)
}

func (j *joiner) event(ctx workflow.Context, what string) {
	j.status.Events = append(j.status.Events, Event{At: workflow.Now(ctx), What: what})
}

// notify tells a person something; a failed notification is recorded, not
// fatal, because the decision path (signals, timeouts) does not depend on it.
func (j *joiner) notify(ctx workflow.Context, to, kind, msg string) {
	if to == "" {
		return
	}
	err := j.step(ctx, "Notify", a.Notify, optsNotify,
		activities.Notification{To: to, HRISID: j.in.HRISID, Kind: kind, Message: msg}, nil)
	if err != nil {
		j.event(ctx, fmt.Sprintf("could not notify %s (%s): %v", to, kind, rootMessage(err)))
	}
}

func rootMessage(err error) string {
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) {
		return ae.Error()
	}
	return err.Error()
}

func orUnknown(s string) string {
	if s == "" {
		return "(unknown)"
	}
	return s
}

func appendUnique(list []string, v string) []string {
	for _, x := range list {
		if strings.EqualFold(x, v) {
			return list
		}
	}
	return append(list, v)
}

// existingAccountError stops a joiner whose person already has a directory
// entry that this joiner did not create.
type existingAccountError struct {
	typ   string
	found activities.ExistingAccount
}

func (e *existingAccountError) Error() string {
	if e.typ == activities.ErrTypeAlreadyProvisioned {
		return fmt.Sprintf("already provisioned: %s (employee %s) was created by %s; nothing was changed",
			orUnknown(e.found.DN), orUnknown(e.found.EmployeeID), orUnknown(e.found.Joiner))
	}
	return fmt.Sprintf("needs an operator: %s (employee %s) exists and was not created by Joinery; nothing was changed (a rehire or an adoption is an operator's decision)",
		orUnknown(e.found.DN), orUnknown(e.found.EmployeeID))
}

func (e *existingAccountError) stage() Stage {
	if e.typ == activities.ErrTypeAlreadyProvisioned {
		return StageAlreadyProvisioned
	}
	return StageNeedsOperator
}

func (e *existingAccountError) outcome() string {
	if e.typ == activities.ErrTypeAlreadyProvisioned {
		return OutcomeAlreadyProvisioned
	}
	return OutcomeNeedsOperator
}
