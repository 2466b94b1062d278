package intake

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/joinery/joinery/connectors/hris"
	"github.com/joinery/joinery/workflows"
)

// Outcomes beyond run.StartOutcome that intake answers report.
const (
	// OutcomeSignalled: the running joiner received a signal.
	OutcomeSignalled = "signalled"
	// OutcomeIgnored: nothing to do (the detail says why).
	OutcomeIgnored = "ignored"
	// OutcomeInvalid: the row was refused; nothing was started.
	OutcomeInvalid = "invalid"
	// OutcomeError: Temporal could not be reached; retry.
	OutcomeError = "error"
)

// webhookActor is who the joiner records as the sender of HRIS-driven
// starts and signals.
const webhookActor = "hris-webhook"

// EventResult is what the webhook did with one event of a delivery.
type EventResult struct {
	Index      int    `json:"index"`
	HRISID     string `json:"hrisId"`
	Action     string `json:"action"`
	Outcome    string `json:"outcome"`
	Signal     string `json:"signal,omitempty"`
	WorkflowID string `json:"workflowId,omitempty"`
	UIURL      string `json:"uiUrl,omitempty"`
	Detail     string `json:"detail,omitempty"`
	// Reason is the refusal's reason code (outcome refused).
	Reason string `json:"reason,omitempty"`
	Error  string `json:"error,omitempty"`
}

// WebhookAnswer is the body of a webhook answer.
type WebhookAnswer struct {
	Results []EventResult `json:"results"`
}

// eventStep is what one event asks for.
type eventStep int

const (
	stepStart eventStep = iota
	stepMoveStart
	stepRescind
	stepIgnore
)

// eventPlan is the decision for one validated event, made before anything
// is started so that one bad event in a delivery starts nothing at all.
type eventPlan struct {
	ev      hris.WebhookEvent
	joiner  Joiner
	step    eventStep
	rescind workflows.RescindSignal
	move    workflows.StartDateSignal
	detail  string
}

// webhookFields maps Joiner fields to the HRIS field names they come from,
// so an error names the field as the HRIS sent it.
var webhookFields = map[string]string{
	"hireDate":   "hireDate",
	"email":      "workEmail",
	"firstName":  "firstName",
	"lastName":   "lastName",
	"department": "department",
	"managerId":  "supervisorEId",
}

// planEvent validates event i and decides what it asks for:
//
//   - Created → start a joiner.
//   - Deleted → rescind the running joiner, if any.
//   - Updated with status changed to Inactive, or with a termination date
//     set that falls on or before the hire date (or is already past) — the
//     offer was withdrawn before the start → rescind.
//   - Updated with a changed hire date → the start-date signal (or, for an
//     employee Joinery has no running joiner for, a start).
//   - Any other Updated → a start, but only for a pending hire (a hire date
//     today or later): an edit to someone who already works here is not a
//     new joiner. For a known joiner it collapses into "already running" /
//     "already done" and changes nothing.
func planEvent(i int, ev hris.WebhookEvent, today string) (eventPlan, *FieldError) {
	f := ev.Fields
	p := eventPlan{ev: ev}
	eventID := ev.Action + ":" + ev.EmployeeID
	if !ev.Timestamp.IsZero() {
		// Stable across the HRIS's retries of one event (each retry is
		// signed afresh, but the event's own timestamp stays).
		eventID += ":" + ev.Timestamp.UTC().Format("20060102T150405Z")
	}
	j, err := Normalize(Joiner{
		HRISID: ev.EmployeeID, RequestedBy: webhookActor, EventID: "bamboohr:" + eventID,
		HireDate: f["hireDate"], Email: f["workEmail"], FirstName: f["firstName"], LastName: f["lastName"],
		Department: f["department"], ManagerID: f["supervisorEId"],
	})
	prefix := fmt.Sprintf("employees[%d].", i)
	if err != nil {
		fe := err.(*FieldError)
		name := "id"
		if hf, ok := webhookFields[fe.Field]; ok {
			name = "fields." + hf
		}
		return p, &FieldError{Field: prefix + name, Reason: fe.Reason}
	}
	p.joiner = j
	term := strings.TrimSpace(f["terminationDate"])
	if fe := checkDate("terminationDate", term); fe != nil {
		return p, &FieldError{Field: prefix + "fields.terminationDate", Reason: fe.Reason}
	}
	status := strings.TrimSpace(f["status"])
	if status != "" && !strings.EqualFold(status, "Active") && !strings.EqualFold(status, "Inactive") {
		return p, &FieldError{Field: prefix + "fields.status", Reason: fmt.Sprintf("%q: want Active or Inactive", clip(status, 40))}
	}
	inactive := strings.EqualFold(status, "Inactive")
	changed := func(name string) bool { return slices.Contains(ev.ChangedFields, name) }

	switch ev.Action {
	case hris.ActionCreated:
		if inactive {
			p.step, p.detail = stepIgnore, "employee created as Inactive"
			return p, nil
		}
		p.step = stepStart
	case hris.ActionDeleted:
		p.step = stepRescind
		p.rescind = workflows.RescindSignal{By: webhookActor, Reason: "employee record deleted in the HRIS"}
	default: // Updated
		switch {
		case changed("status") && inactive:
			p.step = stepRescind
			p.rescind = workflows.RescindSignal{By: webhookActor, Reason: "HRIS status set to Inactive"}
		case changed("terminationDate") && term != "" && (j.HireDate == "" || term <= j.HireDate || term <= today):
			p.step = stepRescind
			p.rescind = workflows.RescindSignal{By: webhookActor, Reason: fmt.Sprintf("termination date %s set before the start", term)}
		case inactive || (term != "" && term <= today):
			p.step, p.detail = stepIgnore, "employee is inactive or has left"
		case changed("hireDate") && j.HireDate == "":
			p.step, p.detail = stepIgnore, "hire date cleared; the joiner keeps its date"
		case changed("hireDate"):
			p.step = stepMoveStart
			p.move = workflows.StartDateSignal{HireDate: j.HireDate, By: webhookActor}
		case j.HireDate == "" || j.HireDate < today:
			p.step, p.detail = stepIgnore, "not a pending hire (start date unknown or passed): an update, not a new joiner"
		default:
			p.step = stepStart
		}
	}
	return p, nil
}

// handleWebhook is POST /hris/webhook. Unsigned, badly signed, stale and
// replayed deliveries get 401; a malformed or invalid payload 400, too many
// events 413, over the webhook rate 429; in all these cases nothing is
// started. Otherwise every event is carried out in order and the answer
// lists a result per event: 200; 503 when any event hit a Temporal error so
// that the HRIS retries (its retry is signed afresh, and what already
// happened collapses into "already running"); 503 with Retry-After when the
// blast-radius hold had no room for an event (outcome hold-full); 422 when
// every event was refused (not a pending hire), 202 when every event was
// held.
func (s *Server) handleWebhook(w http.ResponseWriter, r *http.Request) {
	body, status, fe := readBody(w, r, orInt64(s.MaxBody, DefaultMaxBody))
	if fe != nil {
		writeError(w, status, fe)
		return
	}
	if s.Verifier == nil {
		writeError(w, http.StatusUnauthorized, &FieldError{Field: hris.SignatureHeader, Reason: "webhook verification is not configured; refusing unsigned input"})
		return
	}
	events, err := s.Verifier.Verify(body, r.Header.Get(hris.SignatureHeader), r.Header.Get(hris.TimestampHeader))
	if err != nil {
		code, fe := verifyError(err)
		s.logger().Warn("webhook refused", "request_id", requestID(r.Context()), "reason", fe.Reason)
		writeError(w, code, fe)
		return
	}
	if max := orInt(s.MaxWebhookEvents, DefaultMaxWebhookEvents); len(events) > max {
		writeError(w, http.StatusRequestEntityTooLarge, fieldErr("employees", "%d events in one delivery, at most %d", len(events), max))
		return
	}
	// After the signature: only the HRIS's own deliveries use up its tokens.
	if !s.allow(w, r, SourceWebhook, false) {
		return
	}
	today := s.now().UTC().Format(time.DateOnly)
	plans := make([]eventPlan, 0, len(events))
	for i, ev := range events {
		p, fe := planEvent(i, ev, today)
		if fe != nil {
			s.logger().Warn("webhook payload invalid", "request_id", requestID(r.Context()), "field", fe.Field)
			writeError(w, http.StatusBadRequest, fe)
			return
		}
		plans = append(plans, p)
	}
	ans := WebhookAnswer{Results: make([]EventResult, 0, len(plans))}
	errored, full, refused, held, other := false, false, false, false, false
	for i, p := range plans {
		res := s.carryOut(r.Context(), i, p)
		switch res.Outcome {
		case OutcomeError:
			errored = true
		case OutcomeHoldFull:
			full = true
		case OutcomeRefused:
			refused = true
		case OutcomeHeld:
			held = true
		default:
			other = true
		}
		attrs := []slog.Attr{slog.String("hris_id", res.HRISID), slog.String("action", res.Action),
			slog.String("signal", res.Signal), slog.String("event_id", p.joiner.EventID)}
		if res.Error != "" {
			attrs = append(attrs, slog.String("err", res.Error))
		}
		s.logRow(r.Context(), SourceWebhook, res.Outcome, res.Reason, attrs...)
		ans.Results = append(ans.Results, res)
	}
	code := http.StatusOK
	switch {
	case errored:
		code = http.StatusServiceUnavailable // the HRIS retries; what happened collapses
	case full:
		// The hold had no room for an event: nothing of it was started or
		// held, and the HRIS must send it again. 503 with Retry-After, not
		// the 429 the API answers: BambooHR retries a webhook only on 5xx
		// (five times, 5 to 80 minutes apart) and never retries a 4xx, 429
		// included, so a 429 would lose the event for good. The events
		// that went through collapse into "already running" on the retry.
		// The access log and the metrics say hold-full, not unavailable.
		code = http.StatusServiceUnavailable
		noteOutcome(r.Context(), OutcomeHoldFull)
		s.setHoldFullRetryAfter(w)
	case refused && !held && !other:
		code = http.StatusUnprocessableEntity // every event refused: nothing to retry
	case held && !refused && !other:
		code = http.StatusAccepted
	}
	writeJSON(w, code, ans)
}

// verifyError maps a Verifier error to its answer. The reasons are the
// verifier's categories, never the expected signature.
func verifyError(err error) (int, *FieldError) {
	switch {
	case errors.Is(err, hris.ErrMalformedPayload):
		return http.StatusBadRequest, &FieldError{Field: "body", Reason: err.Error()}
	case errors.Is(err, hris.ErrStale):
		return http.StatusUnauthorized, &FieldError{Field: hris.TimestampHeader, Reason: "timestamp outside the accepted window"}
	case errors.Is(err, hris.ErrReplayed):
		return http.StatusUnauthorized, &FieldError{Field: hris.SignatureHeader, Reason: "delivery already accepted (replay)"}
	case errors.Is(err, hris.ErrMalformedHeader):
		return http.StatusUnauthorized, &FieldError{Field: hris.SignatureHeader, Reason: "missing or malformed signature headers"}
	case errors.Is(err, hris.ErrNoSecret):
		return http.StatusUnauthorized, &FieldError{Field: hris.SignatureHeader, Reason: "webhook verification is not configured; refusing unsigned input"}
	default:
		return http.StatusUnauthorized, &FieldError{Field: hris.SignatureHeader, Reason: "signature does not verify"}
	}
}

// carryOut performs one planned event. Starts and rescinds go through the
// eligibility check and the blast-radius guard (guardedStart,
// guardedRescind); a moved start date is a signal and is not guarded (it
// changes when, not whether).
func (s *Server) carryOut(ctx context.Context, i int, p eventPlan) EventResult {
	res := EventResult{Index: i, HRISID: p.joiner.HRISID, Action: p.ev.Action, WorkflowID: workflows.JoinerWorkflowID(p.joiner.HRISID)}
	switch p.step {
	case stepIgnore:
		res.Outcome, res.Detail = OutcomeIgnored, p.detail
		return res
	case stepRescind:
		res.Signal = workflows.SignalRescind
		sctx, cancel := s.startCtx(ctx)
		defer cancel()
		o := guardedRescind(sctx, s.Starter, p.joiner.HRISID, p.rescind, "webhook")
		switch {
		case errors.Is(o.err, ErrHoldFull):
			res.Outcome, res.Error = OutcomeHoldFull, o.err.Error()
		case o.err != nil:
			res.Outcome, res.Error = OutcomeError, o.err.Error()
		case o.held != nil:
			res.Outcome, res.Detail = OutcomeHeld, o.held.Detail+" (hold key "+o.held.Key+")"
		case o.signalled:
			res.Outcome, res.Detail = OutcomeSignalled, p.rescind.Reason
		default:
			res.Outcome, res.Detail = OutcomeIgnored, o.ignored
		}
		return res
	case stepMoveStart:
		res.Signal = workflows.SignalStartDateChange
		err := s.signal(ctx, p.joiner.HRISID, workflows.SignalStartDateChange, p.move)
		switch {
		case err == nil:
			res.Outcome, res.Detail = OutcomeSignalled, "hire date moved to "+p.move.HireDate
			return res
		case !errors.Is(err, ErrNoRunningJoiner):
			res.Outcome, res.Error = OutcomeError, err.Error()
			return res
		}
		// No running joiner: an employee Joinery has not seen yet. Start
		// one; it reads the HR record, new date included.
		res.Signal = ""
	}
	ctx, cancel := s.startCtx(ctx)
	defer cancel()
	o := guardedStart(ctx, s.Starter, p.joiner.Input("webhook"))
	switch {
	case errors.Is(o.err, ErrHoldFull):
		res.Outcome, res.Error = OutcomeHoldFull, o.err.Error()
	case o.err != nil:
		res.Outcome, res.Error = OutcomeError, o.err.Error()
	case o.refusal != nil:
		res.Outcome, res.Reason, res.Detail = OutcomeRefused, o.refusal.Reason, o.refusal.Error
	case o.held != nil:
		res.Outcome, res.Detail = OutcomeHeld, o.held.Detail+" (hold key "+o.held.Key+")"
	default:
		res.Outcome, res.WorkflowID, res.UIURL = string(o.res.Outcome), o.res.WorkflowID, o.res.UIURL
	}
	return res
}

func (s *Server) signal(ctx context.Context, hrisID, name string, payload any) error {
	ctx, cancel := s.startCtx(ctx)
	defer cancel()
	return s.Signal(ctx, hrisID, name, payload)
}
