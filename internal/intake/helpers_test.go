package intake

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/joinery/joinery/activities"
	"github.com/joinery/joinery/connectors/hris"
	"github.com/joinery/joinery/internal/run"
	"github.com/joinery/joinery/workflows"
)

const (
	testToken  = "test-intake-token-7f3a"
	testSecret = "test-webhook-secret-91c2"
)

// testNow is the fixed clock of handler tests: webhook rules compare dates
// with today.
var testNow = time.Date(2027, 1, 10, 12, 0, 0, 0, time.UTC)

type fakeSignal struct {
	HRISID  string
	Name    string
	Payload any
}

// fakeStarter is an in-memory Starter that collapses duplicates like
// run.StartJoiner does, and records every call. Its HR records are
// pending employees unless refused or hrKind say otherwise; its hold
// admits everything unless maxStarts / maxRescinds are set (>= 0).
type fakeStarter struct {
	mu        sync.Mutex
	starts    []workflows.JoinerInput // every Start call
	signals   []fakeSignal            // every Signal call
	running   map[string]bool
	done      map[string]bool
	startErr  error
	signalErr error
	// refused maps an HR ID to the refusal its record gets.
	refused map[string]*activities.IneligibleError
	// hrKind maps an HR ID to the kind its record gives (default employee).
	hrKind map[string]string
	// maxStarts and maxRescinds are the fake hold's window (-1: no limit).
	maxStarts, maxRescinds int
	admitted               map[string]int
	held                   []workflows.HoldItem
	// maxHeld is the fake hold's room (-1: no limit): past it, an item
	// that would be held is refused as the real hold refuses it.
	maxHeld int
}

func newFake() *fakeStarter {
	return &fakeStarter{running: map[string]bool{}, done: map[string]bool{}, refused: map[string]*activities.IneligibleError{},
		hrKind: map[string]string{}, maxStarts: -1, maxRescinds: -1, admitted: map[string]int{}, maxHeld: -1}
}

func (f *fakeStarter) Eligible(ctx context.Context, in workflows.JoinerInput) (workflows.JoinerInput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if ie := f.refused[in.HRISID]; ie != nil {
		return in, ie
	}
	kind := f.hrKind[in.HRISID]
	if kind == "" {
		kind = "employee"
	}
	if in.Kind != "" && in.Kind != kind {
		return in, &activities.IneligibleError{HRISID: in.HRISID, Reason: activities.ReasonKindMismatch, Field: "kind",
			Detail: fmt.Sprintf("the HR record makes this a %s; a request for %q is refused, not obeyed", kind, in.Kind)}
	}
	in.Kind = kind
	return in, nil
}

func (f *fakeStarter) Existing(ctx context.Context, hrisID string) (run.StartResult, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.startErr != nil {
		return run.StartResult{}, false, f.startErr
	}
	id := workflows.JoinerWorkflowID(hrisID)
	res := run.StartResult{WorkflowID: id, RunID: "run-" + hrisID, UIURL: "http://ui.test/workflows/" + id}
	switch {
	case f.running[hrisID]:
		res.Outcome = run.AlreadyRunning
	case f.done[hrisID]:
		res.Outcome = run.AlreadyDone
	default:
		return res, false, nil
	}
	return res, true, nil
}

func (f *fakeStarter) Admit(ctx context.Context, item workflows.HoldItem) (workflows.Admission, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	max := f.maxStarts
	if item.Action == workflows.HoldRescind {
		max = f.maxRescinds
	}
	for _, h := range f.held {
		if h.Key() == item.Key() {
			return workflows.Admission{Held: true, AlreadyHeld: true}, nil
		}
	}
	if max >= 0 && f.admitted[item.Action] >= max {
		if f.maxHeld >= 0 && len(f.held) >= f.maxHeld {
			// What the hold's update validator answers (workflows/hold.go),
			// as the client receives it.
			return workflows.Admission{}, temporal.NewApplicationError(
				fmt.Sprintf("the hold is full (%d items): release or discard some first", len(f.held)), "")
		}
		f.held = append(f.held, item)
		return workflows.Admission{Held: true, Reason: "over the blast radius", Queued: len(f.held)}, nil
	}
	f.admitted[item.Action]++
	return workflows.Admission{Admitted: true}, nil
}

func (f *fakeStarter) Start(ctx context.Context, in workflows.JoinerInput) (run.StartResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.starts = append(f.starts, in)
	id := workflows.JoinerWorkflowID(in.HRISID)
	res := run.StartResult{WorkflowID: id, RunID: "run-" + in.HRISID, UIURL: "http://ui.test/workflows/" + id}
	if f.startErr != nil {
		return res, f.startErr
	}
	switch {
	case f.running[in.HRISID]:
		res.Outcome = run.AlreadyRunning
	case f.done[in.HRISID]:
		res.Outcome = run.AlreadyDone
	default:
		f.running[in.HRISID] = true
		res.Outcome = run.Started
	}
	return res, nil
}

func (f *fakeStarter) Signal(ctx context.Context, hrisID, name string, payload any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.signals = append(f.signals, fakeSignal{hrisID, name, payload})
	if f.signalErr != nil {
		return f.signalErr
	}
	if !f.running[hrisID] {
		return fmt.Errorf("joiner-%s: %w", hrisID, ErrNoRunningJoiner)
	}
	return nil
}

func (f *fakeStarter) calls() (starts, signals int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.starts), len(f.signals)
}

// syncBuffer is a log sink safe for concurrent handlers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testServer is a Server over a fake with small limits, logging to logs.
func testServer(f *fakeStarter, logs *syncBuffer) *Server {
	var h slog.Handler = slog.DiscardHandler
	if logs != nil {
		h = slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})
	}
	v := hris.NewVerifier([]byte(testSecret))
	v.Now = func() time.Time { return testNow }
	return &Server{
		Starter:     f,
		Verifier:    v,
		Token:       testToken,
		Logger:      slog.New(h),
		MaxBody:     64 << 10,
		MaxBulkBody: 1 << 20,
		MaxBulkRows: 500,
		Now:         func() time.Time { return testNow },
		// Rate limits off: handler tests send bursts on purpose; the
		// limits have their own tests.
		Rates:           map[string]Rate{SourceWebhook: {}, SourceAPI: {}, SourceBulk: {}, SourceSCIM: {}},
		MaxBulkInFlight: 100,
	}
}

// req is one request to the handler.
type req struct {
	method  string
	path    string
	ctype   string
	body    []byte
	headers map[string]string
	noAuth  bool
}

func do(t testing.TB, h http.Handler, r req) *httptest.ResponseRecorder {
	t.Helper()
	if r.method == "" {
		r.method = http.MethodPost
	}
	hr := httptest.NewRequest(r.method, r.path, bytes.NewReader(r.body))
	if r.ctype != "" {
		hr.Header.Set("Content-Type", r.ctype)
	}
	if !r.noAuth {
		hr.Header.Set("Authorization", "Bearer "+testToken)
	}
	for k, v := range r.headers {
		if v == "" {
			hr.Header.Del(k)
		} else {
			hr.Header.Set(k, v)
		}
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, hr)
	return w
}

// signedWebhook is a webhook request signed at ts.
func signedWebhook(body []byte, ts time.Time) req {
	sig, tsh := hris.Sign([]byte(testSecret), body, ts)
	return req{path: "/hris/webhook", ctype: "application/json", body: body, noAuth: true,
		headers: map[string]string{hris.SignatureHeader: sig, hris.TimestampHeader: tsh}}
}

// webhookBody renders a BambooHR payload with one event per element.
func webhookBody(events ...map[string]any) []byte {
	b, _ := json.Marshal(map[string]any{"employees": events})
	return b
}

func event(id any, action string, changed []string, fields map[string]any) map[string]any {
	if changed == nil {
		changed = []string{}
	}
	if fields == nil {
		fields = map[string]any{}
	}
	return map[string]any{"id": id, "timestamp": "2027-01-10T11:59:00+0000", "action": action,
		"changedFields": changed, "fields": fields}
}

// ndjsonLines splits a bulk answer into its JSON lines.
func ndjsonLines(t testing.TB, body string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &m), "line %q", sc.Text())
		out = append(out, m)
	}
	return out
}

// scimRequest wraps users into a BulkRequest, one POST /Users each.
func scimRequest(users ...map[string]any) map[string]any {
	ops := make([]any, 0, len(users))
	for i, u := range users {
		ops = append(ops, map[string]any{"method": "POST", "bulkId": fmt.Sprintf("bulk-%d", i), "path": "/Users", "data": u})
	}
	return map[string]any{"schemas": []string{SCIMBulkRequestURN}, "Operations": ops, "failOnErrors": nil}
}

// scimUserData is an Entra-style user with employee number id.
func scimUserData(id string) map[string]any {
	return map[string]any{
		"schemas":    []string{SCIMUserURN, SCIMEnterpriseURN, "urn:ietf:params:scim:schemas:extension:joinery:1.0:User"},
		"externalId": id,
		"userName":   "bjensen@example.com",
		"name":       map[string]any{"givenName": "Barbara", "familyName": "Jensen", "formatted": "Barbara Jensen"},
		"emails":     []any{map[string]any{"value": "bjensen@example.com", "type": "work", "primary": true}},
		"active":     true,
		"userType":   "Employee",
		"title":      "Tour Guide",
		"addresses":  []any{map[string]any{"type": "work", "locality": "Hollywood", "country": "US"}},
		SCIMEnterpriseURN: map[string]any{
			"employeeNumber": id, "department": "Tour Operations", "costCenter": "4130",
			"manager": map[string]any{"value": "89607", "displayName": "John Smith"},
		},
		"urn:ietf:params:scim:schemas:extension:joinery:1.0:User": map[string]any{"HireDate": "2027-02-01", "JobCode": "TG-1"},
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
