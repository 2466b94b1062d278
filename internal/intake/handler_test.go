package intake

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/joinery/joinery/internal/run"
	"github.com/joinery/joinery/workflows"
)

func TestNormalize(t *testing.T) {
	t.Run("valid input is trimmed and canonical", func(t *testing.T) {
		j, err := Normalize(Joiner{HRISID: "  E-100.a_b ", Kind: " Contractor ", RequestedBy: " Ada Lovelace ", HireDate: "2027-02-01 ",
			EndDate: "2027-02-01", Email: " ann@example.co.uk ", FirstName: "José", LastName: "O'Neil-Šimić", Department: "R&D", ManagerID: "42"})
		require.NoError(t, err)
		require.Equal(t, Joiner{HRISID: "E-100.a_b", Kind: "contractor", RequestedBy: "Ada Lovelace", HireDate: "2027-02-01",
			EndDate: "2027-02-01", Email: "ann@example.co.uk", FirstName: "José", LastName: "O'Neil-Šimić", Department: "R&D", ManagerID: "42"}, j)
		in := j.Input("api")
		require.Equal(t, workflows.JoinerInput{HRISID: "E-100.a_b", Kind: "contractor", Source: "api", RequestedBy: "Ada Lovelace"}, in)
	})
	t.Run("boundaries are accepted", func(t *testing.T) {
		for _, j := range []Joiner{
			{HRISID: strings.Repeat("a", 64)},
			{HRISID: "1", RequestedBy: strings.Repeat("é", MaxTextLen)},
			{HRISID: "1", EventID: strings.Repeat("e", MaxEventIDLen)},
			{HRISID: "1", Email: strings.Repeat("x", MaxEmailLen-12) + "@example.com"},
			{HRISID: "1", HireDate: "2028-02-29"},
		} {
			_, err := Normalize(j)
			require.NoError(t, err, "%+v", j)
		}
	})
	type tc struct {
		field string
		set   func(*Joiner, string)
		bad   map[string]string
	}
	cases := []tc{
		{"hrisId", func(j *Joiner, v string) { j.HRISID = v }, badHRISIDs},
		{"kind", func(j *Joiner, v string) { j.Kind = v }, badKinds},
		{"requestedBy", func(j *Joiner, v string) { j.RequestedBy = v }, badTexts},
		{"eventId", func(j *Joiner, v string) { j.EventID = v }, badEventIDs},
		{"hireDate", func(j *Joiner, v string) { j.HireDate = v }, badDates},
		{"endDate", func(j *Joiner, v string) { j.EndDate = v }, badDates},
		{"email", func(j *Joiner, v string) { j.Email = v }, badEmails},
		{"firstName", func(j *Joiner, v string) { j.FirstName = v }, badTexts},
		{"lastName", func(j *Joiner, v string) { j.LastName = v }, badTexts},
		{"department", func(j *Joiner, v string) { j.Department = v }, badTexts},
		{"managerId", func(j *Joiner, v string) { j.ManagerID = v }, map[string]string{"space": "a b", "too long": long65, "dash first": "-1"}},
	}
	for _, c := range cases {
		for name, v := range c.bad {
			t.Run(c.field+"/"+name, func(t *testing.T) {
				j := Joiner{HRISID: "E1", Kind: "employee"}
				c.set(&j, v)
				_, err := Normalize(j)
				var fe *FieldError
				require.ErrorAs(t, err, &fe)
				require.Equal(t, c.field, fe.Field)
				require.NotEmpty(t, fe.Reason)
			})
		}
	}
	t.Run("end date before hire date", func(t *testing.T) {
		_, err := Normalize(Joiner{HRISID: "1", HireDate: "2027-03-01", EndDate: "2027-02-28"})
		var fe *FieldError
		require.ErrorAs(t, err, &fe)
		require.Equal(t, "endDate", fe.Field)
	})
}

func TestJoinerAPI(t *testing.T) {
	f := newFake()
	h := testServer(f, nil).Handler()
	body := mustJSON(map[string]any{"hrisId": " E-7 ", "kind": "Employee"})

	w := do(t, h, req{path: "/joiners", ctype: "application/json; charset=utf-8", body: body})
	require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
	var ans StartAnswer
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &ans))
	require.Equal(t, "E-7", ans.HRISID)
	require.Equal(t, run.Started, ans.Outcome)
	require.Equal(t, "joiner-E-7", ans.WorkflowID)
	require.Equal(t, ans.UIURL, w.Header().Get("Location"))
	require.NotEmpty(t, w.Header().Get("X-Request-ID"))
	require.Equal(t, []workflows.JoinerInput{{HRISID: "E-7", Kind: "employee", Source: "api", RequestedBy: "intake-api"}}, f.starts)

	w = do(t, h, req{path: "/joiners", ctype: "application/json", body: body})
	require.Equal(t, http.StatusOK, w.Code)
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &ans))
	require.Equal(t, run.AlreadyRunning, ans.Outcome)

	f.done["E-8"] = true
	w = do(t, h, req{path: "/joiners", ctype: "application/json", body: []byte(`{"hrisId":"E-8","requestedBy":"ada"}`)})
	require.Equal(t, http.StatusOK, w.Code)
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &ans))
	require.Equal(t, run.AlreadyDone, ans.Outcome)
	require.Len(t, f.starts, 1, "duplicates collapse onto the existing joiner before a start is attempted")

	f.startErr = errors.New("temporal unavailable")
	w = do(t, h, req{path: "/joiners", ctype: "application/json", body: []byte(`{"hrisId":"E-9"}`)})
	require.Equal(t, http.StatusServiceUnavailable, w.Code)
	require.Contains(t, w.Body.String(), "temporal unavailable")
}

func TestWebhookEvents(t *testing.T) {
	type want struct {
		outcome string
		signal  string
		payload any
		started bool
	}
	cases := []struct {
		name    string
		running []string
		ev      map[string]any
		want    want
	}{
		{"created starts", nil, event("4242", "Created", []string{"firstName", "hireDate"}, map[string]any{"hireDate": "2027-02-01", "status": "Active"}),
			want{outcome: "started", started: true}},
		// A duplicate collapses onto the existing joiner before any start.
		{"created again collapses", []string{"4242"}, event("4242", "Created", nil, nil), want{outcome: "already running"}},
		{"created inactive is ignored", nil, event("4242", "Created", nil, map[string]any{"status": "Inactive"}), want{outcome: OutcomeIgnored}},
		{"hire date moved", []string{"4242"}, event("4242", "Updated", []string{"hireDate"}, map[string]any{"hireDate": "2027-03-01", "status": "Active"}),
			want{outcome: OutcomeSignalled, signal: workflows.SignalStartDateChange, payload: workflows.StartDateSignal{HireDate: "2027-03-01", By: "hris-webhook"}}},
		{"hire date moved for an unknown employee starts", nil, event("4242", "Updated", []string{"hireDate"}, map[string]any{"hireDate": "2027-03-01"}),
			want{outcome: "started", signal: workflows.SignalStartDateChange, started: true}},
		{"hire date cleared is ignored", []string{"4242"}, event("4242", "Updated", []string{"hireDate"}, map[string]any{"hireDate": ""}), want{outcome: OutcomeIgnored}},
		{"status inactive rescinds", []string{"4242"}, event("4242", "Updated", []string{"status"}, map[string]any{"status": "Inactive", "hireDate": "2027-02-01"}),
			want{outcome: OutcomeSignalled, signal: workflows.SignalRescind, payload: workflows.RescindSignal{By: "hris-webhook", Reason: "HRIS status set to Inactive"}}},
		// Nothing is signalled (nor counted against the blast radius) when no
		// joiner runs.
		{"status inactive without a joiner is ignored", nil, event("4242", "Updated", []string{"status"}, map[string]any{"status": "Inactive"}),
			want{outcome: OutcomeIgnored}},
		{"termination before the hire date rescinds", []string{"4242"},
			event("4242", "Updated", []string{"terminationDate"}, map[string]any{"hireDate": "2027-03-01", "terminationDate": "2027-02-20"}),
			want{outcome: OutcomeSignalled, signal: workflows.SignalRescind, payload: workflows.RescindSignal{By: "hris-webhook", Reason: "termination date 2027-02-20 set before the start"}}},
		{"termination already past rescinds", []string{"4242"},
			event("4242", "Updated", []string{"terminationDate"}, map[string]any{"hireDate": "2026-12-01", "terminationDate": "2027-01-05"}),
			want{outcome: OutcomeSignalled, signal: workflows.SignalRescind, payload: workflows.RescindSignal{By: "hris-webhook", Reason: "termination date 2027-01-05 set before the start"}}},
		{"fixed-term end after the start changes nothing", []string{"4242"},
			event("4242", "Updated", []string{"terminationDate"}, map[string]any{"hireDate": "2027-02-01", "terminationDate": "2027-08-31"}),
			want{outcome: "already running"}},
		{"deleted rescinds", []string{"4242"}, event("4242", "Deleted", nil, nil),
			want{outcome: OutcomeSignalled, signal: workflows.SignalRescind, payload: workflows.RescindSignal{By: "hris-webhook", Reason: "employee record deleted in the HRIS"}}},
		{"update of an unknown pending hire starts", nil, event("4242", "Updated", []string{"status"}, map[string]any{"status": "Active", "hireDate": "2099-01-04"}),
			want{outcome: "started", started: true}},
		{"update of someone already working is not a joiner", nil, event("4242", "Updated", []string{"jobTitle"}, map[string]any{"hireDate": "2001-01-04"}),
			want{outcome: OutcomeIgnored}},
		{"update without a hire date is not a joiner", nil, event("4242", "Updated", []string{"status"}, map[string]any{"status": "Active"}),
			want{outcome: OutcomeIgnored}},
		{"update of a leaver is ignored", nil, event("4242", "Updated", nil, map[string]any{"terminationDate": "2026-05-01"}), want{outcome: OutcomeIgnored}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFake()
			for _, id := range c.running {
				f.running[id] = true
			}
			w := do(t, testServer(f, nil).Handler(), signedWebhook(webhookBody(c.ev), testNow))
			require.Equal(t, http.StatusOK, w.Code, w.Body.String())
			var ans WebhookAnswer
			require.NoError(t, json.Unmarshal(w.Body.Bytes(), &ans))
			require.Len(t, ans.Results, 1)
			res := ans.Results[0]
			require.Equal(t, c.want.outcome, res.Outcome, "%+v", res)
			require.Equal(t, "4242", res.HRISID)
			require.Equal(t, "joiner-4242", res.WorkflowID)
			if c.want.signal != "" {
				require.NotEmpty(t, f.signals)
				require.Equal(t, c.want.signal, f.signals[0].Name)
				if c.want.payload != nil {
					require.Equal(t, c.want.payload, f.signals[0].Payload)
				}
			} else {
				require.Empty(t, f.signals)
			}
			if c.want.started {
				require.Len(t, f.starts, 1)
				in := f.starts[0]
				require.Equal(t, "4242", in.HRISID)
				require.Equal(t, "webhook", in.Source)
				require.Equal(t, "hris-webhook", in.RequestedBy)
				require.Equal(t, fmt.Sprintf("bamboohr:%s:4242:20270110T115900Z", c.ev["action"]), in.EventID)
			} else {
				require.Empty(t, f.starts)
			}
		})
	}
}

func TestWebhookTemporalErrorAsksForRetry(t *testing.T) {
	f := newFake()
	f.startErr = errors.New("connection refused")
	w := do(t, testServer(f, nil).Handler(), signedWebhook(webhookBody(event("7", "Created", nil, nil)), testNow))
	require.Equal(t, http.StatusServiceUnavailable, w.Code)
	var ans WebhookAnswer
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &ans))
	require.Equal(t, OutcomeError, ans.Results[0].Outcome)
	require.Contains(t, ans.Results[0].Error, "connection refused")
}

// TestWebhookMultipleEvents: events run in order; a delivery may carry a
// Created and a later Updated of the same employee.
func TestWebhookMultipleEvents(t *testing.T) {
	f := newFake()
	body := webhookBody(
		event("11", "Created", nil, nil),
		event("11", "Updated", []string{"hireDate"}, map[string]any{"hireDate": "2027-04-01"}),
		event("12", "Created", nil, nil),
		event("11", "Updated", []string{"status"}, map[string]any{"status": "Inactive"}),
	)
	w := do(t, testServer(f, nil).Handler(), signedWebhook(body, testNow))
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	var ans WebhookAnswer
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &ans))
	var got []string
	for _, r := range ans.Results {
		got = append(got, fmt.Sprintf("%d %s %s %s", r.Index, r.HRISID, r.Outcome, r.Signal))
	}
	require.Equal(t, []string{"0 11 started ", "1 11 signalled start-date", "2 12 started ", "3 11 signalled rescind"}, got)
}

// TestConcurrentDeliveriesCollapse: five concurrent, separately signed
// deliveries of one hire start one joiner; four answers say it already runs.
func TestConcurrentDeliveriesCollapse(t *testing.T) {
	f := newFake()
	h := testServer(f, nil).Handler()
	body := webhookBody(event("777", "Created", nil, nil))
	outcomes := make([]string, 5)
	var wg sync.WaitGroup
	for i := range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := do(t, h, signedWebhook(body, testNow.Add(-time.Duration(i)*time.Second)))
			var ans WebhookAnswer
			if err := json.Unmarshal(w.Body.Bytes(), &ans); err == nil && len(ans.Results) == 1 {
				outcomes[i] = ans.Results[0].Outcome
			}
		}()
	}
	wg.Wait()
	count := map[string]int{}
	for _, o := range outcomes {
		count[o]++
	}
	require.Equal(t, map[string]int{"started": 1, "already running": 4}, count)
}

func readFixture(t *testing.T, name, prefix string) []byte {
	t.Helper()
	b, err := os.ReadFile("../../testdata/intake/" + name)
	require.NoError(t, err)
	return []byte(strings.ReplaceAll(string(b), "{{P}}", prefix))
}

func TestBulkCSV(t *testing.T) {
	f := newFake()
	f.hrKind["c-2"] = "contractor" // the HR record agrees with the file's kind
	s := testServer(f, nil)
	s.BulkConcurrency = 1 // deterministic: the duplicate of row 1 comes after it
	w := do(t, s.Handler(), req{path: "/joiners:bulk", ctype: "text/csv", body: readFixture(t, "joiners.csv", "c")})
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.Equal(t, "application/x-ndjson", w.Header().Get("Content-Type"))
	lines := ndjsonLines(t, w.Body.String())
	require.Len(t, lines, 9)
	type row struct {
		hris, outcome, field string
		status               int
	}
	var got []row
	for _, l := range lines[:8] {
		field, _ := l["field"].(string)
		got = append(got, row{l["hrisId"].(string), l["outcome"].(string), field, int(l["status"].(float64))})
	}
	require.Equal(t, []row{
		{"c-1", "started", "", 201}, {"c-2", "started", "", 201}, {"c-3", "started", "", 201},
		{"bad id", "invalid", "hrisId", 400}, {"c-5", "invalid", "kind", 400}, {"c-6", "invalid", "hireDate", 400},
		{"c-7", "invalid", "email", 400}, {"c-1", "already running", "", 200},
	}, got)
	require.EqualValues(t, 1, lines[0]["row"])
	require.EqualValues(t, 2, lines[0]["line"])
	require.Equal(t, map[string]any{"rows": 8.0, "started": 3.0, "alreadyRunning": 1.0, "alreadyDone": 0.0, "invalid": 4.0,
		"refused": 0.0, "held": 0.0, "holdFull": 0.0, "failed": 0.0}, lines[8]["summary"])
	require.Len(t, f.starts, 3, "the duplicate collapses before a start")
	require.Equal(t, workflows.JoinerInput{HRISID: "c-2", Kind: "contractor", Source: "bulk", RequestedBy: "hr-ops"}, f.starts[1])
	require.Equal(t, "employee", f.starts[2].Kind, "an empty kind is the HR record's")
}

func TestBulkNDJSON(t *testing.T) {
	f := newFake()
	w := do(t, testServer(f, nil).Handler(), req{path: "/joiners:bulk", ctype: "application/x-ndjson", body: readFixture(t, "joiners.jsonl", "n")})
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	lines := ndjsonLines(t, w.Body.String())
	require.Len(t, lines, 8)
	outcomes := map[float64]string{}
	for _, l := range lines[:7] {
		outcomes[l["row"].(float64)] = l["outcome"].(string)
	}
	require.Equal(t, "started", outcomes[1])
	// A person's HR record never makes a service account or an AI agent:
	// the file's kind is refused, not obeyed.
	require.Equal(t, "refused", outcomes[3])
	require.Equal(t, "kind-mismatch", lines[2]["reason"])
	require.EqualValues(t, 422, lines[2]["status"])
	require.EqualValues(t, 4, lines[2]["line"], "the blank line is skipped but counted")
	require.Equal(t, "invalid", outcomes[4])
	require.Equal(t, "salary", lines[3]["field"])
	require.Equal(t, "invalid", outcomes[5])
	require.Equal(t, "hrisId", lines[4]["field"])
	require.Equal(t, "invalid", outcomes[6])
	require.Equal(t, "refused", outcomes[2])
	require.Equal(t, "refused", outcomes[7])
	sum := lines[7]["summary"].(map[string]any)
	require.EqualValues(t, 7, sum["rows"])
	require.EqualValues(t, 1, sum["started"])
	require.EqualValues(t, 3, sum["refused"])
	require.EqualValues(t, 3, sum["invalid"])
	require.Len(t, f.starts, 1)
}

func TestBulkRowLimit(t *testing.T) {
	f := newFake()
	s := testServer(f, nil)
	s.MaxBulkRows = 3
	body := "hrisId\nr1\nr2\nr3\nr4\nr5\n"
	w := do(t, s.Handler(), req{path: "/joiners:bulk", ctype: "text/csv", body: []byte(body)})
	require.Equal(t, http.StatusOK, w.Code)
	lines := ndjsonLines(t, w.Body.String())
	require.Len(t, lines, 4)
	require.Contains(t, lines[3]["error"], "more than 3 rows")
	require.Len(t, f.starts, 3)
}

// TestBulkStreams proves rows are answered while the upload is still
// arriving: each result line is read before the next row is sent.
func TestBulkStreams(t *testing.T) {
	f := newFake()
	srv := httptest.NewServer(testServer(f, nil).Handler())
	defer srv.Close()
	pr, pw := io.Pipe()
	hr, err := http.NewRequest(http.MethodPost, srv.URL+"/joiners:bulk", pr)
	require.NoError(t, err)
	hr.Header.Set("Content-Type", "application/x-ndjson")
	hr.Header.Set("Authorization", "Bearer "+testToken)
	go func() { _, _ = io.WriteString(pw, `{"hrisId":"s-1"}`+"\n") }()
	resp, err := http.DefaultClient.Do(hr)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	rd := bufio.NewReader(resp.Body)
	for i := 1; i <= 5; i++ {
		line, err := rd.ReadString('\n')
		require.NoError(t, err)
		var r RowResult
		require.NoError(t, json.Unmarshal([]byte(line), &r))
		require.Equal(t, fmt.Sprintf("s-%d", i), r.HRISID)
		require.Equal(t, "started", r.Outcome)
		if i < 5 {
			_, err = fmt.Fprintf(pw, `{"hrisId":"s-%d"}`+"\n", i+1)
			require.NoError(t, err)
		}
	}
	require.NoError(t, pw.Close())
	line, err := rd.ReadString('\n')
	require.NoError(t, err)
	require.Contains(t, line, `"summary"`)
}

func TestImportKeepsRowOrder(t *testing.T) {
	var b strings.Builder
	b.WriteString("hrisId\n")
	for i := range 200 {
		fmt.Fprintf(&b, "o-%d\n", i)
	}
	rows, err := NewCSVReader(strings.NewReader(b.String()))
	require.NoError(t, err)
	st := &slowStarter{fakeStarter: newFake()}
	var got []int
	tot, err := Import(context.Background(), st, rows, ImportOptions{Source: "import", Concurrency: 8}, func(r RowResult) error {
		got = append(got, r.Row)
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, 200, tot.Started)
	for i, n := range got {
		require.Equal(t, i+1, n)
	}
	require.LessOrEqual(t, st.maxInFlight, 8)
	require.Greater(t, st.maxInFlight, 1, "starts should overlap")
}

// slowStarter delays starts by a varying amount and records concurrency.
type slowStarter struct {
	*fakeStarter
	mu          sync.Mutex
	inFlight    int
	maxInFlight int
}

func (s *slowStarter) Start(ctx context.Context, in workflows.JoinerInput) (run.StartResult, error) {
	s.mu.Lock()
	s.inFlight++
	s.maxInFlight = max(s.maxInFlight, s.inFlight)
	s.mu.Unlock()
	time.Sleep(time.Duration(len(in.HRISID)%3) * time.Millisecond)
	defer func() { s.mu.Lock(); s.inFlight--; s.mu.Unlock() }()
	return s.fakeStarter.Start(ctx, in)
}

func TestSCIMBulk(t *testing.T) {
	f := newFake()
	f.hrKind["701985"] = "contractor"
	w := do(t, testServer(f, nil).Handler(), req{path: "/scim/v2/Bulk", ctype: "application/scim+json", body: readFixture(t, "entra-bulk.json", "")})
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.Equal(t, "application/scim+json", w.Header().Get("Content-Type"))
	var resp struct {
		Schemas    []string `json:"schemas"`
		Operations []struct {
			Method, BulkID, Location, Status string
			Response                         SCIMOperationDetail
		} `json:"Operations"`
	}
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &resp))
	require.Equal(t, []string{SCIMBulkResponseURN}, resp.Schemas)
	require.Len(t, resp.Operations, 2)
	require.Equal(t, "201", resp.Operations[0].Status)
	require.Equal(t, "POST", resp.Operations[0].Method)
	require.Equal(t, "897401c2-2de4-4b87-a97f-c02de3bcfc61", resp.Operations[0].BulkID)
	require.Equal(t, "http://ui.test/workflows/joiner-701984", resp.Operations[0].Location)
	require.Equal(t, SCIMOperationDetail{HRISID: "701984", Outcome: "started", WorkflowID: "joiner-701984"}, resp.Operations[0].Response)
	require.Equal(t, []workflows.JoinerInput{
		{HRISID: "701984", Kind: "employee", Source: "scim", RequestedBy: "scim-bulk", EventID: "scim:897401c2-2de4-4b87-a97f-c02de3bcfc61"},
		{HRISID: "701985", Kind: "contractor", Source: "scim", RequestedBy: "scim-bulk", EventID: "scim:897401c2-2de4-4b87-a97f-c02de3bcfc62"},
	}, f.starts)

	// The same upload again collapses: 200 per operation.
	w = do(t, testServer(f, nil).Handler(), req{path: "/scim/v2/Bulk", ctype: "application/json", body: readFixture(t, "entra-bulk.json", "")})
	require.Equal(t, http.StatusOK, w.Code)
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &resp))
	require.Equal(t, "200", resp.Operations[0].Status)
	require.Equal(t, "already running", resp.Operations[1].Response.Outcome)
}

func TestSCIMKindAndInactive(t *testing.T) {
	f := newFake()
	f.running["900"] = true
	member := scimUserData("901")
	member["userType"] = "Member" // Entra's userType: not a kind, so the HR record decides
	gone := scimUserData("900")
	gone["active"] = false
	agent := scimUserData("902")
	agent["urn:ietf:params:scim:schemas:extension:joinery:1.0:User"] = map[string]any{"JoinerKind": "AI-Agent"}
	w := do(t, testServer(f, nil).Handler(), req{path: "/scim/v2/Bulk", ctype: "application/scim+json", body: mustJSON(scimRequest(member, gone, agent))})
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.Len(t, f.starts, 1)
	require.Equal(t, "employee", f.starts[0].Kind, "no kind asked: the HR record's")
	// An AI agent asked for on a person's HR record is refused, not obeyed.
	var resp struct {
		Operations []struct {
			Status   string
			Response map[string]any
		}
	}
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &resp))
	require.Equal(t, "422", resp.Operations[2].Status)
	require.Equal(t, "invalidValue", resp.Operations[2].Response["scimType"])
	require.Contains(t, resp.Operations[2].Response["detail"], "kind-mismatch")
	require.Len(t, f.signals, 1)
	require.Equal(t, fakeSignal{"900", workflows.SignalRescind, workflows.RescindSignal{By: "scim-bulk", Reason: "SCIM upload marked the user inactive"}}, f.signals[0])
}

func TestSCIMFailOnErrors(t *testing.T) {
	f := newFake()
	f.startErr = errors.New("temporal down")
	r := scimRequest(scimUserData("1"), scimUserData("2"), scimUserData("3"))
	r["failOnErrors"] = 2
	w := do(t, testServer(f, nil).Handler(), req{path: "/scim/v2/Bulk", ctype: "application/scim+json", body: mustJSON(r)})
	require.Equal(t, http.StatusOK, w.Code)
	var resp SCIMBulkResponse
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &resp))
	require.Len(t, resp.Operations, 2, "processing stops after failOnErrors errors")
	require.Equal(t, "503", resp.Operations[0].Status)
}

func TestSCIMTooManyOperations(t *testing.T) {
	f := newFake()
	s := testServer(f, nil)
	s.MaxBody = 4 << 20
	users := make([]map[string]any, MaxSCIMOperations+1)
	for i := range users {
		users[i] = scimUserData(fmt.Sprint(i + 1))
	}
	w := do(t, s.Handler(), req{path: "/scim/v2/Bulk", ctype: "application/scim+json", body: mustJSON(scimRequest(users...))})
	require.Equal(t, http.StatusRequestEntityTooLarge, w.Code)
	require.Contains(t, w.Body.String(), `"scimType":"tooMany"`)
	starts, _ := f.calls()
	require.Zero(t, starts)
}

func TestHealthAndReadiness(t *testing.T) {
	s := testServer(newFake(), nil)
	w := do(t, s.Handler(), req{method: http.MethodGet, path: "/healthz", noAuth: true})
	require.Equal(t, http.StatusOK, w.Code)
	w = do(t, s.Handler(), req{method: http.MethodGet, path: "/readyz", noAuth: true})
	require.Equal(t, http.StatusOK, w.Code)
	s.Ready = func(context.Context) error { return errors.New("temporal at 127.0.0.1:1: connection refused") }
	w = do(t, s.Handler(), req{method: http.MethodGet, path: "/readyz", noAuth: true})
	require.Equal(t, http.StatusServiceUnavailable, w.Code)
	require.Contains(t, w.Body.String(), "connection refused")
}

func TestNoTokenConfiguredRefusesEverything(t *testing.T) {
	f := newFake()
	s := testServer(f, nil)
	s.Token = ""
	for _, r := range []req{
		{path: "/joiners", ctype: "application/json", body: []byte(`{"hrisId":"1"}`), headers: map[string]string{"Authorization": "Bearer "}},
		{path: "/joiners", ctype: "application/json", body: []byte(`{"hrisId":"1"}`)},
	} {
		w := do(t, s.Handler(), r)
		require.Equal(t, http.StatusUnauthorized, w.Code)
	}
	s.Verifier = nil
	w := do(t, s.Handler(), signedWebhook(webhookBody(event("1", "Created", nil, nil)), testNow))
	require.Equal(t, http.StatusUnauthorized, w.Code)
	starts, _ := f.calls()
	require.Zero(t, starts)
}

// TestLogsCarryNoSecretsOrPersonalData drives every endpoint with personal
// data and credentials, then checks the JSON logs hold HR IDs only.
func TestLogsCarryNoSecretsOrPersonalData(t *testing.T) {
	logs := &syncBuffer{}
	f := newFake()
	h := testServer(f, logs).Handler()
	do(t, h, req{path: "/joiners", ctype: "application/json", body: []byte(`{"hrisId":"L-1","requestedBy":"Barbara Jensen"}`)})
	do(t, h, req{path: "/joiners", ctype: "application/json", body: []byte(`{"hrisId":"L-2"}`), headers: map[string]string{"Authorization": "Bearer " + testToken + "-wrong"}})
	do(t, h, req{path: "/joiners:bulk", ctype: "text/csv", body: []byte("hrisId,email,firstName\nL-3,bjensen@example.com,Barbara\nL-4,bad-mail,Barbara\n")})
	do(t, h, req{path: "/scim/v2/Bulk", ctype: "application/scim+json", body: mustJSON(scimRequest(scimUserData("L-5")))})
	do(t, h, signedWebhook(webhookBody(event("4545", "Created", nil, map[string]any{"firstName": "Barbara", "workEmail": "bjensen@example.com"})), testNow))
	do(t, h, signedWebhook(webhookBody(event("4546", "Created", nil, map[string]any{"firstName": "Barbara", "workEmail": "bjensen@"})), testNow))
	out := logs.String()
	for _, secret := range []string{testToken, testSecret, "Barbara", "Jensen", "bjensen", "example.com"} {
		require.NotContains(t, out, secret)
	}
	for _, id := range []string{"L-1", "L-3", "L-5", "4545"} {
		require.Contains(t, out, `"hris_id":"`+id+`"`)
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m), "log line is not JSON: %s", line)
	}
	require.Contains(t, out, `"msg":"request"`)
	require.Contains(t, out, `"status":401`)
}

// TestGracefulShutdown: a request in flight when the context ends is
// answered before Serve returns.
func TestGracefulShutdown(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{})
	f := &blockingStarter{fakeStarter: newFake(), started: started, release: release}
	s := testServer(nil, nil)
	s.Starter = f
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln) }()

	type result struct {
		code int
		err  error
	}
	done := make(chan result, 1)
	go func() {
		hr, _ := http.NewRequest(http.MethodPost, "http://"+ln.Addr().String()+"/joiners", strings.NewReader(`{"hrisId":"g-1"}`))
		hr.Header.Set("Content-Type", "application/json")
		hr.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := http.DefaultClient.Do(hr)
		if err != nil {
			done <- result{err: err}
			return
		}
		resp.Body.Close()
		done <- result{code: resp.StatusCode}
	}()
	<-started
	cancel()
	select {
	case err := <-served:
		t.Fatalf("Serve returned while a request was in flight: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	r := <-done
	require.NoError(t, r.err)
	require.Equal(t, http.StatusCreated, r.code)
	require.NoError(t, <-served)
	_, err = net.DialTimeout("tcp", ln.Addr().String(), time.Second)
	require.Error(t, err, "the listener is closed after shutdown")
}

type blockingStarter struct {
	*fakeStarter
	started chan struct{}
	release chan struct{}
}

func (b *blockingStarter) Start(ctx context.Context, in workflows.JoinerInput) (run.StartResult, error) {
	close(b.started)
	<-b.release
	return b.fakeStarter.Start(ctx, in)
}

func TestNotFoundAndMethodNotAllowed(t *testing.T) {
	h := testServer(newFake(), nil).Handler()
	w := do(t, h, req{method: http.MethodGet, path: "/nope"})
	require.Equal(t, http.StatusNotFound, w.Code)
	require.JSONEq(t, `{"error":"no such endpoint","field":"path"}`, w.Body.String())
	w = do(t, h, req{method: http.MethodDelete, path: "/scim/v2/Bulk"})
	require.Equal(t, http.StatusMethodNotAllowed, w.Code)
	require.Equal(t, "POST", w.Header().Get("Allow"))
}
