package intake

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/joinery/joinery/activities"
	"github.com/joinery/joinery/internal/metrics"
)

// fullFake is a fake whose hold admits no start and has room for one.
func fullFake() *fakeStarter {
	f := newFake()
	f.maxStarts, f.maxRescinds, f.maxHeld = 0, 0, 1
	return f
}

// tapped is testServer logging through the intake's metrics tap, and the
// registry the tap counts into.
func tapped(t *testing.T, f *fakeStarter, logs *syncBuffer) (*Server, *prometheus.Registry) {
	t.Helper()
	s := testServer(f, logs)
	reg := prometheus.NewRegistry()
	h, err := metrics.IntakeTap(reg, s.Logger.Handler())
	require.NoError(t, err)
	s.Logger = slog.New(h)
	return s, reg
}

// count is the counter of name whose labels are exactly want, or -1.
func count(t *testing.T, reg *prometheus.Registry, name string, want map[string]string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			if len(m.GetLabel()) != len(want) {
				continue
			}
			for _, lp := range m.GetLabel() {
				if want[lp.GetName()] != lp.GetValue() {
					continue next
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return -1
}

func series(t *testing.T, reg *prometheus.Registry, name string) []*dto.Metric {
	t.Helper()
	fams, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range fams {
		if f.GetName() == name {
			return f.GetMetric()
		}
	}
	return nil
}

// The API: the start the full hold has no room for is answered 429 with
// Retry-After and a JSON error naming the hold; nothing is started and
// nothing more is held. Temporal being unreachable stays 503, without
// Retry-After. The access log and the metrics call it hold_full, not a
// throttled flood.
func TestAPIHoldFullAnswers429WithRetryAfter(t *testing.T) {
	f := fullFake()
	var logs syncBuffer
	s, reg := tapped(t, f, &logs)
	h := s.Handler()
	post := func(id string) (int, http.Header, map[string]any) {
		w := do(t, h, req{path: "/joiners", ctype: "application/json", body: []byte(`{"hrisId":"` + id + `"}`)})
		var body map[string]any
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &body), w.Body.String())
		return w.Code, w.Header(), body
	}
	code, _, _ := post("300")
	require.Equal(t, http.StatusAccepted, code, "the first is held: the hold has room for one")
	code, hdr, body := post("301")
	require.Equal(t, http.StatusTooManyRequests, code)
	require.Equal(t, "300", hdr.Get("Retry-After"), "DefaultHoldFullRetryAfter, in seconds")
	require.Equal(t, "application/json", hdr.Get("Content-Type"))
	require.Equal(t, "hold", body["field"])
	require.Contains(t, body["error"], "the blast-radius hold is full: the hold is full (1 items)")
	require.Contains(t, body["error"], "nothing was started or held")
	require.Empty(t, f.starts, "nothing started")
	require.Len(t, f.held, 1, "nothing more held")

	s.HoldFullRetryAfter = 90 * time.Second
	code, hdr, _ = post("302")
	require.Equal(t, http.StatusTooManyRequests, code)
	require.Equal(t, "90", hdr.Get("Retry-After"))

	f.startErr = errors.New("temporal: connection refused")
	code, hdr, body = post("303")
	require.Equal(t, http.StatusServiceUnavailable, code, "Temporal unreachable is still 503")
	require.Empty(t, hdr.Get("Retry-After"))
	require.Contains(t, body["error"], "connection refused")

	require.Equal(t, 2.0, count(t, reg, metrics.IntakeRequests, map[string]string{"route": "/joiners", "outcome": "hold_full"}))
	require.Equal(t, 0.0, count(t, reg, metrics.IntakeRequests, map[string]string{"route": "/joiners", "outcome": "throttled"}))
	require.Equal(t, 1.0, count(t, reg, metrics.IntakeRequests, map[string]string{"route": "/joiners", "outcome": "unavailable"}))
	require.Equal(t, 2.0, count(t, reg, metrics.IntakeRows, map[string]string{"source": "api", "outcome": "hold_full", "reason": "none"}))
	require.Equal(t, 1.0, count(t, reg, metrics.IntakeRows, map[string]string{"source": "api", "outcome": "held", "reason": "none"}))
	require.Equal(t, 1.0, count(t, reg, metrics.IntakeRows, map[string]string{"source": "api", "outcome": "error", "reason": "none"}))
	require.Contains(t, logs.String(), `"msg":"intake row","request_id"`)
	require.Contains(t, logs.String(), `"outcome":"hold-full"`)
}

// The webhook: BambooHR retries only on 5xx and drops a delivery answered
// 4xx (429 included), so an event the full hold had no room for is
// answered 503 with Retry-After, its result says hold-full, and the
// events before it keep their outcomes (they collapse on the retry). The
// metrics do not call it Temporal being down.
func TestWebhookHoldFullAnswers503WithRetryAfter(t *testing.T) {
	f := fullFake()
	s, reg := tapped(t, f, nil)
	h := s.Handler()
	body := webhookBody(
		event(400, "Created", nil, map[string]any{"hireDate": "2027-02-01"}),
		event(401, "Created", nil, map[string]any{"hireDate": "2027-02-01"}),
	)
	w := do(t, h, signedWebhook(body, testNow))
	require.Equal(t, http.StatusServiceUnavailable, w.Code, w.Body.String())
	require.Equal(t, "300", w.Header().Get("Retry-After"))
	var ans WebhookAnswer
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &ans))
	require.Len(t, ans.Results, 2)
	require.Equal(t, OutcomeHeld, ans.Results[0].Outcome)
	require.Equal(t, OutcomeHoldFull, ans.Results[1].Outcome)
	require.Contains(t, ans.Results[1].Error, "the hold is full")
	require.Empty(t, f.starts)

	require.Equal(t, 1.0, count(t, reg, metrics.IntakeRequests, map[string]string{"route": "/hris/webhook", "outcome": "hold_full"}))
	require.Equal(t, -1.0, count(t, reg, metrics.IntakeRequests, map[string]string{"route": "/hris/webhook", "outcome": "unavailable"}))
	require.Equal(t, 1.0, count(t, reg, metrics.IntakeRows, map[string]string{"source": "webhook", "outcome": "held", "reason": "none"}))
	require.Equal(t, 1.0, count(t, reg, metrics.IntakeRows, map[string]string{"source": "webhook", "outcome": "hold_full", "reason": "none"}))

	// Temporal down: 503 as before, without Retry-After, counted as such.
	f2 := newFake()
	f2.startErr = errors.New("temporal: deadline exceeded")
	s2, reg2 := tapped(t, f2, nil)
	w = do(t, s2.Handler(), signedWebhook(webhookBody(event(402, "Created", nil, map[string]any{"hireDate": "2027-02-01"})), testNow.Add(time.Second)))
	require.Equal(t, http.StatusServiceUnavailable, w.Code)
	require.Empty(t, w.Header().Get("Retry-After"))
	require.Equal(t, 1.0, count(t, reg2, metrics.IntakeRequests, map[string]string{"route": "/hris/webhook", "outcome": "unavailable"}))
}

// A bulk upload counts row by row: one request, and each row by outcome
// (started, already running, refused with its reason, invalid, held, and
// hold-full, whose row status is 429).
func TestBulkCountsEveryRowByOutcome(t *testing.T) {
	f := newFake()
	f.maxStarts, f.maxHeld = 2, 1
	f.running["r-run"] = true
	f.refused["r-gone"] = &activities.IneligibleError{HRISID: "r-gone", Reason: activities.ReasonTerminated, Field: "status", Detail: "left"}
	s, reg := tapped(t, f, nil)
	// One start at a time, so that which row the hold admits, holds or
	// refuses follows the file's order.
	s.BulkConcurrency = 1
	csv := "hrisId,kind\nr-1,\nr-run,\nr-gone,\nr-2,\n,\nr-3,\nr-4,\n"
	w := do(t, s.Handler(), req{path: "/joiners:bulk", ctype: "text/csv", body: []byte(csv)})
	require.Equal(t, http.StatusOK, w.Code)
	lines := ndjsonLines(t, w.Body.String())
	require.Len(t, lines, 8)
	var statuses []float64
	for _, l := range lines[:7] {
		statuses = append(statuses, l["status"].(float64))
	}
	require.Equal(t, []float64{201, 200, 422, 201, 400, 202, 429}, statuses)
	require.Equal(t, OutcomeHoldFull, lines[6]["outcome"])
	require.Contains(t, lines[6]["error"], "send it again after Retry-After")
	sum := lines[7]["summary"].(map[string]any)
	require.EqualValues(t, 1, sum["holdFull"])
	require.EqualValues(t, 1, sum["held"])

	rows := func(outcome, reason string) float64 {
		return count(t, reg, metrics.IntakeRows, map[string]string{"source": "bulk", "outcome": outcome, "reason": reason})
	}
	require.Equal(t, 2.0, rows("started", "none"))
	require.Equal(t, 1.0, rows("already_running", "none"))
	require.Equal(t, 1.0, rows("refused", activities.ReasonTerminated))
	require.Equal(t, 1.0, rows("invalid", "none"))
	require.Equal(t, 1.0, rows("held", "none"))
	require.Equal(t, 1.0, rows("hold_full", "none"))
	total := 0.0
	for _, m := range series(t, reg, metrics.IntakeRows) {
		total += m.GetCounter().GetValue()
	}
	require.Equal(t, 7.0, total, "seven rows, seven counts")
	require.Equal(t, 1.0, count(t, reg, metrics.IntakeRequests, map[string]string{"route": "/joiners:bulk", "outcome": "accepted"}),
		"and still one request")
}

// SCIM: every operation is a row; the one the full hold has no room for is
// 429 in the bulk answer, with Retry-After on the answer, and counts
// against failOnErrors like a 503.
func TestSCIMHoldFullIs429PerOperation(t *testing.T) {
	f := fullFake()
	s, reg := tapped(t, f, nil)
	body, err := json.Marshal(scimRequest(scimUserData("500"), scimUserData("501")))
	require.NoError(t, err)
	w := do(t, s.Handler(), req{path: "/scim/v2/Bulk", ctype: "application/scim+json", body: body})
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.Equal(t, "300", w.Header().Get("Retry-After"))
	var resp struct {
		Operations []struct {
			Status   string         `json:"status"`
			Response map[string]any `json:"response"`
		} `json:"Operations"`
	}
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &resp))
	require.Len(t, resp.Operations, 2)
	require.Equal(t, "202", resp.Operations[0].Status)
	require.Equal(t, "429", resp.Operations[1].Status)
	require.True(t, strings.Contains(resp.Operations[1].Response["detail"].(string), "the hold is full"))
	require.Equal(t, 1.0, count(t, reg, metrics.IntakeRows, map[string]string{"source": "scim", "outcome": "hold_full", "reason": "none"}))
	require.Equal(t, 1.0, count(t, reg, metrics.IntakeRows, map[string]string{"source": "scim", "outcome": "held", "reason": "none"}))

	// failOnErrors=1 stops after the first hold-full operation.
	f = fullFake()
	s, _ = tapped(t, f, nil)
	r := scimRequest(scimUserData("510"), scimUserData("511"), scimUserData("512"))
	r["failOnErrors"] = 1
	body, err = json.Marshal(r)
	require.NoError(t, err)
	w = do(t, s.Handler(), req{path: "/scim/v2/Bulk", ctype: "application/scim+json", body: body})
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &resp))
	require.Len(t, resp.Operations, 2, "stopped after the first 429")
}

// A row record whose outcome or source is not in the vocabulary is "other",
// and an access record cannot override its outcome with anything but
// hold_full: labels stay a fixed set.
func TestRowRecordsStayInTheirVocabulary(t *testing.T) {
	reg := prometheus.NewRegistry()
	h, err := metrics.IntakeTap(reg, slog.DiscardHandler)
	require.NoError(t, err)
	log := slog.New(h)
	log.Info(RowRecord, "source", "carrier-pigeon", "outcome", "exfiltrated", "reason", "bob@example.com")
	log.Info("request", "path", "/joiners", "status", 503, "outcome", "all-good")
	require.Equal(t, 1.0, count(t, reg, metrics.IntakeRows, map[string]string{"source": "other", "outcome": "other", "reason": "other"}))
	require.Equal(t, 1.0, count(t, reg, metrics.IntakeRequests, map[string]string{"route": "/joiners", "outcome": "unavailable"}))
}
