package activities

// Orders: every side-effecting activity re-checks what it is asked to do
// against the joiner it runs for, because the task queue is not a trust
// boundary. Any Temporal client can run a workflow of its own (on its own
// worker) that schedules Joinery's activities, by name, on Joinery's task
// queue with inputs of its choosing. What such a workflow cannot choose is
// what the server tells the activity about it (activity.GetInfo: the
// workflow's type and ID), nor the HR record, the sponsor and the policy the
// activity reads itself. So an order is carried out only when:
//
//   - the caller is a Joiner workflow whose ID is joiner-<key of the order>,
//     so a workflow can only ever act for the one joiner its ID names (the
//     server keeps workflow IDs unique among running workflows);
//   - the order is what an authoritative re-plan says for that joiner: the HR
//     record (or, for a non-human joiner, its request with the sponsor
//     re-resolved against the HRIS) planned with the worker's policy;
//   - compensations act only on what carries this joiner's marker (directory
//     entries), its own Vault path or its own role name.
//
// A refusal is a non-retryable OrderRefused error and a security event in the
// log; it never carries a secret (orders carry none: activities generate
// secrets themselves).
//
// Policy changes mid-joiner. A joiner records its plan when it starts and may
// provision weeks later; the policy or the HR record may change in between.
// An order is accepted when it is within the current re-plan, or within the
// plan this worker itself made for the same workflow run when the joiner
// planned (PlanJoiner re-plans from authoritative sources for a verified
// caller and keeps that plan in memory, bounded). A version carried in the
// order would be the caller's say-so, and this worker can only plan under
// the policy it holds, so the version in the input cannot be the proof.
// Consequence: across a worker restart that also changed the policy, a
// running joiner is held to the current policy — a grant that policy no
// longer gives is refused and the joiner rolls back. That fails closed on
// access, which is the side to fail on; additions to the policy never fail a
// running joiner (its orders are a subset of the new plan).

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/joinery/joinery/connectors"
	"github.com/joinery/joinery/internal/decision"
	"github.com/joinery/joinery/internal/policy"
)

// ErrTypeOrderRefused is the application error type of an order an activity
// refused: wrong caller, or not what the joiner's authoritative plan says.
const ErrTypeOrderRefused = "OrderRefused"

// JoinerWorkflowType is the registered name of the joiner workflow, the only
// workflow type whose orders the activities carry out.
const JoinerWorkflowType = "Joiner"

// JoinerWorkflowID is the workflow ID of the joiner for key (an HRIS ID or a
// non-human key). It duplicates workflows.JoinerWorkflowID on purpose: this
// package cannot import workflows, and the rule is one string concatenation;
// identity_test.go pins the two together.
func JoinerWorkflowID(key string) string { return "joiner-" + key }

// nonHumanKey duplicates workflows.NonHumanKey (same reason as
// JoinerWorkflowID): it ties a request to the workflow ID it may act for.
func nonHumanKey(name, environment string) string { return "nhi-" + name + "-" + environment }

// accessStatusField duplicates workflows.AccessStatusField: the end of
// time-bound access writes one of endStates there.
const accessStatusField = "customAccessStatus"

// endStates are the values the end of time-bound access writes to
// accessStatusField (workflows.Outcome*).
var endStates = []string{"expired", "revoked", "rescinded", "failed"}

// Cache sizes: the short cache spares a joiner re-reading HR for each of its
// ~8 orders; the run book keeps, per workflow run, what its planning saw.
const (
	replanTTL     = 2 * time.Minute
	replanMax     = 1024
	runBookTTL    = 120 * 24 * time.Hour
	runBookMax    = 4096
	maxCandidates = 64
	// callerTTL bounds how long admitRun trusts its verdict on a run.
	callerTTL = 30 * time.Second
)

// caller is the workflow an activity runs for, as the server reports it.
type caller struct {
	// inActivity is false when trusted code calls the method directly (a
	// test, an operator tool): there is no task queue to defend then.
	inActivity bool
	id, run    string
	typ        string
}

// order is one request an activity is about to carry out.
type order struct {
	c    caller
	step string
	key  string
	// what says what was asked, for the security log (no secrets).
	what string
	// undo marks a compensation that needs the plan (the write-back undo):
	// see replan.
	undo bool
}

func callerOf(ctx context.Context) caller {
	if !activity.IsActivity(ctx) {
		return caller{}
	}
	info := activity.GetInfo(ctx)
	c := caller{inActivity: true, id: info.WorkflowExecution.ID, run: info.WorkflowExecution.RunID}
	if info.WorkflowType != nil {
		c.typ = info.WorkflowType.Name
	}
	return c
}

// admit checks the caller of an order: a Joiner workflow with the ID of the
// order's key. Outside an activity it admits (trusted code).
func (a *Activities) admit(ctx context.Context, step, key, what string) (order, error) {
	o := order{c: callerOf(ctx), step: step, key: key, what: what}
	if !o.c.inActivity {
		return o, nil
	}
	if o.c.typ != JoinerWorkflowType {
		return o, a.refuse(o, fmt.Sprintf("scheduled by a workflow of type %q, not %q", o.c.typ, JoinerWorkflowType))
	}
	// joiner-<key> or a rehire generation joiner-<key>~g<N> (rehire.go).
	if !joinerIDFor(o.c.id, key) {
		return o, a.refuse(o, fmt.Sprintf("workflow %q may only act for its own joiner, not for %q", o.c.id, key))
	}
	// A rehire generation re-enables its leaver's entry (ClaimRehire); it
	// never creates or deletes one.
	if isGenerationID(o.c.id) && (step == StepClaim || step == "delete-account") {
		return o, a.refuse(o, fmt.Sprintf("rehire generation %q may not %s an entry: it takes over its leaver's", o.c.id, step))
	}
	if err := a.admitRun(ctx, o); err != nil {
		return o, err
	}
	return o, nil
}

// runVerdict asks Temporal about run (of workflow id) and says why it is not
// a running workflow of type typ on queue ("" when it is). An error means
// Temporal could not be asked (retry).
func runVerdict(ctx context.Context, runs ContinuedRuns, id, run, typ, queue string) (string, error) {
	resp, err := runs.DescribeWorkflowExecution(ctx, id, run)
	var nf *serviceerror.NotFound
	switch {
	case errors.As(err, &nf):
		return "Temporal has no such run", nil
	case err != nil:
		return "", fmt.Errorf("describe the calling run %s of %s: %w", run, id, err)
	}
	info := resp.GetWorkflowExecutionInfo()
	switch {
	case info.GetType().GetName() != typ:
		return fmt.Sprintf("Temporal says the calling run is of type %q", info.GetType().GetName()), nil
	case info.GetTaskQueue() != queue:
		return fmt.Sprintf("the calling run runs on task queue %q, not this worker's %q: it is not Joinery's", info.GetTaskQueue(), queue), nil
	case info.GetStatus() != enums.WORKFLOW_EXECUTION_STATUS_RUNNING && info.GetStatus() != enums.WORKFLOW_EXECUTION_STATUS_PAUSED:
		return fmt.Sprintf("the calling run is %s, not running", info.GetStatus()), nil
	}
	return "", nil
}

// admitRead checks the caller of a read (the HR record, the plan, the
// snapshot, the non-human request): a Joiner run on Joinery's queue, as
// admitRun confirms. The reads change nothing on the servers, but a rogue on
// a queue of its own could otherwise read HR's personal data through the
// worker, load the HRIS, and fill the run book with plans nobody verified
// (evicting real joiners' entries). Outside an activity it admits.
func (a *Activities) admitRead(ctx context.Context, step, what string) error {
	o := order{c: callerOf(ctx), step: step, what: what}
	if !o.c.inActivity {
		return nil
	}
	if o.c.typ != JoinerWorkflowType {
		return a.refuse(o, fmt.Sprintf("scheduled by a workflow of type %q, not %q", o.c.typ, JoinerWorkflowType))
	}
	return a.admitRun(ctx, o)
}

// admitRun confirms with Temporal that the calling run is Joinery's: a
// running workflow of type Joiner on the task queue this activity was
// dispatched on (the queue Joinery's worker polls).
//
// Adversary: any client of the namespace. The workflow type and ID an
// activity sees are whatever the scheduling workflow was started with, so a
// rogue worker on a queue of its own can register a workflow named "Joiner",
// start it as joiner-<key> (once the real joiner has closed, the ID may be
// reused) and schedule DeleteAccount, DisableAccount or a rehire's undo on
// Joinery's queue with the DN of a live account. What it cannot choose is
// what the server says about its run: the task queue it runs on. A Joiner
// run on Joinery's queue runs Joinery's own code — provided only the worker
// may poll that queue, which Temporal does not enforce by default: a
// deployment needs an authorizer that restricts polling it to the worker's
// identity (README "Temporal client authentication"); without one, an
// identity that polls the queue can act as a joiner and no activity can
// tell.
// Verdicts are cached briefly per run: type and queue never change, and a
// run that just closed has no more orders in flight worth acting on.
func (a *Activities) admitRun(ctx context.Context, o order) error {
	if !o.c.inActivity {
		return nil // trusted code calling directly
	}
	if activity.GetInfo(ctx).IsLocalActivity {
		// A local activity is never dispatched through a task queue: only
		// workflow code running in this worker's own workflow task can run
		// it, so its caller is a run of Joinery's code on this worker's
		// queue by construction (workflows/localsteps.go). What the rogue
		// above could do is schedule a regular activity task, which this
		// check still asks Temporal about.
		return nil
	}
	if a.Runs == nil {
		// Fail closed: a worker wired without a Temporal client cannot
		// tell Joinery's runs from anyone's, so it takes no orders. The
		// worker always sets Runs (internal/run), and so must every
		// harness that runs these activities on a Temporal worker.
		return a.refuse(o, "this worker has no Temporal client to confirm its caller with")
	}
	queue := activity.GetInfo(ctx).TaskQueue
	b := a.book()
	b.mu.Lock()
	why, cached := b.callers.get(o.c.run, time.Now())
	b.mu.Unlock()
	if !cached {
		var err error
		if why, err = runVerdict(ctx, a.Runs, o.c.id, o.c.run, JoinerWorkflowType, queue); err != nil {
			return err
		}
		b.mu.Lock()
		b.callers.put(o.c.run, why, time.Now())
		b.mu.Unlock()
	}
	if why != "" {
		return a.refuse(o, why)
	}
	return nil
}

// refuse logs the refusal as a security event and returns its error.
func (a *Activities) refuse(o order, why string) error {
	a.log().Warn("order refused", "event", "security", "activity", o.step, "workflowId", o.c.id,
		"workflowType", o.c.typ, "runId", o.c.run, "key", o.key, "asked", o.what, "reason", why)
	return temporal.NewNonRetryableApplicationError(
		fmt.Sprintf("order refused: %s: %s (asked: %s)", o.step, why, o.what), ErrTypeOrderRefused, nil)
}

// planned is an authoritative worker and its plan.
type planned struct {
	worker policy.Worker
	plan   policy.Plan
}

// runRecord is what a verified joiner run's planning saw: its request (non-
// human joiners, from ResolveNonHuman) and its plan (from PlanJoiner).
type runRecord struct {
	request *NonHumanRequest
	kind    string
	plan    *planned
}

// ttlMap is a small bounded map with expiry: when full, expired entries go
// first, then the oldest.
type ttlMap[V any] struct {
	ttl time.Duration
	max int
	m   map[string]ttlItem[V]
}

type ttlItem[V any] struct {
	v  V
	at time.Time
}

func (t *ttlMap[V]) get(k string, now time.Time) (V, bool) {
	it, ok := t.m[k]
	if !ok || now.Sub(it.at) > t.ttl {
		var zero V
		return zero, false
	}
	return it.v, true
}

func (t *ttlMap[V]) put(k string, v V, now time.Time) {
	if t.m == nil {
		t.m = map[string]ttlItem[V]{}
	}
	if _, ok := t.m[k]; !ok && len(t.m) >= t.max {
		oldest, oldestAt := "", now
		for key, it := range t.m {
			if now.Sub(it.at) > t.ttl {
				delete(t.m, key)
				continue
			}
			if it.at.Before(oldestAt) || oldest == "" {
				oldest, oldestAt = key, it.at
			}
		}
		if len(t.m) >= t.max {
			delete(t.m, oldest)
		}
	}
	t.m[k] = ttlItem[V]{v: v, at: now}
}

// orderBook holds the re-plan cache and the run book of one Activities.
type orderBook struct {
	mu      sync.Mutex
	replans ttlMap[planned]
	runs    ttlMap[runRecord]
	// callers are admitRun's verdicts per run ("" admitted).
	callers ttlMap[string]
}

var booksMu sync.Mutex

func (a *Activities) book() *orderBook {
	booksMu.Lock()
	defer booksMu.Unlock()
	if a.orders == nil {
		a.orders = &orderBook{replans: ttlMap[planned]{ttl: replanTTL, max: replanMax},
			runs:    ttlMap[runRecord]{ttl: runBookTTL, max: runBookMax},
			callers: ttlMap[string]{ttl: callerTTL, max: runBookMax}}
	}
	return a.orders
}

func (b *orderBook) record(run string, f func(r *runRecord)) {
	if run == "" {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	r, _ := b.runs.get(run, now)
	f(&r)
	b.runs.put(run, r, now)
}

func (b *orderBook) recorded(run string) runRecord {
	b.mu.Lock()
	defer b.mu.Unlock()
	r, _ := b.runs.get(run, time.Now())
	return r
}

// refusal is why a re-plan cannot support an order; verify turns it into
// the refusal (or accepts on the run's recorded plan), so that only a final
// refusal is logged as a security event.
type refusal struct{ why string }

func (r *refusal) Error() string { return r.why }

// replan re-plans the order's joiner from authoritative sources: the HR
// record for a person (req nil), the request with its sponsor re-resolved
// for a non-human joiner. Results are cached per run for replanTTL. A
// transient HRIS fault is returned as a retryable error; a record or request
// that no longer plans is a *refusal.
func (a *Activities) replan(ctx context.Context, o order, req *NonHumanRequest, kind string) (planned, error) {
	if req == nil && strings.HasPrefix(o.key, "nhi-") {
		// A non-human key has no HR record; an order without its request
		// may still be this run's (joiners that predate requests in orders).
		r := a.book().recorded(o.c.run)
		req, kind = r.request, r.kind
		if req == nil {
			return planned{}, &refusal{"a non-human joiner's order must carry its request (none recorded for this run)"}
		}
	}
	ck := o.c.run + "|" + o.key
	if o.undo {
		ck += "|undo"
	}
	if req != nil {
		ck += fmt.Sprintf("|%s|%#v", kind, *req)
	}
	b := a.book()
	b.mu.Lock()
	p, ok := b.replans.get(ck, time.Now())
	b.mu.Unlock()
	// Not for a rehire generation: its plan changes with the take-over
	// (rehireCandidates), which happens between its orders.
	if ok && !isGenerationID(o.c.id) {
		return p, nil
	}
	var w policy.Worker
	var err error
	if req != nil {
		if o.key != nonHumanKey(req.Name, req.Environment) {
			return planned{}, &refusal{fmt.Sprintf("the request names %q, not the joiner %q", nonHumanKey(req.Name, req.Environment), o.key)}
		}
		w, err = a.resolveNonHuman(ctx, ResolveInput{Key: o.key, Kind: kind, Request: *req})
	} else {
		w, err = a.fetchWorker(ctx, o.key, "")
		if err == nil && isGenerationID(o.c.id) && w.EndDate != "" && w.EndDate < w.HireDate {
			// A rehire's termination date is its earlier generation's
			// leaving, not this one's end (the rehire workflow plans so).
			w.EndDate = ""
		}
	}
	if err != nil {
		var ae *temporal.ApplicationError
		if errors.As(err, &ae) && !ae.NonRetryable() {
			return planned{}, err
		}
		var ce *connectors.Error
		if errors.As(err, &ce) && ce.Retryable {
			return planned{}, err
		}
		return planned{}, &refusal{"the joiner's record cannot be re-read: " + rootMsg(err)}
	}
	plan, err := a.Policy.Plan(w)
	if err != nil && o.undo && w.EndDate != "" {
		// A hire terminated before the start (termination before the hire
		// date) no longer plans, and that is exactly when its write-back is
		// undone. The write-back values do not depend on the end date, so
		// the undo is checked against the plan the hire had without it.
		w.EndDate = ""
		plan, err = a.Policy.Plan(w)
	}
	if err != nil {
		return planned{}, &refusal{"the joiner no longer plans under policy: " + err.Error()}
	}
	if isGenerationID(o.c.id) {
		if plan, err = a.rehireCandidates(ctx, o.c.id, plan); err != nil {
			return planned{}, err
		}
	}
	p = planned{worker: w, plan: plan}
	b.mu.Lock()
	b.replans.put(ck, p, time.Now())
	b.mu.Unlock()
	return p, nil
}

// verify carries out the order check: admitted caller, then check against
// the current re-plan, falling back to the plan this worker recorded for
// the run (see the file comment). check returns "" when the plan allows the
// order, else why not. Outside an activity it does nothing (trusted code)
// and returns a zero planned with ok false.
func (a *Activities) verify(ctx context.Context, o order, req *NonHumanRequest, kind string, check func(planned) string) (planned, bool, error) {
	if !o.c.inActivity {
		return planned{}, false, nil
	}
	cur, err := a.replan(ctx, o, req, kind)
	var why string
	var rf *refusal
	switch {
	case err == nil:
		if why = check(cur); why == "" {
			return cur, true, nil
		}
		why += " (policy " + cur.plan.PolicyVersion + ")"
	case errors.As(err, &rf):
		why = rf.why
	}
	if rec := a.book().recorded(o.c.run).plan; rec != nil {
		if check(*rec) == "" {
			return *rec, true, nil
		}
	}
	if why == "" {
		// A transient fault re-reading the record: retry the activity.
		return planned{}, false, err
	}
	return planned{}, false, a.refuse(o, why)
}

// recordPlan keeps the authoritative plan of a verified joiner run, made
// when it plans, so its later orders are checked against what it started
// under even when the policy changes meanwhile.
func (a *Activities) recordPlan(ctx context.Context, key, kind string) {
	c := callerOf(ctx)
	if !c.inActivity || c.typ != JoinerWorkflowType || !joinerIDFor(c.id, key) {
		return
	}
	o := order{c: c, step: "plan", key: key, what: "record the joiner's plan"}
	r := a.book().recorded(c.run)
	if r.request == nil && strings.HasPrefix(key, "nhi-") {
		return
	}
	p, err := a.replan(ctx, o, r.request, r.kind)
	if err != nil {
		a.log().Info("the joiner's plan could not be re-made for its order checks", "key", key, "err", err)
		return
	}
	a.book().record(c.run, func(r *runRecord) { r.plan = &p })
}

// recordRequest keeps a verified non-human joiner run's request, so orders
// that do not carry it can still be re-planned.
func (a *Activities) recordRequest(ctx context.Context, in ResolveInput) {
	c := callerOf(ctx)
	if !c.inActivity || c.typ != JoinerWorkflowType || c.id != JoinerWorkflowID(in.Key) ||
		in.Key != nonHumanKey(in.Request.Name, in.Request.Environment) {
		return
	}
	req := in.Request
	a.book().record(c.run, func(r *runRecord) { r.request, r.kind = &req, in.Kind })
}

func rootMsg(err error) string {
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) {
		return ae.Error()
	}
	return err.Error()
}

// Checks of each order against a plan; "" means allowed.

func checkClaim(in ClaimInput) func(planned) string {
	return func(p planned) string {
		if len(in.Candidates) == 0 || len(in.Candidates) > maxCandidates {
			return fmt.Sprintf("%d candidates", len(in.Candidates))
		}
		for _, c := range in.Candidates {
			if !slices.Contains(p.plan.Candidates, c) {
				return fmt.Sprintf("candidate %q is not one the policy names", c)
			}
		}
		for k, v := range in.Attributes {
			if pv, ok := p.plan.Attributes[k]; !ok || pv != v {
				return fmt.Sprintf("attribute %q=%q is not the policy's", k, v)
			}
		}
		if in.NonHuman == policy.IsHumanKind(p.plan.Kind) {
			return fmt.Sprintf("nonHuman=%v does not match kind %s", in.NonHuman, p.plan.Kind)
		}
		if in.ManagerDN != "" {
			return "a manager DN is not part of the plan"
		}
		return ""
	}
}

func checkGroup(group string) func(planned) string {
	return func(p planned) string {
		if !slices.Contains(p.plan.GroupNames(), group) {
			return fmt.Sprintf("group %q is not granted by the plan (%s)", group, strings.Join(p.plan.GroupNames(), ", "))
		}
		return ""
	}
}

func checkCredential(in CredentialInput) func(planned) string {
	return func(p planned) string {
		switch {
		case !policy.IsHumanKind(p.plan.Kind):
			return "kind " + p.plan.Kind + " gets no initial password"
		case in.Recipient != p.plan.Approval.Approver:
			return fmt.Sprintf("recipient %q is not the plan's approver %q", in.Recipient, p.plan.Approval.Approver)
		case p.plan.CredentialTTL > 0 && in.WrapTTL > p.plan.CredentialTTL:
			return fmt.Sprintf("wrap TTL %s exceeds the plan's %s", in.WrapTTL, p.plan.CredentialTTL)
		case !slices.Contains(p.plan.Candidates, in.Username):
			return fmt.Sprintf("username %q is not one of the plan's candidates", in.Username)
		}
		return ""
	}
}

func checkWorkload(in WorkloadInput) func(planned) string {
	return func(p planned) string {
		switch {
		case p.plan.Workload == nil:
			return "the plan issues no workload credential"
		case in.Kind != "" && in.Kind != p.plan.Kind:
			return fmt.Sprintf("kind %q is not the plan's %q", in.Kind, p.plan.Kind)
		case in.Recipient != p.plan.Owner:
			return fmt.Sprintf("recipient %q is not the plan's owner %q", in.Recipient, p.plan.Owner)
		case !reflect.DeepEqual(normWorkload(in.Workload), normWorkload(*p.plan.Workload)):
			return "the workload's grants or options are not the plan's"
		}
		return ""
	}
}

// normWorkload makes nil and empty slices compare equal (JSON round trips
// turn one into the other).
func normWorkload(w policy.WorkloadPlan) policy.WorkloadPlan {
	if len(w.CIDRs) == 0 {
		w.CIDRs = nil
	}
	if len(w.Grants) == 0 {
		w.Grants = nil
	}
	for i := range w.Grants {
		if len(w.Grants[i].Capabilities) == 0 {
			w.Grants[i].Capabilities = nil
		}
	}
	return w
}

// checkWriteBack allows writing want when each field and value is the
// plan's for username.
func checkWriteBack(want map[string]string, username string) func(planned) string {
	return func(p planned) string {
		if len(want) == 0 {
			return "nothing to write"
		}
		owned := p.plan.WriteBackFor(username)
		for f, v := range want {
			if ov, ok := owned[f]; !ok || ov != v {
				return fmt.Sprintf("%s=%q is not the plan's write-back for %s", f, v, username)
			}
		}
		return ""
	}
}

// checkUndo allows restoring fields whose Joinery-written values (expected)
// are the plan's for username, to empty: an eligible hire has none of the
// owned fields set when the joiner starts (activities.Eligible).
func checkUndo(in WriteBackInput, username string) func(planned) string {
	return func(p planned) string {
		if why := checkWriteBack(in.Expected, username)(p); why != "" {
			return why
		}
		for f, v := range in.Want {
			if _, ok := in.Expected[f]; !ok {
				return fmt.Sprintf("%s is not a field Joinery wrote", f)
			}
			if v != "" {
				return fmt.Sprintf("%s would be restored to %q; an eligible joiner's owned fields start empty", f, v)
			}
		}
		return ""
	}
}

// isEndStateWrite says whether want is the end of time-bound access: one
// end-state word in the access-status field.
func isEndStateWrite(want map[string]string) bool {
	v, ok := want[accessStatusField]
	return ok && len(want) == 1 && slices.Contains(endStates, v)
}

// approvalProven says whether proofs approve the joiner workflowID under
// plan: each signed decision must verify with the worker's own inbox keys,
// be for this workflow and an approval, by someone the plan's route lets
// approve; a plan with a second approver needs both; break-glass counts
// only where the route enables it. The workflow checked freshness, replay
// and the plan hash when it counted the decisions; this re-check is what
// stops a rogue "Joiner" workflow with a real hire's ID from creating an
// account no approver approved. "" means proven.
func approvalProven(keys []decision.PublicKey, workflowID, runID string, proofs []ApprovalProof, plan policy.Plan) string {
	ap := plan.Approval
	if len(proofs) == 0 {
		return "no approval: the claim needs the approvals the joiner counted"
	}
	first, second := false, ap.SecondApprover == ""
	for _, p := range proofs {
		if p.BreakGlass {
			if !ap.BreakGlass {
				return fmt.Sprintf("break-glass is off for approval route %q", ap.Rule)
			}
			first, second = true, true
			continue
		}
		if p.Signed == nil {
			return "an approval without a signature"
		}
		d, err := decision.Verify(keys, *p.Signed)
		switch {
		case err != nil:
			return "an approval does not verify: " + err.Error()
		case d.WorkflowID != workflowID:
			return fmt.Sprintf("an approval is for %s", d.WorkflowID)
		case runID != "" && d.RunID != runID:
			return fmt.Sprintf("an approval is for run %q of %s, not this run", d.RunID, d.WorkflowID)
		case d.Action != decision.ActionApprove:
			return fmt.Sprintf("a %q decision is not an approval", d.Action)
		}
		switch {
		case ap.SecondApprover != "" && strings.EqualFold(d.Approver, ap.SecondApprover):
			second = true
		case strings.EqualFold(d.Approver, ap.Approver) || strings.EqualFold(d.Approver, ap.EscalateTo) ||
			slices.ContainsFunc(ap.Delegates, func(s string) bool { return strings.EqualFold(s, d.Approver) }):
			first = true
		default:
			return fmt.Sprintf("%s may not approve under route %q", d.Approver, ap.Rule)
		}
	}
	if !first || !second {
		return fmt.Sprintf("the approvals do not satisfy route %q (approver and, where named, second approver)", ap.Rule)
	}
	return ""
}
