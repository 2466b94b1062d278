package config

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// The sweeper's settings: a mode that is neither is refused, the minimum
// age never goes below the floor, the sweeper never shares the joiners'
// queue, and sweeper mode needs only its Vault credentials.
func TestSweeperSettings(t *testing.T) {
	c, err := Load(env(nil))
	require.NoError(t, err)
	require.Equal(t, "joiner", c.WorkerMode)
	require.Equal(t, "joinery-sweeper", c.SweeperTaskQueue)

	for name, m := range map[string]map[string]string{
		"JOINERY_WORKER_MODE":        {"JOINERY_WORKER_MODE": "root"},
		"JOINERY_SWEEPER_MIN_AGE":    {"JOINERY_SWEEPER_MIN_AGE": "1m"},
		"JOINERY_SWEEPER_TASK_QUEUE": {"JOINERY_SWEEPER_TASK_QUEUE": "joinery-joiners"},
	} {
		_, err := Load(env(m))
		require.ErrorContains(t, err, name)
	}

	c, err = Load(env(map[string]string{"JOINERY_WORKER_MODE": "sweeper", "JOINERY_VAULT_ROLE_ID": "joinery-sweeper", "JOINERY_VAULT_SECRET_ID": "s"}))
	require.NoError(t, err)
	require.NoError(t, c.Require(Sweeper), "no LDAP, HRIS or pseudonym secrets needed")
	require.Error(t, c.Require(Worker), "the same settings do not start a joiner worker")

	c, err = Load(env(map[string]string{"JOINERY_WORKER_MODE": "sweeper"}))
	require.NoError(t, err)
	require.ErrorContains(t, c.Require(Sweeper), "Vault")
	c, err = Load(env(map[string]string{"JOINERY_SWEEPER_TASK_QUEUE": "off", "JOINERY_VAULT_TOKEN": "t"}))
	require.NoError(t, err)
	require.ErrorContains(t, c.Require(Sweeper), "off")
}
