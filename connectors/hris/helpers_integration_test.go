package hris_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/joinery/joinery/connectors"
	"github.com/joinery/joinery/connectors/hris"
	"github.com/joinery/joinery/internal/hrisserver"
	"github.com/joinery/joinery/internal/stack/stacktest"
)

// target is one running reference HRIS the integration tests talk to.
type target struct {
	name       string
	url        string
	company    string
	apiKey     string
	adminToken string
	secret     string
}

// stackTarget is the dev stack's refhris (a separate process).
func stackTarget(t *testing.T) target {
	ep := stacktest.Ensure(t)
	return target{name: "stack", url: ep.HRISURL, company: ep.HRISCompany, apiKey: ep.HRISAPIKey,
		adminToken: ep.HRISAdminToken, secret: ep.HRISWebhookSecret}
}

// inProcessTarget runs hrisserver on a loopback listener with a fresh
// database: the same server code, under test-chosen credentials.
func inProcessTarget(t *testing.T) target {
	srv, err := hrisserver.New(hrisserver.Config{
		DBPath:        filepath.Join(t.TempDir(), "hris.db"),
		Company:       "acme",
		APIKey:        "inproc-api-key",
		WebhookSecret: "inproc-webhook-secret",
		AdminToken:    "inproc-admin-token",
		SeedFile:      filepath.Join("..", "..", "testdata", "hris", "seed.json"),
	})
	require.NoError(t, err)
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		hs.Close()
		require.NoError(t, srv.Close())
	})
	return target{name: "inprocess", url: hs.URL, company: "acme", apiKey: "inproc-api-key",
		adminToken: "inproc-admin-token", secret: "inproc-webhook-secret"}
}

// eachTarget runs fn against the dev stack's refhris and an in-process one,
// in parallel subtests. Tests only mutate employees they create, so they
// never disturb each other or other packages using the stack.
func eachTarget(t *testing.T, fn func(t *testing.T, tg target)) {
	for _, mk := range []func(*testing.T) target{stackTarget, inProcessTarget} {
		tg := mk(t)
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			fn(t, tg)
		})
	}
}

func newClient(t *testing.T, tg target, mutate ...func(*hris.Config)) *hris.Client {
	cfg := hris.Config{BaseURL: tg.url, Company: tg.company, APIKey: tg.apiKey, Timeout: 10 * time.Second}
	for _, m := range mutate {
		m(&cfg)
	}
	c, err := hris.New(cfg)
	require.NoError(t, err)
	return c
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// admin calls the reference HRIS admin API and returns status and body.
func admin(t *testing.T, tg target, method, path string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, tg.url+path, rd)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+tg.adminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, data
}

// injectFault makes the next count requests touching id fail with status.
func injectFault(t *testing.T, tg target, id string, status, retryAfter, count int, msg string) {
	t.Helper()
	code, body := admin(t, tg, http.MethodPost, "/_admin/faults", map[string]any{
		"employeeId": id, "status": status, "retryAfterSeconds": retryAfter, "count": count, "message": msg,
	})
	require.Equal(t, http.StatusOK, code, string(body))
	t.Cleanup(func() { admin(t, tg, http.MethodDelete, "/_admin/faults/"+id, nil) })
}

// newEmployee creates an employee owned by the calling test.
func newEmployee(t *testing.T, c *hris.Client, extra map[string]string) string {
	t.Helper()
	fields := map[string]string{
		"firstName":  "Test",
		"lastName":   "Hris" + strings.NewReplacer("/", "-", " ", "-").Replace(t.Name()),
		"department": "Engineering",
		"location":   "DE-Berlin",
		"hireDate":   time.Now().AddDate(0, 0, 30).Format("2006-01-02"),
	}
	for k, v := range extra {
		fields[k] = v
	}
	id, err := c.AddEmployee(ctxT(t), fields)
	require.NoError(t, err)
	require.Regexp(t, `^[1-9][0-9]*$`, id)
	return id
}

// requireClassified asserts err is a *connectors.Error of type typ.
func requireClassified(t *testing.T, err error, typ string, retryable bool) *connectors.Error {
	t.Helper()
	require.Error(t, err)
	var ce *connectors.Error
	require.True(t, errors.As(err, &ce), "not a *connectors.Error: %v", err)
	require.Equal(t, typ, ce.Type, "error: %v", err)
	require.Equal(t, retryable, connectors.IsRetryable(err), "error: %v", err)
	require.Equal(t, hris.System, ce.System)
	return ce
}
