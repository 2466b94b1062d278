package secrets

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"
	"github.com/stretchr/testify/require"

	"github.com/joinery/joinery/connectors"
)

func tokenClient(t *testing.T, cfg Config) *Client {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "http://127.0.0.1:1"
	}
	if cfg.Token == "" {
		cfg.Token = "unit-test-token"
	}
	c, err := New(context.Background(), cfg)
	require.NoError(t, err)
	return c
}

func TestJoinerPath(t *testing.T) {
	tests := []struct {
		name   string
		prefix string
		key    string
		secret string
		want   string
	}{
		{"default prefix", "", "200", "initial-credential", "joinery/joiners/200/initial-credential"},
		{"custom prefix trimmed", "/acme/people/", "hr-42", "initial-credential", "acme/people/hr-42/initial-credential"},
		{"other secret", "", "svc.ci-1", "approle", "joinery/joiners/svc.ci-1/approle"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tokenClient(t, Config{PathPrefix: tt.prefix})
			got := c.JoinerPath(tt.key, tt.secret)
			require.Equal(t, tt.want, got)
			require.NoError(t, checkPath(got))
		})
	}
}

func TestCheckPath(t *testing.T) {
	tests := []struct {
		path string
		ok   bool
	}{
		{"joinery/joiners/200/initial-credential", true},
		{"a/B-9_x.y", true},
		{"", false},
		{"/joinery/x", false},
		{"joinery/x/", false},
		{"joinery//x", false},
		{"joinery/joiners/200/../201/initial-credential", false},
		{"joinery/./x", false},
		{"joinery/joiners/2 00", false},
		{"joinery/joiners/a*", false},
		{"joinery/joiners/a+b", false},
		{"joinery/joiners/é", false},
		{"joinery/joiners/a?version=1", false},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			err := checkPath(tt.path)
			if tt.ok {
				require.NoError(t, err)
			} else {
				require.Error(t, err)
			}
		})
	}
}

func TestOperationsRefuseInvalidPathsWithoutCallingVault(t *testing.T) {
	// The address is unreachable: if validation did not stop the request, the
	// error would be VaultUnavailable instead of VaultInvalidRequest.
	c := tokenClient(t, Config{})
	ctx := context.Background()
	bad := "joinery/joiners/200/../201/initial-credential"
	calls := map[string]func() error{
		"Put": func() error { _, err := c.Put(ctx, bad, map[string]any{"k": "v"}, nil); return err },
		"Put empty data": func() error {
			_, err := c.Put(ctx, "joinery/joiners/1/x", nil, nil)
			return err
		},
		"Wrap":                    func() error { _, _, err := c.Wrap(ctx, bad, 1, time.Minute); return err },
		"Wrap negative version":   func() error { _, _, err := c.Wrap(ctx, "a/b", -1, time.Minute); return err },
		"Wrap sub-second TTL":     func() error { _, _, err := c.Wrap(ctx, "a/b", 1, 500*time.Millisecond); return err },
		"Wrap fractional TTL":     func() error { _, _, err := c.Wrap(ctx, "a/b", 1, 1500*time.Millisecond); return err },
		"Destroy":                 func() error { return c.Destroy(ctx, bad) },
		"Metadata":                func() error { _, _, err := c.Metadata(ctx, bad); return err },
		"RevokeAccessor empty":    func() error { return c.RevokeAccessor(ctx, "") },
		"RevokeInitialCredential": func() error { return c.RevokeInitialCredential(ctx, bad, "") },
		"EnsurePasswordPolicy":    func() error { return c.EnsurePasswordPolicy(ctx, "../x", InitialPasswordPolicyHCL) },
		"EnsurePasswordPolicy empty": func() error {
			return c.EnsurePasswordPolicy(ctx, "p", " ")
		},
		"WritePolicy":   func() error { return c.WritePolicy(ctx, "a/b", "path \"x\" {}") },
		"DeletePolicy":  func() error { return c.DeletePolicy(ctx, "") },
		"CreateAppRole": func() error { _, err := c.CreateAppRole(ctx, "r/1", AppRoleOptions{}); return err },
		"CreateAppRole policy": func() error {
			_, err := c.CreateAppRole(ctx, "r1", AppRoleOptions{TokenPolicies: []string{"a,b"}})
			return err
		},
		"WrappedSecretID": func() error { _, _, err := c.WrappedSecretID(ctx, "r..", 0); return err },
		"DeleteAppRole":   func() error { return c.DeleteAppRole(ctx, "..") },
		"IssueInitialCredential key": func() error {
			_, err := c.IssueInitialCredential(ctx, "200/201", nil, time.Minute, noopSet, noopDeliver)
			return err
		},
		"IssueInitialCredential nil callbacks": func() error {
			_, err := c.IssueInitialCredential(ctx, "200", nil, time.Minute, nil, nil)
			return err
		},
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			err := call()
			requireType(t, err, TypeInvalidRequest, false)
		})
	}
}

func noopSet(context.Context, string) error     { return nil }
func noopDeliver(context.Context, string) error { return nil }

func TestNewValidatesConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		msg  string
	}{
		{"no address", Config{Token: "t"}, "address"},
		{"no credentials", Config{Addr: "http://x"}, "neither"},
		{"both credentials", Config{Addr: "http://x", Token: "t", RoleID: "r", SecretID: "s"}, "both"},
		{"role without secret", Config{Addr: "http://x", RoleID: "r"}, "secret ID"},
		{"bad KV mount", Config{Addr: "http://x", Token: "t", KVMount: "a b"}, "KV mount"},
		{"bad prefix", Config{Addr: "http://x", Token: "t", PathPrefix: "a/../b"}, "path prefix"},
		{"bad policy", Config{Addr: "http://x", Token: "t", PasswordPolicy: "a/b"}, "password policy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(context.Background(), tt.cfg)
			requireType(t, err, TypeInvalidRequest, false)
			require.Contains(t, err.Error(), tt.msg)
		})
	}
}

func TestNewIgnoresVaultTokenAndWrapTTLEnvironment(t *testing.T) {
	t.Setenv("VAULT_TOKEN", "stray-env-token")
	t.Setenv("VAULT_WRAP_TTL", "5m")
	c := tokenClient(t, Config{Token: "configured"})
	require.Equal(t, "configured", c.vc.Token())
	req := c.vc.NewRequest("GET", "/v1/secret/data/x")
	require.Empty(t, req.WrapTTL, "VAULT_WRAP_TTL must not wrap the connector's own reads")
}

func TestClassify(t *testing.T) {
	const path = "secret/data/joinery/joiners/200/initial-credential"
	resp := func(code int, errs ...string) error {
		return &vault.ResponseError{HTTPMethod: "GET", URL: "http://127.0.0.1:8200/v1/" + path, StatusCode: code, Errors: errs}
	}
	netErr := &url.Error{Op: "Get", URL: "http://127.0.0.1:1/v1/x", Err: &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}}
	already := connectors.Permanent("ldap", "modify", "DirectoryConstraint", "kept", nil)
	tests := []struct {
		name      string
		err       error
		typ       string
		retryable bool
		contains  []string
	}{
		{"403 names the path", resp(403, "permission denied"), TypePermissionDenied, false, []string{"permission denied on " + path}},
		{"403 wrapped by kv helper", fmt.Errorf("error writing secret to %s: %w", path, resp(403, "permission denied")), TypePermissionDenied, false, []string{path}},
		{"400 keeps Vault's reasons", resp(400, "invalid version", "check-and-set parameter did not match"), TypeRejected, false, []string{"invalid version; check-and-set parameter did not match", path}},
		{"422 is a rejection", resp(422, "unprocessable"), TypeRejected, false, []string{"unprocessable"}},
		{"404", resp(404), TypeNotFound, false, []string{path}},
		{"503 sealed", resp(503, "Vault is sealed"), TypeSealed, true, []string{"sealed"}},
		{"503 standby", resp(503, "node not active but active cluster node not found"), TypeUnavailable, true, []string{"503"}},
		{"500", resp(500, "internal error"), TypeUnavailable, true, []string{"500", "internal error"}},
		{"502 raw body", &vault.ResponseError{StatusCode: 502, RawError: true, Errors: []string{"<html>bad gateway</html>"}}, TypeUnavailable, true, []string{"502"}},
		{"429", resp(429, "request path: rate limit quota exceeded"), TypeUnavailable, true, []string{"rate-limited"}},
		{"412", resp(412, "required index state not present"), TypeUnavailable, true, nil},
		{"network", netErr, TypeUnavailable, true, []string{"unreachable"}},
		{"deadline", fmt.Errorf("wrapped: %w", context.DeadlineExceeded), TypeUnavailable, true, []string{"in time"}},
		{"cancelled", context.Canceled, TypeUnavailable, true, []string{"cancelled"}},
		{"unknown", errors.New("unexpected EOF"), TypeUnavailable, true, nil},
		{"already classified passes through", already, "DirectoryConstraint", false, []string{"kept"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := classify("kv-put", path, tt.err)
			ce := requireType(t, err, tt.typ, tt.retryable)
			for _, s := range tt.contains {
				require.Contains(t, ce.Msg, s)
			}
			require.NotContains(t, err.Error(), "\n", "one line in workflow history")
			var want *vault.ResponseError
			if errors.As(tt.err, &want) {
				var got *vault.ResponseError
				require.ErrorAs(t, err, &got, "the Vault response stays reachable")
				require.Same(t, want, got)
			} else {
				require.ErrorIs(t, err, tt.err, "the cause stays reachable")
			}
		})
	}
	require.NoError(t, classify("op", path, nil))
}

func TestWithheldDropsTextQuotingASecret(t *testing.T) {
	const pw = "Zq9!Zq9!Zq9!Zq9!Zq9!"
	dirErr := connectors.Permanent("ldap", "modify", "DirectoryConstraint", "password "+pw+" violates policy", nil)
	err := withheld("issue-initial-credential", "setting the password", dirErr, pw, "")
	require.NotContains(t, err.Error(), pw)
	ce := requireType(t, err, "DirectoryConstraint", false)
	require.Equal(t, "ldap", ce.System)
	require.Nil(t, ce.Err, "the cause would print the secret")

	plain := withheld("op", "delivering", fmt.Errorf("smtp: token s.abc rejected"), "s.abc")
	requireType(t, plain, "CredentialCallbackFailed", true)
	require.NotContains(t, plain.Error(), "s.abc")

	other := connectors.Transient("ldap", "modify", "DirectoryUnavailable", "server down", nil)
	wrapped := withheld("op", "setting the password", other, pw)
	require.ErrorIs(t, wrapped, other)
	require.Contains(t, wrapped.Error(), "setting the password")
	require.True(t, connectors.IsRetryable(wrapped))

	require.NoError(t, withheld("op", "x", nil, pw))
}

func TestWrapTTLFormat(t *testing.T) {
	require.Equal(t, "300s", wrapTTL(5*time.Minute))
	require.Equal(t, "86400s", wrapTTL(24*time.Hour))
	require.NoError(t, checkWrapTTL(time.Second))
	require.Error(t, checkWrapTTL(0))
	require.Error(t, checkWrapTTL(-time.Minute))
}

func TestHandoverRefusesUnwrappedResponse(t *testing.T) {
	unwrapped := &vault.Secret{Data: map[string]any{"data": map[string]any{"password": "value-must-not-leak"}}}
	token, h, err := handover("kv-wrap", "a/b", 1, "secret/data/a/b", unwrapped)
	requireType(t, err, TypeRejected, false)
	require.Empty(t, token)
	require.Zero(t, h)
	require.NotContains(t, err.Error(), "value-must-not-leak")

	created := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	wrapped := &vault.Secret{WrapInfo: &vault.SecretWrapInfo{Token: "hvs.wrap", Accessor: "acc", TTL: 600, CreationTime: created}}
	token, h, err = handover("kv-wrap", "a/b", 3, "secret/data/a/b", wrapped)
	require.NoError(t, err)
	require.Equal(t, "hvs.wrap", token)
	require.Equal(t, Handover{Path: "a/b", Version: 3, WrapAccessor: "acc", WrapTTL: 10 * time.Minute, ExpiresAt: created.Add(10 * time.Minute)}, h)
}

func TestIsGoneToken(t *testing.T) {
	require.True(t, isGoneToken(&vault.ResponseError{StatusCode: 400, Errors: []string{"token not found"}}))
	require.True(t, isGoneToken(&vault.ResponseError{StatusCode: 400, Errors: []string{"invalid accessor"}}))
	require.False(t, isGoneToken(&vault.ResponseError{StatusCode: 400, Errors: []string{"missing accessor"}}))
	require.False(t, isGoneToken(&vault.ResponseError{StatusCode: 403, Errors: []string{"permission denied"}}))
	require.False(t, isGoneToken(nil))
}

func TestPasswordPolicyHCL(t *testing.T) {
	// The policy is parsed by Vault in the integration tests; here, guard the
	// properties the rest of Joinery relies on.
	require.True(t, strings.HasPrefix(InitialPasswordPolicyHCL, "length = 20\n"))
	require.Equal(t, 4, strings.Count(InitialPasswordPolicyHCL, `rule "charset"`))
	require.Equal(t, 4, strings.Count(InitialPasswordPolicyHCL, "min-chars = 1"))
	// The symbol set is the last charset; it must stay free of quotes,
	// backslash and whitespace.
	last := InitialPasswordPolicyHCL[strings.LastIndex(InitialPasswordPolicyHCL, `charset   = "`)+len(`charset   = "`):]
	symbols := last[:strings.Index(last, `"`)]
	require.Equal(t, "!@#$%^&*-_=+", symbols)
	require.False(t, strings.ContainsAny(symbols, "\\'` \"\t"))
}

func TestSetLease(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	c := &Client{now: func() time.Time { return now }}
	c.setLeaseLocked(time.Hour, true)
	require.Equal(t, now.Add(40*time.Minute), c.renewAt)
	require.Equal(t, now.Add(time.Hour), c.expiresAt)
	require.True(t, c.renewable)
	c.setLeaseLocked(0, true)
	require.True(t, c.renewAt.IsZero(), "a token without TTL is never renewed")
	require.False(t, c.renewable)
}

func requireType(t *testing.T, err error, typ string, retryable bool) *connectors.Error {
	t.Helper()
	require.Error(t, err)
	var ce *connectors.Error
	require.ErrorAs(t, err, &ce)
	require.Equal(t, typ, ce.Type, "error: %v", err)
	require.Equal(t, retryable, ce.Retryable, "error: %v", err)
	return ce
}
