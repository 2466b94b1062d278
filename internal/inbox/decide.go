package inbox

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/joinery/joinery/internal/decision"
	"github.com/joinery/joinery/workflows"
)

// decideRequest is one person's decision as a page or the API received it.
type decideRequest struct {
	WorkflowID string
	Action     decision.Action
	Comment    string
	EndDate    string
	// PlanHash, when set, is the hash of the plan the person was shown; a
	// different current plan refuses the decision.
	PlanHash string
	// Wait sends approve/reject as the decide update and returns the
	// joiner's answer; otherwise a signal is sent.
	Wait bool
	Via  string
}

// Outcomes of a decision request, as the API reports them.
const (
	OutcomeSent    = "sent"
	OutcomeRefused = "refused"
)

// decideResult is what came of a decision request.
type decideResult struct {
	// Code is the HTTP status: 200 answered, 202 sent, 400 bad request,
	// 404 no such joiner (or not theirs), 409 refused, 503 unavailable.
	Code    int
	Outcome string
	Message string
}

// decide checks that user may make this decision on this joiner's current
// plan, signs it and sends it. Nothing is signed unless every check passed.
func (s *Server) decide(ctx context.Context, user string, req decideRequest) decideResult {
	bad := func(msg string) decideResult {
		return decideResult{Code: http.StatusBadRequest, Outcome: OutcomeRefused, Message: msg}
	}
	refused := func(msg string) decideResult {
		return decideResult{Code: http.StatusConflict, Outcome: OutcomeRefused, Message: msg}
	}
	switch req.Action {
	case decision.ActionApprove, decision.ActionReject:
		if req.EndDate != "" {
			return bad("endDate is only for extend")
		}
	case decision.ActionExtend:
		if _, err := time.Parse(time.DateOnly, req.EndDate); err != nil {
			return bad("endDate must be a date in YYYY-MM-DD form")
		}
	default:
		return bad("action must be approve, reject or extend")
	}
	comment, ok := limitText(req.Comment)
	if !ok {
		return bad("comment is longer than 1000 bytes")
	}

	j, err := s.load(ctx, req.WorkflowID)
	if errors.Is(err, errNotFound) {
		return decideResult{Code: http.StatusNotFound, Outcome: OutcomeRefused, Message: "no such joiner"}
	}
	if err != nil {
		s.log.Error("decision: joiner status unavailable", "workflow", req.WorkflowID, "err", err)
		return decideResult{Code: http.StatusServiceUnavailable, Outcome: OutcomeRefused, Message: "the joiner's status is not available; try again"}
	}
	r := rightsOf(j, user)
	if !r.Related {
		// Someone else's joiner: the same answer as a joiner that does not
		// exist, so probing IDs reveals nothing.
		s.security("decision refused: not a decider of this joiner", "user", user, "workflow", req.WorkflowID, "action", req.Action, "via", req.Via)
		return decideResult{Code: http.StatusNotFound, Outcome: OutcomeRefused, Message: "no such joiner"}
	}
	if req.Action == decision.ActionExtend && !r.Extend {
		s.security("decision refused: may not extend now", "user", user, "workflow", req.WorkflowID, "via", req.Via)
		return refused("you may not extend this joiner's access now (only its owner, while access is active)")
	}
	if req.Action != decision.ActionExtend && !r.Decide {
		s.security("decision refused: may not decide now", "user", user, "workflow", req.WorkflowID, "action", req.Action, "via", req.Via)
		return refused("you may not decide on this joiner now")
	}
	st := j.Status
	if st.Plan == nil || st.PlanHash == "" {
		return refused("the joiner has no plan to decide on yet")
	}
	// The signature binds the person to the plan the joiner will carry out;
	// a status whose plan does not hash to its recorded hash means what we
	// would show is not what would run, so nothing is signed.
	h, err := decision.PlanHash(st.Plan)
	if err != nil || h != st.PlanHash {
		s.security("decision refused: plan does not match its recorded hash", "user", user, "workflow", req.WorkflowID, "recorded", st.PlanHash, "computed", h)
		return refused("the joiner's plan does not match its recorded hash; nothing was signed")
	}
	if req.PlanHash != "" && req.PlanHash != st.PlanHash {
		return refused("the plan changed since you looked at it; review it again")
	}
	if req.Action == decision.ActionExtend {
		p := *st.Plan
		if st.EndDate != "" {
			p.EndDate = st.EndDate // the current end, after earlier extensions
		}
		if err := p.CheckExtension(req.EndDate); err != nil {
			return refused(err.Error())
		}
	}

	nonce := make([]byte, 16)
	_, _ = rand.Read(nonce)
	d := decision.Decision{
		Version: decision.FormatVersion, WorkflowID: j.ID, RunID: j.RunID, PlanHash: st.PlanHash, PolicyVersion: st.PolicyVersion,
		Approver: user, Action: req.Action, EndDate: req.EndDate, Comment: comment,
		IssuedAt: s.now().UTC(), Nonce: hex.EncodeToString(nonce), Via: req.Via,
	}
	signed, err := s.signer.Sign(ctx, d)
	if err != nil {
		s.log.Error("decision: signing failed", "workflow", j.ID, "err", err)
		return decideResult{Code: http.StatusInternalServerError, Outcome: OutcomeRefused, Message: "the decision could not be signed"}
	}
	s.log.Info("decision signed", "user", user, "workflow", j.ID, "action", d.Action, "nonce", d.Nonce, "key", signed.KeyID, "via", d.Via, "plan", d.PlanHash)

	if req.Action == decision.ActionExtend {
		if err := s.temporal.SignalWorkflow(ctx, j.ID, "", workflows.SignalExtend, workflows.ExtendSignal{Signed: &signed}); err != nil {
			return s.sendFailed(j.ID, err)
		}
		return decideResult{Code: http.StatusAccepted, Outcome: OutcomeSent,
			Message: "extension to " + req.EndDate + " sent; the joiner records it, or its refusal"}
	}
	payload := workflows.ApprovalSignal{Signed: &signed, Approve: req.Action == decision.ActionApprove}
	if !req.Wait {
		name := workflows.SignalReject
		if req.Action == decision.ActionApprove {
			name = workflows.SignalApprove
		}
		if err := s.temporal.SignalWorkflow(ctx, j.ID, "", name, payload); err != nil {
			return s.sendFailed(j.ID, err)
		}
		return decideResult{Code: http.StatusAccepted, Outcome: OutcomeSent, Message: string(req.Action) + " sent; the joiner records it, or its refusal"}
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	hd, err := s.temporal.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: j.ID, UpdateName: workflows.UpdateDecide, Args: []any{payload},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	var answer string
	if err == nil {
		err = hd.Get(ctx, &answer)
	}
	if err != nil {
		var ae *temporal.ApplicationError
		if errors.As(err, &ae) {
			// The workflow itself refused (validator or handler): its
			// reason is the answer the person needs.
			s.log.Info("decision refused by the joiner", "user", user, "workflow", j.ID, "nonce", d.Nonce, "reason", ae.Message())
			return refused(ae.Message())
		}
		return s.sendFailed(j.ID, err)
	}
	return decideResult{Code: http.StatusOK, Outcome: answer, Message: "the joiner answered: " + answer}
}

// sendFailed reports a decision that could not reach the joiner.
func (s *Server) sendFailed(id string, err error) decideResult {
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return decideResult{Code: http.StatusConflict, Outcome: OutcomeRefused, Message: "the joiner is no longer running"}
	}
	s.log.Error("decision: sending failed", "workflow", id, "err", err)
	return decideResult{Code: http.StatusServiceUnavailable, Outcome: OutcomeRefused, Message: "the decision could not be sent to the joiner; try again"}
}

// security logs a security event: a refusal someone may have provoked on
// purpose, kept at warn level with a fixed key so it can be alerted on.
func (s *Server) security(msg string, args ...any) {
	s.log.Warn(msg, append([]any{"security", true}, args...)...)
}
