package hris

import (
	"crypto/hmac"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"
)

// FuzzParseWebhook feeds arbitrary bodies to the payload parser: it must
// never panic, every error must be ErrMalformedPayload, and every accepted
// event must satisfy the invariants the starter relies on.
func FuzzParseWebhook(f *testing.F) {
	seeds := []string{
		`{"employees":[{"action":"Updated","changedFields":["First Name"],"fields":{"First Name":"Bryony"},"id":"12345","timestamp":"2026-01-31T18:42:00+0000"}]}`,
		`{"employees":[{"id":42,"action":"Created","changedFields":[],"fields":[]}]}`,
		`{"employees":[{"id":"7","action":"Deleted","fields":{"n":1.5e3,"b":false,"z":null}}]}`,
		`{"employees":[{"id":"7","action":"Created","fields":{"a":{"b":1}}}]}`,
		`{"employees":null}`,
		`[]`,
		`null`,
		``,
		"\xff\xfe",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		events, err := ParseWebhook(body)
		if err != nil {
			if !errors.Is(err, ErrMalformedPayload) {
				t.Fatalf("error %v is not ErrMalformedPayload", err)
			}
			if events != nil {
				t.Fatalf("events returned with an error")
			}
			return
		}
		if len(events) == 0 || len(events) > MaxWebhookEvents {
			t.Fatalf("accepted %d events", len(events))
		}
		for _, ev := range events {
			if !employeeIDRE.MatchString(ev.EmployeeID) {
				t.Fatalf("accepted employee id %q", ev.EmployeeID)
			}
			switch ev.Action {
			case ActionCreated, ActionUpdated, ActionDeleted:
			default:
				t.Fatalf("accepted action %q", ev.Action)
			}
			if ev.Fields == nil {
				t.Fatalf("nil Fields")
			}
		}
	})
}

// FuzzVerify checks that no header or body makes Verify panic or accept a
// delivery that was not signed with the secret.
func FuzzVerify(f *testing.F) {
	now := time.Unix(1_800_000_000, 0)
	body := []byte(`{"employees":[{"id":"1","action":"Created"}]}`)
	sig, ts := Sign([]byte("k"), body, now)
	f.Add(body, sig, ts)
	f.Add(body, "", "")
	f.Add([]byte("{}"), sig, "1800000000")
	f.Fuzz(func(t *testing.T, b []byte, sigHeader, tsHeader string) {
		v := &Verifier{Secret: []byte("k"), Now: func() time.Time { return now }}
		_, err := v.Verify(b, sigHeader, tsHeader)
		if err != nil {
			return
		}
		// Accepted: the signature must really be the HMAC of this body and
		// timestamp under the secret.
		got, herr := hex.DecodeString(strings.TrimSpace(sigHeader))
		if herr != nil || !hmac.Equal(got, mac([]byte("k"), b, strings.TrimSpace(tsHeader))) {
			t.Fatalf("accepted a delivery whose signature is not the HMAC of its body")
		}
	})
}
