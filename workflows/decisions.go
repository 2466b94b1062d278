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
	"github.com/joinery/joinery/internal/pseudonym"
)

// Signed decisions (version "signed-decisions" >= 1).
//
// An approval counts only when the workflow itself has checked its proof:
// the approval inbox's Ed25519 signature with a key recorded in this
// joiner's history, over this joiner's workflow ID, plan hash and policy
// version, fresh and never used before, by someone who may decide now and
// who is, live, an active person in the directory and the HRIS. Anything
// else is refused and recorded (bounded: a count and the last few), so a
// person with only Temporal access can neither approve nor grow the joiner.

const (
	// maxRefusedKept is how many refused attempts the status keeps; the
	// rest are only counted.
	maxRefusedKept = 10
	// clockSkew is how far in the future a decision may be dated (inbox
	// and Temporal server clocks differ a little).
	clockSkew = 2 * time.Minute
	// maxFieldLen bounds what a refused, unverified payload can put into
	// the joiner's state.
	maxFieldLen = 120
)

// queued is one approval message waiting to be applied.
type queued struct {
	s   ApprovalSignal
	via string // signal:approve, signal:reject, update
	seq int    // place among the messages of its channel (1-based)
	// updateID is the decide update's ID (pairs it with its history event).
	updateID string
}

// HandoverAlarm is sent by the approval inbox when a wrapped credential
// meant for Recipient was already unwrapped when Recipient came for it:
// someone else may have intercepted it.
type HandoverAlarm struct {
	Recipient  string    `json:"recipient"`
	Accessor   string    `json:"accessor"`
	DetectedAt time.Time `json:"detectedAt"`
}

// SignalHandoverAlarm carries a HandoverAlarm.
const SignalHandoverAlarm = "handover-alarm"

// loadTrust records, once, which inbox keys may sign this joiner's
// decisions, and the plan hash they must name.
func (j *joiner) loadTrust(ctx workflow.Context) error {
	if err := j.readAs(ctx, j.local, "TrustedDecisionKeys", a.TrustedDecisionKeys, optsPlan, optsPlanLocal, nil, &j.trust); err != nil {
		return err
	}
	h, err := decision.PlanHash(j.plan)
	if err != nil {
		return err
	}
	j.planHash = h
	// The status shows the plan as it was hashed; an extension moves
	// j.plan's end date but not what the approvers signed for.
	shown := j.plan
	j.status.Plan = &shown
	j.status.PlanHash = h
	j.status.DecisionKeys = j.trust.Keys
	return nil
}

// verify checks a message's proof and returns the decision record it would
// make, or the record of its refusal and the reason. It is pure, so the
// update validator can use it too.
func (j *joiner) verify(ctx workflow.Context, q queued, want decision.Action) (Decision, error) {
	rec := Decision{At: workflow.Now(ctx), Via: q.via, Seq: q.seq, UpdateID: q.updateID,
		Approver: clip(q.s.Approver), Comment: clip(q.s.Comment), Approved: q.s.Approve}
	if bg := q.s.BreakGlass; bg != nil {
		rec.BreakGlass = true
		rec.Approver = "break-glass:" + clip(bg.Operator)
		rec.Comment = clip(bg.Reason)
		switch {
		case !j.plan.Approval.BreakGlass:
			return rec, fmt.Errorf("break-glass decisions are off for approval route %q", j.plan.Approval.Rule)
		case strings.TrimSpace(bg.Operator) == "":
			return rec, errors.New("a break-glass decision must name the operator")
		case strings.TrimSpace(bg.Reason) == "":
			return rec, errors.New("a break-glass decision needs a reason")
		case len(bg.Reason) > decision.MaxCommentLen:
			return rec, fmt.Errorf("break-glass reason is longer than %d bytes", decision.MaxCommentLen)
		}
		return rec, nil
	}
	if q.s.Signed == nil {
		return rec, fmt.Errorf("unsigned: a decision must come signed from the approval inbox (%s); a name alone proves nothing",
			orUnknown(j.trust.InboxURL))
	}
	d, err := decision.Check(j.trust.Keys, *q.s.Signed, decision.Expect{
		WorkflowID: workflow.GetInfo(ctx).WorkflowExecution.ID, RunID: j.runToBind(ctx),
		PlanHash: j.planHash, PolicyVersion: j.plan.PolicyVersion,
		Now: workflow.Now(ctx), MaxAge: j.trust.MaxAge, ClockSkew: clockSkew,
		Used: func(n string) bool { return j.nonces[n] },
	})
	err = j.explainRun(ctx, d, err) // signed for a run before a continue-as-new (continued.go)
	if d.Approver != "" {
		rec.Approver = clip(d.Approver)
		rec.Comment = d.Comment
	}
	if err != nil {
		// The approver named in an unverified payload is only a claim.
		if d.Approver != "" {
			rec.Approver = "claimed:" + rec.Approver
		}
		return rec, err
	}
	rec.Signed, rec.KeyID, rec.Nonce = true, q.s.Signed.KeyID, d.Nonce
	issued := d.IssuedAt
	rec.IssuedAt = &issued
	if d.Via != "" {
		rec.Via = q.via + "/" + d.Via
	}
	switch {
	case want != "" && d.Action != want:
		return rec, fmt.Errorf("the %s channel carries a signed %q decision", want, d.Action)
	case want == "" && d.Action == decision.ActionExtend:
		return rec, errors.New("an extend decision is sent with the extend signal")
	}
	rec.Approved = d.Action != decision.ActionReject
	rec.endDate = d.EndDate
	return rec, nil
}

// applySigned applies one approval message under signed decisions: verify,
// check the approver's standing live, then record. It returns what the
// decide update answers.
func (j *joiner) applySigned(ctx workflow.Context, q queued) (string, error) {
	// One decision at a time: the live check below yields, and a second
	// decision for the same role must not slip in meanwhile.
	if err := workflow.Await(ctx, func() bool { return !j.applying }); err != nil {
		return "", err
	}
	j.applying = true
	defer func() { j.applying = false }()

	want := decision.Action("")
	switch q.via {
	case "signal:approve":
		want = decision.ActionApprove
	case "signal:reject":
		want = decision.ActionReject
	}
	rec, err := j.verify(ctx, q, want)
	if err != nil {
		j.refuse(ctx, rec, err)
		return "", err
	}
	if j.decided != nil {
		err := fmt.Errorf("already decided by %s", j.decided.Approver)
		j.refuse(ctx, rec, err)
		return "", err
	}
	if rec.BreakGlass {
		if rec.Approved {
			j.proofs = append(j.proofs, activities.ApprovalProof{BreakGlass: true})
			j.proofBy = append(j.proofBy, rec.Approver)
		}
		j.decided = &rec
		j.status.Approvals = append(j.status.Approvals, rec)
		verb := "rejected"
		if rec.Approved {
			verb = "approved"
		}
		j.event(ctx, fmt.Sprintf("BREAK-GLASS: %s by operator %s without the approval inbox: %s", verb,
			strings.TrimPrefix(rec.Approver, "break-glass:"), rec.Comment))
		j.breakGlass = true
		j.publishDeciders(ctx)
		return verb + " (break-glass)", nil
	}
	role, reason := j.role(rec.Approver)
	if reason != "" {
		err := errors.New(reason)
		j.refuse(ctx, rec, err)
		return "", err
	}
	if why := j.liveStanding(ctx, rec.Approver); why != "" {
		err := fmt.Errorf("%s may not decide now: %s", rec.Approver, why)
		j.refuse(ctx, rec, err)
		return "", err
	}
	// The live check yielded: look again at what it decided on.
	if role2, reason := j.role(rec.Approver); reason != "" || role2 != role || j.decided != nil {
		err := errors.New(orUnknown(reason))
		if j.decided != nil {
			err = fmt.Errorf("already decided by %s", j.decided.Approver)
		}
		j.refuse(ctx, rec, err)
		return "", err
	}
	j.nonces[rec.Nonce] = true
	if rec.Approved {
		j.proofs = append(j.proofs, activities.ApprovalProof{Signed: q.s.Signed})
		j.proofBy = append(j.proofBy, rec.Approver)
	}
	out := j.record(ctx, rec, role)
	if j.local {
		// One upsert for both (localsteps.go).
		j.decidedBy = appendUnique(j.decidedBy, rec.Approver)
		ups := []temporal.SearchAttributeUpdate{SADecidedBy.ValueSet(j.searchKeys(j.decidedBy))}
		if d, ok := j.decidersUpdate(); ok {
			ups = append(ups, d)
		}
		_ = workflow.UpsertTypedSearchAttributes(ctx, ups...)
		return out, nil
	}
	j.noteDecidedBy(ctx, rec.Approver)
	j.publishDeciders(ctx)
	return out, nil
}

// refuse records a decision that did not count: the count always, the
// record only for the last few.
func (j *joiner) refuse(ctx workflow.Context, rec Decision, err error) {
	rec.Refused = clipN(err.Error(), 300)
	rec.Approved = false
	j.status.Refused++
	j.status.Approvals = append(j.status.Approvals, rec)
	kept := 0
	for i := len(j.status.Approvals) - 1; i >= 0; i-- {
		if j.status.Approvals[i].Refused == "" {
			continue
		}
		kept++
		if kept > maxRefusedKept {
			j.status.Approvals = slices.Delete(j.status.Approvals, i, i+1)
		}
	}
}

// liveStanding asks the directory and the HRIS whether approver is still
// an active person; "" means yes.
func (j *joiner) liveStanding(ctx workflow.Context, approver string) string {
	var st []activities.ApproverStanding
	ctx, cancel := j.uncut(ctx)
	defer cancel()
	if err := j.readAs(ctx, j.local, "CheckApprovers", a.CheckApprovers, optsHRIS, optsHRISLocal,
		activities.ApproversInput{Key: j.in.HRISID, Usernames: []string{approver}}, &st); err != nil {
		return "could not check the approver's standing: " + rootMessage(err)
	}
	if len(st) != 1 || !st[0].Active {
		if len(st) == 1 {
			return st[0].Reason
		}
		return "no answer from the standing check"
	}
	return ""
}

// refreshApprovers reads the approvers' standing at the moment the
// approval is asked (the provisioning date, perhaps weeks after the plan):
// someone who left cannot approve, and the approval escalates at once when
// the approver is gone. A requester cannot be the only approver of a
// non-human joiner they requested.
func (j *joiner) refreshApprovers(ctx workflow.Context) map[string]string {
	ap := j.plan.Approval
	names := []string{}
	for _, n := range append(append([]string{ap.Approver}, ap.Delegates...), ap.SecondApprover, ap.EscalateTo) {
		if n != "" && !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	var st []activities.ApproverStanding
	sctx, cancel := j.uncut(ctx)
	defer cancel()
	if err := j.readAs(sctx, j.local, "CheckApprovers", a.CheckApprovers, optsHRIS, optsHRISLocal,
		activities.ApproversInput{Key: j.in.HRISID, Usernames: names}, &st); err != nil {
		j.event(ctx, "could not check the approvers' standing; each decision is checked when it comes: "+rootMessage(err))
		return nil
	}
	gone := map[string]string{}
	for _, s := range st {
		if !s.Active {
			gone[strings.ToLower(s.Username)] = s.Reason
			j.event(ctx, fmt.Sprintf("%s cannot approve: %s", s.Username, s.Reason))
		}
	}
	requester := ""
	if j.in.Request != nil && ap.SecondApprover == "" {
		requester = strings.ToLower(j.in.RequestedBy)
	}
	var keep []string
	for _, n := range j.status.Approvers {
		if _, out := gone[strings.ToLower(n)]; out {
			continue
		}
		if requester != "" && strings.ToLower(n) == requester {
			j.event(ctx, fmt.Sprintf("%s requested this joiner and cannot be its only approver", n))
			continue
		}
		keep = append(keep, n)
	}
	if len(keep) == 0 && ap.EscalateTo != "" {
		if _, out := gone[strings.ToLower(ap.EscalateTo)]; !out && strings.ToLower(ap.EscalateTo) != requester {
			keep = append(keep, ap.EscalateTo)
			j.event(ctx, fmt.Sprintf("escalated at once to %s: nobody else may approve", ap.EscalateTo))
			j.escalated = true
		}
	}
	if len(keep) == 0 {
		j.event(ctx, "nobody may approve this joiner now; it will be rejected when the approval times out")
	}
	j.status.Approvers = keep
	return gone
}

// deciders is who may decide now: the inbox's "waiting for me".
func (j *joiner) deciders() []string {
	var out []string
	switch {
	case j.status.Stage == StageActive:
		out = appendUnique(out, j.plan.Owner)
		for _, a := range j.status.Approvers {
			out = appendUnique(out, a)
		}
	case j.decided != nil:
	default:
		if j.first == nil {
			for _, a := range j.status.Approvers {
				out = appendUnique(out, a)
			}
		}
		if s := j.plan.Approval.SecondApprover; s != "" && j.second == nil {
			out = appendUnique(out, s)
		}
	}
	if out == nil {
		out = []string{}
	}
	return out
}

// publishDeciders keeps the JoinerDeciders search attribute current.
func (j *joiner) publishDeciders(ctx workflow.Context) {
	d, ok := j.decidersUpdate()
	if !ok {
		return
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx, d); err != nil {
		workflow.GetLogger(ctx).Warn("search attribute upsert failed", "error", err)
	}
}

// decidersUpdate is the JoinerDeciders update due, if the deciders changed
// since the last one published (which it then counts as published).
func (j *joiner) decidersUpdate() (temporal.SearchAttributeUpdate, bool) {
	if !j.signed {
		return nil, false
	}
	now := j.deciders()
	if slices.Equal(now, j.published) && j.published != nil {
		return nil, false
	}
	j.published = now
	return SADeciders.ValueSet(j.searchKeys(now)), true
}

// Search attributes without names (version "pseudonymous-search-attributes"
// >= 1).
//
// The Temporal server indexes search attributes in clear and shows them to
// anyone who can read the namespace; the payload codec cannot seal them. So
// the people fields (JoinerManager, JoinerDeciders, JoinerDecidedBy) carry
// keyed pseudonyms (internal/pseudonym), computed once at planning by the
// SearchPseudonyms activity for everyone the plan names — workflow code has
// no key and does no crypto. The inbox and `starter list --manager` compute
// the same pseudonym for the person they look for. Joiners planned before
// keep the usernames their histories recorded (replay must match), and the
// inbox still looks for those too until they close.

// plannedSearchAttributes are the search attributes a joiner sets once it
// has planned: its HRIS ID (its own key, not a name), its kind, its manager
// (pseudonymous) and the HR department (an organisational unit, no name).
func (j *joiner) plannedSearchAttributes(ctx workflow.Context, w policy.Worker) []temporal.SearchAttributeUpdate {
	ups := []temporal.SearchAttributeUpdate{SAHRISID.ValueSet(j.in.HRISID), SAKind.ValueSet(j.plan.Kind)}
	if j.laterVersion(ctx, "pseudonymous-search-attributes") < 1 {
		return append(ups, SAManager.ValueSet(j.plan.Approval.Approver), SADepartment.ValueSet(w.Department))
	}
	keys := &SearchKeys{Pseudonyms: map[string]string{}}
	j.status.SearchKeys = keys
	if people := activities.PlanPeople(j.plan); len(people) > 0 {
		var got map[string]string
		if err := j.readAs(ctx, j.local, "SearchPseudonyms", a.SearchPseudonyms, optsHRIS, optsHRISLocal,
			activities.PseudonymsInput{Key: j.in.HRISID, Usernames: people, Request: j.in.Request, Kind: j.in.Kind}, &got); err != nil {
			// Without pseudonyms the joiner publishes no people at all
			// (never the names): it runs on, but the inbox cannot list it,
			// so say so where operators look.
			j.event(ctx, "search attributes: no pseudonyms for the plan's people, so the inbox cannot list this joiner: "+rootMessage(err))
		}
		for _, p := range people {
			if v := got[p]; pseudonym.Is(v) {
				keys.Pseudonyms[p] = v
			}
		}
	}
	if m := j.searchKeys([]string{j.plan.Approval.Approver}); len(m) == 1 {
		ups = append(ups, SAManager.ValueSet(m[0]))
	}
	return append(ups, SADepartment.ValueSet(w.Department))
}

// searchKeys is what the people search attributes hold for names: the names
// themselves for joiners from before pseudonyms, else their pseudonyms.
// A name without a pseudonym is left out, never published in clear.
func (j *joiner) searchKeys(names []string) []string {
	if j.status.SearchKeys == nil {
		return names
	}
	out := []string{}
	for _, n := range names {
		if p, ok := j.status.SearchKeys.Pseudonyms[strings.ToLower(strings.TrimSpace(n))]; ok && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

// applySignedExtension applies one extend message under signed decisions.
func (j *joiner) applySignedExtension(ctx workflow.Context, e ExtendSignal, seq int) bool {
	q := queued{s: ApprovalSignal{Signed: e.Signed, Approver: e.By, Comment: e.Comment, Approve: true}, via: "signal:extend", seq: seq}
	rec, err := j.verify(ctx, q, decision.ActionExtend)
	if err == nil && rec.BreakGlass {
		err = errors.New("an extension cannot be break-glass")
	}
	if err == nil {
		allowed := strings.EqualFold(rec.Approver, j.plan.Owner)
		for _, ap := range j.status.Approvers {
			allowed = allowed || strings.EqualFold(rec.Approver, ap)
		}
		if !allowed {
			err = fmt.Errorf("only the owner %s may extend", j.plan.Owner)
		}
	}
	if err == nil {
		err = j.plan.CheckExtension(rec.endDate)
	}
	if err == nil {
		if why := j.liveStanding(ctx, rec.Approver); why != "" {
			err = fmt.Errorf("%s may not extend now: %s", rec.Approver, why)
		}
	}
	rec.Comment = strings.TrimSpace(fmt.Sprintf("extend to %s %s", rec.endDate, rec.Comment))
	if err != nil {
		j.refuse(ctx, rec, err)
		return false
	}
	j.nonces[rec.Nonce] = true
	j.event(ctx, fmt.Sprintf("access extended from %s to %s by %s", j.plan.EndDate, rec.endDate, rec.Approver))
	j.plan.EndDate = rec.endDate
	j.result.EndDate, j.status.EndDate = rec.endDate, rec.endDate
	j.status.Approvals = append(j.status.Approvals, rec)
	j.noteDecidedBy(ctx, rec.Approver)
	return true
}

// noteAlarm records an inbox report that a wrapped credential was opened
// by someone other than its recipient (bounded like refusals).
func (j *joiner) noteAlarm(ctx workflow.Context, al HandoverAlarm) {
	j.alarms++
	if j.alarms > maxRefusedKept {
		return
	}
	j.event(ctx, fmt.Sprintf("SECURITY: the wrapped credential for %s (accessor %s) was already unwrapped when they came for it: possible interception",
		clip(al.Recipient), clip(al.Accessor)))
}

func clip(s string) string { return clipN(s, maxFieldLen) }

func clipN(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// validateSigned is the decide update's validator under signed decisions:
// an unsigned, forged, stale, replayed or disallowed decision is refused
// here, before it reaches history at all.
func (j *joiner) validateSigned(ctx workflow.Context, s ApprovalSignal) error {
	if !j.planned {
		return errors.New("the joiner is still being planned; try again in a moment")
	}
	if j.decided != nil {
		return fmt.Errorf("already decided by %s", j.decided.Approver)
	}
	switch j.status.Stage {
	case StageValidating, StageWaitingStartDate, StageAwaitingApproval:
	default:
		return fmt.Errorf("joiner is %s: no decision is pending", j.status.Stage)
	}
	rec, err := j.verify(ctx, queued{s: s, via: "update"}, "")
	if err != nil {
		return fmt.Errorf("refused: %w", err)
	}
	if rec.BreakGlass {
		return nil
	}
	if _, reason := j.role(rec.Approver); reason != "" {
		return errors.New("refused: " + reason)
	}
	return nil
}

// runToBind is the run a decision must name, or "" for joiners that started
// before decisions named their run.
func (j *joiner) runToBind(ctx workflow.Context) string {
	if !j.hardened {
		return ""
	}
	return workflow.GetInfo(ctx).WorkflowExecution.RunID
}

// noteDecidedBy adds who to the JoinerDecidedBy search attribute (the
// inbox's "my past decisions").
func (j *joiner) noteDecidedBy(ctx workflow.Context, who string) {
	j.decidedBy = appendUnique(j.decidedBy, who)
	_ = workflow.UpsertTypedSearchAttributes(ctx, SADecidedBy.ValueSet(j.searchKeys(j.decidedBy)))
}
