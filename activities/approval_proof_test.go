package activities

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/joinery/joinery/internal/decision"
	"github.com/joinery/joinery/internal/policy"
)

// approvedBy makes a's worker trust a fresh inbox key and returns
// approver's signed approval of workflowID, as a joiner passes it to the
// claim.
func approvedBy(t *testing.T, a *Activities, workflowID, approver string) []ApprovalProof {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	s := decision.NewFileSigner(k)
	a.DecisionKeys = append(a.DecisionKeys, s.PublicKey())
	signed, err := s.Sign(context.Background(), decision.Decision{WorkflowID: workflowID, RunID: "default-test-run-id", PlanHash: "sha256:test",
		PolicyVersion: "test", Approver: approver, Action: decision.ActionApprove, IssuedAt: time.Now(), Nonce: "0123456789abcdef"})
	require.NoError(t, err)
	return []ApprovalProof{{Signed: &signed}}
}

// The claim, the first side effect, re-verifies the approvals itself: a
// rogue "Joiner" with a real hire's ID and no approval, or with an approval
// for another joiner, by the wrong person, under a foreign key, or missing
// the second approver, creates nothing.
func TestClaimNeedsAProvenApproval(t *testing.T) {
	a := &Activities{}
	ok := approvedBy(t, a, "joiner-300", "ada.lovelace")
	plan := policy.Plan{Approval: policy.ApprovalPlan{Rule: "manager", Approver: "ada.lovelace", EscalateTo: "grace.hopper"}}
	require.Empty(t, approvalProven(a.DecisionKeys, "joiner-300", "", ok, plan))

	other := &Activities{}
	foreign := approvedBy(t, other, "joiner-300", "ada.lovelace")
	four := plan
	four.Approval.SecondApprover = "alan.turing"
	bg := plan
	bg.Approval.BreakGlass = true
	for name, tc := range map[string]struct {
		wf     string
		proofs []ApprovalProof
		plan   policy.Plan
		want   string
	}{
		"no approval":              {"joiner-300", nil, plan, "no approval"},
		"another joiner's":         {"joiner-301", ok, plan, "is for joiner-300"},
		"a foreign key":            {"joiner-300", foreign, plan, "does not verify"},
		"not the route's approver": {"joiner-300", approvedBy(t, a, "joiner-300", "mallory"), plan, "may not approve"},
		"second approver missing":  {"joiner-300", ok, four, "do not satisfy"},
		"break-glass not enabled":  {"joiner-300", []ApprovalProof{{BreakGlass: true}}, plan, "break-glass is off"},
		"unsigned":                 {"joiner-300", []ApprovalProof{{}}, plan, "without a signature"},
	} {
		t.Run(name, func(t *testing.T) {
			require.Contains(t, approvalProven(a.DecisionKeys, tc.wf, "", tc.proofs, tc.plan), tc.want)
		})
	}
	require.Contains(t, approvalProven(a.DecisionKeys, "joiner-300", "another-run", ok, plan), "not this run",
		"an approval captured from another run of the same workflow ID does not count")
	both := append(append([]ApprovalProof{}, ok...), approvedBy(t, a, "joiner-300", "alan.turing")...)
	require.Empty(t, approvalProven(a.DecisionKeys, "joiner-300", "", both, four))
	require.Empty(t, approvalProven(a.DecisionKeys, "joiner-300", "", []ApprovalProof{{BreakGlass: true}}, bg))
}
