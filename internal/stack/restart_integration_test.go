package stack

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Stopping and starting the stack keeps completed and waiting joiners: the
// Temporal dev server keeps its SQLite file in the state directory. This runs
// a private Temporal server (own ports and state) so the shared stack other
// test packages use is never stopped.
func TestRestartKeepsWorkflows(t *testing.T) {
	repo, err := FindRepoDir()
	require.NoError(t, err)
	cfg := DefaultConfig(repo)
	cfg.StateDir = t.TempDir()
	cfg.TemporalPort, cfg.TemporalUIPort = freePort(t), freePort(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	srv := cfg.temporalServer()
	require.NoError(t, cfg.ensure(ctx, srv), "start private Temporal")
	t.Cleanup(func() { _ = cfg.stop(context.Background(), "temporal") })

	dial := func() client.Client {
		c, err := client.DialContext(ctx, client.Options{HostPort: cfg.Endpoints().TemporalAddress})
		require.NoError(t, err)
		return c
	}
	c := dial()
	// No worker polls this queue: "waiting" stays running, "done" is closed.
	start := func(id string) {
		_, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: "restart-test"}, "Joiner", map[string]string{"hrisId": id})
		require.NoError(t, err)
	}
	start("joiner-waiting")
	start("joiner-done")
	require.NoError(t, c.TerminateWorkflow(ctx, "joiner-done", "", "closed before the restart"))
	c.Close()

	pid, ok := cfg.runningPID("temporal")
	require.True(t, ok)
	require.NoError(t, cfg.stop(ctx, "temporal"))
	require.False(t, alive(pid), "the server we started is stopped by its PID")
	require.NoError(t, cfg.ensure(ctx, srv), "restart")

	c = dial()
	defer c.Close()
	for id, want := range map[string]enumspb.WorkflowExecutionStatus{
		"joiner-waiting": enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING,
		"joiner-done":    enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED,
	} {
		d, err := c.DescribeWorkflowExecution(ctx, id, "")
		require.NoError(t, err, id)
		require.Equal(t, want, d.GetWorkflowExecutionInfo().GetStatus(), id)
	}
}

// Up reuses what answers and Down stops only what the stack started.
func TestRunningPIDIgnoresReusedPIDs(t *testing.T) {
	repo, err := FindRepoDir()
	require.NoError(t, err)
	cfg := DefaultConfig(repo)
	cfg.StateDir = t.TempDir()
	// A PID file naming a live process that is not ours (this test binary,
	// recorded as if it were slapd) must not be treated as ours.
	require.NoError(t, writePID(cfg, "slapd", 1, "/usr/sbin/slapd"))
	_, ok := cfg.runningPID("slapd")
	require.False(t, ok, "pid 1 is not slapd")
}
