package hrisserver

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
)

// Fault is an injected failure: the next Count API requests that touch
// EmployeeID are answered with Status (and, for 429, Retry-After).
type Fault struct {
	EmployeeID        string `json:"employeeId"`
	Status            int    `json:"status"`
	RetryAfterSeconds int    `json:"retryAfterSeconds"`
	Count             int    `json:"count"`
	Message           string `json:"message"`
}

// faults holds the pending faults per employee id.
type faults struct {
	mu sync.Mutex
	m  map[string]*Fault
}

func newFaults() *faults { return &faults{m: map[string]*Fault{}} }

func (f *faults) set(ft Fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.m[ft.EmployeeID] = &ft
}

func (f *faults) clear(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.m, id)
}

// take consumes one use of id's fault, if any.
func (f *faults) take(id string) (Fault, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ft, ok := f.m[id]
	if !ok {
		return Fault{}, false
	}
	ft.Count--
	if ft.Count <= 0 {
		delete(f.m, id)
	}
	return *ft, true
}

func decodeAdmin(w http.ResponseWriter, r *http.Request, v any) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "malformed JSON body: "+err.Error())
		return false
	}
	return true
}

func (s *Server) postFault(w http.ResponseWriter, r *http.Request) {
	var ft Fault
	if !decodeAdmin(w, r, &ft) {
		return
	}
	switch {
	case !idRE.MatchString(ft.EmployeeID):
		writeError(w, http.StatusBadRequest, "employeeId must be an employee id")
	case ft.Status < 400 || ft.Status > 599:
		writeError(w, http.StatusBadRequest, "status must be 400-599")
	case ft.Count < 1 || ft.Count > 1000:
		writeError(w, http.StatusBadRequest, "count must be 1-1000")
	case ft.RetryAfterSeconds < 0 || ft.RetryAfterSeconds > 3600:
		writeError(w, http.StatusBadRequest, "retryAfterSeconds must be 0-3600")
	case len(ft.Message) > 200:
		writeError(w, http.StatusBadRequest, "message is longer than 200 bytes")
	default:
		s.faults.set(ft)
		s.log.Info("fault injected", "employee_id", ft.EmployeeID, "status", ft.Status, "count", ft.Count)
		writeJSON(w, http.StatusOK, ft)
	}
}

func (s *Server) deleteFault(w http.ResponseWriter, r *http.Request) {
	s.faults.clear(r.PathValue("employeeId"))
	w.WriteHeader(http.StatusNoContent)
}

type webhookURL struct {
	URL string `json:"url"`
}

func (s *Server) getWebhook(w http.ResponseWriter, r *http.Request) {
	primary, subs := s.hooks.targets()
	writeJSON(w, http.StatusOK, map[string]any{"url": primary, "subscribers": subs})
}

func (s *Server) putWebhook(w http.ResponseWriter, r *http.Request) {
	var body webhookURL
	if !decodeAdmin(w, r, &body) {
		return
	}
	if err := checkTargetURL(body.URL); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.hooks.setPrimary(body.URL)
	s.log.Info("primary webhook target set", "url", redactURL(body.URL))
	writeJSON(w, http.StatusOK, body)
}

func (s *Server) addSubscriber(w http.ResponseWriter, r *http.Request) {
	var body webhookURL
	if !decodeAdmin(w, r, &body) {
		return
	}
	if body.URL == "" {
		writeError(w, http.StatusBadRequest, "url is required")
		return
	}
	if err := checkTargetURL(body.URL); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	id := s.hooks.addSubscriber(body.URL)
	s.log.Info("webhook subscriber added", "id", id, "url", redactURL(body.URL))
	w.Header().Set("Location", fmt.Sprintf("/_admin/webhooks/%s", id))
	writeJSON(w, http.StatusCreated, map[string]string{"id": id, "url": body.URL})
}

func (s *Server) deleteSubscriber(w http.ResponseWriter, r *http.Request) {
	s.hooks.removeSubscriber(r.PathValue("id"))
	w.WriteHeader(http.StatusNoContent)
}
