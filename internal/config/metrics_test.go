package config

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMetricsAddressesAreHostPortOrOff(t *testing.T) {
	c, err := Load(func(string) string { return "" })
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:9464", c.WorkerMetricsAddr)
	require.Equal(t, "127.0.0.1:9465", c.IntakeMetricsAddr)
	require.Equal(t, "127.0.0.1:9466", c.InboxMetricsAddr)
	require.Equal(t, "30s", c.MetricsInterval.String())

	c, err = Load(func(k string) string {
		return map[string]string{"JOINERY_WORKER_METRICS_ADDR": "off", "JOINERY_INBOX_METRICS_ADDR": "0.0.0.0:9466"}[k]
	})
	require.NoError(t, err)
	require.Equal(t, "off", c.WorkerMetricsAddr)
	require.Equal(t, "0.0.0.0:9466", c.InboxMetricsAddr)

	for _, bad := range []string{"9464", "127.0.0.1:94640", "127.0.0.1:metrics", "disabled"} {
		_, err := Load(func(k string) string {
			if k == "JOINERY_INTAKE_METRICS_ADDR" {
				return bad
			}
			return ""
		})
		require.Error(t, err, bad)
		require.Contains(t, err.Error(), "JOINERY_INTAKE_METRICS_ADDR")
	}
	_, err = Load(func(k string) string {
		if k == "JOINERY_METRICS_INTERVAL" {
			return "0s"
		}
		return ""
	})
	require.Error(t, err)
}
