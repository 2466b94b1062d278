package e2e

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/joinery/joinery/internal/audit"
	"github.com/joinery/joinery/internal/decision"
	"github.com/joinery/joinery/internal/run"
	"github.com/joinery/joinery/workflows"
)

// The adversary has Temporal access and nothing else (the Web UI's "Send a
// Signal", `temporal workflow signal`, a client of their own). On the real
// server: the name-only approve signal is refused and recorded with the
// sender's Temporal identity; the unsigned decide update is refused before
// it reaches history; nothing is provisioned; the manager's signed decision
// then completes the joiner.
func TestDecisionWithTemporalAccessAloneIsRefused(t *testing.T) {
	h := NewHarness(t)
	id := h.Hire("Mallory", "Target")
	h.Start(id)
	st := h.WaitForApproval(id)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	rogue, err := client.Dial(client.Options{HostPort: h.Cfg.TemporalAddress, Namespace: h.Cfg.TemporalNamespace, Identity: "mallory@laptop"})
	require.NoError(t, err)
	defer rogue.Close()
	require.NoError(t, rogue.SignalWorkflow(ctx, workflows.JoinerWorkflowID(id), "", workflows.SignalApprove,
		workflows.ApprovalSignal{Approver: st.Plan.Approval.Approver, Comment: "approved, trust me"}))
	_, err = run.Decide(ctx, rogue, id, workflows.ApprovalSignal{Approver: st.Plan.Approval.Approver, Approve: true})
	require.Error(t, err, "the update validator refuses an unsigned decision (its reason is sealed by the codec)")
	_, err = run.Decide(ctx, h.C, id, workflows.ApprovalSignal{Approver: st.Plan.Approval.Approver, Approve: true})
	require.ErrorContains(t, err, "unsigned", "read through the codec, the refusal says why")

	// A decision signed with a key the worker does not trust is refused too.
	other := decision.NewFileSigner(freshKey(t))
	forged, err := other.Sign(ctx, decision.Decision{WorkflowID: workflows.JoinerWorkflowID(id), PlanHash: st.PlanHash,
		PolicyVersion: st.PolicyVersion, Approver: st.Plan.Approval.Approver, Action: decision.ActionApprove,
		IssuedAt: time.Now(), Nonce: "0123456789abcdef0123"})
	require.NoError(t, err)
	require.NoError(t, rogue.SignalWorkflow(ctx, workflows.JoinerWorkflowID(id), "", workflows.SignalApprove,
		workflows.ApprovalSignal{Signed: &forged}))

	var now workflows.Status
	require.Eventually(t, func() bool {
		now, _, _, err = run.Status(ctx, h.C, id)
		return err == nil && now.Refused == 2
	}, 30*time.Second, 100*time.Millisecond, "both forged decisions are refused and counted")
	require.Equal(t, workflows.StageAwaitingApproval, now.Stage, "nothing moved")
	require.Contains(t, now.Approvals[0].Refused, "unsigned")
	require.Contains(t, now.Approvals[1].Refused, "does not trust")
	e, err := h.Dir.FindByEmployeeID(ctx, id, false)
	require.NoError(t, err)
	require.Nil(t, e, "no directory entry exists before a real approval")

	// The audit shows who sent each refused decision.
	rec, err := audit.Build(ctx, h.C, workflows.JoinerWorkflowID(id))
	require.NoError(t, err)
	sent := 0
	for _, e := range rec.Timeline {
		if strings.Contains(e.What, "signal approve sent by mallory@laptop") {
			sent++
		}
	}
	require.Equal(t, 2, sent, "both signals are attributed to the sending identity")

	h.Decide(id, st, st.Plan.Approval.Approver, decision.ActionApprove, "welcome")
	res, err := h.Result(id)
	require.NoError(t, err)
	require.Equal(t, workflows.OutcomeCompleted, res.Outcome)
	var counted []workflows.Decision
	for _, d := range res.Approvals {
		if d.Refused == "" {
			counted = append(counted, d)
		}
	}
	require.Len(t, counted, 1)
	require.True(t, counted[0].Signed)
	require.Equal(t, st.Plan.Approval.Approver, counted[0].Approver)
}

func freshKey(t *testing.T) ed25519.PrivateKey {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	return k
}
