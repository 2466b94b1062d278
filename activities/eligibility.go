package activities

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/joinery/joinery/connectors"
	"github.com/joinery/joinery/connectors/hris"
	"github.com/joinery/joinery/internal/policy"
)

// ErrTypeNotEligible is the application error type of a refused HR record.
const ErrTypeNotEligible = "NotEligible"

// ErrNotEligible matches every *IneligibleError (errors.Is).
var ErrNotEligible = errors.New("not eligible for a joiner")

// Reasons an HR record gets no joiner. They are stable: the intake returns
// them in its 422 answers and scripts may match them.
const (
	ReasonNotFound           = "not-found"
	ReasonInactive           = "inactive"
	ReasonTerminated         = "terminated"
	ReasonRehire             = "rehire"
	ReasonKindMismatch       = "kind-mismatch"
	ReasonAlreadyProvisioned = "already-provisioned"
	ReasonNoHireDate         = "no-hire-date"
	ReasonHireDatePassed     = "hire-date-passed"
)

// IneligibleError says why an HR record is not a pending hire and gets no
// joiner. The HR record decides, never the caller.
type IneligibleError struct {
	HRISID string `json:"hrisId"`
	// Reason is one of the Reason* constants.
	Reason string `json:"reason"`
	// Field is the HR field that decided (status, hireDate, customUsername...).
	Field string `json:"field,omitempty"`
	// Detail says it in words.
	Detail string `json:"detail"`
}

// Error renders "HR record ID: not eligible for a joiner (reason): detail".
func (e *IneligibleError) Error() string {
	return fmt.Sprintf("HR record %s: not eligible for a joiner (%s): %s", e.HRISID, e.Reason, e.Detail)
}

// Is makes errors.Is(err, ErrNotEligible) true.
func (e *IneligibleError) Is(target error) bool { return target == ErrNotEligible }

// EligibilityRules are the policy's side of the decision.
type EligibilityRules struct {
	// MaxDaysSinceHire is how far in the past a hire date may be
	// (policy intake.max_days_since_hire; 0: today or later).
	MaxDaysSinceHire int `json:"maxDaysSinceHire"`
	// OwnedFields are the HRIS fields Joinery writes back (policy
	// writeback): one of them set means a joiner already ran.
	OwnedFields []string `json:"ownedFields,omitempty"`
}

// RulesFromPolicy maps the policy's intake section onto EligibilityRules.
func RulesFromPolicy(in policy.Intake) EligibilityRules {
	return EligibilityRules{MaxDaysSinceHire: in.MaxDaysSinceHire, OwnedFields: in.WriteBack}
}

// pendingCutoff is the earliest hire date that is still pending at now.
// "Today" is taken in the last time zone on Earth (UTC-12): a hire dated
// today in Honolulu must not be refused because it is already tomorrow in
// UTC. Past that, MaxDaysSinceHire is the policy's grace.
func pendingCutoff(now time.Time, graceDays int) string {
	return now.UTC().Add(-12*time.Hour).AddDate(0, 0, -graceDays).Format(time.DateOnly)
}

// Eligible decides whether HR record w is a pending hire that may get a
// joiner, and of which kind. owned holds the current values of the fields
// Joinery writes back (rules.OwnedFields; missing means empty). The checks,
// in order:
//
//   - Inactive status: not a joiner.
//   - A termination date before the hire date: a rehire, which has its own
//     path (not this one).
//   - A termination date today or earlier: the person has left.
//   - A requested kind other than the one HR's employment status gives:
//     the caller does not choose the kind.
//   - The username (or any owned field) already set: provisioned before.
//     This is HR's own record, so it holds however long ago that was and
//     whether or not Temporal still remembers the joiner.
//   - No hire date, or one more than the grace in the past: not pending.
func Eligible(w hris.Worker, owned map[string]string, requestedKind string, rules EligibilityRules, now time.Time) (string, error) {
	refuse := func(reason, field, format string, args ...any) (string, error) {
		return "", &IneligibleError{HRISID: w.ID, Reason: reason, Field: field, Detail: fmt.Sprintf(format, args...)}
	}
	today := now.UTC().Format(time.DateOnly)
	hire, term := strings.TrimSpace(w.HireDate), strings.TrimSpace(w.TerminationDate)
	if !strings.EqualFold(strings.TrimSpace(w.Status), "Active") {
		status := w.Status
		if status == "" {
			status = "(empty)"
		}
		return refuse(ReasonInactive, hris.FieldStatus, "HR status is %s, not Active", status)
	}
	if term != "" && hire != "" && term < hire {
		return refuse(ReasonRehire, hris.FieldTerminationDate,
			"looks like a rehire (left %s, hire date %s): a rehire is not started as a new joiner; an operator starts the explicit, approved rehire path with `starter rehire %s`", term, hire, w.ID)
	}
	if term != "" && term <= today {
		return refuse(ReasonTerminated, hris.FieldTerminationDate, "terminated on %s", term)
	}
	kind := kindFromHR(w)
	if requestedKind != "" && requestedKind != kind {
		msg := fmt.Sprintf("the HR record makes this joiner a %s (employment status %q); a request for %q is refused, not obeyed", kind, w.EmploymentStatus, requestedKind)
		if !policy.IsHumanKind(requestedKind) {
			msg += "; non-human joiners are requested with `starter request`, never from a person's HR record"
		}
		return refuse(ReasonKindMismatch, "kind", "%s", msg)
	}
	if u := strings.TrimSpace(w.Username); u != "" {
		return refuse(ReasonAlreadyProvisioned, "username", "HR already knows the username %q (hire date %s): this person has an account", u, hireOrNone(hire))
	}
	for _, f := range rules.OwnedFields {
		if v := strings.TrimSpace(owned[f]); v != "" {
			return refuse(ReasonAlreadyProvisioned, f, "%s is already set (%q), a field only Joinery writes back: a joiner ran for this record", f, clipValue(v))
		}
	}
	if hire == "" {
		return refuse(ReasonNoHireDate, hris.FieldHireDate, "no hire date: not a pending hire")
	}
	if cutoff := pendingCutoff(now, rules.MaxDaysSinceHire); hire < cutoff {
		return refuse(ReasonHireDatePassed, hris.FieldHireDate,
			"hire date %s is past (policy intake.max_days_since_hire = %d): someone who already works here is not a new joiner", hire, rules.MaxDaysSinceHire)
	}
	return kind, nil
}

// hireOrNone is its own helper (not decisions.go's orNone) so that the
// wording of this refusal does not change with another file's.
func hireOrNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func clipValue(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// CheckEligibleInput names the joiner to check.
type CheckEligibleInput struct {
	HRISID string `json:"hrisId"`
	// Kind is the kind the joiner was started with ("" = from HR).
	Kind string `json:"kind,omitempty"`
}

// EligibleResult is the kind the HR record gives.
type EligibleResult struct {
	Kind string `json:"kind"`
}

// Eligibility holds the CheckEligible activity. It is its own struct (not
// a field of Activities) because its rules come from the policy's intake
// section, which the worker reads with policy.LoadIntake.
type Eligibility struct {
	HRIS  HRIS
	Rules EligibilityRules
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// CheckEligible is Eligible against the live HR record: the workflow's own
// check (defence in depth) of what the intake and run.StartJoiner checked
// before starting it. A refusal is a non-retryable NotEligible error whose
// details are the *IneligibleError; HRIS faults are classified as usual.
func (e *Eligibility) CheckEligible(ctx context.Context, in CheckEligibleInput) (EligibleResult, error) {
	kind, err := CheckRecord(ctx, e.HRIS, in.HRISID, in.Kind, e.Rules, e.now())
	var ie *IneligibleError
	if errors.As(err, &ie) {
		return EligibleResult{}, temporal.NewNonRetryableApplicationError(ie.Error(), ErrTypeNotEligible, nil, *ie)
	}
	if err != nil {
		return EligibleResult{}, classify(err)
	}
	return EligibleResult{Kind: kind}, nil
}

func (e *Eligibility) now() time.Time {
	if e.Now == nil {
		return time.Now()
	}
	return e.Now()
}

// CheckRecord reads HR record id and decides with Eligible. A record the
// HRIS does not have is an *IneligibleError (not-found); other HRIS errors
// are returned as they are (connector errors, classified by the caller).
func CheckRecord(ctx context.Context, hr HRIS, id, requestedKind string, rules EligibilityRules, now time.Time) (string, error) {
	w, err := hr.GetWorker(ctx, id)
	if err != nil {
		var ce *connectors.Error
		if errors.As(err, &ce) && ce.Type == hris.TypeNotFound {
			return "", &IneligibleError{HRISID: id, Reason: ReasonNotFound, Field: "hrisId", Detail: "the HRIS has no employee with this ID"}
		}
		return "", err
	}
	if w.ID == "" {
		w.ID = id
	}
	owned := map[string]string{hris.FieldWorkEmail: w.WorkEmail}
	var extra []string
	for _, f := range rules.OwnedFields {
		if f != hris.FieldWorkEmail && !slices.Contains(extra, f) {
			extra = append(extra, f)
		}
	}
	if len(extra) > 0 {
		v, err := hr.GetFields(ctx, id, extra)
		if err != nil {
			return "", err
		}
		for k, val := range v {
			owned[k] = val
		}
	}
	return Eligible(w, owned, requestedKind, rules, now)
}
