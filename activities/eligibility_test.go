package activities

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/joinery/joinery/connectors"
	"github.com/joinery/joinery/connectors/hris"
)

var eligNow = time.Date(2027, 1, 10, 12, 0, 0, 0, time.UTC)

func pendingHire() hris.Worker {
	return hris.Worker{ID: "200", Status: "Active", EmploymentStatus: "Full-Time", HireDate: "2027-01-24"}
}

func TestEligible(t *testing.T) {
	rules := EligibilityRules{OwnedFields: []string{"customAccessStatus", "customUsername", "workEmail"}}
	for _, tc := range []struct {
		name   string
		mut    func(*hris.Worker)
		owned  map[string]string
		kind   string
		rules  *EligibilityRules
		reason string
		want   string
	}{
		{name: "pending hire", want: "employee"},
		{name: "hire date today", mut: func(w *hris.Worker) { w.HireDate = "2027-01-10" }, want: "employee"},
		// 12:00 UTC on the 10th is still the 9th... nowhere; but at 02:00 UTC
		// on the 10th it is the 9th in UTC-12 (see TestPendingCutoff).
		{name: "hire date yesterday", mut: func(w *hris.Worker) { w.HireDate = "2027-01-09" }, reason: ReasonHireDatePassed},
		{name: "grace covers late paperwork", mut: func(w *hris.Worker) { w.HireDate = "2027-01-05" }, rules: &EligibilityRules{MaxDaysSinceHire: 5}, want: "employee"},
		{name: "employed since 2018", mut: func(w *hris.Worker) { w.HireDate = "2018-03-01" }, reason: ReasonHireDatePassed},
		{name: "ada: username known to HR", mut: func(w *hris.Worker) { w.HireDate, w.Username = "2018-03-01", "ada.lovelace" }, reason: ReasonAlreadyProvisioned},
		{name: "provisioned before the start", mut: func(w *hris.Worker) { w.Username = "jose.nunez" }, reason: ReasonAlreadyProvisioned},
		{name: "owned field written back", owned: map[string]string{"customAccessStatus": "expired"}, reason: ReasonAlreadyProvisioned},
		{name: "work email written back", owned: map[string]string{"workEmail": "jose.nunez@joinery.test"}, reason: ReasonAlreadyProvisioned},
		{name: "inactive", mut: func(w *hris.Worker) { w.Status = "Inactive" }, reason: ReasonInactive},
		{name: "no status", mut: func(w *hris.Worker) { w.Status = "" }, reason: ReasonInactive},
		{name: "terminated", mut: func(w *hris.Worker) { w.TerminationDate = "2027-01-10"; w.HireDate = "2027-01-10" }, reason: ReasonTerminated},
		{name: "rehire", mut: func(w *hris.Worker) { w.TerminationDate = "2024-06-28"; w.Username = "edsger.dijkstra" }, reason: ReasonRehire},
		{name: "contractor with an end date", mut: func(w *hris.Worker) { w.EmploymentStatus = "Contractor"; w.TerminationDate = "2027-06-30" }, want: "contractor"},
		{name: "matching kind", kind: "employee", want: "employee"},
		{name: "contractor asked for an employee", mut: func(w *hris.Worker) { w.EmploymentStatus = "Contractor" }, kind: "employee", reason: ReasonKindMismatch},
		{name: "employee asked as a contractor", kind: "contractor", reason: ReasonKindMismatch},
		{name: "service account on a human record", kind: "service-account", reason: ReasonKindMismatch},
		{name: "no hire date", mut: func(w *hris.Worker) { w.HireDate = "" }, reason: ReasonNoHireDate},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := pendingHire()
			if tc.mut != nil {
				tc.mut(&w)
			}
			r := rules
			if tc.rules != nil {
				r = *tc.rules
			}
			kind, err := Eligible(w, tc.owned, tc.kind, r, eligNow)
			if tc.reason == "" {
				require.NoError(t, err)
				require.Equal(t, tc.want, kind)
				return
			}
			var ie *IneligibleError
			require.ErrorAs(t, err, &ie)
			require.Equal(t, tc.reason, ie.Reason, ie.Detail)
			require.ErrorIs(t, err, ErrNotEligible)
			require.Equal(t, "200", ie.HRISID)
			require.NotEmpty(t, ie.Detail)
		})
	}
}

func TestEligibleMessages(t *testing.T) {
	w := pendingHire()
	_, err := Eligible(w, nil, "service-account", EligibilityRules{}, eligNow)
	require.ErrorContains(t, err, "starter request")
	w.TerminationDate, w.Username = "2024-06-28", "x"
	_, err = Eligible(w, nil, "", EligibilityRules{}, eligNow)
	require.ErrorContains(t, err, "rehire path")
}

func TestPendingCutoff(t *testing.T) {
	// 02:00 UTC on the 10th is still the 9th in UTC-12: a hire dated the
	// 9th is today somewhere.
	require.Equal(t, "2027-01-09", pendingCutoff(time.Date(2027, 1, 10, 2, 0, 0, 0, time.UTC), 0))
	require.Equal(t, "2027-01-10", pendingCutoff(time.Date(2027, 1, 10, 12, 0, 0, 0, time.UTC), 0))
	require.Equal(t, "2026-12-31", pendingCutoff(time.Date(2027, 1, 10, 12, 0, 0, 0, time.UTC), 10))
}

type fakeHR struct {
	w      hris.Worker
	fields map[string]string
	err    error
}

func (f fakeHR) GetWorker(ctx context.Context, id string) (hris.Worker, error) { return f.w, f.err }
func (f fakeHR) GetFields(ctx context.Context, id string, fields []string) (map[string]string, error) {
	out := map[string]string{}
	for _, k := range fields {
		out[k] = f.fields[k]
	}
	return out, nil
}
func (f fakeHR) WriteBack(ctx context.Context, id string, want, expected map[string]string) (hris.WriteBackResult, error) {
	return hris.WriteBackResult{}, errors.New("not used")
}

func TestCheckEligibleActivity(t *testing.T) {
	rules := EligibilityRules{OwnedFields: []string{"customAccessStatus", "workEmail"}}
	e := &Eligibility{HRIS: fakeHR{w: pendingHire()}, Rules: rules, Now: func() time.Time { return eligNow }}
	res, err := e.CheckEligible(context.Background(), CheckEligibleInput{HRISID: "200"})
	require.NoError(t, err)
	require.Equal(t, "employee", res.Kind)

	e.HRIS = fakeHR{w: pendingHire(), fields: map[string]string{"customAccessStatus": "active"}}
	_, err = e.CheckEligible(context.Background(), CheckEligibleInput{HRISID: "200"})
	var ae *temporal.ApplicationError
	require.ErrorAs(t, err, &ae)
	require.Equal(t, ErrTypeNotEligible, ae.Type())
	require.True(t, ae.NonRetryable())
	var ie IneligibleError
	require.NoError(t, ae.Details(&ie))
	require.Equal(t, ReasonAlreadyProvisioned, ie.Reason)

	e.HRIS = fakeHR{err: connectors.Permanent(hris.System, "get", hris.TypeNotFound, "no such employee", errors.New("404"))}
	_, err = e.CheckEligible(context.Background(), CheckEligibleInput{HRISID: "999"})
	require.ErrorAs(t, err, &ae)
	require.NoError(t, ae.Details(&ie))
	require.Equal(t, ReasonNotFound, ie.Reason)
}
