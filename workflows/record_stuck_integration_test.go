//go:build record

package workflows_test

import (
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/joinery/joinery/activities"
	"github.com/joinery/joinery/internal/e2e"
	"github.com/joinery/joinery/internal/run"
	"github.com/joinery/joinery/workflows"
)

// groupsDown is the worker's real directory with group removal failing
// while down is set: the rollback's membership step keeps failing on the
// real servers while everything else works.
type groupsDown struct {
	activities.Directory
	down  atomic.Bool
	tries atomic.Int64
}

func (d *groupsDown) RemoveMember(ctx context.Context, groupDN, memberDN, owner string) error {
	d.tries.Add(1)
	if d.down.Load() {
		return temporal.NewNonRetryableApplicationError("group removal is down (injected by the test)", "InjectedFault", nil)
	}
	return d.Directory.RemoveMember(ctx, groupDN, memberDN, owner)
}

// TestRecordContinuedCompensationStuck: a rescinded hire whose group
// removal keeps failing continues as new in the middle of its rollback
// (retry-now signals grow its history), the new run goes on with what is
// left, and once the directory answers again it removes the memberships
// and the entry and closes with no residue. The continued run's history is
// recorded for TestReplayRecordedHistories. Run it like
// TestRecordContinuedAwaitingApproval, against a private Temporal that
// suggests continue-as-new early.
func TestRecordContinuedCompensationStuck(t *testing.T) {
	h := e2e.NewHarness(t)
	ctx := context.Background()
	// Swapped in before any joiner runs on the harness's worker.
	dir := &groupsDown{Directory: h.Acts.Directory}
	h.Acts.Directory = dir

	id := h.HireOn("Stu", "Stuck", time.Now().UTC().AddDate(0, 0, 1).Format(time.DateOnly))
	h.Start(id)
	h.ApproveWhenAsked(id)
	wfID := workflows.JoinerWorkflowID(id)
	var held workflows.Status
	require.Eventually(t, func() bool {
		st, _, _, err := run.Status(ctx, h.C, id)
		held = st
		return err == nil && st.Stage == workflows.StageProvisioned
	}, 2*time.Minute, 200*time.Millisecond)
	require.NotEmpty(t, held.Plan.GroupNames())
	desc, err := h.C.DescribeWorkflowExecution(ctx, wfID, "")
	require.NoError(t, err)
	run1 := desc.GetWorkflowExecutionInfo().GetExecution().GetRunId()

	dir.down.Store(true)
	require.NoError(t, run.Signal(ctx, h.C, id, workflows.SignalRescind, workflows.RescindSignal{By: "hr.partner", Reason: "offer withdrawn", Via: "test"}))
	require.Eventually(t, func() bool { return dir.tries.Load() > 0 }, time.Minute, 100*time.Millisecond, "the rollback reached the groups")

	// Retry-now signals (anyone with Temporal access can send them) grow
	// the history until the joiner continues as new.
	start := time.Now()
	sent := 0
	run2 := run1
	for run2 == run1 && time.Since(start) < 5*time.Minute {
		for range 10 {
			require.NoError(t, h.C.SignalWorkflow(ctx, wfID, "", workflows.SignalRetryCompensations, "now"))
			sent++
		}
		time.Sleep(500 * time.Millisecond)
		d, err := h.C.DescribeWorkflowExecution(ctx, wfID, "")
		require.NoError(t, err)
		run2 = d.GetWorkflowExecutionInfo().GetExecution().GetRunId()
	}
	require.NotEqual(t, run1, run2, "the joiner continued as new in its rollback")
	old, err := h.C.DescribeWorkflowExecution(ctx, wfID, run1)
	require.NoError(t, err)
	require.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW, old.GetWorkflowExecutionInfo().GetStatus())
	t.Logf("continued as new in the rollback after %d retry-now signals, %s; first run: %d events, %d removal attempts",
		sent, time.Since(start).Round(time.Millisecond), old.GetWorkflowExecutionInfo().GetHistoryLength(), dir.tries.Load())

	var mid workflows.Status
	require.Eventually(t, func() bool {
		st, _, _, err := run.Status(ctx, h.C, id)
		mid = st
		return err == nil && (st.Stage == workflows.StageRollingBack || st.Stage == workflows.StageCompensationStuck)
	}, time.Minute, 200*time.Millisecond, "the new run is still undoing")
	left := 0
	for _, r := range mid.Resources {
		if r.UndoneAt == nil {
			left++
		}
	}
	require.Positive(t, left, "the memberships and the entry are still listed as left to undo")
	require.Less(t, left, len(mid.Resources), "what the first run undid stays undone")
	require.NotEmpty(t, h.Residue(id, held.Plan.GroupNames(), held.DN), "the grants are still live while the directory refuses")

	// The directory answers again; an operator asks to retry now.
	dir.down.Store(false)
	require.NoError(t, h.C.SignalWorkflow(ctx, wfID, "", workflows.SignalRetryCompensations, "now"))
	res, err := h.Result(id)
	require.NoError(t, err)
	require.Equal(t, workflows.OutcomeRescinded, res.Outcome, res.Error)
	for _, r := range res.Resources {
		require.NotNil(t, r.UndoneAt, "%s %s is undone", r.Kind, r.ID)
	}
	require.Empty(t, h.Residue(id, held.Plan.GroupNames(), held.DN), "nothing is left once the new run has undone it")

	var events []*historypb.HistoryEvent
	it := h.C.GetWorkflowHistory(ctx, wfID, run2, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		e, err := it.Next()
		require.NoError(t, err)
		events = append(events, e)
	}
	b, err := protojson.MarshalOptions{Indent: "  "}.Marshal(&historypb.History{Events: events})
	require.NoError(t, err)
	file := filepath.Join("..", "testdata", "histories", "v5-continued-compensation-stuck.json")
	require.NoError(t, os.WriteFile(file, append(b, '\n'), 0o644))
	t.Logf("recorded %s (workflow %s): %d events", file, wfID, len(events))
}
