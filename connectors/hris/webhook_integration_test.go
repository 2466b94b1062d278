package hris_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/joinery/joinery/connectors/hris"
)

// newLoopbackServer serves h on 127.0.0.1 for the test's lifetime.
func newLoopbackServer(t *testing.T, h http.Handler) string {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// receiver is a webhook endpoint that verifies every delivery with
// hris.Verifier, as the starter does.
type receiver struct {
	verifier *hris.Verifier
	mu       sync.Mutex
	events   []hris.WebhookEvent
	rejected []error
	notify   chan struct{}
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	events, err := rc.verifier.Verify(body, r.Header.Get(hris.SignatureHeader), r.Header.Get(hris.TimestampHeader))
	rc.mu.Lock()
	if err != nil {
		rc.rejected = append(rc.rejected, err)
	} else {
		rc.events = append(rc.events, events...)
	}
	rc.mu.Unlock()
	select {
	case rc.notify <- struct{}{}:
	default:
	}
	if err != nil {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// subscribe starts a receiver verifying with secret and registers it with
// the HRIS as an extra webhook target for the test's lifetime.
func subscribe(t *testing.T, tg target, secret string) *receiver {
	rc := &receiver{verifier: hris.NewVerifier([]byte(secret)), notify: make(chan struct{}, 1)}
	url := newLoopbackServer(t, rc)
	code, body := admin(t, tg, http.MethodPost, "/_admin/webhooks", map[string]string{"url": url})
	require.Equal(t, http.StatusCreated, code, string(body))
	var sub struct{ ID string }
	require.NoError(t, json.Unmarshal(body, &sub))
	t.Cleanup(func() { admin(t, tg, http.MethodDelete, "/_admin/webhooks/"+sub.ID, nil) })
	return rc
}

// waitFor returns the first verified event matching match, or fails.
func (rc *receiver) waitFor(t *testing.T, match func(hris.WebhookEvent) bool) hris.WebhookEvent {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		rc.mu.Lock()
		i := slices.IndexFunc(rc.events, match)
		var ev hris.WebhookEvent
		if i >= 0 {
			ev = rc.events[i]
		}
		rc.mu.Unlock()
		if i >= 0 {
			return ev
		}
		select {
		case <-rc.notify:
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			t.Fatalf("no matching webhook event within 30s")
		}
	}
}

func (rc *receiver) eventsFor(id string) []hris.WebhookEvent {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []hris.WebhookEvent
	for _, ev := range rc.events {
		if ev.EmployeeID == id {
			out = append(out, ev)
		}
	}
	return out
}

func TestIntegrationWebhooksAreSignedAndVerifiable(t *testing.T) {
	eachTarget(t, func(t *testing.T, tg target) {
		good := subscribe(t, tg, tg.secret)
		forged := subscribe(t, tg, "not-the-webhook-secret")
		c := newClient(t, tg)

		id := newEmployee(t, c, map[string]string{"firstName": "Webhook", "jobTitle": "Tester"})
		created := good.waitFor(t, func(ev hris.WebhookEvent) bool {
			return ev.EmployeeID == id && ev.Action == hris.ActionCreated
		})
		require.Equal(t, "Webhook", created.Fields["firstName"])
		require.Equal(t, "Tester", created.Fields["jobTitle"])
		require.Equal(t, "Active", created.Fields["status"])
		require.Contains(t, created.ChangedFields, "firstName")
		require.WithinDuration(t, time.Now(), created.Timestamp, time.Minute)

		// A field outside the monitored set changes silently; a status change
		// is announced with exactly the monitored field that changed.
		require.NoError(t, c.UpdateFields(ctxT(t), id, map[string]string{"jobTitle": "Senior Tester"}))
		require.NoError(t, c.UpdateFields(ctxT(t), id, map[string]string{"status": "Inactive", "terminationDate": "2030-01-31"}))
		updated := good.waitFor(t, func(ev hris.WebhookEvent) bool {
			return ev.EmployeeID == id && ev.Action == hris.ActionUpdated
		})
		require.Equal(t, []string{"status", "terminationDate"}, updated.ChangedFields)
		require.Equal(t, "Inactive", updated.Fields["status"])
		require.Equal(t, "Senior Tester", updated.Fields["jobTitle"])
		for _, ev := range good.eventsFor(id) {
			if ev.Action == hris.ActionUpdated {
				require.NotContains(t, ev.ChangedFields, "jobTitle")
			}
		}

		// Repeating the update changes nothing and announces nothing.
		require.NoError(t, c.UpdateFields(ctxT(t), id, map[string]string{"status": "Inactive"}))

		// The receiver holding the wrong secret refused every delivery.
		require.Eventually(t, func() bool {
			forged.mu.Lock()
			defer forged.mu.Unlock()
			return len(forged.rejected) >= 2
		}, 30*time.Second, 50*time.Millisecond)
		forged.mu.Lock()
		require.Empty(t, forged.events)
		for _, err := range forged.rejected {
			require.True(t, errors.Is(err, hris.ErrBadSignature), "got %v", err)
		}
		forged.mu.Unlock()

		time.Sleep(300 * time.Millisecond)
		updates := 0
		for _, ev := range good.eventsFor(id) {
			if ev.Action == hris.ActionUpdated {
				updates++
			}
		}
		require.Equal(t, 1, updates, "only the one real status change is announced")
	})
}
