package activities

// Rehire: the explicit, approved path for someone whose earlier generation's
// entry Joinery created and their leaver disabled. The new generation is a
// Joiner workflow with the ID joiner-<HRIS ID>~g<N>, N one more than the
// generation named in the entry's marker (so it survives Temporal's
// retention: the directory remembers, not the server). It re-enables the
// entry (reenable mode), which nobody else's joiner ever does.
//
// Adversary: any Temporal client can start a Joiner with a generation ID and
// any input, and schedule these activities by name. What it cannot choose is
// its workflow ID as the server reports it, the HR record, the directory
// entry and the policy, which CheckRehire and ClaimRehire read themselves:
// the generation must be the entry's next one, the entry must carry this
// person's lineage marker and be disabled, HR must say rehire, the policy
// must allow it, and the take-over needs the approval signed for exactly
// this entry. Anything else stops before a change.

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"go.temporal.io/sdk/temporal"

	"github.com/joinery/joinery/connectors"
	"github.com/joinery/joinery/connectors/directory"
	"github.com/joinery/joinery/connectors/hris"
	"github.com/joinery/joinery/internal/policy"
)

// StepRehire names the take-over step (faults, order log).
const StepRehire = "rehire"

// ErrTypeRehireRefused is the type of a rehire that cannot go ahead without
// an operator deciding differently (wrong generation, policy says no).
const ErrTypeRehireRefused = "RehireRefused"

// maxGeneration bounds N in joiner-<key>~g<N>.
const maxGeneration = 999

// RehireWorkflowID is the workflow ID of generation gen (≥ 2) of key's
// joiner; generation 1 is JoinerWorkflowID(key). HRIS IDs never contain
// '~' (workflows.ValidateHRISID), so the two forms cannot collide.
func RehireWorkflowID(key string, gen int) string {
	if gen <= 1 {
		return JoinerWorkflowID(key)
	}
	return JoinerWorkflowID(key) + "~g" + strconv.Itoa(gen)
}

// ParseJoinerID splits a joiner workflow ID into its key and generation:
// "joiner-K" is generation 1 of K, "joiner-K~gN" generation N (2..999,
// written without leading zeros). Anything else is not a joiner ID.
func ParseJoinerID(id string) (key string, gen int, ok bool) {
	rest, found := strings.CutPrefix(id, "joiner-")
	if !found || rest == "" {
		return "", 0, false
	}
	k, g, hasGen := strings.Cut(rest, "~g")
	if !hasGen {
		if strings.Contains(rest, "~") {
			return "", 0, false
		}
		return rest, 1, true
	}
	n, err := strconv.Atoi(g)
	if k == "" || strings.Contains(k, "~") || err != nil || n < 2 || n > maxGeneration || strconv.Itoa(n) != g {
		return "", 0, false
	}
	return k, n, true
}

// joinerIDFor reports whether id is a joiner workflow ID of key, of any
// generation (admit's rule).
func joinerIDFor(id, key string) bool {
	k, _, ok := ParseJoinerID(id)
	return ok && key != "" && k == key
}

// isGenerationID reports whether id is a rehire generation (N ≥ 2).
func isGenerationID(id string) bool {
	_, g, ok := ParseJoinerID(id)
	return ok && g >= 2
}

// RehireDirectory is what the rehire needs from the directory connector
// beyond Directory (*directory.Client has it).
type RehireDirectory interface {
	FindByEmployeeID(ctx context.Context, employeeID string, nonHuman bool) (*directory.Entry, error)
	IsDisabled(e *directory.Entry) bool
	TakeOver(ctx context.Context, dn string, from, to directory.Marker) (*directory.Entry, error)
	HandBack(ctx context.Context, dn string, from, to directory.Marker) error
	GroupsOf(ctx context.Context, memberDN string) ([]string, error)
}

// RehirePlanner is the policy's rehire decision (*policy.Policy has it).
type RehirePlanner interface {
	PlanRehire(previous, generation, dn, leftOn, hireDate string) (policy.RehirePlan, error)
}

func (a *Activities) rehireDeps() (RehireDirectory, RehirePlanner, error) {
	d, ok := a.Directory.(RehireDirectory)
	if !ok {
		return nil, nil, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("the directory connector (%T) cannot take over entries: rehires are not available", a.Directory), ErrTypeRehireRefused, nil)
	}
	p, ok := a.Policy.(RehirePlanner)
	if !ok {
		return nil, nil, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("the policy (%T) has no rehire rules: rehires are not available", a.Policy), ErrTypeRehireRefused, nil)
	}
	return d, p, nil
}

// rehireCandidates makes a rehire generation's plan name the username of
// the entry it holds (the one it took over), and nothing else: a generation
// never claims a name (admit), so its candidates only decide which account
// the credential order may set a password on. Before the take-over there is
// none, and the credential is refused.
func (a *Activities) rehireCandidates(ctx context.Context, joinerID string, plan policy.Plan) (policy.Plan, error) {
	e, err := a.Directory.FindByOwner(ctx, joinerID)
	if err != nil {
		return plan, classify(err)
	}
	plan.Candidates, plan.UsernameRules = nil, nil
	if e != nil && e.Username != "" {
		plan.Candidates = []string{e.Username}
	}
	return plan, nil
}

// CheckRehireInput names the rehire to check.
type CheckRehireInput struct {
	HRISID string `json:"hrisId"`
	// Joiner is the workflow ID of the new generation. In an activity it
	// must be the caller's own ID; trusted code (the CLI) passes it.
	Joiner string `json:"joiner"`
}

// RehireCheck is what a rehire found: the plan part the approver signs
// for, and what the take-over needs.
type RehireCheck struct {
	Kind string            `json:"kind"`
	Plan policy.RehirePlan `json:"plan"`
	// PreviousRun is the run named in the entry's marker.
	PreviousRun string `json:"previousRun,omitempty"`
	Username    string `json:"username"`
}

// NextGeneration is the workflow ID a rehire of the person whose entry e
// is must run under: one generation after the one e's marker names. ok is
// false when e carries no marker of a joiner for key.
func NextGeneration(key string, e *directory.Entry) (string, bool) {
	if e == nil {
		return "", false
	}
	k, g, ok := ParseJoinerID(e.Owner)
	if !ok || k != key || g >= maxGeneration {
		return "", false
	}
	return RehireWorkflowID(key, g+1), true
}

// CheckRehire decides, from the HR record, the directory and the policy,
// whether this generation may re-enable the person's old entry. It changes
// nothing. A person who is not a rehire is NotEligible; an entry Joinery did
// not create, one of another person's joiner, or one not disabled is
// NeedsOperator with the entry as ExistingAccount details; a start under
// the wrong generation, or a rehire the policy does not allow, is
// RehireRefused.
func (a *Activities) CheckRehire(ctx context.Context, in CheckRehireInput) (RehireCheck, error) {
	c := callerOf(ctx)
	if c.inActivity {
		if c.typ != JoinerWorkflowType || !isGenerationID(c.id) || !joinerIDFor(c.id, in.HRISID) {
			return RehireCheck{}, a.refuse(order{c: c, step: "check-rehire", key: in.HRISID, what: "check a rehire"},
				fmt.Sprintf("workflow %q (%s) is not a rehire generation of joiner %q", c.id, c.typ, in.HRISID))
		}
		if err := a.admitRun(ctx, order{c: c, step: "check-rehire", key: in.HRISID, what: "check a rehire"}); err != nil {
			return RehireCheck{}, err
		}
		in.Joiner = c.id
	}
	return a.checkRehire(ctx, in.HRISID, in.Joiner)
}

func (a *Activities) checkRehire(ctx context.Context, hrisID, joinerID string) (RehireCheck, error) {
	dir, pol, err := a.rehireDeps()
	if err != nil {
		return RehireCheck{}, err
	}
	if !isGenerationID(joinerID) || !joinerIDFor(joinerID, hrisID) {
		return RehireCheck{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("%q is not a rehire generation of joiner %q (want joiner-%s~gN)", joinerID, hrisID, hrisID), ErrTypeRehireRefused, nil)
	}
	w, err := a.HRIS.GetWorker(ctx, hrisID)
	if err != nil {
		var ce *connectors.Error
		if errors.As(err, &ce) && ce.Type == hris.TypeNotFound {
			return RehireCheck{}, notEligible(hrisID, ReasonNotFound, "hrisId", "the HRIS has no employee with this ID")
		}
		return RehireCheck{}, classify(err)
	}
	hire, term := strings.TrimSpace(w.HireDate), strings.TrimSpace(w.TerminationDate)
	if !strings.EqualFold(strings.TrimSpace(w.Status), "Active") {
		return RehireCheck{}, notEligible(hrisID, ReasonInactive, hris.FieldStatus, fmt.Sprintf("HR status is %q, not Active: not a rehire", w.Status))
	}
	if term == "" || hire == "" || term >= hire {
		return RehireCheck{}, notEligible(hrisID, "not-a-rehire", hris.FieldTerminationDate,
			fmt.Sprintf("a rehire has a termination date before its new hire date (termination %q, hire %q)", term, hire))
	}
	e, err := dir.FindByEmployeeID(ctx, hrisID, false)
	if err != nil {
		return RehireCheck{}, classify(err)
	}
	needsOperator := func(why string) error {
		details := ExistingAccount{EmployeeID: hrisID}
		if e != nil {
			details = ExistingAccount{DN: e.DN, EmployeeID: e.EmployeeID, Username: e.Username, Joiner: e.Owner, Run: e.OwnerRun}
		}
		a.log().Warn("rehire stopped: an operator must decide", "hrisId", hrisID, "joiner", joinerID, "dn", details.DN, "owner", details.Joiner, "why", why)
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("rehire of %s: %s (nothing was changed)", hrisID, why), ErrTypeNeedsOperator, nil, details)
	}
	if e == nil {
		return RehireCheck{}, needsOperator("the directory has no entry for this person to re-enable")
	}
	if e.Owner == "" {
		return RehireCheck{}, needsOperator(fmt.Sprintf("%s carries no Joinery marker: Joinery did not create it and never adopts it", e.DN))
	}
	next, ok := NextGeneration(hrisID, e)
	if !ok {
		return RehireCheck{}, needsOperator(fmt.Sprintf("%s carries the marker %q, not one of this person's joiners", e.DN, e.Owner))
	}
	if next != joinerID {
		return RehireCheck{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("rehire of %s: %s is owned by %q, so the rehire runs as %q, not %q (nothing was changed)", hrisID, e.DN, e.Owner, next, joinerID),
			ErrTypeRehireRefused, nil)
	}
	if !dir.IsDisabled(e) {
		return RehireCheck{}, needsOperator(fmt.Sprintf("%s (joiner %q) is not disabled: it is a live account, or its leaver has not run", e.DN, e.Owner))
	}
	// A disabled entry that is still in groups would get that access back
	// the moment it is re-enabled, before anyone approved it: the leaver
	// (not necessarily Joinery) should have removed them. The rehire grants
	// today's birthright groups itself, so any membership left is stale.
	groups, err := dir.GroupsOf(ctx, e.DN)
	if err != nil {
		return RehireCheck{}, classify(err)
	}
	if len(groups) > 0 {
		return RehireCheck{}, needsOperator(fmt.Sprintf("%s is still a member of %s: re-enabling it would give that access back; remove the memberships (its leaver should have) and start the rehire again",
			e.DN, strings.Join(groups, ", ")))
	}
	plan, err := pol.PlanRehire(e.Owner, joinerID, e.DN, term, hire)
	if err != nil {
		return RehireCheck{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf("rehire of %s: %v", hrisID, err), ErrTypeRehireRefused, nil)
	}
	return RehireCheck{Kind: kindFromHR(w), Plan: plan, PreviousRun: e.OwnerRun, Username: e.Username}, nil
}

func notEligible(id, reason, field, detail string) error {
	ie := &IneligibleError{HRISID: id, Reason: reason, Field: field, Detail: detail}
	return temporal.NewNonRetryableApplicationError(ie.Error(), ErrTypeNotEligible, nil, *ie)
}

// ClaimRehireInput asks for the take-over of the entry the approver signed
// for.
type ClaimRehireInput struct {
	HRISID string            `json:"hrisId"`
	Rehire policy.RehirePlan `json:"rehire"`
	// PreviousRun is the run in the old marker (from CheckRehire).
	PreviousRun string `json:"previousRun,omitempty"`
	// Approvals are the signed decisions that approved this plan.
	Approvals []ApprovalProof `json:"approvals,omitempty"`
}

// ClaimRehire moves the entry from the earlier generation to this one and
// re-enables it (directory.TakeOver: one asserted modify). It re-checks
// everything CheckRehire checked, against the live HR record, entry and
// policy, and the approvals against the plan with that rehire part: an
// order for another entry, or without an approval of this one, is refused.
// A retry after a lost answer finds the entry already this run's.
func (a *Activities) ClaimRehire(ctx context.Context, in ClaimRehireInput) (ClaimResult, error) {
	if err := a.fault(StepRehire, in.HRISID); err != nil {
		return ClaimResult{}, err
	}
	o, err := a.admit(ctx, StepRehire, in.HRISID, fmt.Sprintf("take over %s from %s", in.Rehire.DN, in.Rehire.PreviousJoiner))
	if err != nil {
		return ClaimResult{}, err
	}
	to := directory.Marker{Owner: in.Rehire.Joiner}
	if o.c.inActivity {
		if o.c.id != in.Rehire.Joiner {
			return ClaimResult{}, a.refuse(o, fmt.Sprintf("the rehire names generation %q, not this workflow", in.Rehire.Joiner))
		}
		to.Run = o.c.run
	}
	dir, _, err := a.rehireDeps()
	if err != nil {
		return ClaimResult{}, err
	}
	// Already ours (a retry after the take-over's answer was lost)?
	e, err := dir.FindByEmployeeID(ctx, in.HRISID, false)
	if err != nil {
		return ClaimResult{}, classify(err)
	}
	if e != nil && e.Owner == to.Owner && (to.Run == "" || e.OwnerRun == to.Run) && strings.EqualFold(e.DN, in.Rehire.DN) {
		return ClaimResult{Username: e.Username, DN: e.DN, Existing: true}, nil
	}
	auth, err := a.checkRehire(ctx, in.HRISID, in.Rehire.Joiner)
	if err != nil {
		return ClaimResult{}, err
	}
	if auth.Plan != in.Rehire {
		return ClaimResult{}, a.refuse(o, fmt.Sprintf("the order's rehire %+v is not what the directory and HR say (%+v)", in.Rehire, auth.Plan))
	}
	if _, _, err := a.verify(ctx, o, nil, "", func(p planned) string {
		plan := p.plan
		plan.Rehire = &auth.Plan
		return approvalProven(a.DecisionKeys, o.c.id, o.c.run, in.Approvals, plan)
	}); err != nil {
		return ClaimResult{}, err
	}
	got, err := dir.TakeOver(ctx, auth.Plan.DN, directory.Marker{Owner: auth.Plan.PreviousJoiner, Run: auth.PreviousRun}, to)
	if err != nil {
		return ClaimResult{}, classify(err)
	}
	a.log().Info("rehire: entry taken over and re-enabled", "hrisId", in.HRISID, "joiner", to.Owner, "dn", got.DN, "previous", auth.Plan.PreviousJoiner)
	return ClaimResult{Username: got.Username, DN: got.DN}, nil
}

// UndoRehireInput names the take-over to undo.
type UndoRehireInput struct {
	HRISID      string            `json:"hrisId"`
	Rehire      policy.RehirePlan `json:"rehire"`
	PreviousRun string            `json:"previousRun,omitempty"`
}

// UndoRehire is ClaimRehire's compensation: the entry is disabled again and
// carries the earlier generation's marker, as before the rehire; it is
// never deleted. It acts only on an entry this generation holds (HandBack
// asserts it), and hands back only to the generation just before this one.
func (a *Activities) UndoRehire(ctx context.Context, in UndoRehireInput) error {
	o, err := a.admit(ctx, "undo-rehire", in.HRISID, fmt.Sprintf("hand %s back to %s", in.Rehire.DN, in.Rehire.PreviousJoiner))
	if err != nil {
		return err
	}
	if o.c.inActivity && o.c.id != in.Rehire.Joiner {
		return a.refuse(o, fmt.Sprintf("the rehire names generation %q, not this workflow", in.Rehire.Joiner))
	}
	key, gen, ok := ParseJoinerID(in.Rehire.Joiner)
	if !ok || gen < 2 || key != in.HRISID || in.Rehire.PreviousJoiner != RehireWorkflowID(key, gen-1) {
		return a.refuse(o, fmt.Sprintf("%q may only hand back to the generation before it, not %q", in.Rehire.Joiner, in.Rehire.PreviousJoiner))
	}
	dir, _, err := a.rehireDeps()
	if err != nil {
		return err
	}
	return classify(dir.HandBack(ctx, in.Rehire.DN,
		directory.Marker{Owner: in.Rehire.PreviousJoiner, Run: in.PreviousRun}, directory.Marker{Owner: in.Rehire.Joiner}))
}
