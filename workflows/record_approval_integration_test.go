//go:build record

package workflows_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/joinery/joinery/internal/decision"
	"github.com/joinery/joinery/internal/e2e"
	"github.com/joinery/joinery/internal/inbox"
	"github.com/joinery/joinery/internal/pseudonym"
	"github.com/joinery/joinery/internal/run"
	"github.com/joinery/joinery/workflows"
)

// TestRecordContinuedAwaitingApproval runs a real joiner through a
// continue-as-new while it awaits approval, decides it through the real
// approval inbox, and records the continued run's history for
// TestReplayRecordedHistories.
//
// Temporal suggests continue-as-new after a few thousand events; to keep
// the signal count sane, run it against a private dev server that
// suggests it early, with the rest of the dev stack shared:
//
//	bin/temporal server start-dev --ip 127.0.0.1 --port 17233 --ui-port 18233 \
//	  --db-filename /tmp/t/temporal.db --namespace default \
//	  --dynamic-config-value limit.historyCount.suggestContinueAsNew=200 \
//	  --search-attribute JoinerStage=Keyword ... (internal/stack.SearchAttributes)
//	JOINERY_STACK_TEMPORAL_PORT=17233 JOINERY_STACK_TEMPORAL_UI_PORT=18233 \
//	  go test -tags record -count=1 -run TestRecordContinuedAwaitingApproval ./workflows/
//
// Against the shared server it works too, with more signals (at most
// 12,000 are sent).
//
// The story: a flood of refused decisions (names typed into a signal)
// pushes the joiner to continue as new; a decision the inbox signed for
// the old run arrives after and is refused with the reason; ada then
// decides in the inbox, which signs for the run it finds, the current
// one; the joiner provisions, is held in Provisioned, and a rescind rolls
// back everything with no residue.
func TestRecordContinuedAwaitingApproval(t *testing.T) {
	h := e2e.NewHarness(t)
	ctx := context.Background()
	signer, err := decision.LoadFileSigner(h.Cfg.DecisionKeyFile)
	require.NoError(t, err)
	keyer, err := pseudonym.New(h.Cfg.PseudonymKey)
	require.NoError(t, err)
	var handler http.Handler
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(ts.Close)
	srv, err := inbox.New(inbox.Config{BaseURL: ts.URL, HandoverDir: h.Cfg.InboxDir}, inbox.Deps{Auth: h.Dir, Signer: signer, Temporal: h.C,
		Wrapping: inbox.VaultWrapping{Addr: h.EP.VaultAddr}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Pseudonyms: keyer})
	require.NoError(t, err)
	handler = srv.Handler()

	// Starting tomorrow: provisioned at once (lead time), then held in
	// Provisioned until the start, where the rescind below rolls back.
	id := h.HireOn("Cora", "Continued", time.Now().UTC().AddDate(0, 0, 1).Format(time.DateOnly))
	h.Start(id)
	wfID := workflows.JoinerWorkflowID(id)
	st := h.WaitForApproval(id)
	desc, err := h.C.DescribeWorkflowExecution(ctx, wfID, "")
	require.NoError(t, err)
	run1 := desc.GetWorkflowExecutionInfo().GetExecution().GetRunId()

	// Signed in the inbox for run 1, still on its way when the joiner
	// continues as new.
	nonce := make([]byte, 16)
	_, _ = rand.Read(nonce)
	inFlight, err := signer.Sign(ctx, decision.Decision{WorkflowID: wfID, RunID: run1, PlanHash: st.PlanHash, PolicyVersion: st.PolicyVersion,
		Approver: "ada.lovelace", Action: decision.ActionApprove, IssuedAt: time.Now(), Nonce: hex.EncodeToString(nonce), Via: "web"})
	require.NoError(t, err)

	// The flood: unsigned approvals anyone with Temporal access can send.
	start := time.Now()
	sent := 0
	run2 := run1
	for run2 == run1 && sent < 12_000 {
		for range 50 {
			require.NoError(t, h.C.SignalWorkflow(ctx, wfID, "", workflows.SignalApprove, workflows.ApprovalSignal{Approver: "mallory", Approve: true}))
			sent++
		}
		d, err := h.C.DescribeWorkflowExecution(ctx, wfID, "")
		require.NoError(t, err)
		run2 = d.GetWorkflowExecutionInfo().GetExecution().GetRunId()
	}
	require.NotEqual(t, run1, run2, "the joiner continued as new")
	old, err := h.C.DescribeWorkflowExecution(ctx, wfID, run1)
	require.NoError(t, err)
	require.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW, old.GetWorkflowExecutionInfo().GetStatus())
	t.Logf("continued as new after %d refused signals in %s; first run: %d events", sent, time.Since(start).Round(time.Millisecond),
		old.GetWorkflowExecutionInfo().GetHistoryLength())

	var second workflows.Status
	require.Eventually(t, func() bool {
		s, _, _, err := run.Status(ctx, h.C, id)
		second = s
		return err == nil && s.Stage == workflows.StageAwaitingApproval && len(s.Events) > len(st.Events)
	}, time.Minute, 200*time.Millisecond, "the new run waits for the approval")
	require.Equal(t, st.PlanHash, second.PlanHash)
	require.Equal(t, st.Approvers, second.Approvers)
	require.GreaterOrEqual(t, second.Refused, 1, "the flood is counted, not kept")

	// The decision signed for run 1 reaches run 2: refused with the reason.
	hd, err := h.C.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: wfID, UpdateName: workflows.UpdateDecide,
		Args: []any{workflows.ApprovalSignal{Signed: &inFlight, Approve: true}}, WaitForStage: client.WorkflowUpdateStageCompleted})
	require.NoError(t, err)
	var out string
	err = hd.Get(ctx, &out)
	require.Error(t, err, "answered %q", out)
	require.Contains(t, err.Error(), "signed for run "+run1+", an earlier run of this joiner: it has continued as new")
	require.Contains(t, err.Error(), "decide again in the approval inbox")
	require.NoError(t, h.C.SignalWorkflow(ctx, wfID, "", workflows.SignalApprove, workflows.ApprovalSignal{Signed: &inFlight, Approve: true}))

	// ada decides in the inbox: it signs for the run it finds.
	req, _ := http.NewRequest(http.MethodPost, ts.URL+"/api/v1/joiners/"+wfID+"/decision", strings.NewReader(`{"action":"approve","wait":true}`))
	req.SetBasicAuth("ada.lovelace", "dev-ada-pass")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	var answer struct{ Outcome string }
	require.NoError(t, json.Unmarshal(body, &answer))
	require.Equal(t, "approved", answer.Outcome, "the joiner took the decision the inbox signed for the current run")

	var held workflows.Status
	require.Eventually(t, func() bool {
		s, _, _, err := run.Status(ctx, h.C, id)
		held = s
		return err == nil && s.Stage == workflows.StageProvisioned
	}, 2*time.Minute, 200*time.Millisecond, "approved for the new run, provisioned")
	stale := ""
	for _, d := range held.Approvals {
		if d.Refused != "" && strings.Contains(d.Refused, run1) {
			stale = d.Refused
		}
	}
	require.Contains(t, stale, "it has continued as new", "the stale signal is on record with its reason")

	require.NoError(t, run.Signal(ctx, h.C, id, workflows.SignalRescind, workflows.RescindSignal{By: "hr.partner", Reason: "offer withdrawn", Via: "test"}))
	res, err := h.Result(id)
	require.NoError(t, err)
	require.Equal(t, workflows.OutcomeRescinded, res.Outcome)
	require.Empty(t, h.Residue(id, held.Plan.GroupNames(), held.DN), "nothing is left")

	var events []*historypb.HistoryEvent
	it := h.C.GetWorkflowHistory(ctx, wfID, run2, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		e, err := it.Next()
		require.NoError(t, err)
		events = append(events, e)
	}
	b, err := protojson.MarshalOptions{Indent: "  "}.Marshal(&historypb.History{Events: events})
	require.NoError(t, err)
	file := filepath.Join("..", "testdata", "histories", "v5-continued-awaiting-approval.json")
	require.NoError(t, os.WriteFile(file, append(b, '\n'), 0o644))
	t.Logf("recorded %s (workflow %s): %d events", file, wfID, len(events))
}
