package config

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// The Temporal client authentication variables reach their fields; the
// checks between them (both cert and key, no API key in clear) are
// run.ClientOptions', where the files are read.
func TestTemporalAuthenticationVariables(t *testing.T) {
	c, err := Load(env(map[string]string{
		"JOINERY_TEMPORAL_TLS_CA_FILE":     "/run/secrets/temporal-ca.pem",
		"JOINERY_TEMPORAL_TLS_CERT_FILE":   "/run/secrets/worker.pem",
		"JOINERY_TEMPORAL_TLS_KEY_FILE":    "/run/secrets/worker-key.pem",
		"JOINERY_TEMPORAL_TLS_SERVER_NAME": "temporal.corp.example",
		"JOINERY_TEMPORAL_API_KEY":         "key-1",
	}))
	require.NoError(t, err)
	require.Equal(t, "/run/secrets/temporal-ca.pem", c.TemporalTLSCAFile)
	require.Equal(t, "/run/secrets/worker.pem", c.TemporalTLSCertFile)
	require.Equal(t, "/run/secrets/worker-key.pem", c.TemporalTLSKeyFile)
	require.Equal(t, "temporal.corp.example", c.TemporalTLSServerName)
	require.Equal(t, "key-1", c.TemporalAPIKey)
}

// Unset, nothing is on, not even in development mode: the dev stack's
// Temporal is plaintext on loopback, and a well-known API key would be no
// credential at all.
func TestTemporalAuthenticationIsOffByDefault(t *testing.T) {
	for _, dev := range []string{"false", "true"} {
		c, err := Load(env(map[string]string{DevModeVar: dev}))
		require.NoError(t, err)
		require.Empty(t, c.TemporalTLSCAFile, dev)
		require.Empty(t, c.TemporalTLSCertFile, dev)
		require.Empty(t, c.TemporalTLSKeyFile, dev)
		require.Empty(t, c.TemporalTLSServerName, dev)
		require.Empty(t, c.TemporalAPIKey, dev)
	}
}

// The API key is a secret and must never be printed; the TLS variables are
// file paths and a name, which may be.
func TestTemporalAPIKeyIsSecret(t *testing.T) {
	secret := map[string]bool{}
	for _, v := range Vars() {
		secret[v.Name] = v.Secret
	}
	require.True(t, secret["JOINERY_TEMPORAL_API_KEY"])
	for _, name := range []string{"JOINERY_TEMPORAL_TLS_CA_FILE", "JOINERY_TEMPORAL_TLS_CERT_FILE", "JOINERY_TEMPORAL_TLS_KEY_FILE", "JOINERY_TEMPORAL_TLS_SERVER_NAME"} {
		v, ok := secret[name]
		require.True(t, ok, "%s is declared", name)
		require.False(t, v, name)
	}
}
