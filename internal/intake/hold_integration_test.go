package intake_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/worker"

	"github.com/joinery/joinery/activities"
	"github.com/joinery/joinery/connectors/hris"
	"github.com/joinery/joinery/internal/intake"
	"github.com/joinery/joinery/internal/run"
	"github.com/joinery/joinery/workflows"
)

// The seeded HR records against the real reference HRIS: Ada (active since
// 2018, username known) and Edsger (Inactive) get no joiner, José (a hire in
// two weeks) does, and only as the kind his record gives.
func TestIntegrationEligibilityOfSeededRecords(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	reason := func(id, kind string) string {
		_, err := run.CheckEligibility(ctx, e.cfg, workflows.JoinerInput{HRISID: id, Kind: kind})
		var ie *activities.IneligibleError
		if errors.As(err, &ie) {
			return ie.Reason
		}
		require.NoError(t, err)
		return ""
	}
	require.Equal(t, activities.ReasonAlreadyProvisioned, reason("100", ""))
	require.Equal(t, activities.ReasonInactive, reason("102", ""))
	require.Equal(t, activities.ReasonNotFound, reason("999999999", ""))
	require.Equal(t, "", reason("200", ""))
	require.Equal(t, activities.ReasonKindMismatch, reason("200", "service-account"))
	require.Equal(t, activities.ReasonKindMismatch, reason("200", "contractor"))
	in, err := run.CheckEligibility(ctx, e.cfg, workflows.JoinerInput{HRISID: "200"})
	require.NoError(t, err)
	require.Equal(t, "employee", in.Kind, "the HR record decides the kind")

	// `starter start 100` goes through run.StartJoiner: refused. (Should a
	// joiner-100 exist on the shared server, it may collapse onto it, but a
	// new one is never started.)
	res, err := run.StartJoiner(ctx, e.c, e.cfg, workflows.JoinerInput{HRISID: "100", Source: "cli"})
	if err == nil {
		require.NotEqual(t, run.Started, res.Outcome)
	} else {
		require.ErrorIs(t, err, run.ErrNotEligible)
		require.Contains(t, err.Error(), `"ada.lovelace"`)
	}
	_, err = run.StartJoiner(ctx, e.c, e.cfg, workflows.JoinerInput{HRISID: "102", Source: "cli"})
	require.ErrorIs(t, err, run.ErrNotEligible)
	e.requireNotStarted(t, "102")

	// Through the intake: 422 with the reason, nothing started.
	srv := httptest.NewServer(e.server(t, "unused").Handler())
	defer srv.Close()
	auth := map[string]string{"Authorization": "Bearer " + itToken}
	code, out := post(t, srv.URL+"/joiners", "application/json", []byte(`{"hrisId":"102"}`), auth)
	require.Equal(t, http.StatusUnprocessableEntity, code, string(out))
	var ref intake.Refusal
	require.NoError(t, json.Unmarshal(out, &ref))
	require.Equal(t, intake.Refusal{HRISID: "102", Outcome: "refused", Reason: "inactive", Field: "status", Error: "HR status is Inactive, not Active"}, ref)
	code, out = post(t, srv.URL+"/joiners", "application/json", []byte(`{"hrisId":"200","kind":"service-account"}`), auth)
	require.Equal(t, http.StatusUnprocessableEntity, code, string(out))
	require.Contains(t, string(out), "starter request")
	e.requireNotStarted(t, "200")
}

// Records created for the test: employed for years, a rehire, a record
// Joinery already wrote back to, and a joiner whose Temporal history is
// gone (retention) but whose HR record says it ran.
func TestIntegrationEligibilityOfCreatedRecords(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hc, err := hris.New(hris.Config{BaseURL: e.ep.HRISURL, Company: e.ep.HRISCompany, APIKey: e.ep.HRISAPIKey})
	require.NoError(t, err)
	add := func(fields map[string]string) string {
		f := map[string]string{"firstName": "Elig", "lastName": "Test" + randHex(3), "status": "Active",
			"employmentHistoryStatus": "Full-Time", "hireDate": time.Now().AddDate(0, 0, 10).Format(time.DateOnly)}
		for k, v := range fields {
			f[k] = v
		}
		id, err := hc.AddEmployee(ctx, f)
		require.NoError(t, err)
		return id
	}
	long := add(map[string]string{"hireDate": "2018-03-01"})
	yesterday := add(map[string]string{"hireDate": time.Now().UTC().AddDate(0, 0, -2).Format(time.DateOnly)})
	rehire := add(map[string]string{"terminationDate": "2024-06-28", "customUsername": "elig.rehire"})
	written := add(map[string]string{"workEmail": "elig.x@joinery.test"})
	contractor := add(map[string]string{"employmentHistoryStatus": "Contractor", "terminationDate": time.Now().AddDate(0, 6, 0).Format(time.DateOnly)})
	srv := httptest.NewServer(e.server(t, "unused").Handler())
	defer srv.Close()
	e.terminateLater(t, contractor)
	auth := map[string]string{"Authorization": "Bearer " + itToken}
	for id, want := range map[string]string{long: "hire-date-passed", yesterday: "hire-date-passed", rehire: "rehire", written: "already-provisioned"} {
		code, out := post(t, srv.URL+"/joiners", "application/json", []byte(`{"hrisId":"`+id+`"}`), auth)
		require.Equal(t, http.StatusUnprocessableEntity, code, string(out))
		require.Contains(t, string(out), `"reason":"`+want+`"`)
		e.requireNotStarted(t, id)
	}
	// The contractor is started as a contractor, and asking for an
	// employee is refused.
	code, out := post(t, srv.URL+"/joiners", "application/json", []byte(`{"hrisId":"`+contractor+`","kind":"employee"}`), auth)
	require.Equal(t, http.StatusUnprocessableEntity, code, string(out))
	code, out = post(t, srv.URL+"/joiners", "application/json", []byte(`{"hrisId":"`+contractor+`"}`), auth)
	require.Equal(t, http.StatusCreated, code, string(out))
	require.Equal(t, "contractor", e.input(t, contractor).Kind)

	// Once the joiner has written back (here by hand), a repeated delivery
	// collapses onto it while Temporal remembers it ...
	require.NoError(t, hc.UpdateFields(ctx, contractor, map[string]string{"customUsername": "elig.contractor"}))
	code, out = post(t, srv.URL+"/joiners", "application/json", []byte(`{"hrisId":"`+contractor+`"}`), auth)
	require.Equal(t, http.StatusOK, code, string(out))
	require.Contains(t, string(out), `"outcome":"already running"`)
	// ... and after retention has dropped it (a record with the write-back
	// and no workflow at all), the HR record alone refuses a second joiner.
	forgotten := add(map[string]string{"customUsername": "elig.forgotten"})
	code, out = post(t, srv.URL+"/joiners", "application/json", []byte(`{"hrisId":"`+forgotten+`"}`), auth)
	require.Equal(t, http.StatusUnprocessableEntity, code, string(out))
	require.Contains(t, string(out), `"reason":"already-provisioned"`)
	e.requireNotStarted(t, forgotten)
}

// holdEnv is the real stack with a worker running only the hold, on its
// own task queue, and a policy whose blast radius is 2 starts and 1
// rescind per hour. Joiners go to another queue nobody polls, so they stay
// running (and touch nothing) until the test terminates them.
type holdEnv struct {
	itEnv
	hold *intake.Hold
}

func newHoldEnv(t *testing.T) holdEnv {
	e := newEnv(t)
	b, err := os.ReadFile("../../testdata/policy/default.yaml")
	require.NoError(t, err)
	head, _, ok := strings.Cut(string(b), "\nintake:")
	require.True(t, ok)
	p := t.TempDir() + "/policy.yaml"
	require.NoError(t, os.WriteFile(p, []byte(head+"\nintake:\n  blast_radius:\n    window: 1h\n    max_starts: 2\n    max_rescinds: 1\n    max_held: 50\n"), 0o600))
	e.cfg.PolicyFile = p
	h := &intake.Hold{Client: e.c, ID: "it-hold-" + randHex(6), TaskQueue: e.cfg.TaskQueue + "-hold", Config: e.cfg}
	w := worker.New(e.c, h.TaskQueue, worker.Options{})
	w.RegisterWorkflow(workflows.Hold)
	require.NoError(t, w.Start())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = e.c.TerminateWorkflow(ctx, h.ID, "", "hold integration test cleanup")
		w.Stop()
	})
	return holdEnv{itEnv: e, hold: h}
}

// server is an intake whose starter asks this test's hold. A new server
// is what an intake restart looks like.
func (e holdEnv) server() *httptest.Server {
	st := intake.NewTemporalStarter(e.c, e.cfg)
	st.Hold = e.hold
	st.NoHoldWorker = true // the test runs the hold's worker
	s := &intake.Server{Starter: st, Token: itToken, Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)),
		Rates: map[string]intake.Rate{intake.SourceAPI: {}, intake.SourceBulk: {}, intake.SourceSCIM: {}, intake.SourceWebhook: {}}}
	return httptest.NewServer(s.Handler())
}

func (e holdEnv) runID(t *testing.T, id string) string {
	t.Helper()
	d := e.describe(t, id)
	if d == nil {
		return ""
	}
	return d.GetWorkflowExecutionInfo().GetExecution().GetRunId()
}

func TestIntegrationBlastRadiusHoldsReleasesDiscards(t *testing.T) {
	e := newHoldEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	auth := map[string]string{"Authorization": "Bearer " + itToken}
	var ids []string
	for range 6 {
		ids = append(ids, e.hire(t, ""))
	}
	e.terminateLater(t, ids...)

	// A burst of 6 hires: 2 start, 4 are held (202 each), none of those 4
	// is started.
	srv := e.server()
	code, out := post(t, srv.URL+"/joiners:bulk", "text/csv", []byte("hrisId\n"+strings.Join(ids, "\n")+"\n"), auth)
	srv.Close()
	require.Equal(t, http.StatusOK, code, string(out))
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var sum intake.BulkSummary
	require.NoError(t, json.Unmarshal([]byte(lines[len(lines)-1]), &sum))
	require.Equal(t, 2, sum.Summary.Started, string(out))
	require.Equal(t, 4, sum.Summary.Held, string(out))
	var started, held []string
	for _, l := range lines[:len(lines)-1] {
		var r intake.RowResult
		require.NoError(t, json.Unmarshal([]byte(l), &r))
		if r.Outcome == intake.OutcomeHeld {
			require.Equal(t, http.StatusAccepted, r.Status)
			held = append(held, r.HRISID)
			e.requireNotStarted(t, r.HRISID)
		} else {
			started = append(started, r.HRISID)
		}
	}

	// The intake restarts: the window and the queue are the hold's, so the
	// next hire is held too.
	late := e.hire(t, "")
	e.terminateLater(t, late)
	srv = e.server()
	defer srv.Close()
	code, out = post(t, srv.URL+"/joiners", "application/json", []byte(`{"hrisId":"`+late+`"}`), auth)
	require.Equal(t, http.StatusAccepted, code, string(out))
	var ha intake.HeldAnswer
	require.NoError(t, json.Unmarshal(out, &ha))
	require.Equal(t, "start:"+late, ha.Key)
	require.Equal(t, 5, ha.Queued)
	e.requireNotStarted(t, late)
	// A repeated delivery of a held hire collapses onto the held item.
	code, _ = post(t, srv.URL+"/joiners", "application/json", []byte(`{"hrisId":"`+late+`"}`), auth)
	require.Equal(t, http.StatusAccepted, code)

	v, err := e.hold.View(ctx)
	require.NoError(t, err)
	require.Len(t, v.Held, 5)
	require.Equal(t, 2, v.StartsInWindow)

	// Release two by key: they start; releasing them again starts nothing new.
	rel, err := e.hold.Release(ctx, []string{"start:" + held[0], "start:" + held[1]}, false, "ops.alice")
	require.NoError(t, err)
	require.Len(t, rel, 2)
	for _, r := range rel {
		require.Equal(t, "started", r.Outcome, "%+v", r)
	}
	first := e.runID(t, held[0])
	require.NotEmpty(t, first)
	rel, err = e.hold.Release(ctx, []string{"start:" + held[0]}, false, "ops.alice")
	require.NoError(t, err)
	require.Equal(t, []intake.Released{{Key: "start:" + held[0], Outcome: "not held"}}, rel)
	require.Equal(t, first, e.runID(t, held[0]), "still the one run")

	// Discard the late one, then release all the rest.
	gone, err := e.hold.Discard(ctx, []string{"start:" + late}, false, "ops.bob", "not a real hire")
	require.NoError(t, err)
	require.Len(t, gone, 1)
	rel, err = e.hold.Release(ctx, nil, true, "ops.alice")
	require.NoError(t, err)
	require.Len(t, rel, 2)
	rel, err = e.hold.Release(ctx, nil, true, "ops.alice")
	require.NoError(t, err)
	require.Empty(t, rel, "a second release starts nothing")

	// None lost, none twice, the discarded one never started.
	for _, id := range ids {
		e.requireRunning(t, id)
		require.Equal(t, "bulk", e.input(t, id).Source)
	}
	e.requireNotStarted(t, late)
	v, err = e.hold.View(ctx)
	require.NoError(t, err)
	require.Empty(t, v.Held)
	require.Len(t, v.Log, 3)
	require.Equal(t, "discarded", v.Log[1].Decision)
	require.Equal(t, "ops.bob", v.Log[1].By, "the hold records who discarded")
	require.Equal(t, "not a real hire", v.Log[1].Reason)
	require.Equal(t, []string{"start:" + late}, v.Log[1].Keys)
	require.Equal(t, "ops.alice", v.Log[0].By)
	_ = started

	// Rescinds: terminations of long-employed people (seed 100, 101) have
	// no joiner, change nothing and use up nothing; of the running joiners
	// one rescind goes, the rest are held.
	var users []map[string]any
	for _, id := range append([]string{"100", "101"}, ids[:3]...) {
		users = append(users, map[string]any{"schemas": []string{intake.SCIMUserURN, intake.SCIMEnterpriseURN}, "active": false,
			intake.SCIMEnterpriseURN: map[string]any{"employeeNumber": id}})
	}
	ops := make([]any, 0, len(users))
	for i, u := range users {
		ops = append(ops, map[string]any{"method": "POST", "bulkId": fmt.Sprint("r", i), "path": "/Users", "data": u})
	}
	body, _ := json.Marshal(map[string]any{"schemas": []string{intake.SCIMBulkRequestURN}, "Operations": ops})
	code, out = post(t, srv.URL+"/scim/v2/Bulk", "application/scim+json", body, auth)
	require.Equal(t, http.StatusOK, code, string(out))
	var resp struct {
		Operations []struct {
			Status   string
			Response intake.SCIMOperationDetail
		}
	}
	require.NoError(t, json.Unmarshal(out, &resp))
	var outcomes []string
	for _, op := range resp.Operations {
		outcomes = append(outcomes, op.Status+" "+op.Response.Outcome)
	}
	require.Equal(t, []string{"200 ignored", "200 ignored", "200 signalled", "202 held", "202 held"}, outcomes)
	require.Len(t, e.signals(t, ids[0]), 1)
	require.Empty(t, e.signals(t, ids[1]), "held: not rescinded behind the operator's back")
	rel, err = e.hold.Release(ctx, nil, true, "ops.alice")
	require.NoError(t, err)
	require.Len(t, rel, 2)
	for _, r := range rel {
		require.Equal(t, "rescinded", r.Outcome)
	}
	require.Len(t, e.signals(t, ids[1]), 1)
}
