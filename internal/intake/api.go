package intake

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/joinery/joinery/internal/run"
)

// apiRequest is the body of POST /joiners.
type apiRequest struct {
	HRISID      string `json:"hrisId"`
	Kind        string `json:"kind"`
	RequestedBy string `json:"requestedBy"`
	EventID     string `json:"eventId"`
}

// StartAnswer is the answer of POST /joiners: run.StartResult plus the HR ID.
type StartAnswer struct {
	HRISID string `json:"hrisId"`
	run.StartResult
}

// decodeStrict decodes one JSON object into v, refusing unknown fields,
// wrong types and trailing data, and names the offending field.
func decodeStrict(data []byte, v any) *FieldError {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fieldErr("body", "unexpected data after the JSON object")
	}
	return nil
}

// jsonError names the field of a JSON decoding error.
func jsonError(err error) *FieldError {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		return fieldErr("body", "empty; want a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fieldErr("body", "truncated JSON")
	case errors.As(err, &se):
		return fieldErr("body", "malformed JSON at byte %d", se.Offset)
	case errors.As(err, &te):
		if te.Field == "" {
			return fieldErr("body", "want a JSON object, got %s", te.Value)
		}
		return fieldErr(te.Field, "want a %s, got %s", jsonKind(te.Type.Kind().String()), te.Value)
	}
	// encoding/json reports unknown fields only as text: `json: unknown field "x"`.
	if msg := err.Error(); strings.HasPrefix(msg, `json: unknown field "`) {
		name := strings.TrimSuffix(strings.TrimPrefix(msg, `json: unknown field "`), `"`)
		return fieldErr(clip(name, 64), "unknown field")
	}
	return fieldErr("body", "malformed JSON")
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "string"
	case "bool":
		return "boolean"
	case "slice", "array":
		return "list"
	case "struct", "map", "ptr":
		return "object"
	}
	return "number"
}

// readBody reads a whole (bounded) body; bodies of this size are small.
func readBody(w http.ResponseWriter, r *http.Request, max int64) ([]byte, int, *FieldError) {
	if status, fe := checkLength(r, max); fe != nil {
		return nil, status, fe
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
	if err != nil {
		status, fe := bodyError(err)
		return nil, status, fe
	}
	return body, 0, nil
}

// handleJoiner is POST /joiners: start one joiner. 201 when started, 200
// when it already exists (the duplicate collapsed), 202 when the
// blast-radius guard held it, 422 when the HR record is not a pending hire
// (Refusal), other 4xx for bad input (and nothing started), 429 over the
// API's rate or when the blast-radius hold is full (Retry-After either
// way), 503 when Temporal could not be reached.
func (s *Server) handleJoiner(w http.ResponseWriter, r *http.Request) {
	// After authentication (bearer), before reading the body: a flood from
	// the right sender costs nothing more than this, and a stranger's flood
	// (401s) cannot use up the sender's tokens.
	if !s.allow(w, r, SourceAPI, false) {
		return
	}
	if ct := contentType(r); ct != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, fieldErr("Content-Type", "want application/json, got %q", clip(ct, 60)))
		return
	}
	body, status, fe := readBody(w, r, orInt64(s.MaxBody, DefaultMaxBody))
	if fe != nil {
		writeError(w, status, fe)
		return
	}
	var req apiRequest
	if fe := decodeStrict(body, &req); fe != nil {
		writeError(w, http.StatusBadRequest, fe)
		return
	}
	j, err := Normalize(Joiner{HRISID: req.HRISID, Kind: req.Kind, RequestedBy: req.RequestedBy, EventID: req.EventID})
	if err != nil {
		writeError(w, http.StatusBadRequest, err.(*FieldError))
		return
	}
	if j.RequestedBy == "" {
		j.RequestedBy = "intake-api"
	}
	ctx, cancel := s.startCtx(r.Context())
	defer cancel()
	o := guardedStart(ctx, s.Starter, j.Input("api"))
	hris := slog.String("hris_id", j.HRISID)
	switch {
	case errors.Is(o.err, ErrHoldFull):
		// 429, not 503: Temporal answered, and the sender is asked to slow
		// down until an operator has made room. Scripts and HR systems
		// calling an API retry a 429 after its Retry-After, as Microsoft
		// Graph's throttling guidance asks of every Graph client (Entra's
		// inbound provisioning API among them).
		s.logRow(r.Context(), SourceAPI, OutcomeHoldFull, "", hris, slog.String("err", o.err.Error()))
		noteOutcome(r.Context(), OutcomeHoldFull)
		s.setHoldFullRetryAfter(w)
		writeError(w, http.StatusTooManyRequests, holdFullError(o.err))
		return
	case o.err != nil:
		s.logRow(r.Context(), SourceAPI, OutcomeError, "", hris, slog.String("err", o.err.Error()))
		writeError(w, http.StatusServiceUnavailable, &FieldError{Reason: fmt.Sprintf("could not start the joiner: %v", o.err)})
		return
	case o.refusal != nil:
		s.logRow(r.Context(), SourceAPI, OutcomeRefused, o.refusal.Reason, hris)
		writeJSON(w, http.StatusUnprocessableEntity, o.refusal)
		return
	case o.held != nil:
		s.logRow(r.Context(), SourceAPI, OutcomeHeld, "", hris, slog.Int("queued", o.held.Queued))
		writeJSON(w, http.StatusAccepted, o.held)
		return
	}
	res := *o.res
	s.logRow(r.Context(), SourceAPI, string(res.Outcome), "", hris, slog.String("workflow_id", res.WorkflowID))
	code := http.StatusOK
	if res.Outcome == run.Started {
		code = http.StatusCreated
		w.Header().Set("Location", res.UIURL)
	}
	writeJSON(w, code, StartAnswer{HRISID: j.HRISID, StartResult: res})
}
