package intake_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/joinery/joinery/connectors/hris"
	"github.com/joinery/joinery/internal/config"
	"github.com/joinery/joinery/internal/intake"
	"github.com/joinery/joinery/internal/run"
	"github.com/joinery/joinery/internal/stack"
	"github.com/joinery/joinery/internal/stack/stacktest"
	"github.com/joinery/joinery/workflows"
)

const itToken = "it-intake-token"

// itEnv is the real stack seen by one test: a Temporal client and a config
// whose task queue is unique to the test. No worker polls that queue, so
// the joiners started here stay "running" until t.Cleanup terminates them
// and never touch LDAP, Vault or the HRIS.
type itEnv struct {
	ep  stack.Endpoints
	cfg config.Config
	c   client.Client
}

func newEnv(t *testing.T) itEnv {
	t.Helper()
	ep := stacktest.Ensure(t)
	cfg, err := config.Load(func(string) string { return "" })
	require.NoError(t, err)
	cfg.TemporalAddress, cfg.TemporalNamespace, cfg.TemporalUIURL = ep.TemporalAddress, ep.TemporalNamespace, ep.TemporalUIURL
	cfg.TaskQueue = "it-intake-" + randHex(6)
	cfg.HRISURL, cfg.HRISCompany, cfg.HRISAPIKey = ep.HRISURL, ep.HRISCompany, ep.HRISAPIKey
	// These tests are about the paths, not the blast radius (which has its
	// own tests with a worker running the hold): the dev policy without
	// intake.blast_radius, so no hold is asked.
	cfg.PolicyFile = policyWithoutBlastRadius(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := run.Dial(ctx, cfg, nil)
	if err != nil {
		t.Fatalf("Temporal of the dev stack is not reachable: %v", err)
	}
	t.Cleanup(c.Close)
	return itEnv{ep: ep, cfg: cfg, c: c}
}

// policyWithoutBlastRadius writes the dev policy without its
// intake.blast_radius section and returns the file's path.
func policyWithoutBlastRadius(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../testdata/policy/default.yaml")
	require.NoError(t, err)
	head, _, ok := strings.Cut(string(b), "\n  blast_radius:")
	require.True(t, ok, "the dev policy has an intake.blast_radius section")
	p := t.TempDir() + "/policy.yaml"
	require.NoError(t, os.WriteFile(p, []byte(head+"\n"), 0o600))
	return p
}

// hire enters a pending hire (starting in a month) in the reference HRIS
// and returns its ID: the HR record decides who gets a joiner, so every
// start these tests expect needs one. employmentStatus "" is Full-Time.
func (e itEnv) hire(t *testing.T, employmentStatus string) string {
	t.Helper()
	if employmentStatus == "" {
		employmentStatus = "Full-Time"
	}
	hc, err := hris.New(hris.Config{BaseURL: e.ep.HRISURL, Company: e.ep.HRISCompany, APIKey: e.ep.HRISAPIKey, Timeout: 10 * time.Second})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	id, err := hc.AddEmployee(ctx, map[string]string{"firstName": "Intake", "lastName": "Test" + randHex(3),
		"hireDate": time.Now().AddDate(0, 1, 0).Format(time.DateOnly), "status": "Active",
		"employmentHistoryStatus": employmentStatus, "department": "Engineering", "supervisorEId": "100"})
	require.NoError(t, err)
	return id
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// uniqueID is an HR ID no other test uses.
func uniqueID() string { return "it-intake-" + randHex(5) }

// numericID is a BambooHR-style (numeric) employee ID no other test uses:
// 18 digits, far above any ID the reference HRIS hands out.
func numericID() string {
	n, _ := rand.Int(rand.Reader, big.NewInt(1e16))
	return fmt.Sprintf("97%016d", n)
}

// server returns an intake server on the real Temporal.
func (e itEnv) server(t *testing.T, secret string) *intake.Server {
	st := intake.NewTemporalStarter(e.c, e.cfg)
	return &intake.Server{
		Starter:  st,
		Verifier: hris.NewVerifier([]byte(secret)),
		Token:    itToken,
		Logger:   slog.New(slog.NewJSONHandler(io.Discard, nil)),
		Ready:    st.Ready,
	}
}

// terminateLater terminates the joiners of ids when the test ends, so that
// nothing lingers on the shared stack.
func (e itEnv) terminateLater(t *testing.T, ids ...string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, id := range ids {
			err := e.c.TerminateWorkflow(ctx, workflows.JoinerWorkflowID(id), "", "intake integration test cleanup")
			var nf *serviceerror.NotFound
			if err != nil && !errors.As(err, &nf) {
				t.Errorf("terminate %s: %v", id, err)
			}
		}
	})
}

// describe returns the joiner's execution, or nil when none exists.
func (e itEnv) describe(t *testing.T, id string) *workflowservice.DescribeWorkflowExecutionResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := e.c.DescribeWorkflowExecution(ctx, workflows.JoinerWorkflowID(id), "")
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return nil
	}
	require.NoError(t, err)
	return d
}

func (e itEnv) requireRunning(t *testing.T, id string) string {
	t.Helper()
	d := e.describe(t, id)
	require.NotNil(t, d, "no joiner was started for %s", id)
	info := d.GetWorkflowExecutionInfo()
	require.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, info.GetStatus())
	require.Equal(t, e.cfg.TaskQueue, info.GetTaskQueue())
	return info.GetExecution().GetRunId()
}

func (e itEnv) requireNotStarted(t *testing.T, id string) {
	t.Helper()
	require.Nil(t, e.describe(t, id), "a joiner was started for %s", id)
}

// input reads the JoinerInput the joiner was started with.
func (e itEnv) input(t *testing.T, id string) workflows.JoinerInput {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	it := e.c.GetWorkflowHistory(ctx, workflows.JoinerWorkflowID(id), "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	require.True(t, it.HasNext())
	ev, err := it.Next()
	require.NoError(t, err)
	attrs := ev.GetWorkflowExecutionStartedEventAttributes()
	require.NotNil(t, attrs)
	var in workflows.JoinerInput
	require.NoError(t, json.Unmarshal(attrs.GetInput().GetPayloads()[0].GetData(), &in))
	return in
}

// signals lists the signals the joiner received, as "name payload".
func (e itEnv) signals(t *testing.T, id string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	it := e.c.GetWorkflowHistory(ctx, workflows.JoinerWorkflowID(id), "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	var out []string
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(t, err)
		if a := ev.GetWorkflowExecutionSignaledEventAttributes(); a != nil {
			out = append(out, a.GetSignalName()+" "+string(a.GetInput().GetPayloads()[0].GetData()))
		}
	}
	return out
}

func post(t *testing.T, url, ctype string, body []byte, headers map[string]string) (int, []byte) {
	t.Helper()
	r, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	require.NoError(t, err)
	r.Header.Set("Content-Type", ctype)
	for k, v := range headers {
		r.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(r)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, b
}

func signed(secret string, body []byte, at time.Time) map[string]string {
	sig, ts := hris.Sign([]byte(secret), body, at)
	return map[string]string{hris.SignatureHeader: sig, hris.TimestampHeader: ts}
}

func createdEvent(id string) []byte {
	b, _ := json.Marshal(map[string]any{"employees": []any{map[string]any{
		"id": id, "timestamp": time.Now().UTC().Format("2006-01-02T15:04:05-0700"), "action": "Created",
		"changedFields": []string{"firstName", "hireDate"}, "fields": map[string]string{"firstName": "Test", "hireDate": "2030-01-15"},
	}}})
	return b
}

func TestIntegrationWebhookSignatures(t *testing.T) {
	e := newEnv(t)
	const secret = "it-webhook-secret"
	srv := httptest.NewServer(e.server(t, secret).Handler())
	defer srv.Close()
	url := srv.URL + "/hris/webhook"
	now := time.Now()

	// Refused deliveries never reach the HRIS: made-up IDs do for them.
	valid, wrong, stale, unsigned, replayed := e.hire(t, ""), numericID(), numericID(), numericID(), numericID()
	e.terminateLater(t, valid, wrong, stale, unsigned, replayed)

	t.Run("valid signature starts the joiner", func(t *testing.T) {
		code, body := post(t, url, "application/json", createdEvent(valid), signed(secret, createdEvent(valid), now))
		require.Equal(t, http.StatusOK, code, string(body))
		var ans intake.WebhookAnswer
		require.NoError(t, json.Unmarshal(body, &ans))
		require.Equal(t, "started", ans.Results[0].Outcome)
		e.requireRunning(t, valid)
		in := e.input(t, valid)
		require.Equal(t, "webhook", in.Source)
		require.Equal(t, "hris-webhook", in.RequestedBy)
		require.True(t, strings.HasPrefix(in.EventID, "bamboohr:Created:"+valid+":"), in.EventID)
	})
	refused := func(t *testing.T, id string, headers map[string]string, body []byte) {
		t.Helper()
		code, b := post(t, url, "application/json", body, headers)
		require.Equal(t, http.StatusUnauthorized, code, string(b))
		var e2 map[string]string
		require.NoError(t, json.Unmarshal(b, &e2))
		require.NotEmpty(t, e2["error"])
		e.requireNotStarted(t, id)
	}
	t.Run("wrong signature is refused", func(t *testing.T) {
		refused(t, wrong, signed("not-the-secret", createdEvent(wrong), now), createdEvent(wrong))
	})
	t.Run("stale signature is refused", func(t *testing.T) {
		refused(t, stale, signed(secret, createdEvent(stale), now.Add(-10*time.Minute)), createdEvent(stale))
	})
	t.Run("unsigned delivery is refused", func(t *testing.T) {
		refused(t, unsigned, nil, createdEvent(unsigned))
	})
	t.Run("replayed delivery is refused", func(t *testing.T) {
		// The original delivery carries a hire date the intake refuses, so
		// it starts nothing; replaying it must be refused as a replay.
		body, _ := json.Marshal(map[string]any{"employees": []any{map[string]any{"id": replayed, "action": "Created",
			"fields": map[string]string{"hireDate": "2030-02-30"}}}})
		h := signed(secret, body, now)
		code, b := post(t, url, "application/json", body, h)
		require.Equal(t, http.StatusBadRequest, code, string(b))
		refused(t, replayed, h, body)
	})
}

// TestIntegrationReplayOfStartedDelivery sends the byte-identical delivery
// twice: the second is refused and the joiner keeps its single run.
func TestIntegrationReplayOfStartedDelivery(t *testing.T) {
	e := newEnv(t)
	const secret = "it-webhook-secret"
	srv := httptest.NewServer(e.server(t, secret).Handler())
	defer srv.Close()
	id := e.hire(t, "")
	e.terminateLater(t, id)
	body := createdEvent(id)
	h := signed(secret, body, time.Now())
	code, b := post(t, srv.URL+"/hris/webhook", "application/json", body, h)
	require.Equal(t, http.StatusOK, code, string(b))
	runID := e.requireRunning(t, id)
	code, b = post(t, srv.URL+"/hris/webhook", "application/json", body, h)
	require.Equal(t, http.StatusUnauthorized, code, string(b))
	require.Contains(t, string(b), "replay")
	require.Equal(t, runID, e.requireRunning(t, id))
}

// TestIntegrationConcurrentDeliveries: five concurrent deliveries of one
// hire (each signed afresh, as a retrying HRIS does) start exactly one
// workflow; the other four answers report the collapse.
func TestIntegrationConcurrentDeliveries(t *testing.T) {
	e := newEnv(t)
	const secret = "it-webhook-secret"
	srv := httptest.NewServer(e.server(t, secret).Handler())
	defer srv.Close()
	id := e.hire(t, "")
	e.terminateLater(t, id)
	body := createdEvent(id)
	now := time.Now()

	results := make([]intake.EventResult, 5)
	codes := make([]int, 5)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			r, _ := http.NewRequest(http.MethodPost, srv.URL+"/hris/webhook", bytes.NewReader(body))
			r.Header.Set("Content-Type", "application/json")
			for k, v := range signed(secret, body, now.Add(-time.Duration(i)*time.Second)) {
				r.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(r)
			if err != nil {
				return
			}
			defer resp.Body.Close()
			codes[i] = resp.StatusCode
			var ans intake.WebhookAnswer
			if json.NewDecoder(resp.Body).Decode(&ans) == nil && len(ans.Results) == 1 {
				results[i] = ans.Results[0]
			}
		}()
	}
	close(start)
	wg.Wait()
	count := map[string]int{}
	runs := map[string]bool{}
	for i, r := range results {
		require.Equal(t, http.StatusOK, codes[i])
		count[r.Outcome]++
		runs[r.WorkflowID] = true
	}
	require.Equal(t, map[string]int{"started": 1, "already running": 4}, count)
	require.Len(t, runs, 1)
	e.requireRunning(t, id)

	// Exactly one execution carries this workflow ID (visibility is
	// eventually consistent, so wait for the first to appear).
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	q := fmt.Sprintf("WorkflowId = '%s'", workflows.JoinerWorkflowID(id))
	var n int64
	require.Eventually(t, func() bool {
		resp, err := e.c.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Namespace: e.cfg.TemporalNamespace, Query: q})
		if err != nil {
			return false
		}
		n = resp.GetCount()
		return n >= 1
	}, 20*time.Second, 200*time.Millisecond)
	require.EqualValues(t, 1, n)
}

func TestIntegrationBulkImport(t *testing.T) {
	e := newEnv(t)
	srv := httptest.NewServer(e.server(t, "unused").Handler())
	defer srv.Close()
	prefix := uniqueID()
	var csv strings.Builder
	csv.WriteString("hrisId,kind,hireDate,email\n")
	var good, bad []string
	for i := 1; i <= 100; i++ {
		// Invalid rows are refused before the HRIS is asked: made-up IDs.
		id := fmt.Sprintf("%s-%03d", prefix, i)
		switch i {
		case 7, 23, 42, 64, 99:
		default:
			id = e.hire(t, "")
		}
		switch i {
		case 7:
			fmt.Fprintf(&csv, "%s,robot,2030-01-01,\n", id)
			bad = append(bad, id)
		case 23:
			fmt.Fprintf(&csv, "%s,employee,2030-02-30,\n", id)
			bad = append(bad, id)
		case 42:
			fmt.Fprintf(&csv, "%s,employee,2030-01-01,not-an-email\n", id)
			bad = append(bad, id)
		case 64:
			fmt.Fprintf(&csv, "%s,employee\n", id) // too few fields
			bad = append(bad, id)
		case 99:
			csv.WriteString("has space,employee,2030-01-01,\n")
		default:
			fmt.Fprintf(&csv, "%s,employee,2030-01-01,j%d@example.com\n", id, i)
			good = append(good, id)
		}
	}
	e.terminateLater(t, good...)
	code, body := post(t, srv.URL+"/joiners:bulk", "text/csv", []byte(csv.String()), map[string]string{"Authorization": "Bearer " + itToken})
	require.Equal(t, http.StatusOK, code, string(body))
	lines := strings.Split(strings.TrimSpace(string(body)), "\n")
	require.Len(t, lines, 101)
	invalidRows := map[int]string{}
	for _, l := range lines[:100] {
		var r intake.RowResult
		require.NoError(t, json.Unmarshal([]byte(l), &r))
		if r.Outcome == intake.OutcomeInvalid {
			invalidRows[r.Row] = r.Field
		} else {
			require.Equal(t, "started", r.Outcome, "%+v", r)
		}
	}
	require.Equal(t, map[int]string{7: "kind", 23: "hireDate", 42: "email", 64: "row", 99: "hrisId"}, invalidRows)
	var sum intake.BulkSummary
	require.NoError(t, json.Unmarshal([]byte(lines[100]), &sum))
	require.Equal(t, intake.Totals{Rows: 100, Started: 95, Invalid: 5}, sum.Summary)
	for _, id := range good {
		e.requireRunning(t, id)
	}
	for _, id := range bad {
		e.requireNotStarted(t, id)
	}
	require.Equal(t, "bulk", e.input(t, good[0]).Source)
}

func TestIntegrationSCIMBulk(t *testing.T) {
	e := newEnv(t)
	srv := httptest.NewServer(e.server(t, "unused").Handler())
	defer srv.Close()
	raw, err := os.ReadFile("../../testdata/intake/entra-bulk.json")
	require.NoError(t, err)
	a, b := e.hire(t, ""), e.hire(t, "Contractor")
	body := strings.NewReplacer("701984", a, "701985", b).Replace(string(raw))
	e.terminateLater(t, a, b)
	code, out := post(t, srv.URL+"/scim/v2/Bulk", "application/scim+json", []byte(body), map[string]string{"Authorization": "Bearer " + itToken})
	require.Equal(t, http.StatusOK, code, string(out))
	var resp intake.SCIMBulkResponse
	require.NoError(t, json.Unmarshal(out, &resp))
	require.Len(t, resp.Operations, 2)
	for _, op := range resp.Operations {
		require.Equal(t, "201", op.Status, "%+v", op)
		require.Contains(t, op.Location, "/workflows/joiner-")
	}
	e.requireRunning(t, a)
	e.requireRunning(t, b)
	require.Equal(t, workflows.JoinerInput{HRISID: a, Kind: "employee", Source: "scim", RequestedBy: "scim-bulk",
		EventID: "scim:897401c2-2de4-4b87-a97f-c02de3bcfc61"}, e.input(t, a))
	require.Equal(t, "contractor", e.input(t, b).Kind)

	// The same upload again: both collapse onto the running joiners.
	code, out = post(t, srv.URL+"/scim/v2/Bulk", "application/scim+json", []byte(body), map[string]string{"Authorization": "Bearer " + itToken})
	require.Equal(t, http.StatusOK, code)
	require.NoError(t, json.Unmarshal(out, &resp))
	require.Equal(t, "200", resp.Operations[0].Status)
	require.Equal(t, "200", resp.Operations[1].Status)

	// A bad operation refuses the whole request and starts nothing.
	c := uniqueID()
	bad := strings.NewReplacer("701984", c, "701985", "bad id!").Replace(string(raw))
	code, out = post(t, srv.URL+"/scim/v2/Bulk", "application/scim+json", []byte(bad), map[string]string{"Authorization": "Bearer " + itToken})
	require.Equal(t, http.StatusBadRequest, code, string(out))
	e.requireNotStarted(t, c)
}

func TestIntegrationJoinerAPIAndReadiness(t *testing.T) {
	e := newEnv(t)
	srv := httptest.NewServer(e.server(t, "unused").Handler())
	defer srv.Close()
	id := e.hire(t, "")
	e.terminateLater(t, id)
	auth := map[string]string{"Authorization": "Bearer " + itToken}
	// The caller does not choose the kind: a pipeline on a person's record
	// is refused, and nothing starts.
	code, out := post(t, srv.URL+"/joiners", "application/json", []byte(`{"hrisId":"`+id+`","kind":"pipeline","requestedBy":"ci"}`), auth)
	require.Equal(t, http.StatusUnprocessableEntity, code, string(out))
	require.Contains(t, string(out), `"reason":"kind-mismatch"`)
	e.requireNotStarted(t, id)
	code, out = post(t, srv.URL+"/joiners", "application/json", []byte(`{"hrisId":"`+id+`","requestedBy":"ci"}`), auth)
	require.Equal(t, http.StatusCreated, code, string(out))
	var ans intake.StartAnswer
	require.NoError(t, json.Unmarshal(out, &ans))
	require.Equal(t, run.Started, ans.Outcome)
	require.Equal(t, e.cfg.TemporalUIURL+"/namespaces/"+e.cfg.TemporalNamespace+"/workflows/joiner-"+id, ans.UIURL)
	require.Equal(t, ans.RunID, e.requireRunning(t, id))
	require.Equal(t, workflows.JoinerInput{HRISID: id, Kind: "employee", Source: "api", RequestedBy: "ci"}, e.input(t, id))

	code, out = post(t, srv.URL+"/joiners", "application/json", []byte(`{"hrisId":"`+id+`"}`), auth)
	require.Equal(t, http.StatusOK, code)
	require.NoError(t, json.Unmarshal(out, &ans))
	require.Equal(t, run.AlreadyRunning, ans.Outcome)

	resp, err := http.Get(srv.URL + "/readyz")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	// A Temporal that cannot be reached makes the server unready.
	dead, err := client.NewLazyClient(client.Options{HostPort: "127.0.0.1:1"})
	require.NoError(t, err)
	defer dead.Close()
	st := intake.NewTemporalStarter(dead, e.cfg)
	s := &intake.Server{Starter: st, Ready: st.Ready}
	dsrv := httptest.NewServer(s.Handler())
	defer dsrv.Close()
	resp, err = http.Get(dsrv.URL + "/readyz")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
}

// TestIntegrationReferenceHRIS drives the intake from the reference HRIS
// itself: adding an employee, moving the hire date and deactivating the
// employee each deliver a signed webhook that starts, re-dates and rescinds
// the joiner.
func TestIntegrationReferenceHRIS(t *testing.T) {
	e := newEnv(t)
	hc, err := hris.New(hris.Config{BaseURL: e.ep.HRISURL, Company: e.ep.HRISCompany, APIKey: e.ep.HRISAPIKey, Timeout: 10 * time.Second})
	require.NoError(t, err)
	inner := e.server(t, e.ep.HRISWebhookSecret).Handler()

	// The subscription sees every change on the shared HRIS; only this
	// test's employee reaches the intake, so other tests' employees never
	// get joiners on this test's task queue.
	var mu sync.Mutex
	var mine string
	got := make(chan intake.EventResult, 16)
	filter := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var p struct {
			Employees []struct {
				ID json.RawMessage `json:"id"`
			} `json:"employees"`
		}
		_ = json.Unmarshal(body, &p)
		deadline := time.Now().Add(10 * time.Second)
		for {
			mu.Lock()
			id := mine
			mu.Unlock()
			if id != "" || time.Now().After(deadline) {
				if len(p.Employees) != 1 || strings.Trim(string(p.Employees[0].ID), `"`) != id {
					w.WriteHeader(http.StatusOK) // someone else's employee
					return
				}
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		rec := httptest.NewRecorder()
		r.Body = io.NopCloser(bytes.NewReader(body))
		inner.ServeHTTP(rec, r)
		var ans intake.WebhookAnswer
		if json.Unmarshal(rec.Body.Bytes(), &ans) == nil {
			for _, res := range ans.Results {
				got <- res
			}
		} else {
			got <- intake.EventResult{Outcome: fmt.Sprintf("HTTP %d: %s", rec.Code, rec.Body.String())}
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	})
	srv := httptest.NewServer(filter)
	defer srv.Close()
	subID := subscribe(t, e.ep, srv.URL+"/hris/webhook")
	t.Cleanup(func() { adminCall(t, e.ep, http.MethodDelete, "/_admin/webhooks/"+subID, nil) })

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	hireDate := time.Now().AddDate(0, 2, 0).Format(time.DateOnly)
	id, err := hc.AddEmployee(ctx, map[string]string{"firstName": "Intake", "lastName": "Test" + randHex(3), "hireDate": hireDate,
		"status": "Active", "department": "Engineering"})
	require.NoError(t, err)
	mu.Lock()
	mine = id
	mu.Unlock()
	e.terminateLater(t, id)

	next := func(what string) intake.EventResult {
		t.Helper()
		select {
		case r := <-got:
			return r
		case <-time.After(20 * time.Second):
			t.Fatalf("no webhook arrived for %s", what)
			return intake.EventResult{}
		}
	}
	res := next("add employee")
	require.Equal(t, "Created", res.Action)
	require.Equal(t, "started", res.Outcome, "%+v", res)
	e.requireRunning(t, id)

	moved := time.Now().AddDate(0, 3, 0).Format(time.DateOnly)
	require.NoError(t, hc.UpdateFields(ctx, id, map[string]string{"hireDate": moved}))
	res = next("hire date change")
	require.Equal(t, intake.OutcomeSignalled, res.Outcome, "%+v", res)
	require.Equal(t, workflows.SignalStartDateChange, res.Signal)

	require.NoError(t, hc.UpdateFields(ctx, id, map[string]string{"status": "Inactive"}))
	res = next("deactivation")
	require.Equal(t, intake.OutcomeSignalled, res.Outcome, "%+v", res)
	require.Equal(t, workflows.SignalRescind, res.Signal)

	require.Equal(t, []string{
		`start-date {"hireDate":"` + moved + `","by":"hris-webhook"}`,
		`rescind {"by":"hris-webhook","reason":"HRIS status set to Inactive"}`,
	}, e.signals(t, id))
}

func adminCall(t *testing.T, ep stack.Endpoints, method, path string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	r, err := http.NewRequest(method, ep.HRISURL+path, rd)
	require.NoError(t, err)
	r.Header.Set("Authorization", "Bearer "+ep.HRISAdminToken)
	r.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(r)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func subscribe(t *testing.T, ep stack.Endpoints, url string) string {
	t.Helper()
	code, b := adminCall(t, ep, http.MethodPost, "/_admin/webhooks", map[string]string{"url": url})
	require.Equal(t, http.StatusCreated, code, string(b))
	var sub struct {
		ID string `json:"id"`
	}
	require.NoError(t, json.Unmarshal(b, &sub))
	return sub.ID
}
