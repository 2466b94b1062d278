package hrisserver

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/joinery/joinery/connectors/hris"
)

// maxBodyBytes bounds a request body; larger bodies are answered 413.
const maxBodyBytes = 64 << 10

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.health)

	const emp = "/api/gateway.php/{company}/v1/employees"
	// BambooHR documents the employee paths with a trailing slash and
	// clients use both forms; accept both.
	for _, p := range []string{emp + "/{id}", emp + "/{id}/{$}"} {
		mux.Handle("GET "+p, s.apiAuth(s.getEmployee))
		mux.Handle("POST "+p, s.apiAuth(s.updateEmployee))
	}
	mux.Handle("POST "+emp+"/{$}", s.apiAuth(s.addEmployee))
	mux.Handle("POST "+emp, s.apiAuth(s.addEmployee))
	mux.Handle("/api/", s.apiAuth(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such API endpoint")
	}))

	mux.Handle("GET /_admin/healthz", s.adminAuth(s.health))
	mux.Handle("GET /_admin/webhook", s.adminAuth(s.getWebhook))
	mux.Handle("PUT /_admin/webhook", s.adminAuth(s.putWebhook))
	mux.Handle("POST /_admin/webhooks", s.adminAuth(s.addSubscriber))
	mux.Handle("DELETE /_admin/webhooks/{id}", s.adminAuth(s.deleteSubscriber))
	mux.Handle("POST /_admin/faults", s.adminAuth(s.postFault))
	mux.Handle("DELETE /_admin/faults/{employeeId}", s.adminAuth(s.deleteFault))

	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not found")
	})
	return s.logRequests(mux)
}

// statusRecorder captures the status for the request log.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// logRequests logs one line per request. It never logs headers: they carry
// the API key and the admin token.
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		s.log.Info("request", "method", r.Method, "path", r.URL.Path, "query", r.URL.RawQuery,
			"status", rec.status, "duration_ms", time.Since(start).Milliseconds(), "remote", r.RemoteAddr)
	})
}

// apiAuth requires HTTP Basic with the API key as user name; BambooHR
// ignores the password (by convention "x"), and so does this server.
func (s *Server) apiAuth(h http.HandlerFunc) http.Handler {
	want := []byte(s.cfg.APIKey)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, _, ok := r.BasicAuth()
		if !ok || subtle.ConstantTimeCompare([]byte(user), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="refhris"`)
			writeError(w, http.StatusUnauthorized, "invalid or missing API key")
			return
		}
		if r.PathValue("company") != "" && r.PathValue("company") != s.cfg.Company {
			writeError(w, http.StatusNotFound, "unknown company")
			return
		}
		h(w, r)
	})
}

// adminAuth requires Authorization: Bearer <AdminToken>.
func (s *Server) adminAuth(h http.HandlerFunc) http.Handler {
	want := []byte(s.cfg.AdminToken)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(want) == 0 {
			writeError(w, http.StatusForbidden, "admin API disabled (no admin token configured)")
			return
		}
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(tok), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="refhris-admin"`)
			writeError(w, http.StatusUnauthorized, "invalid or missing admin token")
			return
		}
		h(w, r)
	})
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.store.ping(ctx); err != nil {
		writeError(w, http.StatusServiceUnavailable, "database unavailable")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// employeeID parses the {id} path value and applies any injected fault for
// it. It writes the answer and returns false when the request must stop.
func (s *Server) employeeID(w http.ResponseWriter, r *http.Request) (int64, bool) {
	raw := r.PathValue("id")
	if !idRE.MatchString(raw) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid employee id %q", clip(raw)))
		return 0, false
	}
	if f, ok := s.faults.take(raw); ok {
		if f.Status == http.StatusTooManyRequests && f.RetryAfterSeconds > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(f.RetryAfterSeconds))
		}
		msg := f.Message
		if msg == "" {
			msg = fmt.Sprintf("injected fault: HTTP %d", f.Status)
		}
		writeError(w, f.Status, msg)
		return 0, false
	}
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid employee id")
		return 0, false
	}
	return id, true
}

func (s *Server) getEmployee(w http.ResponseWriter, r *http.Request) {
	id, ok := s.employeeID(w, r)
	if !ok {
		return
	}
	var names, unknown []string
	for _, v := range r.URL.Query()["fields"] {
		for _, n := range strings.Split(v, ",") {
			n = strings.TrimSpace(n)
			if n == "" {
				continue
			}
			if _, known := lookupField(n); !known {
				unknown = append(unknown, n)
				continue
			}
			if !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
	}
	if len(unknown) > 0 {
		writeError(w, http.StatusBadRequest, unknownFieldsMessage(unknown))
		return
	}
	if len(names) == 0 {
		writeError(w, http.StatusBadRequest, "the fields query parameter is required, e.g. ?fields=firstName,lastName")
		return
	}
	rec, err := s.store.get(r.Context(), id)
	if errors.Is(err, errNotFound) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("employee %d not found", id))
		return
	}
	if err != nil {
		s.internalError(w, "get employee", err)
		return
	}
	out := map[string]any{"id": rec["id"]}
	for _, n := range names {
		if v := rec.value(n); v != "" {
			out[n] = v
		} else {
			out[n] = nil
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) updateEmployee(w http.ResponseWriter, r *http.Request) {
	id, ok := s.employeeID(w, r)
	if !ok {
		return
	}
	values, ok := readFields(w, r)
	if !ok {
		return
	}
	if len(values) == 0 {
		// Nothing to change; BambooHR answers an empty update with 200 too.
		if _, err := s.store.get(r.Context(), id); errors.Is(err, errNotFound) {
			writeError(w, http.StatusNotFound, fmt.Sprintf("employee %d not found", id))
		} else if err != nil {
			s.internalError(w, "update employee", err)
		} else {
			w.WriteHeader(http.StatusOK)
		}
		return
	}
	rec, changed, err := s.store.update(r.Context(), id, values)
	var inv *invalidError
	switch {
	case errors.Is(err, errNotFound):
		writeError(w, http.StatusNotFound, fmt.Sprintf("employee %d not found", id))
		return
	case errors.As(err, &inv):
		writeError(w, http.StatusBadRequest, inv.msg)
		return
	case err != nil:
		s.internalError(w, "update employee", err)
		return
	}
	var monitored []string
	for _, f := range changed {
		if slices.Contains(webhookMonitored, f) {
			monitored = append(monitored, f)
		}
	}
	if len(monitored) > 0 {
		s.hooks.publish(s.event(rec, hris.ActionUpdated, monitored))
	}
	if len(changed) > 0 {
		s.log.Info("employee updated", "employee_id", id, "changed", changed)
	}
	w.WriteHeader(http.StatusOK)
}

func (s *Server) addEmployee(w http.ResponseWriter, r *http.Request) {
	values, ok := readFields(w, r)
	if !ok {
		return
	}
	if values["firstName"] == "" || values["lastName"] == "" {
		writeError(w, http.StatusBadRequest, "firstName and lastName are required")
		return
	}
	rec, err := s.store.add(r.Context(), values)
	var inv *invalidError
	switch {
	case errors.As(err, &inv):
		writeError(w, http.StatusBadRequest, inv.msg)
		return
	case err != nil:
		s.internalError(w, "add employee", err)
		return
	}
	given := make([]string, 0, len(values))
	for k := range values {
		given = append(given, k)
	}
	slices.Sort(given)
	s.hooks.publish(s.event(rec, hris.ActionCreated, given))
	s.log.Info("employee added", "employee_id", rec["id"])

	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	w.Header().Set("Location", fmt.Sprintf("%s://%s/api/gateway.php/%s/v1/employees/%s", scheme, r.Host, s.cfg.Company, rec["id"]))
	writeJSON(w, http.StatusCreated, map[string]string{"id": rec["id"]})
}

// event builds the webhook event for rec; "fields" posts every field.
func (s *Server) event(rec record, action string, changed []string) webhookEvent {
	all := map[string]string{}
	for _, f := range fields {
		if f.name != "id" {
			all[f.name] = rec.value(f.name)
		}
	}
	return webhookEvent{
		ID:            rec["id"],
		Timestamp:     s.now().UTC().Format(webhookTimestampLayout),
		Action:        action,
		ChangedFields: changed,
		Fields:        all,
	}
}

// readFields decodes and validates a JSON object of field assignments. It
// writes the error answer and returns false when the body is unacceptable.
func readFields(w http.ResponseWriter, r *http.Request) (map[string]string, bool) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			writeError(w, http.StatusUnsupportedMediaType, "the body must be application/json")
			return nil, false
		}
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
	dec := json.NewDecoder(r.Body)
	var raw map[string]json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the body exceeds %d bytes", maxBodyBytes))
			return nil, false
		}
		writeError(w, http.StatusBadRequest, "the body is not a JSON object")
		return nil, false
	}
	if raw == nil {
		writeError(w, http.StatusBadRequest, "the body is not a JSON object")
		return nil, false
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		writeError(w, http.StatusBadRequest, "unexpected data after the JSON object")
		return nil, false
	}
	names := make([]string, 0, len(raw))
	var unknown []string
	for k := range raw {
		if _, ok := lookupField(k); !ok {
			unknown = append(unknown, k)
		}
		names = append(names, k)
	}
	if len(unknown) > 0 {
		writeError(w, http.StatusBadRequest, unknownFieldsMessage(unknown))
		return nil, false
	}
	slices.Sort(names)
	out := make(map[string]string, len(raw))
	for _, k := range names {
		var v *string
		if err := json.Unmarshal(raw[k], &v); err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("field %q must be a string or null", k))
			return nil, false
		}
		val := ""
		if v != nil {
			val = *v
		}
		if err := checkWrite(k, val); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return nil, false
		}
		out[k] = val
	}
	return out, true
}

func unknownFieldsMessage(unknown []string) string {
	slices.Sort(unknown)
	q := make([]string, len(unknown))
	for i, u := range unknown {
		q[i] = strconv.Quote(clip(u))
	}
	if len(q) == 1 {
		return "unknown field " + q[0]
	}
	return "unknown fields " + strings.Join(q, ", ")
}

func (s *Server) internalError(w http.ResponseWriter, op string, err error) {
	s.log.Error("internal error", "op", op, "err", err)
	writeError(w, http.StatusInternalServerError, "internal error")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError answers like BambooHR (X-BambooHR-Error-Message) and with a
// JSON body {"error": msg} for clients that read bodies.
func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("X-BambooHR-Error-Message", headerSafe(msg))
	writeJSON(w, status, map[string]string{"error": msg})
}

// headerSafe keeps a message within what an HTTP header value may carry.
func headerSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r > unicode.MaxASCII || unicode.IsControl(r) {
			return '?'
		}
		return r
	}, s)
}
