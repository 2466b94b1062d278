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
// run.StartJoiner does, and records every call.
type fakeStarter struct {
	mu        sync.Mutex
	starts    []workflows.JoinerInput // every Start call
	signals   []fakeSignal            // every Signal call
	running   map[string]bool
	done      map[string]bool
	startErr  error
	signalErr error
}

func newFake() *fakeStarter {
	return &fakeStarter{running: map[string]bool{}, done: map[string]bool{}}
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
