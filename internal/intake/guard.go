package intake

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/joinery/joinery/activities"
	"github.com/joinery/joinery/internal/run"
	"github.com/joinery/joinery/workflows"
)

// Outcomes of the eligibility check and the blast-radius guard.
const (
	// OutcomeRefused: the HR record is not a pending hire (422); nothing
	// was started and nothing is held.
	OutcomeRefused = "refused"
	// OutcomeHeld: accepted (202) but held for an operator by the
	// blast-radius guard; `starter hold release` carries it out.
	OutcomeHeld = "held"
)

// OutcomeHoldFull: the blast-radius hold had no room for the item (it
// holds its maximum, by count or size, until an operator releases or
// discards). Nothing was started, nothing is held: the sender must send it
// again later. Answered 429 with Retry-After where the sender retries on
// 429, and 503 with Retry-After on the webhook (see handleWebhook).
const OutcomeHoldFull = "hold-full"

// ErrHoldFull matches the error of an admission the full hold refused.
var ErrHoldFull = errors.New("the blast-radius hold is full")

// DefaultHoldFullRetryAfter is the Retry-After of a hold-full answer. Room
// comes back only when an operator releases or discards held items (the
// JoineryIntakeHoldFull alert asks them to), so retrying sooner than
// minutes only adds load.
const DefaultHoldFullRetryAfter = 5 * time.Minute

// holdFullPrefix is how the hold workflow's admit validator begins its
// refusal of a full hold (workflows/hold.go validateAdmit). The update's
// rejection reaches the client as an application error carrying that
// message and nothing more specific; the integration test
// TestIntegrationHoldFullAnswers429 runs the real hold, so a change of
// wording there fails here rather than turning 429s back into 503s.
const holdFullPrefix = "the hold is full ("

// holdFull reports whether err is the hold's refusal for lack of room.
func holdFull(err error) bool {
	var ae *temporal.ApplicationError
	return errors.As(err, &ae) && strings.HasPrefix(ae.Message(), holdFullPrefix)
}

// admitErr wraps an admission error: a full hold matches ErrHoldFull and
// keeps the hold's words (how many items, how many bytes).
func admitErr(err error) error {
	if holdFull(err) {
		var ae *temporal.ApplicationError
		errors.As(err, &ae)
		return fmt.Errorf("%w: %s", ErrHoldFull, ae.Message())
	}
	return fmt.Errorf("blast-radius hold: %w", err)
}

// holdFullError is the JSON error of a hold-full answer.
func holdFullError(err error) *FieldError {
	return &FieldError{Field: "hold", Reason: err.Error() + "; nothing was started or held: send it again after Retry-After"}
}

// Refusal is the 422 answer for an HR record that gets no joiner.
type Refusal struct {
	HRISID string `json:"hrisId"`
	// Outcome is always "refused".
	Outcome string `json:"outcome"`
	// Reason is the stable reason code (activities.Reason*).
	Reason string `json:"reason"`
	// Field is the HR field that decided.
	Field string `json:"field,omitempty"`
	// Error says it in words.
	Error string `json:"error"`
}

func refusalOf(ie *activities.IneligibleError) Refusal {
	return Refusal{HRISID: ie.HRISID, Outcome: OutcomeRefused, Reason: ie.Reason, Field: ie.Field, Error: ie.Detail}
}

// HeldAnswer is the 202 answer for a start or rescind the guard held.
type HeldAnswer struct {
	HRISID string `json:"hrisId"`
	// Outcome is always "held".
	Outcome string `json:"outcome"`
	// Action is start or rescind.
	Action string `json:"action"`
	// Key names the item for `starter hold release KEY`.
	Key string `json:"key"`
	// WorkflowID is the joiner the item concerns.
	WorkflowID string `json:"workflowId"`
	Detail     string `json:"detail"`
	// Queued is how many of this action wait in the hold.
	Queued int `json:"queued"`
}

// outcome is what the guarded start or rescind of one record did. Exactly
// one of its parts is set, or none for a rescind with nothing to rescind.
type outcome struct {
	res     *run.StartResult
	held    *HeldAnswer
	refusal *Refusal
	err     error
	// signalled / ignored are the rescind's outcomes.
	signalled bool
	ignored   string
}

// holdAnswer renders an admission that held it.
func holdAnswer(item workflows.HoldItem, a workflows.Admission) *HeldAnswer {
	detail := a.Reason
	if a.AlreadyHeld {
		detail = "already held; waiting for an operator"
	}
	return &HeldAnswer{HRISID: item.HRISID, Outcome: OutcomeHeld, Action: item.Action, Key: item.Key(),
		WorkflowID: workflows.JoinerWorkflowID(item.HRISID), Detail: detail, Queued: a.Queued}
}

// guardedStart is the one start path of every intake route:
//
//  1. the HR record decides (eligibility, kind); a refusal is final, except
//     that a provisioned record whose joiner Temporal still knows answers
//     "already done" (repeated deliveries collapse as before);
//  2. an existing joiner answers "already running/done" without counting
//     against the blast radius (a redelivery is not a new joiner);
//  3. the hold admits it or holds it;
//  4. admitted, it is started (run.StartJoiner checks the record again).
func guardedStart(ctx context.Context, st Starter, in workflows.JoinerInput) outcome {
	checked, err := st.Eligible(ctx, in)
	if err != nil {
		var ie *activities.IneligibleError
		if !errors.As(err, &ie) {
			return outcome{err: err}
		}
		if run.CollapsesOnExisting(err) {
			if ex, ok, xerr := st.Existing(ctx, in.HRISID); xerr == nil && ok {
				return outcome{res: &ex}
			}
		}
		r := refusalOf(ie)
		return outcome{refusal: &r}
	}
	if ex, ok, err := st.Existing(ctx, in.HRISID); err != nil {
		return outcome{err: err}
	} else if ok {
		return outcome{res: &ex}
	}
	item := workflows.HoldItem{Action: workflows.HoldStart, HRISID: checked.HRISID, Input: &checked, Source: checked.Source}
	adm, err := st.Admit(ctx, item)
	if err != nil {
		return outcome{err: admitErr(err)}
	}
	if !adm.Admitted {
		return outcome{held: holdAnswer(item, adm)}
	}
	res, err := st.Start(ctx, checked)
	var ie *activities.IneligibleError
	if errors.As(err, &ie) {
		// The record changed between the two reads: the second one counts.
		r := refusalOf(ie)
		return outcome{refusal: &r}
	}
	if err != nil {
		return outcome{err: err}
	}
	return outcome{res: &res}
}

// guardedRescind sends a rescind through the hold. Only a rescind that has
// a running joiner to go to counts against the blast radius: a burst of
// terminations of people who are long employed (no joiner) changes
// nothing, is not held, and must not use up the window that protects real
// rescinds.
func guardedRescind(ctx context.Context, st Starter, hrisID string, sig workflows.RescindSignal, source string) outcome {
	ex, ok, err := st.Existing(ctx, hrisID)
	if err != nil {
		return outcome{err: err}
	}
	if !ok || ex.Outcome != run.AlreadyRunning {
		return outcome{ignored: "no running joiner to rescind"}
	}
	item := workflows.HoldItem{Action: workflows.HoldRescind, HRISID: hrisID, Rescind: &sig, Source: source}
	adm, err := st.Admit(ctx, item)
	if err != nil {
		return outcome{err: admitErr(err)}
	}
	if !adm.Admitted {
		return outcome{held: holdAnswer(item, adm)}
	}
	err = st.Signal(ctx, hrisID, workflows.SignalRescind, sig)
	switch {
	case err == nil:
		return outcome{signalled: true}
	case errors.Is(err, ErrNoRunningJoiner):
		return outcome{ignored: "no running joiner to rescind"}
	}
	return outcome{err: err}
}
