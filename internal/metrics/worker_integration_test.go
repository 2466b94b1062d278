package metrics_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/joinery/joinery/deploy/observability"
	"github.com/joinery/joinery/internal/e2e"
	"github.com/joinery/joinery/internal/intake"
	"github.com/joinery/joinery/internal/metrics"
	"github.com/joinery/joinery/internal/run"
	"github.com/joinery/joinery/workflows"
)

// freeAddr is a loopback address nothing listens on (for a listener that
// the code under test opens itself).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// scrape reads http://addr/metrics in the text format.
func scrape(t *testing.T, addr string) (map[string]*dto.MetricFamily, string) {
	t.Helper()
	resp, err := http.Get("http://" + addr + metrics.Path)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
	require.NoError(t, err)
	return fams, string(body)
}

// value is the metric of fam whose labels include want, or nil.
func value(fam *dto.MetricFamily, want map[string]string) *dto.Metric {
	if fam == nil {
		return nil
	}
next:
	for _, m := range fam.GetMetric() {
		for k, v := range want {
			found := false
			for _, lp := range m.GetLabel() {
				if lp.GetName() == k && lp.GetValue() == v {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		return m
	}
	return nil
}

// TestWorkerMetricsAfterARealJoiner runs the real worker (run.Worker, as
// the worker binary does) on a private task queue against the dev stack,
// provisions one joiner end to end, and scrapes the worker's /metrics: the
// Temporal SDK's metrics, the joiner-state gauges, step latency and the
// joiner's outcome must be there with sane values, and nothing personal
// about the joiner or the approver may appear anywhere in the scrape.
// The intake's and the inbox's metrics listeners are scraped too, and the
// union of the three is what every alert rule and dashboard panel in
// deploy/observability must use.
func TestWorkerMetricsAfterARealJoiner(t *testing.T) {
	h := e2e.NewHarness(t)
	cfg := h.Cfg
	// Our own queue: the harness's worker (no metrics) must not take our
	// joiner's tasks.
	cfg.TaskQueue = h.Cfg.TaskQueue + "-metrics"
	cfg.WorkerMetricsAddr = freeAddr(t)
	cfg.MetricsInterval = time.Second

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run.Worker(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil))) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(30 * time.Second):
			t.Error("worker did not stop")
		}
	})

	first, last := "Hypatia", fmt.Sprintf("Metricsdottir%d", time.Now().UnixNano()%1e6)
	id := h.Hire(first, last)
	res, err := run.StartJoiner(context.Background(), h.C, cfg, workflows.JoinerInput{HRISID: id, Source: "test"})
	require.NoError(t, err)
	require.Equal(t, run.Started, res.Outcome)
	st := h.WaitForApproval(id)
	approver := st.Plan.Approval.Approver
	h.ApproveWhenAsked(id)
	result, err := h.Result(id)
	require.NoError(t, err)
	require.Equal(t, workflows.OutcomeCompleted, result.Outcome, result.Error)

	// A joiner's steps run as local activities (workflows/localsteps.go);
	// its compensations are regular ones. A second joiner, held until a
	// start date three days out and then rescinded, rolls back through
	// them, so the SDK's regular-activity metrics (which an alert and a
	// panel use) are exported too.
	held := h.HireOn(first, last+"b", time.Now().AddDate(0, 0, 3).Format(time.DateOnly))
	resHeld, err := run.StartJoiner(context.Background(), h.C, cfg, workflows.JoinerInput{HRISID: held, Source: "test"})
	require.NoError(t, err)
	require.Equal(t, run.Started, resHeld.Outcome)
	h.ApproveWhenAsked(held)
	require.Eventually(t, func() bool {
		st, _, _, err := run.Status(context.Background(), h.C, held)
		return err == nil && st.Stage == workflows.StageProvisioned
	}, time.Minute, 200*time.Millisecond, "the second joiner is provisioned and held")
	require.NoError(t, h.C.SignalWorkflow(context.Background(), workflows.JoinerWorkflowID(held), "", workflows.SignalRescind,
		workflows.RescindSignal{By: "hr.partner", Reason: "metrics test"}))
	resultHeld, err := h.Result(held)
	require.NoError(t, err)
	require.Equal(t, workflows.OutcomeRescinded, resultHeld.Outcome, resultHeld.Error)

	// Visibility is eventually consistent and the collector reads it every
	// second: wait for the closed joiner to be counted.
	var fams map[string]*dto.MetricFamily
	var body string
	require.Eventually(t, func() bool {
		fams, body = scrape(t, cfg.WorkerMetricsAddr)
		m := value(fams[metrics.JoinersClosed], map[string]string{"stage": string(workflows.StageCompleted)})
		r := value(fams[metrics.JoinersClosed], map[string]string{"stage": string(workflows.StageRescinded)})
		rb := value(fams[metrics.JoinersRunning], map[string]string{"stage": string(workflows.StageRollingBack)})
		return m != nil && m.GetGauge().GetValue() == 1 && r != nil && r.GetGauge().GetValue() == 1 &&
			(rb == nil || rb.GetGauge().GetValue() == 0)
	}, 45*time.Second, 500*time.Millisecond, "joinery_joiners_closed{stage=Completed} and {stage=Rescinded} never reached 1 (the held joiner's rollback)")

	// The Temporal SDK's own metrics, from this worker's client.
	wc := value(fams["temporal_workflow_completed_total"], map[string]string{"workflow_type": "Joiner", "task_queue": cfg.TaskQueue})
	require.NotNil(t, wc, "temporal_workflow_completed_total for the joiner")
	require.GreaterOrEqual(t, wc.GetCounter().GetValue(), 1.0)
	// The claim runs as a local activity on the fast path
	// (workflows/localsteps.go), as a regular one after quick failures.
	al := value(fams["temporal_local_activity_execution_latency_seconds"], map[string]string{"activity_type": "ClaimAccount"})
	if al == nil {
		al = value(fams["temporal_activity_execution_latency_seconds"], map[string]string{"activity_type": "ClaimAccount"})
	}
	require.NotNil(t, al, "temporal_(local_)activity_execution_latency_seconds for ClaimAccount:\n%s", body)
	require.GreaterOrEqual(t, al.GetHistogram().GetSampleCount(), uint64(1))
	require.Positive(t, al.GetHistogram().GetSampleSum())
	require.NotNil(t, fams["temporal_workflow_task_schedule_to_start_latency_seconds"], "schedule-to-start latency (an alert uses it)")

	// Joiner state from visibility: this queue has exactly our joiner.
	for _, s := range []workflows.Stage{workflows.StageAwaitingApproval, workflows.StageCompensationStuck, workflows.StageRollingBack} {
		m := value(fams[metrics.JoinersRunning], map[string]string{"stage": string(s)})
		require.NotNil(t, m, "joinery_joiners_running{stage=%s} is exported even at zero", s)
		require.Zero(t, m.GetGauge().GetValue(), s)
	}
	for _, name := range []string{metrics.ApprovalsWaiting, metrics.ApprovalsOverdue, metrics.CompensationsStuck, metrics.RevocationsOverdue, metrics.ApprovalOldestAge} {
		require.NotNil(t, fams[name], name)
		require.Zero(t, fams[name].GetMetric()[0].GetGauge().GetValue(), name)
	}
	ls := fams[metrics.CollectorLastSuccess].GetMetric()[0].GetGauge().GetValue()
	require.InDelta(t, float64(time.Now().Unix()), ls, 30, "the collector refreshed just now")

	// Step latency from the activity interceptor, and the outcome counted
	// once from workflow code.
	for _, step := range []string{"ClaimAccount", "IssueCredential"} {
		m := value(fams[metrics.StepDuration], map[string]string{"step": step, "result": "ok"})
		require.NotNil(t, m, "step %s", step)
		require.GreaterOrEqual(t, m.GetHistogram().GetSampleCount(), uint64(1), step)
		require.Less(t, m.GetHistogram().GetSampleSum(), 120.0, "%s took minutes?", step)
	}
	oc := value(fams[metrics.JoinerOutcomes+"_total"], map[string]string{"outcome": "completed", "kind": "person", "task_queue": cfg.TaskQueue})
	require.NotNil(t, oc, "joinery_joiner_outcomes_total{outcome=completed}")
	require.Equal(t, 1.0, oc.GetCounter().GetValue())
	rf := value(fams[metrics.ReconcilerFindings], map[string]string{"kind": "total"})
	require.NotNil(t, rf)

	// A third joiner left waiting for its manager: the approval gauges
	// see it, aged from when it was asked, not overdue.
	id2 := h.Hire("Emmy", last)
	res, err = run.StartJoiner(context.Background(), h.C, cfg, workflows.JoinerInput{HRISID: id2, Source: "test"})
	require.NoError(t, err)
	require.Equal(t, run.Started, res.Outcome)
	h.WaitForApproval(id2)
	var body2 string
	require.Eventually(t, func() bool {
		var f map[string]*dto.MetricFamily
		f, body2 = scrape(t, cfg.WorkerMetricsAddr)
		m := value(f[metrics.ApprovalsWaiting], nil)
		if m == nil || m.GetGauge().GetValue() != 1 {
			return false
		}
		age := f[metrics.ApprovalOldestAge].GetMetric()[0].GetGauge().GetValue()
		require.Greater(t, age, 0.0)
		require.Less(t, age, 120.0, "asked moments ago")
		require.Zero(t, f[metrics.ApprovalsOverdue].GetMetric()[0].GetGauge().GetValue())
		require.Equal(t, 1.0, value(f[metrics.JoinersRunning], map[string]string{"stage": "AwaitingApproval"}).GetGauge().GetValue())
		return true
	}, 45*time.Second, 500*time.Millisecond, "joinery_approvals_waiting never reached 1")

	// Whoever can reach the port learns counts, never who.
	// (HR IDs are numbers, so they are looked for as label values, where
	// they would identify someone, not inside sample values.)
	for _, secret := range []string{first, last, strings.ToLower(first), "Emmy", result.Username, result.Username + "@", result.DN, approver,
		`"` + id + `"`, `"` + id2 + `"`, "joiner-" + id, "joiner-" + id2} {
		require.NotEmpty(t, secret)
		for _, b := range []string{body, body2} {
			require.False(t, strings.Contains(b, secret), "personal data %q in the worker's metrics", secret)
		}
	}

	// The metrics port only reads.
	resp, err := http.Post("http://"+cfg.WorkerMetricsAddr+metrics.Path, "text/plain", strings.NewReader("x"))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	for _, p := range []string{"/", "/debug/pprof/", "/metrics/../debug/vars"} {
		resp, err := http.Get("http://" + cfg.WorkerMetricsAddr + p)
		require.NoError(t, err)
		resp.Body.Close()
		require.NotEqual(t, http.StatusOK, resp.StatusCode, p)
	}

	// The intake's and the inbox's listeners, as starter serve opens them.
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	inAddr, ibAddr := freeAddr(t), freeAddr(t)
	inLog, err := metrics.ServeIntake(ctx, inAddr, logger, intake.HoldFor(h.C, cfg), time.Second)
	require.NoError(t, err)
	srv := &intake.Server{Starter: intake.NewTemporalStarter(h.C, cfg), Token: "metrics-test-token", Logger: inLog}
	ts := &http.Server{Handler: srv.Handler()}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = ts.Serve(ln) }()
	t.Cleanup(func() { _ = ts.Close() })
	// An HR system that lost its token, and a probe of a path that does
	// not exist, are counted by outcome; the HR ID in the body is not.
	req, _ := http.NewRequest(http.MethodPost, "http://"+ln.Addr().String()+"/joiners", strings.NewReader(`{"hrisId":"`+id+`"}`))
	req.Header.Set("Authorization", "Bearer wrong")
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	resp, err = http.Get("http://" + ln.Addr().String() + "/joiners/" + id + "/secret-path")
	require.NoError(t, err)
	resp.Body.Close()
	inFams, inBody := scrape(t, inAddr)
	m := value(inFams[metrics.IntakeRequests], map[string]string{"route": "/joiners", "outcome": "unauthorized"})
	require.NotNil(t, m)
	require.Equal(t, 1.0, m.GetCounter().GetValue())
	require.NotNil(t, value(inFams[metrics.IntakeRequests], map[string]string{"route": "other", "outcome": "not_found"}))
	require.False(t, strings.Contains(inBody, `"`+id+`"`) || strings.Contains(inBody, "/joiners/"+id), "an HR ID in the intake's metrics")
	require.False(t, strings.Contains(inBody, "secret-path"), "a probed path in the intake's metrics")
	require.NotNil(t, inFams[metrics.IntakeHeld])

	ibLog, err := metrics.ServeInbox(ctx, ibAddr, logger)
	require.NoError(t, err)
	ibLog.Info("signed in", "user", approver, "ip", "127.0.0.1")
	ibLog.Warn("sign-in refused", "security", true, "user", approver)
	ibFams, ibBody := scrape(t, ibAddr)
	require.Equal(t, 1.0, value(ibFams[metrics.InboxEvents], map[string]string{"event": "sign_in"}).GetCounter().GetValue())
	require.Equal(t, 1.0, value(ibFams[metrics.InboxEvents], map[string]string{"event": "security"}).GetCounter().GetValue())
	require.False(t, strings.Contains(ibBody, approver), "a username in the inbox's metrics")

	// Every metric the alert rules and the dashboard use is exported.
	exported := map[string]bool{}
	for _, fs := range []map[string]*dto.MetricFamily{fams, inFams, ibFams} {
		for name, f := range fs {
			exported[name] = true
			if f.GetType() == dto.MetricType_HISTOGRAM {
				for _, sfx := range []string{"_bucket", "_sum", "_count"} {
					exported[name+sfx] = true
				}
			}
		}
	}
	used, err := observability.MetricNames(filepath.Join("..", "..", "deploy", "observability"))
	require.NoError(t, err)
	require.NotEmpty(t, used)
	for name, where := range used {
		require.True(t, exported[name], "%s (used by %s) is not exported by the worker, intake or inbox", name, where)
	}
	if os.Getenv("JOINERY_METRICS_DUMP") != "" {
		require.NoError(t, os.WriteFile(os.Getenv("JOINERY_METRICS_DUMP"), []byte(body), 0o600))
	}
}
