package intake_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/worker"

	"github.com/joinery/joinery/connectors/hris"
	"github.com/joinery/joinery/internal/intake"
	"github.com/joinery/joinery/internal/metrics"
	"github.com/joinery/joinery/workflows"
)

// On the dev stack, with the real hold workflow: a policy that admits one
// start an hour and holds one more. The third start finds the hold full:
// the API answers 429 with Retry-After and the hold's own words, the
// webhook 503 with Retry-After (BambooHR retries only 5xx), and neither
// starts or holds anything. This is the test that ties the intake's
// recognition of a full hold (guard.go holdFullPrefix) to what the hold
// workflow really answers. The intake's metrics count each of these by
// request and by row.
func TestIntegrationHoldFullAnswers429(t *testing.T) {
	e := newEnv(t)
	b, err := os.ReadFile("../../testdata/policy/default.yaml")
	require.NoError(t, err)
	head, _, ok := strings.Cut(string(b), "\nintake:")
	require.True(t, ok)
	p := t.TempDir() + "/policy.yaml"
	require.NoError(t, os.WriteFile(p, []byte(head+"\nintake:\n  blast_radius:\n    window: 1h\n    max_starts: 1\n    max_rescinds: 1\n    max_held: 1\n"), 0o600))
	e.cfg.PolicyFile = p
	h := &intake.Hold{Client: e.c, ID: "it-hold-full-" + randHex(6), TaskQueue: e.cfg.TaskQueue + "-hold", Config: e.cfg}
	w := worker.New(e.c, h.TaskQueue, worker.Options{})
	w.RegisterWorkflow(workflows.Hold)
	require.NoError(t, w.Start())
	t.Cleanup(func() {
		_ = e.c.TerminateWorkflow(t.Context(), h.ID, "", "hold-full test cleanup")
		w.Stop()
	})
	st := intake.NewTemporalStarter(e.c, e.cfg)
	st.Hold, st.NoHoldWorker = h, true
	secret := []byte("it-hold-full-webhook-secret")
	// Logging through the intake's metrics tap, as starter serve does.
	reg := prometheus.NewRegistry()
	tap, err := metrics.IntakeTap(reg, slog.NewJSONHandler(io.Discard, nil))
	require.NoError(t, err)
	s := &intake.Server{Starter: st, Token: itToken, Verifier: hris.NewVerifier(secret),
		Logger: slog.New(tap),
		Rates:  map[string]intake.Rate{intake.SourceAPI: {}, intake.SourceBulk: {}, intake.SourceSCIM: {}, intake.SourceWebhook: {}}}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)

	var ids []string
	for range 6 {
		ids = append(ids, e.hire(t, ""))
	}
	e.terminateLater(t, ids...)
	api := func(id string) (*http.Response, map[string]any) {
		r, err := http.NewRequest(http.MethodPost, srv.URL+"/joiners", strings.NewReader(`{"hrisId":"`+id+`"}`))
		require.NoError(t, err)
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Authorization", "Bearer "+itToken)
		resp, err := http.DefaultClient.Do(r)
		require.NoError(t, err)
		defer resp.Body.Close()
		var body map[string]any
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
		return resp, body
	}
	resp, _ := api(ids[0])
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	resp, _ = api(ids[1])
	require.Equal(t, http.StatusAccepted, resp.StatusCode, "held: the window is used up")
	resp, body := api(ids[2])
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode, "%v", body)
	require.Equal(t, "300", resp.Header.Get("Retry-After"))
	require.Equal(t, "hold", body["field"])
	require.Contains(t, body["error"], "the hold is full (1 items)", "the hold workflow's own words")
	e.requireNotStarted(t, ids[2])

	// The webhook: 503 with Retry-After, the event's outcome hold-full.
	payload, err := json.Marshal(map[string]any{"employees": []any{map[string]any{
		"id": ids[3], "action": "Created", "timestamp": time.Now().UTC().Format("2006-01-02T15:04:05-0700"),
		"changedFields": []string{}, "fields": map[string]any{"hireDate": time.Now().AddDate(0, 1, 0).Format(time.DateOnly)},
	}}})
	require.NoError(t, err)
	sig, ts := hris.Sign(secret, payload, time.Now())
	r, err := http.NewRequest(http.MethodPost, srv.URL+"/hris/webhook", bytes.NewReader(payload))
	require.NoError(t, err)
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set(hris.SignatureHeader, sig)
	r.Header.Set(hris.TimestampHeader, ts)
	wr, err := http.DefaultClient.Do(r)
	require.NoError(t, err)
	defer wr.Body.Close()
	var ans intake.WebhookAnswer
	require.NoError(t, json.NewDecoder(wr.Body).Decode(&ans))
	require.Equal(t, http.StatusServiceUnavailable, wr.StatusCode, "%+v", ans)
	require.Equal(t, "300", wr.Header.Get("Retry-After"))
	require.Len(t, ans.Results, 1)
	require.Equal(t, intake.OutcomeHoldFull, ans.Results[0].Outcome, "%+v", ans.Results[0])
	e.requireNotStarted(t, ids[3])

	// A bulk upload of two more: answered 200 row by row, each row 429.
	br, err := http.NewRequest(http.MethodPost, srv.URL+"/joiners:bulk", strings.NewReader("hrisId\n"+ids[4]+"\n"+ids[5]+"\n"))
	require.NoError(t, err)
	br.Header.Set("Content-Type", "text/csv")
	br.Header.Set("Authorization", "Bearer "+itToken)
	bresp, err := http.DefaultClient.Do(br)
	require.NoError(t, err)
	out, err := io.ReadAll(bresp.Body)
	bresp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, bresp.StatusCode)
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	require.Len(t, lines, 3, string(out))
	for _, l := range lines[:2] {
		var row intake.RowResult
		require.NoError(t, json.Unmarshal([]byte(l), &row))
		require.Equal(t, http.StatusTooManyRequests, row.Status, l)
		require.Equal(t, intake.OutcomeHoldFull, row.Outcome)
		e.requireNotStarted(t, row.HRISID)
	}

	v, err := h.View(t.Context())
	require.NoError(t, err)
	require.Len(t, v.Held, 1, "still only the one held; nothing was added past the cap")

	// What the operator sees: requests by outcome, rows by outcome.
	got := map[string]float64{}
	fams, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			if m.GetCounter().GetValue() == 0 {
				continue
			}
			var key []string
			for _, lp := range m.GetLabel() {
				key = append(key, lp.GetValue())
			}
			got[f.GetName()+"{"+strings.Join(key, ",")+"}"] = m.GetCounter().GetValue()
		}
	}
	require.Equal(t, map[string]float64{
		metrics.IntakeRequests + "{started,/joiners}":        1,
		metrics.IntakeRequests + "{held,/joiners}":           1,
		metrics.IntakeRequests + "{hold_full,/joiners}":      1,
		metrics.IntakeRequests + "{hold_full,/hris/webhook}": 1,
		metrics.IntakeRequests + "{accepted,/joiners:bulk}":  1,
		metrics.IntakeRows + "{started,none,api}":            1,
		metrics.IntakeRows + "{held,none,api}":               1,
		metrics.IntakeRows + "{hold_full,none,api}":          1,
		metrics.IntakeRows + "{hold_full,none,webhook}":      1,
		metrics.IntakeRows + "{hold_full,none,bulk}":         2,
	}, got)
}
