package reliability

import (
	"context"
	"fmt"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/joinery/joinery/workflows"
)

// sweepOrphans closes the one window the worker cannot: a kill after
// Vault answered the response-wrapped read and before the ledger write
// leaves a live wrapping token nobody recorded. A kill aimed at one joiner
// can land in another's window by chance, so every scenario that kills the
// worker sweeps: once the group's joiners are settled in one of stages and
// that moment (or the last kill, if later) is older than the sweeper's
// minimum age, the product's
// reconciler runs, scoped to the group, exactly as its schedule would, and
// its sweeper revokes what no index records. It returns how many it
// revoked per joiner; the audit that follows must then find nothing
// unrecorded.
func (su *Suite) sweepOrphans(ctx context.Context, fault string, group []joiner, lastKill time.Time, stages ...workflows.Stage) map[string]int {
	ids := make([]string, len(group))
	for i, j := range group {
		ids[i] = j.ID
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	for id, s := range su.D.WaitAll(wctx, ids, stages...) {
		require.NoError(su.t, s.Err, "%s: %s", fault, id)
	}
	// Not only a kill leaves such a token: an attempt that runs into its
	// start-to-close timeout under load can have its wrapped read answered
	// after its context ended, and that happens after the kill. Once every
	// joiner rests, no credential step runs, so any orphan is older than
	// this moment.
	settled := time.Now()
	if settled.After(lastKill) {
		lastKill = settled
	}
	if wait := time.Until(lastKill.Add(SweeperMinAge + 15*time.Second)); wait > 0 {
		su.t.Logf("%s: waiting %s for any orphaned wrapping token to pass the sweeper's minimum age (%s)", fault, wait.Round(time.Second), SweeperMinAge)
		time.Sleep(wait)
	}
	start := time.Now()
	rctx, rcancel := context.WithTimeout(ctx, 15*time.Minute)
	defer rcancel()
	wr, err := su.D.C.ExecuteWorkflow(rctx, client.StartWorkflowOptions{
		ID:        fmt.Sprintf("reliability-reconciler-%s-%d", ids[0], len(ids)),
		TaskQueue: su.D.Cfg.TaskQueue, WorkflowExecutionTimeout: 15 * time.Minute,
	}, workflows.Reconciler, workflows.ReconcileInput{Keys: ids})
	require.NoError(su.t, err)
	var rep workflows.ReconcileReport
	require.NoError(su.t, wr.Get(rctx, &rep), "%s: the reconciler run", fault)
	require.NotNil(su.t, rep.Sweep, "%s: the reconciler ran no sweep (is the sweeper configured?)", fault)
	require.Empty(su.t, rep.Sweep.Error, "%s: sweep", fault)
	require.Empty(su.t, rep.Sweep.Failed, "%s: sweep", fault)
	per := map[string]int{}
	for _, o := range rep.Sweep.Orphans {
		per[o.Key]++
	}
	su.t.Logf("%s: the reconciler's sweep revoked %d unrecorded wrapping tokens (%v) in %s",
		fault, rep.Sweep.Revoked, per, time.Since(start).Round(time.Millisecond))
	return per
}

// lastOf is the latest of times.
func lastOf(times ...time.Time) time.Time {
	var last time.Time
	for _, t := range times {
		if t.After(last) {
			last = t
		}
	}
	return last
}
