//go:build record

package workflows_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/joinery/joinery/internal/e2e"
	"github.com/joinery/joinery/internal/pseudonym"
	"github.com/joinery/joinery/workflows"
)

// TestRecordPseudonymousJoiner runs a real joiner on the dev stack (a
// private worker of this code) under version
// "pseudonymous-search-attributes" and records its history for
// TestReplayRecordedHistories:
//
//	go test -tags record -count=1 -run TestRecordPseudonymousJoiner ./workflows/
//
// A hire starting today is approved by its manager and completes; the
// history holds the SearchPseudonyms activity and the upserts of
// pseudonyms, and the server's search attributes name nobody.
func TestRecordPseudonymousJoiner(t *testing.T) {
	h := e2e.NewHarness(t)
	ctx := context.Background()
	id := h.Hire("Pia", "Pseudonym")
	h.Start(id)
	h.ApproveWhenAsked(id)
	res, err := h.Result(id)
	require.NoError(t, err)
	require.Equal(t, workflows.OutcomeCompleted, res.Outcome, res.Error)
	wfID := workflows.JoinerWorkflowID(id)

	k, err := pseudonym.New(h.Cfg.PseudonymKey)
	require.NoError(t, err)
	desc, err := h.C.DescribeWorkflowExecution(ctx, wfID, "")
	require.NoError(t, err)
	var sa strings.Builder
	for name, p := range desc.GetWorkflowExecutionInfo().GetSearchAttributes().GetIndexedFields() {
		sa.WriteString(name + "=" + string(p.GetData()) + " ")
	}
	require.Contains(t, sa.String(), k.Of("ada.lovelace"))
	for _, name := range []string{"lovelace", "pia", "pseudonym.", res.Username} {
		require.NotContains(t, strings.ToLower(sa.String()), strings.ToLower(name))
	}

	var events []*historypb.HistoryEvent
	it := h.C.GetWorkflowHistory(ctx, wfID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		e, err := it.Next()
		require.NoError(t, err)
		events = append(events, e)
	}
	b, err := protojson.MarshalOptions{Indent: "  "}.Marshal(&historypb.History{Events: events})
	require.NoError(t, err)
	require.Contains(t, string(b), "SearchPseudonyms")
	out := filepath.Join("..", "testdata", "histories", "v4-pseudonymous-completed.json")
	require.NoError(t, os.WriteFile(out, append(b, '\n'), 0o644))
	t.Logf("recorded %s (%s): %d events", out, wfID, len(events))
}
