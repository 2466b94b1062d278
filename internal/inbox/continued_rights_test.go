package inbox

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/joinery/joinery/workflows"
)

// A joiner that continued as new withdraws an approval signed for its old
// run (workflows/continued.go) and marks its record so. The inbox reads
// who has approved from those records: the approver of a withdrawn
// approval may decide again (and the inbox then signs for the current
// run), while one whose approval still counts may not approve twice.
func TestWithdrawnApprovalLetsItsApproverDecideAgain(t *testing.T) {
	status := func(d workflows.Decision) workflows.Status {
		return workflows.Status{Stage: workflows.StageAwaitingApproval, Approvers: []string{"ada.lovelace"},
			SecondApprover: "grace.hopper", Approvals: []workflows.Decision{d}}
	}
	withdrawn := status(workflows.Decision{Approver: "ada.lovelace", Via: "signal:approve/web",
		Refused: "withdrawn: signed for run run-one, which continued as new; decide again in the approval inbox"})
	r := rightsOf(joiner{ID: "joiner-200", RunID: "run-two", Running: true, Status: withdrawn}, "ada.lovelace")
	require.True(t, r.Decide, "ada may approve again, for the new run")
	require.True(t, r.Related)
	require.True(t, rightsOf(joiner{ID: "joiner-200", RunID: "run-two", Running: true, Status: withdrawn}, "grace.hopper").Decide)

	counting := status(workflows.Decision{Approver: "ada.lovelace", Approved: true, Via: "signal:approve/web"})
	require.False(t, rightsOf(joiner{ID: "joiner-200", RunID: "run-two", Running: true, Status: counting}, "ada.lovelace").Decide,
		"an approval that still counts is not given twice")
}
