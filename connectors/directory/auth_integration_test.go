package directory

// Sign-in against the dev stack's slapd, with the seeded people's dev
// passwords (testdata/ldap/seed.ldif).

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/joinery/joinery/internal/stack"
)

func TestIntegrationAuthenticate(t *testing.T) {
	c, _ := integrationClient(t)
	ctx := context.Background()

	id, err := c.Authenticate(ctx, "ada.lovelace", "dev-ada-pass")
	require.NoError(t, err)
	require.Equal(t, Identity{Username: "ada.lovelace", DN: "uid=ada.lovelace," + seedPeople,
		DisplayName: "Ada Lovelace", Mail: "ada.lovelace@joinery.test"}, id)

	// The directory's spelling of the name is what the caller gets back.
	id, err = c.Authenticate(ctx, "Ada.Lovelace", "dev-ada-pass")
	require.NoError(t, err)
	require.Equal(t, "ada.lovelace", id.Username)

	// john.smith and jsmith are two people: each signs in as themselves.
	id, err = c.Authenticate(ctx, "jsmith", "dev-jane-pass")
	require.NoError(t, err)
	require.Equal(t, "uid=jsmith,"+seedPeople, id.DN)

	// Wrong password, unknown user, disabled account, someone else's
	// password and an empty password: one indistinguishable answer.
	var msgs []string
	for _, tc := range []struct{ user, pass string }{
		{"ada.lovelace", "wrong"},
		{"nobody.here", "dev-ada-pass"},
		{"edsger.dijkstra", "dev-edsger-pass"},
		{"edsger.dijkstra", "!"},
		{"jsmith", "dev-john-pass"},
		{"ada.lovelace", ""},
	} {
		_, err := c.Authenticate(ctx, tc.user, tc.pass)
		require.ErrorIs(t, err, ErrInvalidCredentials, "%s", tc.user)
		msgs = append(msgs, err.Error())
	}
	for _, m := range msgs {
		require.Equal(t, msgs[0], m, "every refusal reads the same")
	}
}

// The inbox binds as the worker's scoped service account, which may read
// people but not their passwords: sign-in still tells a disabled account
// from a live one by the disabled marker, and proves passwords by binding.
func TestIntegrationAuthenticateAsTheScopedServiceAccount(t *testing.T) {
	c, _ := integrationClient(t, func(cfg *Config) {
		cfg.BindDN, cfg.BindPassword = stack.LDAPServiceDN, stack.LDAPServicePassword
	})
	ctx := context.Background()
	id, err := c.Authenticate(ctx, "grace.hopper", "dev-grace-pass")
	require.NoError(t, err)
	require.Equal(t, "Grace Hopper", id.DisplayName)
	_, err = c.Authenticate(ctx, "grace.hopper", "dev-ada-pass")
	require.ErrorIs(t, err, ErrInvalidCredentials)
	_, err = c.Authenticate(ctx, "edsger.dijkstra", "!")
	require.ErrorIs(t, err, ErrInvalidCredentials)
}
