package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/operatorservice/v1"

	"github.com/joinery/joinery/internal/run"
	"github.com/joinery/joinery/internal/stack"
	"github.com/joinery/joinery/internal/stack/stacktest"
	"github.com/joinery/joinery/workflows"
)

// The bounded subset of the integration suite that runs on the Temporal
// cluster on PostgreSQL (make cluster) instead of the dev server: one real
// joiner end to end, with everything else (LDAP, Vault, HRIS, Mailpit) the
// dev stack's. `make test` brings the cluster up first; run alone, the test
// brings it up (or reuses it) itself, like the dev stack.

// clusterUp starts (or reuses) the loopback cluster once per test binary.
var clusterUp = sync.OnceValues(func() (string, error) {
	repo, err := stack.FindRepoDir()
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	return stack.ClusterUp(ctx, stack.DefaultCluster(repo))
})

// newClusterHarness is NewHarness with the Temporal address pointed at the
// cluster: the worker, the client and the joiner run on the cluster.
func newClusterHarness(t *testing.T) *Harness {
	t.Helper()
	addr, err := clusterUp()
	if err != nil {
		t.Fatalf("the Temporal cluster is needed and could not start: %v", err)
	}
	ep := stacktest.Ensure(t)
	ep.TemporalAddress = addr
	repo, err := stack.FindRepoDir()
	require.NoError(t, err)
	cfg, err := Config(ep, repo)
	require.NoError(t, err)
	require.Equal(t, addr, cfg.TemporalAddress)
	cfg.TaskQueue = fmt.Sprintf("it-cluster-%d", rand.IntN(1e9))
	cfg.InboxDir = t.TempDir()
	cfg.AuditLog = filepath.Join(t.TempDir(), "joiners.jsonl")
	return startHarness(t, ep, cfg)
}

func TestJoinerEndToEndOnTheCluster(t *testing.T) {
	h := newClusterHarness(t)
	ctx := context.Background()

	// The cluster serves Joinery's namespace with every search attribute
	// the workflows upsert.
	sas, err := h.C.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: h.Cfg.TemporalNamespace})
	require.NoError(t, err)
	for _, sa := range stack.SearchAttributes {
		require.Contains(t, sas.GetCustomAttributes(), sa[0])
	}

	id := h.Hire("Clara", fmt.Sprintf("Cluster%d", rand.IntN(1e6)))
	h.Start(id)
	h.ApproveWhenAsked(id)
	res, err := h.Result(id)
	require.NoError(t, err)
	require.Equal(t, workflows.OutcomeCompleted, res.Outcome)

	// It really ran on the cluster, not on the dev server.
	desc, err := h.C.DescribeWorkflowExecution(ctx, workflows.JoinerWorkflowID(id), "")
	require.NoError(t, err)
	require.Equal(t, h.Cfg.TaskQueue, desc.GetExecutionConfig().GetTaskQueue().GetName())
	require.NotEqual(t, stacktest.Ensure(t).TemporalAddress, h.Cfg.TemporalAddress)

	// What it did is on the real servers.
	e, err := h.Dir.FindByEmployeeID(ctx, id, false)
	require.NoError(t, err)
	require.NotNil(t, e)
	require.Equal(t, res.DN, e.DN)
	for _, g := range res.Groups {
		in, err := h.Dir.IsMember(ctx, h.Dir.GroupDN(g), res.DN)
		require.NoError(t, err)
		require.True(t, in, g)
	}
	w, err := h.HR.GetWorker(ctx, id)
	require.NoError(t, err)
	require.Equal(t, res.Username, w.Username)

	// The search attributes are queryable through the cluster's SQL
	// visibility (what the inbox's "waiting for me" relies on).
	require.Eventually(t, func() bool {
		rows, err := run.List(ctx, h.C, fmt.Sprintf(`HRISID = %q`, id), 10)
		return err == nil && len(rows) == 1 && rows[0].Stage == string(workflows.StageCompleted)
	}, 30*time.Second, 500*time.Millisecond, "visibility lists the joiner by its HRISID with its final stage")
}
