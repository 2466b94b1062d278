package directory

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/stretchr/testify/require"

	"github.com/joinery/joinery/connectors"
)

func validConfig() Config {
	return Config{
		URL: "ldap://127.0.0.1:3389", BindDN: "cn=admin,dc=joinery,dc=test", BindPassword: "pw",
		BaseDN: "dc=joinery,dc=test",
	}
}

func TestNewDefaults(t *testing.T) {
	c, err := New(validConfig())
	require.NoError(t, err)
	cfg := c.Config()
	require.Equal(t, "ou=people,dc=joinery,dc=test", cfg.PeopleDN)
	require.Equal(t, "ou=service-accounts,dc=joinery,dc=test", cfg.ServiceAccountsDN)
	require.Equal(t, "ou=groups,dc=joinery,dc=test", cfg.GroupsDN)
	require.Equal(t, DefaultTimeout, cfg.Timeout)
	require.Equal(t, OpenLDAPProfile{}, cfg.Profile)
	require.Empty(t, cfg.BindPassword, "Config() is for logging: no password")
	require.Equal(t, "cn=all-staff,ou=groups,dc=joinery,dc=test", c.GroupDN("all-staff"))
	require.Equal(t, `cn=a\,b,ou=groups,dc=joinery,dc=test`, c.GroupDN("a,b"))
	require.False(t, c.secure)

	cfg = validConfig()
	cfg.URL = "ldaps://ldap.example.com"
	c, err = New(cfg)
	require.NoError(t, err)
	require.True(t, c.secure)
	require.Equal(t, "ldap.example.com", c.tls.ServerName)
}

func TestNewRejects(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.pem")
	require.NoError(t, os.WriteFile(notPEM, []byte("not a certificate"), 0o600))
	tests := []struct {
		name     string
		mutate   func(*Config)
		contains string
	}{
		{"scheme", func(c *Config) { c.URL = "http://x" }, "scheme"},
		{"no host", func(c *Config) { c.URL = "ldap://" }, "no host"},
		{"starttls on ldaps", func(c *Config) { c.URL = "ldaps://x"; c.StartTLS = true }, "StartTLS"},
		{"base", func(c *Config) { c.BaseDN = "" }, "BaseDN"},
		{"bad dn", func(c *Config) { c.PeopleDN = "people" }, "PeopleDN"},
		{"bind", func(c *Config) { c.BindPassword = "" }, "BindPassword"},
		{"timeout", func(c *Config) { c.Timeout = -time.Second }, "Timeout"},
		{"ad profile", func(c *Config) { c.Profile = ADProfile{} }, "UPNSuffix"},
		{"ca file", func(c *Config) { c.CACertFile = filepath.Join(dir, "missing.pem") }, "CACertFile"},
		{"ca pem", func(c *Config) { c.CACertFile = notPEM }, "no PEM certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := validConfig()
			cfg.BindPassword = "hunter2-secret"
			tt.mutate(&cfg)
			_, err := New(cfg)
			require.ErrorContains(t, err, tt.contains)
			require.NotContains(t, err.Error(), "hunter2-secret")
		})
	}
}

func TestUsernameFilter(t *testing.T) {
	require.Equal(t, "(uid=john.smith)", usernameFilter("uid", []string{"john.smith"}))
	require.Equal(t, "(|(uid=a)(uid=b))", usernameFilter("uid", []string{"a", "b"}))
	// Every filter metacharacter and non-ASCII byte is escaped: a name can
	// never widen the search.
	f := usernameFilter("sAMAccountName", []string{"*", "a)(uid=*", `x\y`, "zoë"})
	require.Equal(t, `(|(sAMAccountName=\2a)(sAMAccountName=a\29\28uid=\2a)(sAMAccountName=x\5cy)(sAMAccountName=zo\c3\ab))`, f)
	_, err := ldap.CompileFilter(f)
	require.NoError(t, err)

	// Fifty names make one valid filter.
	names := make([]string, 50)
	for i := range names {
		names[i] = "candidate" + strings.Repeat("x", i)
	}
	f = usernameFilter("uid", names)
	require.Equal(t, 50, strings.Count(f, "(uid="))
	_, err = ldap.CompileFilter(f)
	require.NoError(t, err)
}

func TestUniqueNames(t *testing.T) {
	require.Equal(t, []string{"a", "b", "A"}, uniqueNames([]string{"a", "", "b", "a", "A"}))
	require.Empty(t, uniqueNames(nil))
}

// unusedPort returns a loopback port nothing listens on.
func unusedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

func requireType(t *testing.T, err error, typ string, retryable bool) *connectors.Error {
	t.Helper()
	var ce *connectors.Error
	require.ErrorAs(t, err, &ce, "got %v", err)
	require.Equal(t, typ, ce.Type, "error: %v", err)
	require.Equal(t, retryable, ce.Retryable, "error: %v", err)
	return ce
}

func TestUnreachableServerIsRetryable(t *testing.T) {
	cfg := validConfig()
	cfg.URL = "ldap://" + unusedPort(t)
	cfg.BindPassword = "hunter2-secret"
	c, err := New(cfg)
	require.NoError(t, err)
	ctx := context.Background()

	_, err = c.Taken(ctx, []string{"john.smith"})
	requireType(t, err, TypeUnavailable, true)
	require.NotContains(t, err.Error(), "hunter2-secret")
	_, err = c.Claim(ctx, "someone", Person{EmployeeID: "1", Owner: "joiner-1"})
	requireType(t, err, TypeUnavailable, true)
	err = c.SetPassword(ctx, "uid=x,ou=people,dc=joinery,dc=test", "joiner-1", "pa55word-never-shown")
	requireType(t, err, TypeUnavailable, true)
	require.NotContains(t, err.Error(), "pa55word-never-shown")
}

func TestHangingServerTimesOut(t *testing.T) {
	// A server that accepts connections and never answers: the bind must
	// give up at the call's timeout and report a retryable fault.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { _ = conn.Close() })
		}
	}()
	cfg := validConfig()
	cfg.URL = "ldap://" + l.Addr().String()
	cfg.Timeout = 300 * time.Millisecond
	c, err := New(cfg)
	require.NoError(t, err)

	start := time.Now()
	_, err = c.Taken(context.Background(), []string{"a"})
	requireType(t, err, TypeUnavailable, true)
	require.Less(t, time.Since(start), 3*time.Second)

	// The caller's own, shorter deadline wins over Config.Timeout.
	cfg.Timeout = time.Minute
	c, err = New(cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start = time.Now()
	_, err = c.FindByEmployeeID(ctx, "1", false)
	requireType(t, err, TypeUnavailable, true)
	require.Less(t, time.Since(start), 3*time.Second)
}

func TestBadInputNeverReachesTheServer(t *testing.T) {
	// The server is unreachable: a validation error proves nothing was sent.
	cfg := validConfig()
	cfg.URL = "ldap://" + unusedPort(t)
	c, err := New(cfg)
	require.NoError(t, err)
	ctx := context.Background()

	_, err = c.Claim(ctx, "", Person{EmployeeID: "1", Owner: "joiner-1"})
	requireType(t, err, TypeInvalidUsername, false)
	_, err = c.Claim(ctx, "ok", Person{})
	requireType(t, err, TypeInvalidInput, false)
	// Every entry carries its creator: no owner, no add.
	_, err = c.Claim(ctx, "ok", Person{EmployeeID: "1"})
	requireType(t, err, TypeInvalidInput, false)
	require.ErrorContains(t, err, "owner is required")
	_, err = c.ClaimFirst(ctx, []string{"fine", "bad name "}, Person{EmployeeID: "1", Owner: "joiner-1"})
	requireType(t, err, TypeInvalidUsername, false)
	_, err = c.ClaimFirst(ctx, nil, Person{EmployeeID: "1", Owner: "joiner-1"})
	ce := requireType(t, err, TypeUsernameExhausted, false)
	require.ErrorIs(t, ce, ErrNoCandidate)
	_, err = c.FindByEmployeeID(ctx, " ", false)
	requireType(t, err, TypeInvalidInput, false)
	requireType(t, c.SetPassword(ctx, "uid=x,dc=joinery,dc=test", "joiner-1", ""), TypeInvalidInput, false)
	requireType(t, c.Delete(ctx, "not a dn", "joiner-1"), TypeInvalidInput, false)
	requireType(t, c.AddMember(ctx, "", "uid=x,dc=joinery,dc=test", "joiner-1"), TypeInvalidInput, false)
	requireType(t, c.RemoveMember(ctx, "cn=g,dc=joinery,dc=test", "garbage", "joiner-1"), TypeInvalidInput, false)
	_, err = c.IsMember(ctx, "cn=g,dc=joinery,dc=test", "")
	requireType(t, err, TypeInvalidInput, false)
	requireType(t, c.Disable(ctx, "", "joiner-1"), TypeInvalidInput, false)
	// Changes without an expected owner are refused before sending.
	requireType(t, c.SetPassword(ctx, "uid=x,dc=joinery,dc=test", "", "Secret-Pa55"), TypeInvalidInput, false)
	requireType(t, c.Delete(ctx, "uid=x,dc=joinery,dc=test", ""), TypeInvalidInput, false)
	requireType(t, c.Disable(ctx, "uid=x,dc=joinery,dc=test", " "), TypeInvalidInput, false)
	requireType(t, c.AddMember(ctx, "cn=g,dc=joinery,dc=test", "uid=x,dc=joinery,dc=test", ""), TypeInvalidInput, false)
	requireType(t, c.RemoveMember(ctx, "cn=g,dc=joinery,dc=test", "uid=x,dc=joinery,dc=test", ""), TypeInvalidInput, false)
	_, err = c.FindByOwner(ctx, "")
	requireType(t, err, TypeInvalidInput, false)

	// Taken of nothing needs no round trip at all.
	got, err := c.Taken(ctx, nil)
	require.NoError(t, err)
	require.Empty(t, got)

	// AD passwords are refused on a clear-text connection before dialing.
	cfg.Profile = ADProfile{UPNSuffix: "corp.example.com"}
	c, err = New(cfg)
	require.NoError(t, err)
	err = c.SetPassword(ctx, "cn=Ada,ou=people,dc=joinery,dc=test", "joiner-1", "Secret-Pa55")
	requireType(t, err, TypeInsecureTransport, false)
	require.True(t, errors.Is(err, ErrInsecureTransport))
	require.NotContains(t, err.Error(), "Secret-Pa55")
	_, err = c.Claim(ctx, "a-name-longer-than-twenty", Person{EmployeeID: "1", Owner: "joiner-1"})
	requireType(t, err, TypeInvalidUsername, false)
}

func TestToEntryDropsSecretsAndBinary(t *testing.T) {
	c, err := New(validConfig())
	require.NoError(t, err)
	e := c.toEntry(ldap.NewEntry("uid=a,ou=people,dc=joinery,dc=test", map[string][]string{
		"uid":            {"a"},
		"employeeNumber": {"42"},
		"userPassword":   {"{SSHA}abc"},
		"UNICODEPWD":     {"x"},
		"objectGUID":     {"\xff\xfe\x00\x01"},
		"mail":           {"a@joinery.test"},
	}))
	require.Equal(t, &Entry{
		DN: "uid=a,ou=people,dc=joinery,dc=test", Username: "a", EmployeeID: "42",
		Attributes: map[string][]string{"uid": {"a"}, "employeeNumber": {"42"}, "mail": {"a@joinery.test"}},
	}, e)
}

func TestCancelledContextSendsNothing(t *testing.T) {
	c, err := New(validConfig())
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = c.Taken(ctx, []string{"a"})
	requireType(t, err, TypeUnavailable, true)
	require.ErrorIs(t, err, context.Canceled)
}
