package metrics

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/joinery/joinery/internal/policy"
	"github.com/joinery/joinery/workflows"
)

// fakeVisibility answers the collector's reads from fixed data and
// records the queries it was sent. The real Temporal is in
// worker_integration_test.go; this one makes ages and timeouts that a
// test cannot wait for.
type fakeVisibility struct {
	mu      sync.Mutex
	queries []string
	counts  map[string]int64 // substring of the query -> count
	waiting []*workflowpb.WorkflowExecutionInfo
	status  map[string]workflows.Status
	fail    error
}

func (f *fakeVisibility) CountWorkflow(_ context.Context, r *workflowservice.CountWorkflowExecutionsRequest) (*workflowservice.CountWorkflowExecutionsResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queries = append(f.queries, r.GetQuery())
	if f.fail != nil {
		return nil, f.fail
	}
	for sub, n := range f.counts {
		if strings.Contains(r.GetQuery(), sub) {
			return &workflowservice.CountWorkflowExecutionsResponse{Count: n}, nil
		}
	}
	return &workflowservice.CountWorkflowExecutionsResponse{}, nil
}

func (f *fakeVisibility) ListWorkflow(_ context.Context, r *workflowservice.ListWorkflowExecutionsRequest) (*workflowservice.ListWorkflowExecutionsResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queries = append(f.queries, r.GetQuery())
	return &workflowservice.ListWorkflowExecutionsResponse{Executions: f.waiting}, nil
}

func (f *fakeVisibility) QueryWorkflow(_ context.Context, id, _, q string, _ ...interface{}) (converter.EncodedValue, error) {
	st, ok := f.status[id]
	if !ok || q != workflows.QueryStatus {
		return nil, errors.New("no such joiner")
	}
	p, err := converter.GetDefaultDataConverter().ToPayloads(st)
	if err != nil {
		return nil, err
	}
	return encoded{p}, nil
}

type encoded struct{ p *commonpb.Payloads }

func (e encoded) HasValue() bool { return e.p != nil }
func (e encoded) Get(v any) error {
	return converter.GetDefaultDataConverter().FromPayloads(e.p, v)
}

func gauge(t *testing.T, c prometheus.Collector, name string, labels ...string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	require.NoError(t, reg.Register(c))
	fams, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			if m.GetGauge() != nil {
				return m.GetGauge().GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("no %s %v", name, labels)
	return 0
}

func TestJoinerStateCountsAgesAndOverdueApprovals(t *testing.T) {
	now := time.Date(2027, 3, 10, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	provisionAt := now.Add(-1 * day)
	fv := &fakeVisibility{
		counts: map[string]int64{
			"ExecutionStatus = 'Running' AND JoinerStage = 'AwaitingApproval'":  3,
			"ExecutionStatus = 'Running' AND JoinerStage = 'CompensationStuck'": 1,
			"ExecutionStatus = 'Running' AND JoinerStage = 'RollingBack'":       2,
			"ExecutionStatus = 'Running' AND JoinerStage = 'Revoking'":          1,
			"ExecutionStatus != 'Running' AND JoinerStage = 'Completed'":        7,
			"JoinerExpiry <": 4,
		},
		waiting: []*workflowpb.WorkflowExecutionInfo{
			// Asked when its provisioning date came, a day ago: within its
			// two-day timeout although it started long before.
			{Execution: &commonpb.WorkflowExecution{WorkflowId: "joiner-1", RunId: "r1"}, StartTime: timestamppb.New(now.Add(-10 * day))},
			// Asked at its start five days ago, timeout four days: overdue.
			{Execution: &commonpb.WorkflowExecution{WorkflowId: "joiner-2", RunId: "r2"}, StartTime: timestamppb.New(now.Add(-5 * day))},
			// Its status cannot be read: counted, aged from its start, never
			// called overdue on a guess.
			{Execution: &commonpb.WorkflowExecution{WorkflowId: "joiner-3", RunId: "r3"}, StartTime: timestamppb.New(now.Add(-2 * day))},
		},
		status: map[string]workflows.Status{
			"joiner-1": {ProvisionAt: &provisionAt, Plan: &policy.Plan{Approval: policy.ApprovalPlan{Timeout: 2 * day}}},
			"joiner-2": {Plan: &policy.Plan{Approval: policy.ApprovalPlan{Timeout: 4 * day}}},
		},
	}
	js := &JoinerState{Client: fv, Namespace: "default", TaskQueue: "joinery-joiners", Now: func() time.Time { return now }}
	require.Equal(t, 0.0, gauge(t, js, CollectorLastSuccess), "before the first refresh: no data, not zero joiners")
	require.NoError(t, js.Refresh(context.Background()))

	require.Equal(t, 3.0, gauge(t, js, ApprovalsWaiting))
	require.Equal(t, 1.0, gauge(t, js, ApprovalsOverdue))
	require.InDelta(t, (5 * day).Seconds(), gauge(t, js, ApprovalOldestAge), 1)
	require.Equal(t, 1.0, gauge(t, js, CompensationsStuck))
	require.Equal(t, 3.0, gauge(t, js, CompensationsRetrying))
	require.Equal(t, 4.0, gauge(t, js, RevocationsOverdue))
	require.Equal(t, 7.0, gauge(t, js, JoinersClosed, "stage", "Completed"))
	require.Equal(t, 0.0, gauge(t, js, JoinersRunning, "stage", "Active"))
	require.Equal(t, float64(now.Unix()), gauge(t, js, CollectorLastSuccess))

	// Every read is confined to this deployment's task queue and joiners,
	// and expiry is compared with now less the grace.
	for _, q := range fv.queries {
		require.Contains(t, q, "WorkflowType = 'Joiner' AND TaskQueue = 'joinery-joiners'")
	}
	require.Contains(t, strings.Join(fv.queries, "\n"), "JoinerExpiry < '2027-03-10T11:45:00Z'")
}

func TestJoinerStateKeepsItsLastSnapshotWhenVisibilityFails(t *testing.T) {
	now := time.Unix(1_900_000_000, 0)
	fv := &fakeVisibility{counts: map[string]int64{"JoinerStage = 'CompensationStuck'": 2}}
	js := &JoinerState{Client: fv, TaskQueue: "q", Now: func() time.Time { return now }}
	require.NoError(t, js.Refresh(context.Background()))
	fv.fail = errors.New("visibility unavailable")
	js.Now = func() time.Time { return now.Add(time.Hour) }
	require.Error(t, js.Refresh(context.Background()))
	require.Equal(t, 2.0, gauge(t, js, CompensationsStuck), "the last known value stays")
	require.Equal(t, float64(now.Unix()), gauge(t, js, CollectorLastSuccess), "and says how old it is")
	require.Equal(t, 1.0, gauge(t, js, CollectorErrors))
}

// A task queue is configuration, but it goes into a query string: one that
// could change the query is refused before anything is sent.
func TestJoinerStateRefusesATaskQueueThatWouldChangeTheQuery(t *testing.T) {
	fv := &fakeVisibility{}
	for _, tq := range []string{"", "q' OR WorkflowType = 'Hold", `q\`, `q"`} {
		js := &JoinerState{Client: fv, TaskQueue: tq}
		require.Error(t, js.Refresh(context.Background()), tq)
	}
	require.Empty(t, fv.queries)
}

func TestReconcilerRefusesIdentitiesAsKinds(t *testing.T) {
	reg := prometheus.NewRegistry()
	r, err := NewReconciler(reg)
	require.NoError(t, err)
	at := time.Unix(1_900_000_000, 0)
	require.NoError(t, r.RecordReconcile(map[string]int{"orphan-entry": 2, "unexpected-member": 1}, at))
	require.Equal(t, 3.0, testutil.ToFloat64(r.findings.WithLabelValues("total")))

	for _, bad := range []map[string]int{
		{"ada.lovelace": 1},
		{"uid=jsmith,ou=people,dc=joinery,dc=test": 1},
		{"John Smith": 1},
		{"jsmith@joinery.test": 1},
		{"total": 5},
		{"orphan-entry": -1},
	} {
		require.Error(t, r.RecordReconcile(bad, at.Add(time.Hour)), "%v", bad)
	}
	// A refused pass changed nothing.
	require.Equal(t, 3.0, testutil.ToFloat64(r.findings.WithLabelValues("total")))
	require.Equal(t, float64(at.Unix()), testutil.ToFloat64(r.lastRun))
	out, err := testutil.CollectAndFormat(r.findings, expfmt.TypeTextPlain, ReconcilerFindings)
	require.NoError(t, err)
	require.NotContains(t, string(out), "lovelace")
	require.NotContains(t, string(out), "jsmith")

	// A kind the next pass no longer reports reads 0, not its old count.
	require.NoError(t, r.RecordReconcile(map[string]int{"unexpected-member": 4}, at.Add(2*time.Hour)))
	require.Equal(t, 0.0, testutil.ToFloat64(r.findings.WithLabelValues("orphan-entry")))
	require.Equal(t, 4.0, testutil.ToFloat64(r.findings.WithLabelValues("total")))

	// The kinds label is bounded.
	many := map[string]int{}
	for i := 0; i < maxReconcilerKinds+1; i++ {
		many["kind-"+strings.Repeat("a", i%30)+string(rune('a'+i%26))] = 1
	}
	require.Error(t, r.RecordReconcile(many, at))
}

func TestHandlerOnlyServesMetricsForReading(t *testing.T) {
	r := NewRegistry()
	srv := httptest.NewServer(r.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + Path)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	for _, c := range []struct{ method, path string }{
		{http.MethodPost, Path}, {http.MethodPut, Path}, {http.MethodDelete, Path},
		{http.MethodGet, "/"}, {http.MethodGet, "/debug/pprof/"}, {http.MethodGet, "/metrics/x"},
	} {
		req, _ := http.NewRequest(c.method, srv.URL+c.path, strings.NewReader("x"))
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Contains(t, []int{http.StatusNotFound, http.StatusMethodNotAllowed}, resp.StatusCode, c)
	}
}

func TestIntakeTapCountsOutcomesAndPassesEveryRecordOn(t *testing.T) {
	reg := prometheus.NewRegistry()
	var buf bytes.Buffer
	h, err := IntakeTap(reg, slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn}))
	require.NoError(t, err)
	log := slog.New(h).With("component", "intake")
	req := func(path string, status int) {
		log.Info("request", "request_id", "abc", "method", "POST", "path", path, "status", status, "remote", "10.1.2.3:5555")
	}
	req("/joiners", 201)
	req("/joiners", 202)
	req("/hris/webhook", 401)
	req("/hris/webhook", 401)
	req("/joiners/200/../../etc/passwd", 404)
	req("/scim/v2/Bulk", 429)
	log.Info("joiner started", "hris_id", "200") // not an access record
	log.Warn("joiner held", "hris_id", "201")

	c := func(route, outcome string) float64 {
		m, err := reg.Gather()
		require.NoError(t, err)
		for _, f := range m {
			for _, mm := range f.GetMetric() {
				l := map[string]string{}
				for _, lp := range mm.GetLabel() {
					l[lp.GetName()] = lp.GetValue()
				}
				if f.GetName() == IntakeRequests && l["route"] == route && l["outcome"] == outcome {
					return mm.GetCounter().GetValue()
				}
			}
		}
		return -1
	}
	require.Equal(t, 1.0, c("/joiners", "started"))
	require.Equal(t, 1.0, c("/joiners", "held"))
	require.Equal(t, 2.0, c("/hris/webhook", "unauthorized"))
	require.Equal(t, 1.0, c("other", "not_found"), "a scanner's path is not a label")
	require.Equal(t, 1.0, c("/scim/v2/Bulk", "throttled"))
	require.Equal(t, 0.0, c("/joiners:bulk", "invalid"), "exported at zero before the first request")

	out, err := testutil.CollectAndFormat(reg, expfmt.TypeTextPlain, IntakeRequests)
	require.NoError(t, err)
	for _, leak := range []string{"passwd", "10.1.2.3", "abc", "200"} {
		require.NotContains(t, string(out), leak)
	}
	// The log itself is unchanged: the warning passed with its bound
	// attributes, the info records were filtered by the handler's level
	// (and counted all the same).
	require.Equal(t, 1, strings.Count(buf.String(), "\n"), buf.String())
	require.Contains(t, buf.String(), `"component":"intake"`)
	require.Contains(t, buf.String(), `"joiner held"`)

	for status, want := range map[int]string{200: "accepted", 400: "invalid", 413: "invalid", 422: "invalid", 403: "unauthorized", 409: "conflict", 503: "unavailable", 500: "error"} {
		require.Equal(t, want, IntakeOutcome(status), status)
	}
}

func TestInboxTapCountsEventsNotPeople(t *testing.T) {
	reg := prometheus.NewRegistry()
	var buf bytes.Buffer
	h, err := InboxTap(reg, slog.NewJSONHandler(&buf, nil))
	require.NoError(t, err)
	log := slog.New(h)
	log.Info("signed in", "user", "ada.lovelace", "ip", "127.0.0.1")
	log.Info("decision signed", "user", "ada.lovelace", "workflow", "joiner-200")
	log.Warn("forged form", "security", true, "user", "grace.hopper")
	log.Error("render page", "page", "x", "err", "boom")
	log.Info("something else", "user", "alan.turing")

	out, err := testutil.CollectAndFormat(reg, expfmt.TypeTextPlain, InboxEvents)
	require.NoError(t, err)
	for _, want := range []string{`event="sign_in"} 1`, `event="decision_signed"} 1`, `event="security"} 1`, `event="error"} 1`, `event="decision_refused"} 0`} {
		require.Contains(t, string(out), want)
	}
	for _, leak := range []string{"ada", "grace", "alan", "joiner-200", "127.0.0.1"} {
		require.NotContains(t, string(out), leak)
	}
	require.Contains(t, buf.String(), "ada.lovelace", "the log keeps what it logged")
}

type fakeHold struct {
	v   workflows.HoldView
	err error
}

func (f fakeHold) View(context.Context) (workflows.HoldView, error) { return f.v, f.err }

func TestHoldStateCountsHeldItemsByAction(t *testing.T) {
	now := time.Unix(1_900_000_000, 0)
	v := workflows.HoldView{Now: now, StartsInWindow: 50, RescindsInWindow: 3}
	v.Held = []workflows.HoldItem{
		{Action: "start", HRISID: "300", HeldAt: now.Add(-10 * time.Minute)},
		{Action: "start", HRISID: "301", HeldAt: now.Add(-5 * time.Minute)},
		{Action: "rescind", HRISID: "302", HeldAt: now.Add(-time.Minute)},
	}
	hs := &HoldState{Hold: fakeHold{v: v}}
	require.Equal(t, 0.0, gauge(t, hs, IntakeHoldUp))
	require.NoError(t, hs.Refresh(context.Background()))
	require.Equal(t, 2.0, gauge(t, hs, IntakeHeld, "action", "start"))
	require.Equal(t, 1.0, gauge(t, hs, IntakeHeld, "action", "rescind"))
	require.Equal(t, 600.0, gauge(t, hs, IntakeHeldOldestAge))
	require.Equal(t, 50.0, gauge(t, hs, IntakeHoldWindow, "action", "start"))
	require.Equal(t, 1.0, gauge(t, hs, IntakeHoldUp))

	reg := prometheus.NewRegistry()
	require.NoError(t, reg.Register(hs))
	out, err := testutil.CollectAndFormat(hs, expfmt.TypeTextPlain, IntakeHeld, IntakeHeldOldestAge, IntakeHoldWindow)
	require.NoError(t, err)
	for _, id := range []string{"300", "301", "302"} {
		require.NotContains(t, string(out), `"`+id+`"`, "HR IDs of held items are not labels")
	}

	hs.Hold = fakeHold{err: errors.New("hold not running")}
	require.Error(t, hs.Refresh(context.Background()))
	require.Equal(t, 0.0, gauge(t, hs, IntakeHoldUp))
	require.Equal(t, 2.0, gauge(t, hs, IntakeHeld, "action", "start"), "what was held is still shown")
}

func TestAddrOff(t *testing.T) {
	for _, in := range []string{"", "off"} {
		_, on := Addr(in)
		require.False(t, on, in)
	}
	a, on := Addr("127.0.0.1:9464")
	require.True(t, on)
	require.Equal(t, "127.0.0.1:9464", a)
	_, err := Listen("127.0.0.1:notaport")
	require.Error(t, err)
}

// A taken metrics port is logged, naming the variable, and the process
// goes on without its listener: the intake keeps answering HR.
func TestATakenMetricsPortDoesNotStopTheProcess(t *testing.T) {
	ln, err := Listen("127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	_, ok := ListenOrLog(ln.Addr().String(), "JOINERY_WORKER_METRICS_ADDR", logger)
	require.False(t, ok)
	require.Contains(t, buf.String(), "JOINERY_WORKER_METRICS_ADDR")
	require.Contains(t, buf.String(), "metrics not served")

	buf.Reset()
	l, err := ServeIntake(context.Background(), ln.Addr().String(), logger, fakeHold{}, time.Second)
	require.NoError(t, err)
	l.Info("request", "path", "/joiners", "status", 201)
	require.Contains(t, buf.String(), `"msg":"request"`, "the intake's log still reaches its handler")
	require.Contains(t, buf.String(), "JOINERY_INTAKE_METRICS_ADDR")

	l, err = ServeInbox(context.Background(), "off", logger)
	require.NoError(t, err)
	require.Same(t, logger, l, "off: the inbox logs as before")
}
