//go:build record

package workflows_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/joinery/joinery/internal/e2e"
	"github.com/joinery/joinery/internal/run"
	"github.com/joinery/joinery/workflows"
)

// TestRecordContinuedJoiner runs a real joiner on the dev stack (a private
// worker of this code, the real Temporal, slapd, Vault and HRIS) through a
// continue-as-new and records the continued run's history for
// TestReplayRecordedHistories:
//
//	go test -tags record -count=1 -run TestRecordContinuedJoiner ./workflows/
//
// A hire starting tomorrow in Berlin is provisioned and held in
// Provisioned; a flood of harmless signals grows its history until it
// continues as new; the new run must answer queries with the first run's
// state, keep the search attributes, re-read a start HR moves, and on a
// rescind roll back everything the first run created.
func TestRecordContinuedJoiner(t *testing.T) {
	h := e2e.NewHarness(t)
	ctx := context.Background()
	tomorrow := time.Now().UTC().AddDate(0, 0, 1).Format(time.DateOnly)
	id := h.HireOn("Zoe", "Continued", tomorrow)
	h.Start(id)
	h.ApproveWhenAsked(id)
	wfID := workflows.JoinerWorkflowID(id)
	var first workflows.Status
	require.Eventually(t, func() bool {
		st, _, _, err := run.Status(ctx, h.C, id)
		first = st
		return err == nil && st.Stage == workflows.StageProvisioned
	}, 2*time.Minute, 200*time.Millisecond, "the hire is provisioned and held until the start")
	require.Equal(t, "Europe/Berlin", first.Plan.TimeZone, "DE-Berlin maps to its zone")
	desc, err := h.C.DescribeWorkflowExecution(ctx, wfID, "")
	require.NoError(t, err)
	run1 := desc.GetWorkflowExecutionInfo().GetExecution().GetRunId()

	// Grow the history with signals that change nothing until the joiner
	// continues as new (Temporal's suggestion, or maxEventsPerRun).
	start := time.Now()
	var sent atomic.Int64
	var wg sync.WaitGroup
	done := make(chan struct{})
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for sent.Load() < 12_000 {
				select {
				case <-done:
					return
				default:
				}
				if err := h.C.SignalWorkflow(ctx, wfID, "", workflows.SignalRetryCompensations, "grow"); err == nil {
					sent.Add(1)
				}
			}
		}()
	}
	var run2 string
	require.Eventually(t, func() bool {
		d, err := h.C.DescribeWorkflowExecution(ctx, wfID, "")
		if err != nil {
			return false
		}
		run2 = d.GetWorkflowExecutionInfo().GetExecution().GetRunId()
		return run2 != run1
	}, 5*time.Minute, 500*time.Millisecond, "the joiner continued as new")
	close(done)
	wg.Wait()
	t.Logf("continued as new after %d signals in %s", sent.Load(), time.Since(start).Round(time.Millisecond))
	old, err := h.C.DescribeWorkflowExecution(ctx, wfID, run1)
	require.NoError(t, err)
	require.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW, old.GetWorkflowExecutionInfo().GetStatus())
	t.Logf("first run: %d events", old.GetWorkflowExecutionInfo().GetHistoryLength())

	// The new run: same state, same search attributes.
	var second workflows.Status
	require.Eventually(t, func() bool {
		st, _, _, err := run.Status(ctx, h.C, id)
		second = st
		return err == nil && st.Stage == workflows.StageProvisioned
	}, time.Minute, 200*time.Millisecond)
	require.Equal(t, first.Username, second.Username)
	require.Equal(t, first.DN, second.DN)
	require.Equal(t, len(first.Resources), len(second.Resources))
	require.Equal(t, len(first.Approvals), len(second.Approvals))
	d2, err := h.C.DescribeWorkflowExecution(ctx, wfID, run2)
	require.NoError(t, err)
	sa := d2.GetWorkflowExecutionInfo().GetSearchAttributes().GetIndexedFields()
	for _, k := range []string{"JoinerStage", "HRISID", "JoinerKind"} {
		require.Contains(t, sa, k, "search attribute %s carried over", k)
	}
	var stage string
	require.NoError(t, converter.GetDefaultDataConverter().FromPayload(sa["JoinerStage"], &stage))
	require.Equal(t, string(workflows.StageProvisioned), stage)

	// HR moves the start by a week: the new run re-reads it (and asks
	// the DayStart activity for the new date's local midnight).
	later := time.Now().UTC().AddDate(0, 0, 8).Format(time.DateOnly)
	require.NoError(t, h.HR.UpdateFields(ctx, id, map[string]string{"hireDate": later}))
	require.NoError(t, run.Signal(ctx, h.C, id, workflows.SignalStartDateChange, workflows.StartDateSignal{HireDate: later, By: "hr.partner"}))
	require.Eventually(t, func() bool {
		st, _, _, err := run.Status(ctx, h.C, id)
		if err != nil {
			return false
		}
		for _, e := range st.Events {
			if strings.Contains(e.What, "start date moved from "+tomorrow+" to "+later) {
				return true
			}
		}
		return false
	}, time.Minute, 200*time.Millisecond, "the move was read in the new run")

	// A rescind in the new run rolls back what the first run created.
	require.NoError(t, run.Signal(ctx, h.C, id, workflows.SignalRescind, workflows.RescindSignal{By: "hr.partner", Reason: "offer withdrawn", Via: "test"}))
	res, err := h.Result(id)
	require.NoError(t, err)
	require.Equal(t, workflows.OutcomeRescinded, res.Outcome)
	require.Empty(t, h.Residue(id, first.Plan.GroupNames(), first.DN), "nothing the first run created is left")

	// Record the continued run's history (payloads decrypted by the
	// harness's client) for the replay test.
	var events []*historypb.HistoryEvent
	it := h.C.GetWorkflowHistory(ctx, wfID, run2, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		e, err := it.Next()
		require.NoError(t, err)
		events = append(events, e)
	}
	b, err := protojson.MarshalOptions{Indent: "  "}.Marshal(&historypb.History{Events: events})
	require.NoError(t, err)
	out := filepath.Join("..", "testdata", "histories", "v3-continued-provisioned-rescinded.json")
	require.NoError(t, os.WriteFile(out, append(b, '\n'), 0o644))
	t.Logf("recorded %s: %d events", out, len(events))
}
