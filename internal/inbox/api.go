package inbox

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/joinery/joinery/internal/decision"
	"github.com/joinery/joinery/workflows"
)

// The JSON API is for the CLI. Each request proves the person with HTTP
// Basic (their own directory password, throttled like the sign-in form);
// there are no cookies, so a browser cannot be made to send one and there is
// nothing for CSRF to ride on.

// APIError is the body of every API error.
type APIError struct {
	Error string `json:"error"`
}

// DecisionRequest is the body of POST /api/v1/joiners/{id}/decision.
type DecisionRequest struct {
	Action  string `json:"action"`
	Comment string `json:"comment,omitempty"`
	EndDate string `json:"endDate,omitempty"`
	// Wait sends approve/reject as the decide update and answers with the
	// joiner's verdict; false sends the signal and answers "sent".
	Wait bool `json:"wait"`
	// PlanHash, when set, refuses the decision if the plan changed.
	PlanHash string `json:"planHash,omitempty"`
}

// DecisionResponse is the answer to a decision: Outcome is the joiner's
// answer (approved, rejected, ...), "sent" or "refused".
type DecisionResponse struct {
	Outcome string `json:"outcome"`
	Message string `json:"message"`
}

// WaitingJoiner is one row of GET /api/v1/waiting.
type WaitingJoiner struct {
	WorkflowID    string          `json:"workflowId"`
	HRISID        string          `json:"hrisId"`
	Kind          string          `json:"kind,omitempty"`
	Stage         workflows.Stage `json:"stage"`
	PolicyVersion string          `json:"policyVersion,omitempty"`
	PlanHash      string          `json:"planHash,omitempty"`
	EndDate       string          `json:"endDate,omitempty"`
	// Actions are what the caller may do now: approve, reject, extend.
	Actions []string `json:"actions"`
}

type apiHandler func(w http.ResponseWriter, r *http.Request, user string)

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// apiChallenge is the 401 challenge. It deliberately does not say "Basic":
// a browser answers a Basic challenge with a password prompt and then sends
// the cached credentials with every later request to the inbox, including
// ones a hostile page triggers, which would bring CSRF back to the API.
const apiChallenge = `Joinery-Basic realm="joinery-inbox"`

// api authenticates each request with HTTP Basic. A state-changing request
// must also be JSON and, if it names an Origin, ours: a cross-site form can
// send neither application/json nor a forged Origin, so even a browser that
// holds the person's Basic credentials cannot be made to decide.
func (s *Server) api(h apiHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			if o := r.Header.Get("Origin"); o != "" && o != s.origin {
				s.security("refused a cross-origin API call", "path", r.URL.Path, "origin", o, "ip", clientIP(r))
				writeJSON(w, http.StatusForbidden, APIError{"cross-origin requests are refused"})
				return
			}
			if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(strings.ToLower(strings.TrimSpace(ct)), "application/json") {
				writeJSON(w, http.StatusUnsupportedMediaType, APIError{"send the body as application/json"})
				return
			}
		}
		user, pass, ok := r.BasicAuth()
		if !ok {
			w.Header().Set("WWW-Authenticate", apiChallenge)
			writeJSON(w, http.StatusUnauthorized, APIError{"sign in with your directory username and password (HTTP Basic)"})
			return
		}
		id, code, msg := s.authenticate(r, strings.TrimSpace(user), pass)
		switch code {
		case 0:
		case http.StatusTooManyRequests:
			w.Header().Set("Retry-After", msg)
			writeJSON(w, code, APIError{"too many failed sign-ins; try again in " + msg + " seconds"})
			return
		case http.StatusUnauthorized:
			w.Header().Set("WWW-Authenticate", apiChallenge)
			writeJSON(w, code, APIError{"invalid username or password"})
			return
		default:
			writeJSON(w, code, APIError{"the directory is not answering; try again"})
			return
		}
		h(w, r, id.Username)
	}
}

func (s *Server) apiWaiting(w http.ResponseWriter, r *http.Request, user string) {
	js, err := s.waitingFor(r.Context(), user)
	if err != nil {
		s.log.Error("api waiting list", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, APIError{"Temporal is not answering; try again"})
		return
	}
	out := make([]WaitingJoiner, 0, len(js))
	for _, j := range js {
		row := WaitingJoiner{WorkflowID: j.ID, HRISID: j.Status.HRISID, Stage: j.Status.Stage,
			PolicyVersion: j.Status.PolicyVersion, PlanHash: j.Status.PlanHash, EndDate: j.Status.EndDate, Actions: []string{}}
		if j.Status.Plan != nil {
			row.Kind = j.Status.Plan.Kind
		}
		rr := rightsOf(j, user)
		if rr.Decide {
			row.Actions = append(row.Actions, string(decision.ActionApprove), string(decision.ActionReject))
		}
		if rr.Extend {
			row.Actions = append(row.Actions, string(decision.ActionExtend))
		}
		out = append(out, row)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) apiDecision(w http.ResponseWriter, r *http.Request, user string) {
	var req DecisionRequest
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeJSON(w, http.StatusRequestEntityTooLarge, APIError{"request body too large"})
			return
		}
		writeJSON(w, http.StatusBadRequest, APIError{"body must be JSON: {\"action\": \"approve|reject|extend\", \"comment\": \"\", \"endDate\": \"\", \"wait\": true}"})
		return
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		writeJSON(w, http.StatusBadRequest, APIError{"body must be one JSON object"})
		return
	}
	res := s.decide(r.Context(), user, decideRequest{
		WorkflowID: r.PathValue("id"), Action: decision.Action(req.Action), Comment: req.Comment,
		EndDate: req.EndDate, PlanHash: req.PlanHash, Wait: req.Wait, Via: ViaAPI,
	})
	if res.Code >= 400 && res.Code != http.StatusConflict {
		writeJSON(w, res.Code, APIError{res.Message})
		return
	}
	writeJSON(w, res.Code, DecisionResponse{Outcome: res.Outcome, Message: res.Message})
}
