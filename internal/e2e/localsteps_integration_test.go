package e2e

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"

	"github.com/joinery/joinery/internal/audit"
	"github.com/joinery/joinery/workflows"
)

// A joiner on the local path (workflows/localsteps.go) against the real
// servers: every step ran as a local activity (no activity task in its
// history), in two workflow tasks, and the audit record built from that
// history still names everything it created — the entry, each group (from
// the grant's result: a local activity's marker has no input), the
// credential and the write-back.
func TestIntegrationLocalStepsJoinerIsFullyAudited(t *testing.T) {
	h := NewHarness(t)
	p := newPerson()
	id := h.hirePerson(p)
	h.Start(id)
	h.ApproveWhenAsked(id)
	res, err := h.Result(id)
	require.NoError(t, err)
	require.Equal(t, workflows.OutcomeCompleted, res.Outcome, res.Error)
	require.NotEmpty(t, res.Groups)

	wfID := workflows.JoinerWorkflowID(id)
	tasks, locals := 0, 0
	for _, ev := range events(t, h.C, wfID) {
		switch ev.GetEventType() {
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			t.Fatalf("activity %s ran as a regular activity", ev.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName())
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
			tasks++
		case enumspb.EVENT_TYPE_MARKER_RECORDED:
			if ev.GetMarkerRecordedEventAttributes().GetMarkerName() == "LocalActivity" {
				locals++
			}
		}
	}
	// Two: planning up to the approval wait, then everything after the
	// approval. On a loaded machine the SDK may keep a slow task alive by
	// completing it early (a heartbeat), which adds one.
	require.GreaterOrEqual(t, tasks, 2)
	require.LessOrEqual(t, tasks, 3, "planning up to the approval wait, then everything after the approval")
	require.GreaterOrEqual(t, locals, 8+len(res.Groups))

	rec, err := audit.Build(context.Background(), h.C, wfID)
	require.NoError(t, err)
	var created []string
	for _, e := range rec.Timeline {
		if e.Kind == "created" {
			created = append(created, e.What)
		}
	}
	all := strings.Join(created, "\n")
	require.Contains(t, all, "directory entry "+res.DN)
	for _, g := range res.Groups {
		require.Contains(t, created, "member of "+g, "the audit record names the grant of %s", g)
	}
	require.Contains(t, all, "initial credential vault "+res.Credential.Path)
}
