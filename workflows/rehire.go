package workflows

// Rehire: a new generation of a joiner (workflow ID joiner-<id>~g<N>,
// started only by `starter rehire`) that takes over the entry its earlier
// generation created and its leaver disabled, instead of a second account.
// It is the Joiner workflow with three differences, all on code paths only
// a start with JoinerInput.Rehire reaches (joiners already running never
// do, so no GetVersion): the eligibility check is CheckRehire, the plan
// carries the rehire (the approver signs for "re-enable <DN>"), and the
// claim is ClaimRehire, undone by UndoRehire (re-disable, old marker back;
// the entry is never deleted). Approval, groups, credential, write-back, the
// Provisioned hold and rescind are the joiner's own.

import (
	"fmt"
	"strings"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/joinery/joinery/activities"
	"github.com/joinery/joinery/internal/policy"
)

// RehireWorkflowID is the workflow ID of generation gen (≥ 2) of the
// joiner for hrisID: joiner-<id>~g<gen>. '~' is not allowed in HR IDs, so
// it never collides with JoinerWorkflowID.
func RehireWorkflowID(hrisID string, gen int) string { return activities.RehireWorkflowID(hrisID, gen) }

// startRehire checks that a start and its workflow ID agree on being a
// rehire, and runs CheckRehire. A generation ID without the rehire flag (a
// plain start someone gave a generation ID) and the flag without one are
// refused before anything happens.
func (j *joiner) startRehire(ctx workflow.Context) error {
	id := workflow.GetInfo(ctx).WorkflowExecution.ID
	key, gen, ok := activities.ParseJoinerID(id)
	switch {
	case !j.in.Rehire:
		return temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("workflow ID %s is a rehire generation: start it with `starter rehire %s`", id, j.in.HRISID), ErrTypeInvalidInput, nil)
	case !ok || gen < 2 || key != j.in.HRISID:
		return temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("a rehire runs as %s, not %s", RehireWorkflowID(j.in.HRISID, 2)+" (or a later generation)", id), ErrTypeInvalidInput, nil)
	case j.in.Request != nil:
		return temporal.NewNonRetryableApplicationError("non-human joiners are never rehired", ErrTypeInvalidInput, nil)
	}
	var chk activities.RehireCheck
	if err := workflow.ExecuteActivity(withOptions(ctx, optsDirectory), a.CheckRehire,
		activities.CheckRehireInput{HRISID: j.in.HRISID, Joiner: id}).Get(ctx, &chk); err != nil {
		return err
	}
	if !policy.IsHumanKind(chk.Kind) {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("kind %q is never rehired", chk.Kind), ErrTypeInvalidInput, nil)
	}
	j.rehire = &chk
	j.in.Kind = chk.Kind
	// The undo of a take-over is not among the compensations a continued
	// run rebuilds (continued.go), so a rehire stays in one run.
	j.canContinue = false
	j.event(ctx, fmt.Sprintf("rehire of %s: %s (%s) left %s; generation %s will re-enable it", j.in.HRISID,
		chk.Plan.DN, chk.Plan.PreviousJoiner, chk.Plan.LeftOn, chk.Plan.Joiner))
	return nil
}

// isRehireStart says whether this run must take the rehire path: the flag,
// or a generation workflow ID (then startRehire refuses a start without it).
func (j *joiner) isRehireStart(ctx workflow.Context) bool {
	if j.in.Rehire {
		return true
	}
	_, gen, ok := activities.ParseJoinerID(workflow.GetInfo(ctx).WorkflowExecution.ID)
	return ok && gen >= 2
}

// rehireWorker drops the termination date from a rehire's HR record before
// planning: it is the earlier generation's leaving (in the plan's Rehire),
// not an end of this one's access.
func rehireWorker(w policy.Worker) policy.Worker {
	if w.EndDate != "" && w.EndDate < w.HireDate {
		w.EndDate = ""
	}
	return w
}

// provisionRehire is provision for a rehire: take over and re-enable the
// entry, then today's birthright groups, a new credential and the
// write-back, each registered with its undo before it runs; check runs
// between steps, done after the last (provision in joiner.go).
func (j *joiner) provisionRehire(ctx workflow.Context, snapshot map[string]string, check, done func() error) error {
	plan := j.plan
	rh := *j.rehire
	j.setStage(ctx, StageClaimingUsername)
	j.register(ctx, "re-disable and hand back the entry", "ldap-rehire", rh.Plan.DN, func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(ctx, a.UndoRehire, activities.UndoRehireInput{
			HRISID: j.in.HRISID, Rehire: rh.Plan, PreviousRun: rh.PreviousRun}).Get(ctx, nil)
	})
	var claim activities.ClaimResult
	if err := workflow.ExecuteActivity(withOptions(ctx, optsDirectory), a.ClaimRehire, activities.ClaimRehireInput{
		HRISID: j.in.HRISID, Rehire: rh.Plan, PreviousRun: rh.PreviousRun, Approvals: j.proofs,
	}).Get(ctx, &claim); err != nil {
		return fmt.Errorf("take over %s: %w", rh.Plan.DN, err)
	}
	j.result.Username, j.result.DN = claim.Username, claim.DN
	j.status.Username, j.status.DN = claim.Username, claim.DN
	j.result.UsernameRule = "rehire"
	j.event(ctx, fmt.Sprintf("%s re-enabled for generation %s (was %s)", claim.DN, rh.Plan.Joiner, rh.Plan.PreviousJoiner))
	if err := check(); err != nil {
		return err
	}

	// The grants run as local activities: their undos first
	// (localsteps.go, registerAhead).
	j.registerAhead(ctx, plan, snapshot, true)
	if err := j.grantGroups(ctx, plan, claim.DN, check); err != nil {
		return err
	}

	j.setStage(ctx, StageIssuingSecret)
	var cred activities.CredentialResult
	res := j.register(ctx, "destroy initial credential", "vault-secret", "initial-credential", func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(ctx, a.RevokeCredential, activities.RevokeInput{
			HRISID: j.in.HRISID, Path: cred.Path, Accessor: cred.WrapAccessor}).Get(ctx, nil)
	})
	if err := workflow.ExecuteActivity(withOptions(ctx, optsCredential), a.IssueCredential, activities.CredentialInput{
		HRISID: j.in.HRISID, Username: claim.Username, DN: claim.DN, Recipient: plan.Approval.Approver, WrapTTL: plan.CredentialTTL,
	}).Get(ctx, &cred); err != nil {
		return fmt.Errorf("issue the initial credential: %w", err)
	}
	j.status.Resources[res].ID = fmt.Sprintf("%s (v%d)", cred.Path, cred.Version)
	j.result.Credential = &CredentialRef{Path: cred.Path, Version: cred.Version, WrapAccessor: cred.WrapAccessor,
		ExpiresAt: cred.ExpiresAt, DeliveredTo: cred.DeliveredTo}
	if err := check(); err != nil {
		return err
	}

	want := plan.WriteBackFor(claim.Username)
	if len(want) > 0 {
		j.setStage(ctx, StageWritingBack)
		j.register(ctx, "restore HR fields", "hris-field", strings.Join(sortedKeys(want), ","), func(ctx workflow.Context) error {
			return workflow.ExecuteActivity(ctx, a.UndoWriteBack, activities.WriteBackInput{
				HRISID: j.in.HRISID, Want: pick(snapshot, want), Expected: want}).Get(ctx, nil)
		})
		var wb activities.WriteBackOutput
		if err := workflow.ExecuteActivity(withOptions(ctx, optsHRISWrite), a.WriteBack, activities.WriteBackInput{
			HRISID: j.in.HRISID, Want: want, Expected: pick(snapshot, want),
		}).Get(ctx, &wb); err != nil {
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

// grantGroups grants the plan's birthright groups to dn, one after another,
// registering each removal as a compensation first, and checks for a
// rescind between grants. The joiner and the rehire share it, command for
// command, so both record the same history.
func (j *joiner) grantGroups(ctx workflow.Context, plan policy.Plan, dn string, check func() error) error {
	j.setStage(ctx, StageGrantingGroups)
	for _, g := range plan.Groups {
		in := activities.GroupInput{HRISID: j.in.HRISID, Group: g.Group, MemberDN: dn}
		j.register(ctx, "remove from "+g.Group, "group-membership", g.Group, func(ctx workflow.Context) error {
			return workflow.ExecuteActivity(ctx, a.RevokeGroup, in).Get(ctx, nil)
		})
		if err := j.step(ctx, "GrantGroup", a.GrantGroup, optsDirectory, in, nil); err != nil {
			return fmt.Errorf("grant %s: %w", g.Group, err)
		}
		j.result.Groups = append(j.result.Groups, g.Group)
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}
