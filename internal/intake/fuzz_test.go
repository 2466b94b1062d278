package intake

import (
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/joinery/joinery/internal/policy"
)

// FuzzNormalizeJoiner: Normalize never panics, and what it accepts obeys
// the rules and is a fixed point.
func FuzzNormalizeJoiner(f *testing.F) {
	f.Add("E-1", "employee", "ops", "ev-1", "2027-02-01", "2027-08-01", "a@example.com", "Ann", "Lee", "Eng", "42")
	f.Add(" e ", "Contractor", "", "", "", "", "", "", "", "", "")
	f.Add("a\x00", "robot", "\u202e", "a b", "2027-02-30", "x", "Ann <a@b.c>", long129, "\xff", "", "-1")
	f.Fuzz(func(t *testing.T, id, kind, by, ev, hire, end, email, first, last, dept, mgr string) {
		j, err := Normalize(Joiner{HRISID: id, Kind: kind, RequestedBy: by, EventID: ev, HireDate: hire, EndDate: end,
			Email: email, FirstName: first, LastName: last, Department: dept, ManagerID: mgr})
		if err != nil {
			fe, ok := err.(*FieldError)
			if !ok || fe.Field == "" || fe.Reason == "" {
				t.Fatalf("error %v is not a *FieldError naming a field", err)
			}
			return
		}
		if !hrisIDRE.MatchString(j.HRISID) {
			t.Fatalf("accepted hrisId %q", j.HRISID)
		}
		if j.Kind != "" && !policy.IsKnownKind(j.Kind) {
			t.Fatalf("accepted kind %q", j.Kind)
		}
		again, err := Normalize(j)
		if err != nil || again != j {
			t.Fatalf("not a fixed point: %+v -> %+v, %v", j, again, err)
		}
		_ = j.Input("fuzz")
	})
}

// FuzzWebhookPayload posts any signed body: the handler never panics,
// refuses what it cannot use without starting anything, and otherwise
// answers one result per event.
func FuzzWebhookPayload(f *testing.F) {
	f.Add(webhookBody(event("4242", "Created", nil, map[string]any{"hireDate": "2027-02-01"})))
	f.Add(webhookBody(event("1", "Updated", []string{"status", "terminationDate"}, map[string]any{"status": "Inactive", "terminationDate": "2027-01-01"}),
		event("2", "Deleted", nil, nil)))
	f.Add([]byte(`{"employees":[{"id":7,"action":"Updated","changedFields":["hireDate"],"fields":{"hireDate":null}}]}`))
	f.Add([]byte(`{"employees":[{"id":"7","action":"Created","fields":[]}]}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, body []byte) {
		fk := newFake()
		fk.running["1"] = true
		w := do(t, testServer(fk, nil).Handler(), signedWebhook(body, testNow))
		starts, signals := fk.calls()
		switch w.Code {
		case http.StatusOK:
			var ans WebhookAnswer
			if err := json.Unmarshal(w.Body.Bytes(), &ans); err != nil {
				t.Fatalf("200 with a body that is not an answer: %v", err)
			}
			if starts+signals > 2*len(ans.Results) {
				t.Fatalf("%d starts and %d signals for %d events", starts, signals, len(ans.Results))
			}
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
			if starts+signals != 0 {
				t.Fatalf("refused with %d, yet %d starts and %d signals", w.Code, starts, signals)
			}
		default:
			t.Fatalf("unexpected status %d: %s", w.Code, w.Body.String())
		}
	})
}

// FuzzSCIMBulk posts any SCIM body.
func FuzzSCIMBulk(f *testing.F) {
	if b, err := os.ReadFile("../../testdata/intake/entra-bulk.json"); err == nil {
		f.Add(b)
	}
	f.Add(mustJSON(scimRequest(scimUserData("1"), scimUserData("x y"))))
	f.Add([]byte(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],"Operations":[{"method":"POST","bulkId":"b","path":"/Users","data":{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"employeeNumber":"9"},"urn:ietf:params:scim:schemas:extension:x:1.0:User":{"kind":null,"HireDate":"2027-01-01"}}}]}`))
	f.Add([]byte(`{"Operations":null}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		fk := newFake()
		w := do(t, testServer(fk, nil).Handler(), req{path: "/scim/v2/Bulk", ctype: "application/scim+json", body: body})
		starts, signals := fk.calls()
		switch {
		case w.Code == http.StatusOK:
			var resp SCIMBulkResponse
			if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
				t.Fatalf("200 with a body that is not a BulkResponse: %v", err)
			}
			// Refusals, duplicates and rescinds with nothing running call
			// neither; every 201 is a start.
			created := 0
			for _, op := range resp.Operations {
				if op.Status == "201" {
					created++
				}
			}
			if starts+signals > len(resp.Operations) || starts < created {
				t.Fatalf("%d starts and %d signals for %d operations (%d created)", starts, signals, len(resp.Operations), created)
			}
		case w.Code >= 400 && w.Code < 500:
			if starts+signals != 0 {
				t.Fatalf("refused with %d, yet %d starts and %d signals", w.Code, starts, signals)
			}
		default:
			t.Fatalf("unexpected status %d: %s", w.Code, w.Body.String())
		}
	})
}

// FuzzCSVRow uploads any header and rows: every answer line is JSON, and
// starts happen only for rows reported as started or already existing.
func FuzzCSVRow(f *testing.F) {
	f.Add("hrisId,kind,email,hireDate", "E-1,employee,a@example.com,2027-02-01\nE-2,robot,,\n")
	f.Add("hrisId", "\"a\nb\"\nx\"y\n")
	f.Add("\uFEFFHRIS ID,Kind", "1,Employee\n2\n")
	f.Add("hrisId,kind", "")
	f.Fuzz(func(t *testing.T, header, rows string) {
		fk := newFake()
		w := do(t, testServer(fk, nil).Handler(), req{path: "/joiners:bulk", ctype: "text/csv", body: []byte(header + "\n" + rows)})
		starts, _ := fk.calls()
		if w.Code != http.StatusOK {
			if w.Code < 400 || w.Code >= 500 || starts != 0 {
				t.Fatalf("status %d with %d starts", w.Code, starts)
			}
			return
		}
		lines := strings.Split(strings.TrimSuffix(w.Body.String(), "\n"), "\n")
		accepted := 0
		for _, l := range lines[:len(lines)-1] {
			var r RowResult
			if err := json.Unmarshal([]byte(l), &r); err != nil {
				t.Fatalf("result line is not JSON: %q", l)
			}
			switch r.Outcome {
			case "started", "already running", "already done":
				accepted++
			case OutcomeInvalid:
				if r.Status != http.StatusBadRequest || r.Field == "" {
					t.Fatalf("invalid row without 400 and field: %+v", r)
				}
			default:
				t.Fatalf("unexpected outcome %+v", r)
			}
		}
		if accepted != starts {
			t.Fatalf("%d rows accepted but %d starts", accepted, starts)
		}
		var sum BulkSummary
		if err := json.Unmarshal([]byte(lines[len(lines)-1]), &sum); err != nil || sum.Summary.Rows != len(lines)-1 {
			t.Fatalf("bad summary line %q (%d rows)", lines[len(lines)-1], len(lines)-1)
		}
	})
}
