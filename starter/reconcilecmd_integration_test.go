package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/joinery/joinery/connectors/directory"
	"github.com/joinery/joinery/internal/e2e"
	"github.com/joinery/joinery/internal/run"
	"github.com/joinery/joinery/workflows"
)

// `starter reconcile` end to end: a provisioned hire whose joiner was
// terminated is listed by --dry-run (nothing changes), revoked by the real
// run (entry disabled), and the schedule is created, then updated in place.
func TestCLIReconcile(t *testing.T) {
	h := e2e.NewHarness(t)
	setEnv(t, h)
	// The CLI's queue has a worker with the reconciler only (the harness's
	// worker runs the joiners on its own queue).
	queue := h.Cfg.TaskQueue + "-rec"
	rec := run.NewReconcile(h.Acts, h.C, slog.New(slog.NewTextHandler(io.Discard, nil)))
	rec.TaskQueue = h.Cfg.TaskQueue // the joiners' queue; the reconciler runs on its own here
	rec.MinAge = time.Second
	w := worker.New(h.C, queue, worker.Options{})
	run.RegisterReconciler(w, rec)
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)
	t.Setenv("JOINERY_TASK_QUEUE", queue)
	ctx := context.Background()

	id := h.HireOn("Recon", fmt.Sprintf("Cli%d", rand.IntN(1e6)), time.Now().UTC().AddDate(0, 0, 3).Format(time.DateOnly))
	h.Start(id)
	h.ApproveWhenAsked(id)
	require.Eventually(t, func() bool {
		st, _, _, err := run.Status(ctx, h.C, id)
		return err == nil && st.Stage == workflows.StageProvisioned
	}, 2*time.Minute, 200*time.Millisecond)
	require.NoError(t, h.C.TerminateWorkflow(ctx, workflows.JoinerWorkflowID(id), "", "cli reconcile test"))
	time.Sleep(2 * time.Second)
	enabled := func() bool {
		e, err := h.Dir.FindByOwner(ctx, workflows.JoinerWorkflowID(id))
		require.NoError(t, err)
		require.NotNil(t, e)
		return !directory.IsDisabled(e)
	}
	require.True(t, enabled())

	code, _, errOut := cli(t, "reconcile", "--key", "../"+id)
	require.Equal(t, exitUsage, code, "a key that is not one is refused before anything starts")
	require.Contains(t, errOut, "joiner key")

	code, out, errOut := cli(t, "reconcile", "--dry-run", "--key", id)
	require.Equal(t, exitOK, code, errOut)
	require.Contains(t, out, "dry run: nothing changed")
	require.Contains(t, out, "joiner-"+id)
	require.Contains(t, out, "ldap-entry")
	require.NotContains(t, out, "revoked\n")
	require.True(t, enabled(), "a dry run changes nothing")

	code, out, errOut = cli(t, "reconcile", "--key", "joiner-"+id)
	require.Equal(t, exitOK, code, errOut)
	require.Contains(t, out, "revoked")
	require.False(t, enabled(), "the real run disabled the entry")
	code, out, _ = cli(t, "reconcile", "--key", id, "--json")
	require.Equal(t, exitOK, code)
	require.Contains(t, out, `"found": 0`, "nothing left the second time")

	// The schedule: created, then updated in place (a private ID, so the
	// shared stack's own schedule is not touched).
	t.Setenv(EnvReconcileInterval, "1s")
	code, _, errOut = cli(t, "reconcile", "schedule")
	require.Equal(t, exitUsage, code)
	require.Contains(t, errOut, EnvReconcileInterval)
	sid := fmt.Sprintf("it-reconciler-%d", rand.IntN(1e9))
	t.Cleanup(func() { _ = h.C.ScheduleClient().GetHandle(ctx, sid).Delete(ctx) })
	action, _, err := ensureReconcileSchedule(ctx, h.C, sid, queue, time.Hour, true)
	require.NoError(t, err)
	require.Equal(t, "created", action)
	// The schedule runs the reconciler: trigger it now and read the run's
	// report (a dry run, as created).
	sh := h.C.ScheduleClient().GetHandle(ctx, sid)
	triggered := time.Now()
	require.NoError(t, sh.Trigger(ctx, client.ScheduleTriggerOptions{}))
	var started *client.ScheduleActionResult
	require.Eventually(t, func() bool {
		d, err := sh.Describe(ctx)
		if err != nil || len(d.Info.RecentActions) == 0 {
			return false
		}
		started = &d.Info.RecentActions[0]
		return started.StartWorkflowResult != nil
	}, time.Minute, 200*time.Millisecond)
	var rep workflows.ReconcileReport
	rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	require.NoError(t, h.C.GetWorkflow(rctx, started.StartWorkflowResult.WorkflowID, started.StartWorkflowResult.FirstExecutionRunID).Get(rctx, &rep))
	t.Logf("scheduled dry run: %s after the trigger; judged %d (live %d, kept %d, clean %d), orphans %d, more %v",
		time.Since(triggered).Round(time.Millisecond), rep.Judged, rep.Live, rep.Kept, rep.Clean, len(rep.Orphans), rep.More)
	require.True(t, rep.DryRun)
	require.Positive(t, rep.Judged)
	require.Zero(t, rep.Revoked)
	require.True(t, strings.HasPrefix(started.StartWorkflowResult.WorkflowID, sid), started.StartWorkflowResult.WorkflowID)

	action, what, err := ensureReconcileSchedule(ctx, h.C, sid, queue, 2*time.Hour, false)
	require.NoError(t, err)
	require.Equal(t, "updated", action)
	require.Contains(t, what, "every 2h0m0s")
	d, err := h.C.ScheduleClient().GetHandle(ctx, sid).Describe(ctx)
	require.NoError(t, err)
	require.Len(t, d.Schedule.Spec.Intervals, 1)
	require.Equal(t, 2*time.Hour, d.Schedule.Spec.Intervals[0].Every)
	act, ok := d.Schedule.Action.(*client.ScheduleWorkflowAction)
	require.True(t, ok)
	require.Equal(t, queue, act.TaskQueue)
	require.True(t, strings.HasSuffix(fmt.Sprint(act.Workflow), "Reconciler"), "%v", act.Workflow)
}

func TestReconcileIntervalFromEnv(t *testing.T) {
	env := func(v string) func(string) string { return func(string) string { return v } }
	d, err := reconcileInterval(env(""))
	require.NoError(t, err)
	require.Equal(t, DefaultReconcileInterval, d)
	d, err = reconcileInterval(env("15m"))
	require.NoError(t, err)
	require.Equal(t, 15*time.Minute, d)
	for _, bad := range []string{"soon", "10s", "-1h"} {
		_, err = reconcileInterval(env(bad))
		require.Error(t, err, bad)
		require.Contains(t, err.Error(), EnvReconcileInterval)
	}
}
