package reliability

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/joinery/joinery/workflows"
)

// sweepOrphans closes the one window the worker cannot: a kill after
// Vault answered the response-wrapped read and before the ledger write
// leaves a live wrapping token nobody recorded. Once the group's joiners
// are provisioned (their retries issued and recorded afresh) and the
// crashes are older than the sweeper's minimum age, the product's
// reconciler runs, scoped to the group, exactly as its schedule would, and
// its sweeper must revoke one token per crash. The audit that follows then
// finds one live handover per joiner, none unrecorded.
func (su *Suite) sweepOrphans(ctx context.Context, fault string, group []joiner, fired []time.Time) {
	ids := make([]string, len(group))
	for i, j := range group {
		ids[i] = j.ID
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	for id, s := range su.D.WaitAll(wctx, ids, workflows.StageProvisioned) {
		require.NoError(su.t, s.Err, "%s: %s", fault, id)
	}
	last := time.Time{}
	for _, at := range fired {
		if at.After(last) {
			last = at
		}
	}
	if wait := time.Until(last.Add(SweeperMinAge + 15*time.Second)); wait > 0 {
		su.t.Logf("%s: waiting %s for the orphaned wrapping tokens to pass the sweeper's minimum age (%s)", fault, wait.Round(time.Second), SweeperMinAge)
		time.Sleep(wait)
	}
	start := time.Now()
	rctx, rcancel := context.WithTimeout(ctx, 15*time.Minute)
	defer rcancel()
	wr, err := su.D.C.ExecuteWorkflow(rctx, client.StartWorkflowOptions{
		ID:        fmt.Sprintf("reliability-reconciler-%s", strings.Join(ids, "-")),
		TaskQueue: su.D.Cfg.TaskQueue, WorkflowExecutionTimeout: 15 * time.Minute,
	}, workflows.Reconciler, workflows.ReconcileInput{Keys: ids})
	require.NoError(su.t, err)
	var rep workflows.ReconcileReport
	require.NoError(su.t, wr.Get(rctx, &rep), "%s: the reconciler run", fault)
	require.NotNil(su.t, rep.Sweep, "%s: the reconciler ran no sweep (is the sweeper configured?)", fault)
	require.Empty(su.t, rep.Sweep.Error, "%s: sweep", fault)
	require.Empty(su.t, rep.Sweep.Failed, "%s: sweep", fault)
	require.Equal(su.t, len(fired), rep.Sweep.Revoked, "%s: one unrecorded wrapping token per crash: %+v", fault, rep.Sweep)
	su.t.Logf("%s: the reconciler's sweep revoked %d unrecorded wrapping tokens (%d recorded ones kept) in %s",
		fault, rep.Sweep.Revoked, rep.Sweep.Recorded, time.Since(start).Round(time.Millisecond))
}
