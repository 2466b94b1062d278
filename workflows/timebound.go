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
)

// AccessStatusField is the HR field (owned by Joinery when policy lists it
// under writeback) where the end state of time-bound access is written.
const AccessStatusField = "customAccessStatus"

// expiresAt is when access ends: it lasts through the end date, so the
// revocation runs at 00:00 UTC the day after.
func expiresAt(endDate string) (time.Time, error) {
	end, err := time.Parse(time.DateOnly, endDate)
	if err != nil {
		return time.Time{}, err
	}
	return end.AddDate(0, 0, 1), nil
}

// active watches a provisioned time-bound joiner (contractor, service
// account, pipeline, AI agent) until its end date: it reminds the owner
// before the end, accepts extensions the policy allows, and revokes
// everything on expiry or when asked to (revoke or rescind signal).
func (j *joiner) active(ctx workflow.Context) (JoinerResult, error) {
	j.setStage(ctx, StageActive)
	// A run continued as new after the reminder went out does not send it
	// again for the same end date.
	reminded := j.remindedEnd != "" && j.remindedEnd == j.plan.EndDate
	for {
		expiry, err := expiresAt(j.plan.EndDate)
		if err != nil {
			// The plan validated the end date; extensions are validated too.
			return j.revokeAll(ctx, StageRevoked, OutcomeRevoked, "unreadable end date "+j.plan.EndDate)
		}
		// Local midnight at the site after the end date (version
		// "site-local-midnight"; before, 00:00 UTC).
		expiry = j.dayStart(ctx, expiry)
		_ = workflow.UpsertTypedSearchAttributes(ctx, SAExpiry.ValueSet(expiry))
		remindAt := expiry.Add(-j.plan.ExpiryReminder)
		now := workflow.Now(ctx)
		next, isReminder := expiry, false
		if !reminded && j.plan.ExpiryReminder > 0 && remindAt.After(now) {
			next, isReminder = remindAt, true
		}
		seen := len(j.extensions)
		woke, err := workflow.AwaitWithTimeout(ctx, max(next.Sub(now), 0), func() bool {
			return j.revoke != nil || j.rescind != nil || len(j.extensions) != seen || j.continueDue(ctx)
		})
		if err != nil {
			// Version 1: cancelling active time-bound access revokes it
			// (on a disconnected context) before the joiner closes;
			// before, a cancelled service account kept its access forever.
			if temporal.IsCanceledError(err) && workflow.GetVersion(ctx, "revoke-on-cancel", workflow.DefaultVersion, 1) >= 1 {
				return j.revokeAll(ctx, StageRevoked, OutcomeRevoked, "the joiner was cancelled: access revoked before it closed")
			}
			return j.result, err
		}
		if r := j.revoke; r != nil || j.rescind != nil {
			if r == nil {
				r = j.rescind
			}
			return j.revokeAll(ctx, StageRevoked, OutcomeRevoked, fmt.Sprintf("revoked by %s: %s", orUnknown(r.By), r.Reason))
		}
		moved := j.applyExtensions(ctx)
		j.exportAudit(ctx, false) // extension decisions, granted or refused
		if moved {
			reminded = false
			continue
		}
		if woke {
			if j.continueDue(ctx) && j.quietForContinue(ctx, func() bool {
				return j.revoke == nil && j.rescind == nil && len(j.extensions) == seen
			}) {
				return j.result, j.continueAsNew(ctx)
			}
			continue // a signal, already handled; the deadline has not passed
		}
		if isReminder {
			reminded = true
			j.remindedEnd = j.plan.EndDate
			j.event(ctx, fmt.Sprintf("expiry reminder sent to %s (access ends after %s)", j.plan.Owner, j.plan.EndDate))
			msg := fmt.Sprintf("access of %s ends after %s; extend it with the %q signal {\"endDate\": \"YYYY-MM-DD\", \"by\": \"%s\"}",
				j.result.Username, j.plan.EndDate, SignalExtend, j.plan.Owner)
			if j.signed {
				msg = fmt.Sprintf("access of %s ends after %s; extend it, within the policy's maximum lifetime, in the approval inbox: %s",
					j.result.Username, j.plan.EndDate, j.inboxLink())
			}
			j.notify(ctx, j.plan.Owner, "expiry-reminder", msg)
			continue
		}
		return j.revokeAll(ctx, StageExpired, OutcomeExpired, "end date "+j.plan.EndDate+" passed")
	}
}

// applyExtensions processes queued extension requests: only the owner (or
// an approver of the joiner) may extend, and only within the kind's maximum
// lifetime. Each request is recorded, accepted or refused.
func (j *joiner) applyExtensions(ctx workflow.Context) bool {
	moved := false
	if j.signed {
		// Applied messages are dropped: a flood cannot grow memory.
		for len(j.extensions) > 0 {
			e := j.extensions[0]
			j.extensions = j.extensions[1:]
			j.extSeq++
			moved = j.applySignedExtension(ctx, e, j.extSeq) || moved
		}
		return moved
	}
	for ; j.extSeen < len(j.extensions); j.extSeen++ {
		e := j.extensions[j.extSeen]
		d := Decision{Approver: e.By, Approved: true, At: workflow.Now(ctx), Via: "extend",
			Comment: strings.TrimSpace(fmt.Sprintf("extend to %s %s", e.EndDate, e.Comment))}
		allowed := strings.EqualFold(e.By, j.plan.Owner)
		for _, ap := range j.status.Approvers {
			allowed = allowed || strings.EqualFold(e.By, ap)
		}
		switch {
		case e.By == "":
			d.Refused = "no identity given"
		case !allowed:
			d.Refused = fmt.Sprintf("only the owner %s may extend", j.plan.Owner)
		default:
			if err := j.plan.CheckExtension(e.EndDate); err != nil {
				d.Refused = err.Error()
			}
		}
		if d.Refused != "" {
			d.Approved = false
			j.event(ctx, fmt.Sprintf("refused extension to %q by %q: %s", e.EndDate, e.By, d.Refused))
		} else {
			j.event(ctx, fmt.Sprintf("access extended from %s to %s by %s", j.plan.EndDate, e.EndDate, e.By))
			j.plan.EndDate = e.EndDate
			j.result.EndDate, j.status.EndDate = e.EndDate, e.EndDate
			moved = true
		}
		j.status.Approvals = append(j.status.Approvals, d)
	}
	return moved
}

// revokeAll ends access: it deletes the workload's AppRole and policy,
// removes the groups, destroys the initial credential, disables (not
// deletes: the entry stays for the audit trail) the directory entry, and
// writes the end state back where an HR record exists. Each step is
// idempotent and retried; one that keeps failing becomes the final state.
func (j *joiner) revokeAll(ctx workflow.Context, stage Stage, outcome, why string) (JoinerResult, error) {
	j.setStage(ctx, StageRevoking)
	dctx, cancel := workflow.NewDisconnectedContext(ctx)
	defer cancel()
	dctx = withOptions(dctx, optsCompensation)
	type step struct {
		name string
		kind string
		run  func() error
	}
	var steps []step
	if wl := j.result.Workload; wl != nil {
		steps = append(steps, step{"delete AppRole " + wl.RoleName + " and policy " + wl.PolicyName, "vault-approle", func() error {
			return workflow.ExecuteActivity(dctx, a.RevokeWorkload, activities.RevokeWorkloadInput{Key: j.in.HRISID, Accessor: wl.WrapAccessor}).Get(dctx, nil)
		}})
	}
	for i := len(j.result.Groups) - 1; i >= 0; i-- {
		g := j.result.Groups[i]
		steps = append(steps, step{"remove from " + g, "group-membership", func() error {
			return workflow.ExecuteActivity(dctx, a.RevokeGroup, activities.GroupInput{HRISID: j.in.HRISID, Group: g, MemberDN: j.result.DN}).Get(dctx, nil)
		}})
	}
	if c := j.result.Credential; c != nil {
		steps = append(steps, step{"destroy initial credential " + c.Path, "vault-secret", func() error {
			return workflow.ExecuteActivity(dctx, a.RevokeCredential, activities.RevokeInput{HRISID: j.in.HRISID, Path: c.Path, Accessor: c.WrapAccessor}).Get(dctx, nil)
		}})
	}
	steps = append(steps, step{"disable directory entry " + j.result.DN, "ldap-entry", func() error {
		return workflow.ExecuteActivity(dctx, a.DisableAccount, activities.AccountRef{HRISID: j.in.HRISID, DN: j.result.DN,
			NonHuman: j.in.Request != nil}).Get(dctx, nil)
	}})
	if owned := j.plan.WriteBackFor(j.result.Username); j.hasHRRecord() && owned[AccessStatusField] != "" {
		steps = append(steps, step{"write " + AccessStatusField + "=" + outcome + " to the HRIS", "hris-field", func() error {
			var out activities.WriteBackOutput
			return workflow.ExecuteActivity(dctx, a.WriteBack, activities.WriteBackInput{HRISID: j.in.HRISID,
				Want:     map[string]string{AccessStatusField: outcome},
				Expected: map[string]string{AccessStatusField: owned[AccessStatusField]}}).Get(dctx, &out)
		}})
	}
	var errs []error
	j.cont.unwinding(unwindRevoke, stage, outcome, why)
	for _, s := range steps {
		if slices.Contains(j.result.Revoked, s.name) {
			continue // revoked by the run this one continues (continued.go)
		}
		if err := j.persist(ctx, dctx, s.name, s.run); err != nil {
			if isContinueAsNew(err) {
				return j.result, err // the next run revokes what is left
			}
			errs = append(errs, fmt.Errorf("%s: %w", s.name, err))
			j.event(ctx, "could not "+s.name+": "+rootMessage(err))
			continue
		}
		j.result.Revoked = append(j.result.Revoked, s.name)
		now := workflow.Now(ctx)
		for i := range j.status.Resources {
			r := &j.status.Resources[i]
			if r.Kind == s.kind && r.UndoneAt == nil && (s.kind != "group-membership" || strings.HasSuffix(s.name, " "+r.ID)) {
				r.UndoneAt = &now
				if s.kind == "ldap-entry" {
					r.Detail = "disabled"
				}
				break
			}
		}
	}
	j.result.Error = why
	if len(errs) > 0 {
		j.setStage(ctx, StageCompensationFailed)
		j.result.Outcome, j.result.Stage = OutcomeCompensationFailed, StageCompensationFailed
		j.finish()
		return j.result, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("joiner %s: %s, and revocation left access behind: %v", j.in.HRISID, why, errors.Join(errs...)),
			ErrTypeCompensationFailed, nil, j.result)
	}
	j.setStage(ctx, stage)
	j.result.Outcome, j.result.Stage = outcome, stage
	j.finish()
	j.notify(ctx, j.plan.Owner, "outcome", fmt.Sprintf("access of %s ended: %s", j.result.Username, why))
	_ = workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) })
	return j.result, nil
}
