package intake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/joinery/joinery/activities"
	"github.com/joinery/joinery/workflows"
)

// An HR record that is not a pending hire gets a 422 naming the reason, on
// every path, and nothing is started.
func TestRefusedRecordsAre422OnEveryPath(t *testing.T) {
	f := newFake()
	f.refused["100"] = &activities.IneligibleError{HRISID: "100", Reason: activities.ReasonAlreadyProvisioned, Field: "username",
		Detail: `already provisioned: HR knows the username "ada.lovelace" (hire date 2018-03-01)`}
	f.refused["102"] = &activities.IneligibleError{HRISID: "102", Reason: activities.ReasonInactive, Field: "status", Detail: "HR status is Inactive, not Active"}
	h := testServer(f, nil).Handler()

	w := do(t, h, req{path: "/joiners", ctype: "application/json", body: []byte(`{"hrisId":"100"}`)})
	require.Equal(t, http.StatusUnprocessableEntity, w.Code)
	require.JSONEq(t, `{"hrisId":"100","outcome":"refused","reason":"already-provisioned","field":"username",
		"error":"already provisioned: HR knows the username \"ada.lovelace\" (hire date 2018-03-01)"}`, w.Body.String())

	w = do(t, h, req{path: "/joiners:bulk", ctype: "text/csv", body: []byte("hrisId\n100\n102\n200\n")})
	lines := ndjsonLines(t, w.Body.String())
	require.Equal(t, "refused", lines[0]["outcome"])
	require.Equal(t, "inactive", lines[1]["reason"])
	require.EqualValues(t, 422, lines[1]["status"])
	require.Equal(t, "started", lines[2]["outcome"])
	require.EqualValues(t, 2, lines[3]["summary"].(map[string]any)["refused"])

	w = do(t, h, req{path: "/scim/v2/Bulk", ctype: "application/scim+json", body: mustJSON(scimRequest(scimUserData("102")))})
	require.Equal(t, http.StatusOK, w.Code)
	require.Contains(t, w.Body.String(), `"status":"422"`)
	require.Contains(t, w.Body.String(), "inactive: HR status is Inactive")

	w = do(t, h, signedWebhook(webhookBody(event("102", "Created", nil, map[string]any{"hireDate": "2027-02-01"})), testNow))
	require.Equal(t, http.StatusUnprocessableEntity, w.Code, "every event refused: the HRIS need not retry")
	var ans WebhookAnswer
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &ans))
	require.Equal(t, OutcomeRefused, ans.Results[0].Outcome)
	require.Equal(t, "inactive", ans.Results[0].Reason)

	require.Equal(t, []string{"200"}, startedIDs(f), "only the pending hire started")
}

func startedIDs(f *fakeStarter) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []string
	for _, in := range f.starts {
		ids = append(ids, in.HRISID)
	}
	return ids
}

// Adversary: a caller asking for a service account (or any kind the record
// does not give) on a person's HR record is refused, not obeyed.
func TestCallerCannotChooseTheKind(t *testing.T) {
	f := newFake()
	f.hrKind["200"] = "employee"
	h := testServer(f, nil).Handler()
	for _, kind := range []string{"service-account", "ai-agent", "pipeline", "contractor"} {
		w := do(t, h, req{path: "/joiners", ctype: "application/json", body: mustJSON(map[string]string{"hrisId": "200", "kind": kind})})
		require.Equal(t, http.StatusUnprocessableEntity, w.Code, kind)
		require.Contains(t, w.Body.String(), `"reason":"kind-mismatch"`)
	}
	w := do(t, h, req{path: "/joiners", ctype: "application/json", body: []byte(`{"hrisId":"200","kind":"employee"}`)})
	require.Equal(t, http.StatusCreated, w.Code)
	require.Equal(t, []workflows.JoinerInput{{HRISID: "200", Kind: "employee", Source: "api", RequestedBy: "intake-api"}}, f.starts)
}

// A burst over the blast radius is accepted (202, held) and not started.
func TestBurstOverTheBlastRadiusIsHeld(t *testing.T) {
	f := newFake()
	f.maxStarts = 2
	h := testServer(f, nil).Handler()
	var csv strings.Builder
	csv.WriteString("hrisId\n")
	for i := range 5 {
		fmt.Fprintf(&csv, "h-%d\n", i)
	}
	w := do(t, h, req{path: "/joiners:bulk", ctype: "text/csv", body: []byte(csv.String())})
	lines := ndjsonLines(t, w.Body.String())
	sum := lines[5]["summary"].(map[string]any)
	require.EqualValues(t, 2, sum["started"])
	require.EqualValues(t, 3, sum["held"])
	require.Len(t, f.starts, 2)
	held := 0
	for _, l := range lines[:5] {
		if l["outcome"] == OutcomeHeld {
			held++
			require.EqualValues(t, 202, l["status"])
			require.True(t, strings.HasPrefix(l["holdKey"].(string), "start:h-"))
		}
	}
	require.Equal(t, 3, held)

	w = do(t, h, req{path: "/joiners", ctype: "application/json", body: []byte(`{"hrisId":"h-9"}`)})
	require.Equal(t, http.StatusAccepted, w.Code)
	var ans HeldAnswer
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &ans))
	require.Equal(t, HeldAnswer{HRISID: "h-9", Outcome: "held", Action: "start", Key: "start:h-9", WorkflowID: "joiner-h-9",
		Detail: "over the blast radius", Queued: 4}, ans)
	require.Len(t, f.starts, 2, "nothing started behind the operator's back")
}

// Adversary: a burst of rescinds (a bad import that terminates people).
// Rescinds of running joiners beyond the limit are held; terminations of
// long-employed people (no joiner) change nothing and use up nothing.
func TestRescindBurst(t *testing.T) {
	f := newFake()
	f.maxRescinds = 1
	for _, id := range []string{"501", "502", "503"} {
		f.running[id] = true
	}
	h := testServer(f, nil).Handler()
	var evs []map[string]any
	for i := range 20 { // long-active employees: no joiner runs for them
		evs = append(evs, event(fmt.Sprint(1000+i), "Updated", []string{"status"}, map[string]any{"status": "Inactive", "hireDate": "2018-03-01"}))
	}
	w := do(t, h, signedWebhook(webhookBody(evs...), testNow))
	require.Equal(t, http.StatusOK, w.Code)
	var ans WebhookAnswer
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &ans))
	for _, r := range ans.Results {
		require.Equal(t, OutcomeIgnored, r.Outcome)
	}
	require.Empty(t, f.signals)
	require.Zero(t, f.admitted[workflows.HoldRescind], "no-op rescinds do not use up the window")

	evs = nil
	for _, id := range []string{"501", "502", "503"} {
		evs = append(evs, event(id, "Updated", []string{"status"}, map[string]any{"status": "Inactive", "hireDate": "2027-02-01"}))
	}
	ts := testNow.Add(time.Second) // a new delivery, not a replay
	w = do(t, h, signedWebhook(webhookBody(evs...), ts))
	require.Equal(t, http.StatusOK, w.Code)
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &ans))
	require.Equal(t, OutcomeSignalled, ans.Results[0].Outcome)
	require.Equal(t, OutcomeHeld, ans.Results[1].Outcome)
	require.Contains(t, ans.Results[1].Detail, "rescind:502")
	require.Equal(t, OutcomeHeld, ans.Results[2].Outcome)
	require.Len(t, f.signals, 1, "only the rescind within the limit was sent")
}

// Adversary: replayed, over-sized and over-rate requests.
func TestReplayOversizeAndRate(t *testing.T) {
	f := newFake()
	s := testServer(f, nil)
	s.Rates = map[string]Rate{SourceAPI: {PerSecond: 0.5, Burst: 2}, SourceSCIM: {PerSecond: 0.5, Burst: 1}, SourceWebhook: {}, SourceBulk: {}}
	h := s.Handler()

	// Replay of a signed delivery: 401, nothing started twice.
	body := webhookBody(event("77", "Created", nil, map[string]any{"hireDate": "2027-02-01"}))
	require.Equal(t, http.StatusOK, do(t, h, signedWebhook(body, testNow)).Code)
	w := do(t, h, signedWebhook(body, testNow))
	require.Equal(t, http.StatusUnauthorized, w.Code)
	require.Contains(t, w.Body.String(), "replay")

	// Over-sized: 413 on every endpoint, before anything is read whole.
	big := []byte(`{"hrisId":"` + strings.Repeat("9", int(s.MaxBody)) + `"}`)
	for _, r := range []req{
		{path: "/joiners", ctype: "application/json", body: big},
		{path: "/scim/v2/Bulk", ctype: "application/scim+json", body: big},
		signedWebhook(big, testNow),
	} {
		w := do(t, h, r)
		require.Equal(t, http.StatusRequestEntityTooLarge, w.Code, r.path)
	}
	s2 := testServer(newFake(), nil)
	s2.MaxBulkBody = 64
	w = do(t, s2.Handler(), req{path: "/joiners:bulk", ctype: "text/csv", body: []byte("hrisId\n" + strings.Repeat("1\n", 100))})
	require.Contains(t, w.Body.String(), "request body exceeds 64 bytes")

	// Over-rate: the API's bucket holds 2; the third gets 429 + Retry-After.
	// (One token went to the over-sized /joiners above.)
	require.Equal(t, http.StatusCreated, do(t, h, req{path: "/joiners", ctype: "application/json", body: []byte(`{"hrisId":"r-1"}`)}).Code)
	w = do(t, h, req{path: "/joiners", ctype: "application/json", body: []byte(`{"hrisId":"r-2"}`)})
	require.Equal(t, http.StatusTooManyRequests, w.Code)
	require.Equal(t, "2", w.Header().Get("Retry-After"))
	require.JSONEq(t, `{"field":"rate","error":"too many api requests; retry after 2 s"}`, w.Body.String())
	// A stranger's flood cannot use up the sender's tokens: 401 first.
	w = do(t, h, req{path: "/scim/v2/Bulk", ctype: "application/scim+json", body: []byte(`{}`), noAuth: true})
	require.Equal(t, http.StatusUnauthorized, w.Code)
	// SCIM answers 429 in its own error shape (its token went to the
	// over-sized request above).
	w = do(t, h, req{path: "/scim/v2/Bulk", ctype: "application/scim+json", body: mustJSON(scimRequest(scimUserData("5")))})
	require.Equal(t, http.StatusTooManyRequests, w.Code)
	require.Contains(t, w.Body.String(), SCIMErrorURN)
	require.NotEmpty(t, w.Header().Get("Retry-After"))
	require.NotContains(t, startedIDs(f), "r-2")
	require.NotContains(t, startedIDs(f), "5")
}

func TestTokenBucket(t *testing.T) {
	var l limiter
	r := Rate{PerSecond: 2, Burst: 3}
	now := testNow
	for range 3 {
		ok, _ := l.take("api", r, now)
		require.True(t, ok)
	}
	ok, wait := l.take("api", r, now)
	require.False(t, ok)
	require.Equal(t, 500*time.Millisecond, wait)
	ok, _ = l.take("api", r, now.Add(500*time.Millisecond))
	require.True(t, ok, "refilled at 2/s")
	ok, _ = l.take("scim", r, now)
	require.True(t, ok, "each source has its own bucket")
	ok, _ = l.take("api", Rate{}, now)
	require.True(t, ok, "a zero rate is no limit")
	require.Len(t, l.buckets, 2, "one bucket per source, however many requests")
}

func TestWebhookEventsAndBulkUploadsAreBounded(t *testing.T) {
	f := newFake()
	s := testServer(f, nil)
	s.MaxWebhookEvents = 3
	var evs []map[string]any
	for i := range 4 {
		evs = append(evs, event(fmt.Sprint(i+1), "Created", nil, map[string]any{"hireDate": "2027-02-01"}))
	}
	w := do(t, s.Handler(), signedWebhook(webhookBody(evs...), testNow))
	require.Equal(t, http.StatusRequestEntityTooLarge, w.Code)
	require.Empty(t, f.starts)

	s.MaxBulkInFlight = 1
	s.bulkInFlight.Add(1) // one upload is running
	w = do(t, s.Handler(), req{path: "/joiners:bulk", ctype: "text/csv", body: []byte("hrisId\n1\n")})
	require.Equal(t, http.StatusTooManyRequests, w.Code)
	require.Equal(t, "30", w.Header().Get("Retry-After"))
	s.bulkInFlight.Add(-1)
	w = do(t, s.Handler(), req{path: "/joiners:bulk", ctype: "text/csv", body: []byte("hrisId\n1\n")})
	require.Equal(t, http.StatusOK, w.Code)
}
