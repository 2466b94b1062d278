package hris

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/joinery/joinery/connectors"
)

func TestNewValidatesConfig(t *testing.T) {
	ok := Config{BaseURL: "http://127.0.0.1:8090", Company: "joinery", APIKey: "k"}
	cases := []struct {
		name    string
		mutate  func(*Config)
		wantErr string
	}{
		{name: "valid", mutate: func(*Config) {}},
		{name: "valid with path prefix and slash", mutate: func(c *Config) { c.BaseURL = "https://api.bamboohr.com/prefix/" }},
		{name: "no base url", mutate: func(c *Config) { c.BaseURL = "" }, wantErr: "BaseURL is required"},
		{name: "ftp", mutate: func(c *Config) { c.BaseURL = "ftp://x" }, wantErr: "scheme"},
		{name: "no host", mutate: func(c *Config) { c.BaseURL = "http://" }, wantErr: "no host"},
		{name: "credentials in url", mutate: func(c *Config) { c.BaseURL = "http://user:pw@h" }, wantErr: "credentials"},
		{name: "query", mutate: func(c *Config) { c.BaseURL = "http://h/?a=b" }, wantErr: "query"},
		{name: "no company", mutate: func(c *Config) { c.Company = "" }, wantErr: "Company"},
		{name: "company with slash", mutate: func(c *Config) { c.Company = "a/b" }, wantErr: "Company"},
		{name: "no key", mutate: func(c *Config) { c.APIKey = "" }, wantErr: "APIKey is required"},
		{name: "key with newline", mutate: func(c *Config) { c.APIKey = "a\nb" }, wantErr: "APIKey contains"},
		{name: "negative timeout", mutate: func(c *Config) { c.Timeout = -time.Second }, wantErr: "negative"},
		{name: "bad username field", mutate: func(c *Config) { c.UsernameField = "a,b" }, wantErr: "UsernameField"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := ok
			cfg.APIKey = "very-secret-key"
			c.mutate(&cfg)
			cl, err := New(cfg)
			if c.wantErr == "" {
				require.NoError(t, err)
				require.NotNil(t, cl)
				return
			}
			require.ErrorContains(t, err, c.wantErr)
			require.NotContains(t, err.Error(), "very-secret-key")
		})
	}
}

func TestNewDefaults(t *testing.T) {
	c, err := New(Config{BaseURL: "https://api.bamboohr.com/", Company: "acme", APIKey: "k"})
	require.NoError(t, err)
	require.Equal(t, DefaultTimeout, c.timeout)
	require.Equal(t, DefaultRateLimitRetries, c.retries)
	require.Equal(t, DefaultMaxRetryAfter, c.maxRetryAfter)
	require.Equal(t, DefaultUsernameField, c.UsernameField())
	require.Equal(t, "/api/gateway.php/acme/v1/employees/12", c.employeePath("12"))

	c, err = New(Config{BaseURL: "http://h", Company: "acme", APIKey: "k", RateLimitRetries: -1})
	require.NoError(t, err)
	require.Zero(t, c.retries)
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		name    string
		header  string
		attempt int
		want    time.Duration
	}{
		{name: "seconds", header: "3", want: 3 * time.Second},
		{name: "zero", header: "0", want: 0},
		{name: "http date", header: now.Add(7 * time.Second).Format(http.TimeFormat), want: 7 * time.Second},
		{name: "past date", header: now.Add(-time.Minute).Format(http.TimeFormat), want: 0},
		{name: "absurd seconds are capped", header: "99999999999", want: 24 * time.Hour},
		{name: "missing, first retry", attempt: 0, want: time.Second},
		{name: "missing, third retry", attempt: 2, want: 4 * time.Second},
		{name: "garbage, backoff", header: "soon", attempt: 1, want: 2 * time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := http.Header{}
			if c.header != "" {
				h.Set("Retry-After", c.header)
			}
			require.Equal(t, c.want, retryAfter(h, now, c.attempt))
		})
	}
}

func TestHRISMessageIsCleanedAndRedacted(t *testing.T) {
	c, err := New(Config{BaseURL: "http://h", Company: "acme", APIKey: "the-api-key"})
	require.NoError(t, err)
	h := http.Header{}
	h.Set("X-BambooHR-Error-Message", "key the-api-key\tis wrong")
	require.Equal(t, ": key [redacted] is wrong", c.hrisMessage(&response{header: h}))
	require.Equal(t, `: unknown field "x"`, c.hrisMessage(&response{header: http.Header{}, body: []byte(`{"error":"unknown field \"x\""}`)}))
	require.Equal(t, "", c.hrisMessage(&response{header: http.Header{}, body: []byte(`<html>oops</html>`)}))
}

// TestInvalidInputNeverReachesTheNetwork uses a base URL nothing listens on:
// invalid input must fail before any request is made.
func TestInvalidInputNeverReachesTheNetwork(t *testing.T) {
	c, err := New(Config{BaseURL: "http://127.0.0.1:1", Company: "acme", APIKey: "k"})
	require.NoError(t, err)
	ctx := context.Background()
	cases := []struct {
		name string
		call func() error
	}{
		{"empty id", func() error { _, err := c.GetWorker(ctx, ""); return err }},
		{"id zero is the API user", func() error { _, err := c.GetWorker(ctx, "0"); return err }},
		{"id with path", func() error { _, err := c.GetFields(ctx, "1/../2", []string{"firstName"}); return err }},
		{"no fields", func() error { _, err := c.GetFields(ctx, "1", nil); return err }},
		{"field with comma", func() error { _, err := c.GetFields(ctx, "1", []string{"a,b"}); return err }},
		{"update id", func() error { return c.UpdateFields(ctx, "1", map[string]string{"id": "2"}) }},
		{"update bad name", func() error { return c.UpdateFields(ctx, "1", map[string]string{"a b": "2"}) }},
		{"write-back lastChanged", func() error {
			_, err := c.WriteBack(ctx, "1", map[string]string{"lastChanged": "x"}, nil)
			return err
		}},
		{"add without names", func() error { _, err := c.AddEmployee(ctx, map[string]string{"firstName": "A"}); return err }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			var ce *connectors.Error
			require.True(t, errors.As(err, &ce), "got %v", err)
			require.Equal(t, TypeInvalidInput, ce.Type)
			require.False(t, connectors.IsRetryable(err))
		})
	}
	// Empty updates are a no-op, not a request.
	require.NoError(t, c.UpdateFields(ctx, "1", nil))
	res, err := c.WriteBack(ctx, "1", nil, nil)
	require.NoError(t, err)
	require.Equal(t, WriteBackResult{}, res)
}
