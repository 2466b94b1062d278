package hrisserver

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/joinery/joinery/connectors/hris"
)

const (
	testKey    = "test-api-key-0042"
	testAdmin  = "test-admin-token-0042"
	testSecret = "test-webhook-secret-0042"
	seedPath   = "../../testdata/hris/seed.json"
)

// safeBuffer collects log output written from several goroutines.
type safeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type testServer struct {
	srv  *Server
	url  string
	logs *safeBuffer
}

func newTestServer(t *testing.T, mutate ...func(*Config)) *testServer {
	t.Helper()
	logs := &safeBuffer{}
	cfg := Config{
		DBPath:        filepath.Join(t.TempDir(), "hris.db"),
		Company:       "acme",
		APIKey:        testKey,
		WebhookSecret: testSecret,
		AdminToken:    testAdmin,
		SeedFile:      seedPath,
		Logger:        slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, m := range mutate {
		m(&cfg)
	}
	srv, err := New(cfg)
	require.NoError(t, err)
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		hs.Close()
		require.NoError(t, srv.Close())
		require.NotContains(t, logs.String(), testKey, "logs must not contain the API key")
		require.NotContains(t, logs.String(), testAdmin, "logs must not contain the admin token")
		require.NotContains(t, logs.String(), testSecret, "logs must not contain the webhook secret")
	})
	return &testServer{srv: srv, url: hs.URL, logs: logs}
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.body, &m), string(r.body))
	return m
}

// call sends a request; auth is "key" (Basic with testKey), "admin" (Bearer
// testAdmin), "" (none) or any other string (Basic with that user).
func (ts *testServer) call(t *testing.T, method, path, auth string, body string) reply {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, ts.url+path, rd)
	require.NoError(t, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	switch auth {
	case "":
	case "key":
		req.SetBasicAuth(testKey, "x")
	case "admin":
		req.Header.Set("Authorization", "Bearer "+testAdmin)
	default:
		req.SetBasicAuth(auth, "x")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return reply{status: resp.StatusCode, header: resp.Header, body: data}
}

const emp = "/api/gateway.php/acme/v1/employees"

func requireError(t *testing.T, r reply, status int, contains string) {
	t.Helper()
	require.Equal(t, status, r.status, string(r.body))
	require.Contains(t, r.header.Get("X-BambooHR-Error-Message"), contains)
	require.Contains(t, r.json(t)["error"], contains)
}

func TestAuth(t *testing.T) {
	ts := newTestServer(t)
	api := []struct{ method, path, body string }{
		{http.MethodGet, emp + "/100?fields=firstName", ""},
		{http.MethodPost, emp + "/100/", `{"jobTitle":"x"}`},
		{http.MethodPost, emp + "/", `{"firstName":"A","lastName":"B"}`},
		{http.MethodGet, "/api/gateway.php/acme/v1/meta/fields", ""},
	}
	for _, c := range api {
		for _, auth := range []string{"", "wrong-key", "admin"} {
			r := ts.call(t, c.method, c.path, auth, c.body)
			requireError(t, r, http.StatusUnauthorized, "API key")
			require.Equal(t, `Basic realm="refhris"`, r.header.Get("WWW-Authenticate"))
		}
	}
	for _, auth := range []string{"", "key"} {
		requireError(t, ts.call(t, http.MethodGet, "/_admin/healthz", auth, ""), http.StatusUnauthorized, "admin token")
		requireError(t, ts.call(t, http.MethodPut, "/_admin/webhook", auth, `{"url":""}`), http.StatusUnauthorized, "admin token")
		requireError(t, ts.call(t, http.MethodPost, "/_admin/faults", auth, `{}`), http.StatusUnauthorized, "admin token")
	}
	require.Equal(t, http.StatusOK, ts.call(t, http.MethodGet, "/_admin/healthz", "admin", "").status)
	require.Equal(t, http.StatusOK, ts.call(t, http.MethodGet, "/healthz", "", "").status)
	requireError(t, ts.call(t, http.MethodGet, "/api/gateway.php/other/v1/employees/1?fields=firstName", "key", ""), http.StatusNotFound, "unknown company")

	noAdmin := newTestServer(t, func(c *Config) { c.AdminToken = "" })
	requireError(t, noAdmin.call(t, http.MethodGet, "/_admin/healthz", "admin", ""), http.StatusForbidden, "disabled")
}

func TestGetEmployee(t *testing.T) {
	ts := newTestServer(t)
	r := ts.call(t, http.MethodGet, emp+"/200?fields=firstName,lastName,displayName,workEmail,customUsername,supervisorEId,hireDate,status", "key", "")
	require.Equal(t, http.StatusOK, r.status)
	require.Equal(t, "application/json; charset=utf-8", r.header.Get("Content-Type"))
	m := r.json(t)
	require.Equal(t, "200", m["id"])
	require.Equal(t, "José", m["firstName"])
	require.Equal(t, "José Ñúñez", m["displayName"])
	require.Nil(t, m["workEmail"], "empty values are null")
	require.Contains(t, m, "workEmail")
	require.Nil(t, m["customUsername"])
	require.Equal(t, "100", m["supervisorEId"])
	require.Equal(t, time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, 14).Format("2006-01-02"), m["hireDate"])
	require.Len(t, m, 9, "only id and the requested fields")

	// Trailing slash, repeated and spaced field names.
	r = ts.call(t, http.MethodGet, emp+"/1/?fields=firstName,%20firstName&fields=lastName", "key", "")
	require.Equal(t, http.StatusOK, r.status)
	require.Equal(t, map[string]any{"id": "1", "firstName": "Grace", "lastName": "Hopper"}, r.json(t))

	requireError(t, ts.call(t, http.MethodGet, emp+"/1?fields=firstName,shoeSize", "key", ""), http.StatusBadRequest, `unknown field "shoeSize"`)
	requireError(t, ts.call(t, http.MethodGet, emp+"/1?fields=b,a", "key", ""), http.StatusBadRequest, `unknown fields "a", "b"`)
	requireError(t, ts.call(t, http.MethodGet, emp+"/1", "key", ""), http.StatusBadRequest, "fields query parameter is required")
	requireError(t, ts.call(t, http.MethodGet, emp+"/424242?fields=firstName", "key", ""), http.StatusNotFound, "employee 424242 not found")
	requireError(t, ts.call(t, http.MethodGet, emp+"/abc?fields=firstName", "key", ""), http.StatusBadRequest, "invalid employee id")
	requireError(t, ts.call(t, http.MethodGet, emp+"/0?fields=firstName", "key", ""), http.StatusBadRequest, "invalid employee id")
}

func TestSeedContents(t *testing.T) {
	ts := newTestServer(t)
	fields := "?fields=firstName,lastName,jobTitle,department,location,supervisorEId,customUsername,workEmail,status"
	get := func(id string) map[string]any {
		r := ts.call(t, http.MethodGet, emp+"/"+id+fields, "key", "")
		require.Equal(t, http.StatusOK, r.status, id)
		return r.json(t)
	}
	grace := get("1")
	require.Equal(t, "Grace", grace["firstName"])
	require.Nil(t, grace["supervisorEId"])
	require.Equal(t, "grace.hopper", grace["customUsername"])
	require.Equal(t, "grace.hopper@joinery.test", grace["workEmail"])
	ada := get("100")
	require.Equal(t, []any{"Engineering Manager", "Engineering", "DE-Berlin", "1", "ada.lovelace", "ada.lovelace@joinery.test"},
		[]any{ada["jobTitle"], ada["department"], ada["location"], ada["supervisorEId"], ada["customUsername"], ada["workEmail"]})
	alan := get("101")
	require.Equal(t, []any{"Finance Manager", "Finance", "UK-London", "1", "alan.turing"},
		[]any{alan["jobTitle"], alan["department"], alan["location"], alan["supervisorEId"], alan["customUsername"]})
	require.Equal(t, "john.smith", get("9001")["customUsername"])
	jane := get("9002")
	require.Equal(t, []any{"Jane", "Smith", "Recruiter", "People", "jsmith"},
		[]any{jane["firstName"], jane["lastName"], jane["jobTitle"], jane["department"], jane["customUsername"]})
	require.Equal(t, "Inactive", get("102")["status"])
	jose := get("200")
	require.Equal(t, []any{"Engineering", "DE-Berlin", "100", nil, nil},
		[]any{jose["department"], jose["location"], jose["supervisorEId"], jose["workEmail"], jose["customUsername"]})
}

func TestSeedLoadsOnlyIntoAnEmptyDatabase(t *testing.T) {
	db := filepath.Join(t.TempDir(), "hris.db")
	open := func() *testServer {
		return newTestServer(t, func(c *Config) { c.DBPath = db })
	}
	ts := open()
	require.Equal(t, http.StatusOK, ts.call(t, http.MethodPost, emp+"/100", "key", `{"jobTitle":"VP Engineering"}`).status)
	require.NoError(t, ts.srv.Close())

	ts = open()
	r := ts.call(t, http.MethodGet, emp+"/100?fields=jobTitle", "key", "")
	require.Equal(t, "VP Engineering", r.json(t)["jobTitle"], "a restart must not undo API changes")
}

func TestInvalidSeedFails(t *testing.T) {
	cases := map[string]string{
		"not json":            `{`,
		"unknown key":         `{"employees":[],"extra":1}`,
		"bad id":              `{"employees":[{"id":"x","firstName":"A","lastName":"B"}]}`,
		"duplicate id":        `{"employees":[{"id":"1","firstName":"A","lastName":"B"},{"id":"1","firstName":"C","lastName":"D"}]}`,
		"unknown field":       `{"employees":[{"id":"1","firstName":"A","lastName":"B","shoe":"44"}]}`,
		"missing name":        `{"employees":[{"id":"1","firstName":"A"}]}`,
		"bad date":            `{"employees":[{"id":"1","firstName":"A","lastName":"B","hireDate":"soon"}]}`,
		"dangling supervisor": `{"employees":[{"id":"1","firstName":"A","lastName":"B","supervisorEId":"7"}]}`,
	}
	for name, seed := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "seed.json")
			require.NoError(t, os.WriteFile(path, []byte(seed), 0o600))
			_, err := New(Config{DBPath: filepath.Join(dir, "db"), Company: "a", APIKey: "k", WebhookSecret: "s", SeedFile: path})
			require.ErrorContains(t, err, "seed")
		})
	}
}

func TestNewValidatesConfig(t *testing.T) {
	ok := Config{DBPath: filepath.Join(t.TempDir(), "db"), Company: "a", APIKey: "k", WebhookSecret: "s"}
	for name, mutate := range map[string]func(*Config){
		"no db":         func(c *Config) { c.DBPath = "" },
		"no company":    func(c *Config) { c.Company = "" },
		"no key":        func(c *Config) { c.APIKey = "" },
		"no secret":     func(c *Config) { c.WebhookSecret = "" },
		"bad webhook":   func(c *Config) { c.WebhookURL = "ftp://x" },
		"missing seed":  func(c *Config) { c.SeedFile = "/nonexistent/seed.json" },
		"webhook creds": func(c *Config) { c.WebhookURL = "http://u:p@h/" },
	} {
		t.Run(name, func(t *testing.T) {
			cfg := ok
			mutate(&cfg)
			_, err := New(cfg)
			require.Error(t, err)
		})
	}
}

func lastChanged(t *testing.T, ts *testServer, id string) string {
	t.Helper()
	r := ts.call(t, http.MethodGet, emp+"/"+id+"?fields=lastChanged", "key", "")
	require.Equal(t, http.StatusOK, r.status)
	return r.json(t)["lastChanged"].(string)
}

func TestUpdateRejectsBadInputAndChangesNothing(t *testing.T) {
	ts := newTestServer(t)
	before := ts.call(t, http.MethodGet, emp+"/100?fields=firstName,jobTitle,hireDate,status,workEmail,supervisorEId,lastChanged", "key", "")
	cases := []struct {
		name, body string
		status     int
		contains   string
	}{
		{"malformed json", `{"jobTitle":`, 400, "not a JSON object"},
		{"array", `["jobTitle"]`, 400, "not a JSON object"},
		{"null", `null`, 400, "not a JSON object"},
		{"trailing data", `{"jobTitle":"x"} {"a":1}`, 400, "unexpected data"},
		{"unknown field", `{"jobTitle":"x","shoeSize":"44"}`, 400, `unknown field "shoeSize"`},
		{"number value", `{"jobTitle":42}`, 400, `field "jobTitle" must be a string`},
		{"id", `{"id":"7"}`, 400, `field "id" is not writable`},
		{"displayName", `{"displayName":"X"}`, 400, `field "displayName" is not writable`},
		{"lastChanged", `{"lastChanged":"2020-01-01"}`, 400, `field "lastChanged" is not writable`},
		{"bad date", `{"hireDate":"2026-02-30"}`, 400, `field "hireDate"`},
		{"bad status", `{"status":"Retired"}`, 400, `field "status"`},
		{"bad email", `{"workEmail":"Ada <ada@x>"}`, 400, `field "workEmail"`},
		{"empty name", `{"firstName":" "}`, 400, `field "firstName"`},
		{"control chars", `{"jobTitle":"a\u0000b"}`, 400, "control characters"},
		{"too long", `{"jobTitle":"` + strings.Repeat("x", maxValueLen+1) + `"}`, 400, "longer than"},
		{"bad username", `{"customUsername":"Ada Lovelace"}`, 400, `field "customUsername"`},
		{"self supervisor", `{"supervisorEId":"100"}`, 400, "themself"},
		{"unknown supervisor", `{"supervisorEId":"424242"}`, 400, "does not exist"},
		{"too large", `{"jobTitle":"` + strings.Repeat("x", maxBodyBytes) + `"}`, 413, "exceeds"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			requireError(t, ts.call(t, http.MethodPost, emp+"/100", "key", c.body), c.status, c.contains)
		})
	}
	req, err := http.NewRequest(http.MethodPost, ts.url+emp+"/100", strings.NewReader(`jobTitle=x`))
	require.NoError(t, err)
	req.SetBasicAuth(testKey, "x")
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnsupportedMediaType, resp.StatusCode)

	after := ts.call(t, http.MethodGet, emp+"/100?fields=firstName,jobTitle,hireDate,status,workEmail,supervisorEId,lastChanged", "key", "")
	require.JSONEq(t, string(before.body), string(after.body), "refused updates must change nothing")
	requireError(t, ts.call(t, http.MethodPost, emp+"/424242", "key", `{"jobTitle":"x"}`), http.StatusNotFound, "not found")
}

func TestUpdateSemantics(t *testing.T) {
	ts := newTestServer(t)
	lc0 := lastChanged(t, ts, "101")
	prev := lc0
	for i, title := range []string{"CFO", "Head of Finance", "CFO"} {
		require.Equal(t, http.StatusOK, ts.call(t, http.MethodPost, emp+"/101/", "key", `{"jobTitle":"`+title+`"}`).status)
		lc := lastChanged(t, ts, "101")
		require.Greater(t, lc, prev, "update %d must move lastChanged forward, even within a millisecond", i)
		prev = lc
	}
	// Same value again and an empty body: no change, lastChanged stays.
	require.Equal(t, http.StatusOK, ts.call(t, http.MethodPost, emp+"/101", "key", `{"jobTitle":"CFO"}`).status)
	require.Equal(t, http.StatusOK, ts.call(t, http.MethodPost, emp+"/101", "key", `{}`).status)
	require.Equal(t, prev, lastChanged(t, ts, "101"))
	requireError(t, ts.call(t, http.MethodPost, emp+"/424242", "key", `{}`), http.StatusNotFound, "not found")

	// null clears a field.
	require.Equal(t, http.StatusOK, ts.call(t, http.MethodPost, emp+"/101", "key", `{"location":null}`).status)
	r := ts.call(t, http.MethodGet, emp+"/101?fields=location,jobTitle", "key", "")
	require.Equal(t, map[string]any{"id": "101", "location": nil, "jobTitle": "CFO"}, r.json(t))
}

func TestAddEmployee(t *testing.T) {
	ts := newTestServer(t)
	for i, want := range []string{"1000", "1001"} {
		r := ts.call(t, http.MethodPost, emp+"/", "key", `{"firstName":"New","lastName":"Hire","supervisorEId":"100"}`)
		require.Equal(t, http.StatusCreated, r.status, string(r.body))
		require.Equal(t, ts.url+emp+"/"+want, r.header.Get("Location"), "add %d", i)
		require.Equal(t, want, r.json(t)["id"])
	}
	got := ts.call(t, http.MethodGet, emp+"/1000?fields=employeeNumber,status,displayName,supervisorEId", "key", "").json(t)
	require.Equal(t, map[string]any{"id": "1000", "employeeNumber": "1000", "status": "Active", "displayName": "New Hire", "supervisorEId": "100"}, got)

	requireError(t, ts.call(t, http.MethodPost, emp, "key", `{"firstName":"OnlyFirst"}`), http.StatusBadRequest, "firstName and lastName are required")
	requireError(t, ts.call(t, http.MethodPost, emp, "key", `{"firstName":"A","lastName":"B","id":"5"}`), http.StatusBadRequest, "not writable")
	requireError(t, ts.call(t, http.MethodPost, emp, "key", `{"firstName":"A","lastName":"B","supervisorEId":"424242"}`), http.StatusBadRequest, "does not exist")
	// Refused adds consume no id.
	r := ts.call(t, http.MethodPost, emp, "key", `{"firstName":"A","lastName":"B"}`)
	require.Equal(t, ts.url+emp+"/1002", r.header.Get("Location"))
}

func TestAddEmployeeSkipsSeededIDs(t *testing.T) {
	dir := t.TempDir()
	seed := filepath.Join(dir, "seed.json")
	require.NoError(t, os.WriteFile(seed, []byte(`{"employees":[{"id":"1000","firstName":"A","lastName":"B"},{"id":"1001","firstName":"C","lastName":"D"}]}`), 0o600))
	ts := newTestServer(t, func(c *Config) { c.SeedFile = seed })
	r := ts.call(t, http.MethodPost, emp, "key", `{"firstName":"E","lastName":"F"}`)
	require.Equal(t, http.StatusCreated, r.status)
	require.Equal(t, "1002", r.json(t)["id"])
}

func TestFaultsAreScopedPerEmployee(t *testing.T) {
	ts := newTestServer(t)
	r := ts.call(t, http.MethodPost, "/_admin/faults", "admin", `{"employeeId":"100","status":429,"retryAfterSeconds":7,"count":2,"message":"slow down"}`)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	// Another employee is unaffected.
	require.Equal(t, http.StatusOK, ts.call(t, http.MethodGet, emp+"/101?fields=firstName", "key", "").status)
	for range 2 {
		r := ts.call(t, http.MethodPost, emp+"/100", "key", `{"jobTitle":"x"}`)
		requireError(t, r, http.StatusTooManyRequests, "slow down")
		require.Equal(t, "7", r.header.Get("Retry-After"))
	}
	r = ts.call(t, http.MethodGet, emp+"/100?fields=jobTitle", "key", "")
	require.Equal(t, "Engineering Manager", r.json(t)["jobTitle"], "faulted writes wrote nothing; the fault is used up")

	require.Equal(t, http.StatusOK, ts.call(t, http.MethodPost, "/_admin/faults", "admin", `{"employeeId":"100","status":500,"count":5}`).status)
	requireError(t, ts.call(t, http.MethodGet, emp+"/100?fields=jobTitle", "key", ""), http.StatusInternalServerError, "injected fault")
	require.Equal(t, http.StatusNoContent, ts.call(t, http.MethodDelete, "/_admin/faults/100", "admin", "").status)
	require.Equal(t, http.StatusOK, ts.call(t, http.MethodGet, emp+"/100?fields=jobTitle", "key", "").status)

	for _, bad := range []string{
		`{"employeeId":"x","status":500,"count":1}`,
		`{"employeeId":"1","status":200,"count":1}`,
		`{"employeeId":"1","status":500,"count":0}`,
		`{"employeeId":"1","status":429,"count":1,"retryAfterSeconds":-1}`,
		`{"employeeId":"1","status":500,"count":1,"colour":"red"}`,
	} {
		require.Equal(t, http.StatusBadRequest, ts.call(t, http.MethodPost, "/_admin/faults", "admin", bad).status, bad)
	}
}

// hookReceiver verifies deliveries like the starter and answers with the
// statuses in plan (then 204).
type hookReceiver struct {
	verifier *hris.Verifier
	plan     []int
	delay    time.Duration
	mu       sync.Mutex
	calls    int
	events   []hris.WebhookEvent
	errs     []error
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	time.Sleep(h.delay)
	body, _ := io.ReadAll(r.Body)
	evs, err := h.verifier.Verify(body, r.Header.Get(hris.SignatureHeader), r.Header.Get(hris.TimestampHeader))
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls++
	if err != nil {
		h.errs = append(h.errs, err)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if h.calls <= len(h.plan) {
		w.WriteHeader(h.plan[h.calls-1])
		return
	}
	h.events = append(h.events, evs...)
	w.WriteHeader(http.StatusNoContent)
}

func (h *hookReceiver) snapshot() (int, []hris.WebhookEvent, []error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.calls, append([]hris.WebhookEvent(nil), h.events...), append([]error(nil), h.errs...)
}

func TestWebhookRetriesUntilDelivered(t *testing.T) {
	rc := &hookReceiver{verifier: hris.NewVerifier([]byte(testSecret)), plan: []int{503, 502}}
	hook := httptest.NewServer(rc)
	t.Cleanup(hook.Close)
	ts := newTestServer(t, func(c *Config) { c.WebhookURL = hook.URL + "/hook?token=do-not-log" })

	r := ts.call(t, http.MethodPost, emp, "key", `{"firstName":"Hook","lastName":"Test","hireDate":"2031-05-01"}`)
	require.Equal(t, http.StatusCreated, r.status)
	require.Eventually(t, func() bool { _, evs, _ := rc.snapshot(); return len(evs) == 1 }, 10*time.Second, 20*time.Millisecond)
	calls, evs, errs := rc.snapshot()
	require.Empty(t, errs, "every attempt is signed afresh and verifies (no replay)")
	require.Equal(t, 3, calls)
	ev := evs[0]
	require.Equal(t, "1000", ev.EmployeeID)
	require.Equal(t, hris.ActionCreated, ev.Action)
	require.Equal(t, []string{"firstName", "hireDate", "lastName"}, ev.ChangedFields)
	require.Equal(t, "2031-05-01", ev.Fields["hireDate"])
	require.Equal(t, "Hook Test", ev.Fields["displayName"])
	require.Equal(t, "1000", ev.Fields["employeeNumber"])
	require.NotContains(t, ts.logs.String(), "do-not-log", "webhook URL tokens stay out of the logs")

	// Updates of monitored fields are announced; others are not.
	require.Equal(t, http.StatusOK, ts.call(t, http.MethodPost, emp+"/1000", "key", `{"jobTitle":"x"}`).status)
	require.Equal(t, http.StatusOK, ts.call(t, http.MethodPost, emp+"/1000", "key", `{"hireDate":"2031-06-01","jobTitle":"y"}`).status)
	require.Eventually(t, func() bool { _, evs, _ := rc.snapshot(); return len(evs) == 2 }, 10*time.Second, 20*time.Millisecond)
	_, evs, _ = rc.snapshot()
	require.Equal(t, hris.ActionUpdated, evs[1].Action)
	require.Equal(t, []string{"hireDate"}, evs[1].ChangedFields)
	require.Equal(t, "y", evs[1].Fields["jobTitle"])
}

func TestWebhookPermanentRejectionIsNotRetried(t *testing.T) {
	rc := &hookReceiver{verifier: hris.NewVerifier([]byte("the-wrong-secret"))}
	hook := httptest.NewServer(rc)
	t.Cleanup(hook.Close)
	ts := newTestServer(t)
	r := ts.call(t, http.MethodPut, "/_admin/webhook", "admin", `{"url":"`+hook.URL+`"}`)
	require.Equal(t, http.StatusOK, r.status)
	require.Equal(t, http.StatusCreated, ts.call(t, http.MethodPost, emp, "key", `{"firstName":"A","lastName":"B"}`).status)
	require.Eventually(t, func() bool { c, _, _ := rc.snapshot(); return c == 1 }, 5*time.Second, 20*time.Millisecond)
	time.Sleep(1500 * time.Millisecond) // longer than the first retry's backoff
	calls, evs, errs := rc.snapshot()
	require.Equal(t, 1, calls, "a 401 from the receiver is final")
	require.Empty(t, evs)
	require.ErrorIs(t, errs[0], hris.ErrBadSignature)
	require.Contains(t, ts.logs.String(), "webhook rejected by receiver")
}

func TestWebhookSubscribersAndSlowReceiversDoNotBlockTheAPI(t *testing.T) {
	slow := &hookReceiver{verifier: hris.NewVerifier([]byte(testSecret)), delay: 2 * time.Second}
	fast := &hookReceiver{verifier: hris.NewVerifier([]byte(testSecret))}
	slowSrv, fastSrv := httptest.NewServer(slow), httptest.NewServer(fast)
	t.Cleanup(slowSrv.Close)
	t.Cleanup(fastSrv.Close)
	ts := newTestServer(t, func(c *Config) { c.WebhookURL = slowSrv.URL })
	r := ts.call(t, http.MethodPost, "/_admin/webhooks", "admin", `{"url":"`+fastSrv.URL+`"}`)
	require.Equal(t, http.StatusCreated, r.status)
	subID := r.json(t)["id"].(string)
	require.Contains(t, string(ts.call(t, http.MethodGet, "/_admin/webhook", "admin", "").body), fastSrv.URL)

	start := time.Now()
	require.Equal(t, http.StatusCreated, ts.call(t, http.MethodPost, emp, "key", `{"firstName":"A","lastName":"B"}`).status)
	require.Less(t, time.Since(start), time.Second, "the API answer must not wait for a receiver")
	require.Eventually(t, func() bool { _, evs, _ := fast.snapshot(); return len(evs) == 1 }, time.Second, 10*time.Millisecond,
		"a slow receiver must not delay the others")

	require.Equal(t, http.StatusNoContent, ts.call(t, http.MethodDelete, "/_admin/webhooks/"+subID, "admin", "").status)
	require.Equal(t, http.StatusCreated, ts.call(t, http.MethodPost, emp, "key", `{"firstName":"C","lastName":"D"}`).status)
	require.Eventually(t, func() bool { _, evs, _ := slow.snapshot(); return len(evs) == 2 }, 10*time.Second, 20*time.Millisecond)
	_, evs, _ := fast.snapshot()
	require.Len(t, evs, 1, "a removed subscriber receives nothing more")

	for _, bad := range []string{`{"url":"ftp://x"}`, `{"url":""}`, `{"url":"http://u:p@h/"}`, `{`} {
		require.Equal(t, http.StatusBadRequest, ts.call(t, http.MethodPost, "/_admin/webhooks", "admin", bad).status, bad)
	}
	require.Equal(t, http.StatusBadRequest, ts.call(t, http.MethodPut, "/_admin/webhook", "admin", `{"url":"nope"}`).status)
}

func TestServeShutsDownGracefully(t *testing.T) {
	ts := newTestServer(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ts.srv.Serve(ctx, ln) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/healthz")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(15 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
	_, err = http.Get("http://" + ln.Addr().String() + "/healthz")
	require.Error(t, err, "the listener is closed")
	require.NoError(t, ts.srv.Close())
	require.NoError(t, ts.srv.Close(), "Close is idempotent")
}

func TestListenAndServeReportsBindErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	ts := newTestServer(t, func(c *Config) { c.Addr = ln.Addr().String() })
	err = ts.srv.ListenAndServe(context.Background())
	require.ErrorContains(t, err, "listen")
}

func TestConcurrentAddsGetDistinctIDs(t *testing.T) {
	ts := newTestServer(t)
	var wg sync.WaitGroup
	var mu sync.Mutex
	ids := map[string]bool{}
	var failures atomic.Int32
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodPost, ts.url+emp, strings.NewReader(`{"firstName":"P","lastName":"Q"}`))
			req.SetBasicAuth(testKey, "x")
			resp, err := http.DefaultClient.Do(req)
			if err != nil || resp.StatusCode != http.StatusCreated {
				failures.Add(1)
				return
			}
			var body map[string]string
			_ = json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			mu.Lock()
			ids[body["id"]] = true
			mu.Unlock()
		}()
	}
	wg.Wait()
	require.Zero(t, failures.Load())
	require.Len(t, ids, 20)
}

func TestHeaderSafe(t *testing.T) {
	require.Equal(t, `unknown field "Jos?"`, headerSafe(`unknown field "José"`))
	require.Equal(t, "a?b", headerSafe("a\nb"))
}
