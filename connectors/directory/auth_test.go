package directory

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/joinery/joinery/connectors"
)

// A client aimed at a port nobody listens on: any call that reached the
// network would fail with a retryable "unavailable", so an invalid
// credentials answer proves nothing was sent.
func unreachableClient(t *testing.T) *Client {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	c, err := New(Config{URL: "ldap://" + addr, BindDN: "cn=admin,dc=x", BindPassword: "pw", BaseDN: "dc=x"})
	require.NoError(t, err)
	return c
}

// The adversary here is whoever types into the sign-in form: an empty
// password (which LDAP would take as an anonymous bind that succeeds), a
// filter or DN injection in the username, or an oversized password must be
// refused before anything reaches the directory.
func TestAuthenticateRefusesBeforeSending(t *testing.T) {
	c := unreachableClient(t)
	for name, tc := range map[string]struct{ user, pass string }{
		"empty password":       {"ada.lovelace", ""},
		"empty username":       {"", "x"},
		"filter injection":     {"*)(uid=*", "x"},
		"dn injection":         {"ada,ou=people", "x"},
		"leading dot":          {".ada", "x"},
		"space":                {"ada lovelace", "x"},
		"oversized password":   {"ada.lovelace", strings.Repeat("x", MaxPasswordLen+1)},
		"oversized username":   {strings.Repeat("a", 65), "x"},
		"control character":    {"ada\x00", "x"},
		"non-ascii look-alike": {"аda", "x"}, // Cyrillic а
	} {
		t.Run(name, func(t *testing.T) {
			_, err := c.Authenticate(context.Background(), tc.user, tc.pass)
			require.ErrorIs(t, err, ErrInvalidCredentials)
			require.False(t, connectors.IsRetryable(err))
		})
	}
	// bindAs itself never sends an empty password either.
	require.ErrorIs(t, c.bindAs(context.Background(), "authenticate", "uid=ada,dc=x", ""), ErrInvalidCredentials)
}

// A directory that does not answer is a distinct, retryable error: the
// caller must not count it as a failed sign-in, nor tell the person their
// password was wrong.
func TestAuthenticateUnreachableIsTransient(t *testing.T) {
	c := unreachableClient(t)
	_, err := c.Authenticate(context.Background(), "ada.lovelace", "dev-ada-pass")
	require.Error(t, err)
	require.False(t, errors.Is(err, ErrInvalidCredentials))
	require.True(t, connectors.IsRetryable(err), "%v", err)
}
