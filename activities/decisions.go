package activities

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/joinery/joinery/connectors/directory"
	"github.com/joinery/joinery/internal/decision"
)

// People is what the approval checks need from the directory: a person's
// entry by username, with whether it is disabled.
type People interface {
	LookupPerson(ctx context.Context, username string) (*directory.PersonStatus, error)
}

// DecisionTrust is what a joiner records, once, about who may sign its
// decisions: the inbox's public keys, how old a decision may be, and where
// the inbox is. Recording it in history makes verification deterministic on
// replay and lets a key rotate without breaking joiners that started before.
type DecisionTrust struct {
	Keys     []decision.PublicKey `json:"keys"`
	MaxAge   time.Duration        `json:"maxAge"`
	InboxURL string               `json:"inboxUrl,omitempty"`
}

// ErrTypeNoDecisionKeys means the worker has no inbox public key, so no
// decision could ever be verified; the joiner must not start waiting.
const ErrTypeNoDecisionKeys = "NoDecisionKeys"

// TrustedDecisionKeys returns the worker's configured decision trust.
func (a *Activities) TrustedDecisionKeys(ctx context.Context) (DecisionTrust, error) {
	if len(a.DecisionKeys) == 0 {
		return DecisionTrust{}, temporal.NewNonRetryableApplicationError(
			"the worker has no decision public keys (JOINERY_DECISION_PUBLIC_KEYS): no approval could be verified",
			ErrTypeNoDecisionKeys, nil)
	}
	maxAge := a.DecisionMaxAge
	if maxAge <= 0 {
		maxAge = 15 * time.Minute
	}
	return DecisionTrust{Keys: a.DecisionKeys, MaxAge: maxAge, InboxURL: a.InboxURL}, nil
}

// ApproversInput names the people whose standing the approval depends on.
type ApproversInput struct {
	// Key is the joiner asking (its HRIS ID or non-human key): only a
	// Joiner may learn people's standing, and only for itself.
	Key       string   `json:"key,omitempty"`
	Usernames []string `json:"usernames"`
}

// ApproverStanding says whether one person may approve at all right now.
type ApproverStanding struct {
	Username string `json:"username"`
	Active   bool   `json:"active"`
	// Reason says why not (no directory entry, disabled, inactive in HR).
	Reason string `json:"reason,omitempty"`
}

// CheckApprovers reads, live, whether each person is an active person in
// the directory and the HRIS. A manager who left between the request and
// the decision is not active, and the workflow escalates instead of waiting
// on, or accepting, their decision.
func (a *Activities) CheckApprovers(ctx context.Context, in ApproversInput) ([]ApproverStanding, error) {
	if _, err := a.admit(ctx, "check-approvers", in.Key, fmt.Sprintf("standing of %d people", len(in.Usernames))); err != nil {
		return nil, err
	}
	if len(in.Usernames) > 20 {
		return nil, temporal.NewNonRetryableApplicationError("at most 20 approvers per check", ErrTypeInvalidJoiner, nil)
	}
	out := make([]ApproverStanding, 0, len(in.Usernames))
	for _, u := range in.Usernames {
		st, err := a.standing(ctx, u)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

func (a *Activities) standing(ctx context.Context, username string) (ApproverStanding, error) {
	st := ApproverStanding{Username: username}
	if a.People == nil {
		return st, temporal.NewNonRetryableApplicationError("no directory lookup configured for approver checks", ErrTypeInvalidJoiner, nil)
	}
	if !safeName.MatchString(username) {
		st.Reason = "not a valid username"
		return st, nil
	}
	p, err := a.People.LookupPerson(ctx, username)
	if err != nil {
		return st, classify(err)
	}
	switch {
	case p == nil:
		st.Reason = "no directory entry"
	case p.Disabled:
		st.Reason = "directory account disabled"
	case p.EmployeeID == "":
		st.Reason = "directory entry has no employee number linking it to the HRIS"
	}
	if st.Reason != "" {
		return st, nil
	}
	w, err := a.HRIS.GetWorker(ctx, p.EmployeeID)
	if err != nil {
		if isNotFound(err) {
			st.Reason = fmt.Sprintf("no HR record %s", p.EmployeeID)
			return st, nil
		}
		return st, classify(err)
	}
	if !strings.EqualFold(w.Status, "Active") {
		st.Reason = fmt.Sprintf("HR status %s", statusOrNone(w.Status))
		return st, nil
	}
	if w.TerminationDate != "" {
		if end, err := time.Parse(time.DateOnly, w.TerminationDate); err == nil && !end.After(time.Now()) {
			st.Reason = "left on " + w.TerminationDate
			return st, nil
		}
	}
	st.Active = true
	return st, nil
}

func isNotFound(err error) bool {
	var ae *temporal.ApplicationError
	if errors.As(classify(err), &ae) {
		return ae.Type() == "HRISNotFound"
	}
	return false
}

func statusOrNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
