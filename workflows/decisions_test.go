package workflows

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/joinery/joinery/activities"
	"github.com/joinery/joinery/internal/decision"
)

// raw wraps a signal payload that signalAt must send exactly as given.
type raw struct{ v any }

func testSigner(t testing.TB) *decision.FileSigner {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	return decision.NewFileSigner(k)
}

func nonce() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// trustMocks: the worker trusts the fixture's inbox key; everyone is an
// active person unless listed in f.inactive.
func (f *fixture) trustMocks() {
	f.env.OnActivity(f.acts.ExportAudit, mock.Anything, mock.Anything).Return(activities.ExportAuditResult{}, nil).Maybe()
	f.env.OnActivity(f.acts.TrustedDecisionKeys, mock.Anything).Return(activities.DecisionTrust{
		Keys: []decision.PublicKey{f.signer.PublicKey()}, MaxAge: 15 * time.Minute, InboxURL: "https://inbox.test",
	}, nil).Maybe()
	f.env.OnActivity(f.acts.CheckApprovers, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.ApproversInput) ([]activities.ApproverStanding, error) {
			var out []activities.ApproverStanding
			for _, u := range in.Usernames {
				why, gone := f.inactive[strings.ToLower(u)]
				out = append(out, activities.ApproverStanding{Username: u, Active: !gone, Reason: why})
			}
			return out, nil
		}).Maybe()
}

// decisionFor is what the test inbox signs for approver now.
func (f *fixture) decisionFor(approver string, action decision.Action, comment string) decision.Decision {
	h, err := decision.PlanHash(f.plan)
	require.NoError(f.t, err)
	return decision.Decision{WorkflowID: JoinerWorkflowID(f.worker.HRISID), RunID: "default-test-run-id", PlanHash: h, PolicyVersion: f.plan.PolicyVersion,
		Approver: approver, Action: action, Comment: comment, IssuedAt: f.env.Now(), Nonce: nonce(), Via: "test-inbox"}
}

func (f *fixture) sign(d decision.Decision) *decision.Signed {
	s, err := f.signer.Sign(context.Background(), d)
	require.NoError(f.t, err)
	return &s
}

// signed turns a name-only approval into the test inbox's signed decision.
func (f *fixture) signed(s ApprovalSignal) ApprovalSignal {
	act := decision.ActionReject
	if s.Approve {
		act = decision.ActionApprove
	}
	return ApprovalSignal{Signed: f.sign(f.decisionFor(s.Approver, act, s.Comment))}
}

// signal sends name now; see signalAt for how payloads are signed.
func (f *fixture) signal(name string, payload any) {
	switch p := payload.(type) {
	case raw:
		payload = p.v
	case ApprovalSignal:
		if p.Signed == nil && p.BreakGlass == nil && p.Approver != "" {
			p.Approve = name == SignalApprove
			payload = f.signed(p)
		}
	case ExtendSignal:
		if p.Signed == nil && p.By != "" {
			d := f.decisionFor(p.By, decision.ActionExtend, p.Comment)
			d.EndDate = p.EndDate
			payload = ExtendSignal{Signed: f.sign(d)}
		}
	}
	f.env.SignalWorkflow(name, payload)
}

// TestForgedDecisionsAreRefused is the adversary with Temporal access (Web
// UI, CLI, own client) and the inbox's own users misusing it: each attempt
// is refused and recorded, nothing is provisioned, and ada's real decision
// still counts afterwards.
func TestForgedDecisionsAreRefused(t *testing.T) {
	other := testSigner(t)
	cases := []struct {
		name   string
		send   func(f *fixture) any
		reason string
	}{
		{"a name typed into a signal (Web UI, temporal workflow signal)", func(f *fixture) any {
			return raw{ApprovalSignal{Approver: "ada.lovelace", Comment: "lgtm"}}
		}, "unsigned"},
		{"signed with another key", func(f *fixture) any {
			s, err := other.Sign(context.Background(), f.decisionFor("ada.lovelace", decision.ActionApprove, ""))
			require.NoError(t, err)
			return raw{ApprovalSignal{Signed: &s}}
		}, "does not trust"},
		{"another key under the inbox key's ID", func(f *fixture) any {
			s, err := other.Sign(context.Background(), f.decisionFor("ada.lovelace", decision.ActionApprove, ""))
			require.NoError(t, err)
			s.KeyID = f.signer.KeyID()
			return raw{ApprovalSignal{Signed: &s}}
		}, "does not verify"},
		{"payload altered after signing", func(f *fixture) any {
			s := f.sign(f.decisionFor("mallory", decision.ActionApprove, ""))
			s.Payload = []byte(strings.Replace(string(s.Payload), "mallory", "ada.lovelace", 1))
			return raw{ApprovalSignal{Signed: s}}
		}, "does not verify"},
		{"a decision for another joiner", func(f *fixture) any {
			d := f.decisionFor("ada.lovelace", decision.ActionApprove, "")
			d.WorkflowID = "joiner-201"
			return raw{ApprovalSignal{Signed: f.sign(d)}}
		}, "another joiner"},
		{"a decision captured from another run of this workflow ID", func(f *fixture) any {
			d := f.decisionFor("ada.lovelace", decision.ActionApprove, "")
			d.RunID = "an-earlier-run"
			return raw{ApprovalSignal{Signed: f.sign(d)}}
		}, "signed for run"},
		{"a decision for a changed plan", func(f *fixture) any {
			d := f.decisionFor("ada.lovelace", decision.ActionApprove, "")
			changed := f.plan
			changed.Groups = append(changed.Groups, changed.Groups[0])
			d.PlanHash, _ = decision.PlanHash(changed)
			return raw{ApprovalSignal{Signed: f.sign(d)}}
		}, "different plan"},
		{"a stale decision", func(f *fixture) any {
			d := f.decisionFor("ada.lovelace", decision.ActionApprove, "")
			d.IssuedAt = d.IssuedAt.Add(-time.Hour)
			return raw{ApprovalSignal{Signed: f.sign(d)}}
		}, "stale"},
		{"a decision dated in the future", func(f *fixture) any {
			d := f.decisionFor("ada.lovelace", decision.ActionApprove, "")
			d.IssuedAt = d.IssuedAt.Add(time.Hour)
			return raw{ApprovalSignal{Signed: f.sign(d)}}
		}, "future"},
		{"a signed inbox user who is not the approver", func(f *fixture) any {
			return ApprovalSignal{Approver: "mallory"}
		}, "not an approver"},
		{"the escalation target before escalation", func(f *fixture) any {
			return ApprovalSignal{Approver: "grace.hopper"}
		}, "not an approver"},
		{"a signed reject sent as the approve signal", func(f *fixture) any {
			return raw{ApprovalSignal{Signed: f.sign(f.decisionFor("ada.lovelace", decision.ActionReject, ""))}}
		}, "carries a signed \"reject\""},
		{"break-glass where policy does not allow it", func(f *fixture) any {
			return raw{ApprovalSignal{BreakGlass: &BreakGlass{Operator: "ops", Reason: "urgent"}}}
		}, "break-glass decisions are off"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.happy()
			f.provisioning()
			f.env.RegisterDelayedCallback(func() { f.signal(SignalApprove, tc.send(f)) }, provisionDelay()+time.Hour)
			f.env.RegisterDelayedCallback(func() {
				st := f.status()
				require.Equal(t, StageAwaitingApproval, st.Stage, "a refused decision changes nothing")
				require.Equal(t, 1, st.Refused)
				require.Contains(t, st.Approvals[0].Refused, tc.reason)
				require.False(t, st.Approvals[0].Approved)
				require.Empty(t, f.calls, "nothing is provisioned on a refused decision")
				f.signal(SignalApprove, ApprovalSignal{Approver: "ada.lovelace"})
			}, provisionDelay()+2*time.Hour)
			res, err := f.run()
			require.NoError(t, err)
			require.Equal(t, OutcomeCompleted, res.Outcome)
			require.Len(t, res.Approvals, 2)
			require.True(t, res.Approvals[1].Signed)
			require.Equal(t, "ada.lovelace", res.Approvals[1].Approver)
			require.Equal(t, f.signer.KeyID(), res.Approvals[1].KeyID)
		})
	}
}

// A valid decision replayed (the same signed payload sent again) is
// refused, even to a joiner that still needs a decision from that role.
func TestReplayedDecisionIsRefused(t *testing.T) {
	f := newFixture(t)
	f.plan.Approval.SecondApprover = "alan.turing"
	f.happy()
	f.provisioning()
	var ada ApprovalSignal
	f.env.RegisterDelayedCallback(func() {
		ada = f.signed(ApprovalSignal{Approver: "ada.lovelace", Approve: true})
		f.signal(SignalApprove, raw{ada})
	}, provisionDelay()+time.Hour)
	f.env.RegisterDelayedCallback(func() { f.signal(SignalApprove, raw{ada}) }, provisionDelay()+time.Hour+time.Minute)
	f.signalAt(provisionDelay()+2*time.Hour, SignalApprove, ApprovalSignal{Approver: "alan.turing"})
	res, err := f.run()
	require.NoError(t, err)
	require.Equal(t, OutcomeCompleted, res.Outcome)
	require.Len(t, res.Approvals, 3)
	require.Contains(t, res.Approvals[1].Refused, "already used")
}

// A manager who left between the request and the decision cannot decide;
// one who left before the approval was asked is skipped at once, and the
// approval escalates instead of waiting on them.
func TestApproverWhoLeftCannotApprove(t *testing.T) {
	t.Run("left before the provisioning date: escalated at once", func(t *testing.T) {
		f := newFixture(t)
		f.inactive["ada.lovelace"] = "HR status Inactive"
		f.happy()
		f.provisioning()
		f.signalAt(provisionDelay()+time.Hour, SignalApprove, ApprovalSignal{Approver: "ada.lovelace"})
		f.signalAt(provisionDelay()+2*time.Hour, SignalApprove, ApprovalSignal{Approver: "grace.hopper"})
		res, err := f.run()
		require.NoError(t, err)
		require.Equal(t, OutcomeCompleted, res.Outcome)
		require.Contains(t, res.Approvals[0].Refused, "not an approver")
		require.Equal(t, "grace.hopper", res.Approvals[1].Approver)
		require.Contains(t, f.notes, "approval-request:grace.hopper")
		require.NotContains(t, f.notes, "approval-request:ada.lovelace")
	})
	t.Run("left after the request: her decision is refused", func(t *testing.T) {
		f := newFixture(t)
		f.happy()
		f.provisioning()
		f.env.RegisterDelayedCallback(func() {
			f.inactive["ada.lovelace"] = "directory account disabled"
			f.signal(SignalApprove, ApprovalSignal{Approver: "ada.lovelace"})
		}, provisionDelay()+time.Hour)
		res, err := f.run()
		require.NoError(t, err)
		require.Equal(t, OutcomeRejected, res.Outcome, "nobody else decided before the timeout")
		require.Contains(t, res.Approvals[0].Refused, "directory account disabled")
		require.Empty(t, f.calls)
	})
}

// The requester of a non-human joiner cannot be its only approver.
func TestRequesterCannotBeTheOnlyApprover(t *testing.T) {
	f, in := nhiFixture(t)
	f.plan.Approval.SecondApprover = ""
	f.plan.Approval.EscalateTo = "grace.hopper"
	in.RequestedBy = "ada.lovelace"
	f.nhiMocks()
	f.signalAt(time.Hour, SignalApprove, ApprovalSignal{Approver: "ada.lovelace"})
	f.signalAt(2*time.Hour, SignalApprove, ApprovalSignal{Approver: "grace.hopper"})
	res, err := f.runInput(in)
	require.NoError(t, err)
	require.Equal(t, OutcomeExpired, res.Outcome)
	require.Contains(t, res.Approvals[0].Refused, "cannot be its only approver")
	require.Equal(t, "grace.hopper", res.Approvals[1].Approver)
}

// Break-glass works only where the route enables it, needs a reason, and
// is marked as such in status, result and the Web UI details.
func TestBreakGlassDecision(t *testing.T) {
	f := newFixture(t)
	f.plan.Approval.BreakGlass = true
	f.happy()
	f.provisioning()
	f.signalAt(provisionDelay()+time.Hour, SignalApprove, raw{ApprovalSignal{BreakGlass: &BreakGlass{Operator: "oncall"}}})
	f.signalAt(provisionDelay()+2*time.Hour, SignalApprove, raw{ApprovalSignal{BreakGlass: &BreakGlass{Operator: "oncall", Reason: "inbox down, start today"}}})
	res, err := f.run()
	require.NoError(t, err)
	require.Equal(t, OutcomeCompleted, res.Outcome)
	require.Contains(t, res.Approvals[0].Refused, "needs a reason")
	require.True(t, res.Approvals[1].BreakGlass)
	require.Equal(t, "break-glass:oncall", res.Approvals[1].Approver)
	require.Equal(t, "inbox down, start today", res.Approvals[1].Comment)
}

// A flood of 10,000 refused decisions is refused, counted, and keeps the
// joiner's state small; the real approval still counts after it.
func TestFloodOfRefusedDecisionsStaysBounded(t *testing.T) {
	f := newFixture(t)
	// No hire date: provisioning starts at once and nothing waits for a
	// start date afterwards. After ~1,000 signals the test environment
	// stops skipping long timers (a limit of the SDK's test environment,
	// not of the workflow; the real server has no such limit).
	f.worker.HireDate = ""
	f.happy()
	f.provisioning()
	// The test environment queues at most 1,000 callbacks at a time, so the
	// flood arrives in batches of 500, a second apart.
	n, batch := envFlood(10000), envFlood2(500)
	for b := 0; b < n/batch; b++ {
		f.env.RegisterDelayedCallback(func() {
			for i := 0; i < batch; i++ {
				f.env.SignalWorkflow(SignalApprove, ApprovalSignal{Approver: "ada.lovelace",
					Comment: fmt.Sprintf("forged %d %s", b*batch+i, strings.Repeat("x", 5000))})
			}
		}, time.Hour+time.Duration(b)*time.Second)
	}
	f.env.RegisterDelayedCallback(func() {
		st := f.status()
		assert.Equal(t, n, st.Refused)
		assert.LessOrEqual(t, len(st.Approvals), maxRefusedKept)
		assert.Less(t, len(st.Events), 20, "refusals do not add events")
		for _, d := range st.Approvals {
			assert.LessOrEqual(t, len(d.Comment), maxFieldLen+len("…"), "an unverified comment is clipped")
		}
		f.signal(SignalApprove, ApprovalSignal{Approver: "ada.lovelace"})
	}, 2*time.Hour)
	res, err := f.run()
	require.NoError(t, err)
	require.Equal(t, OutcomeCompleted, res.Outcome)
	require.LessOrEqual(t, len(res.Approvals), maxRefusedKept+1)
}

// Extensions need the owner's signed decision too.
func TestUnsignedExtensionIsRefused(t *testing.T) {
	f, in := nhiFixture(t)
	f.nhiMocks()
	bothApprove(f)
	f.signalAt(5*24*time.Hour, SignalExtend, raw{ExtendSignal{EndDate: "2027-03-31", By: "ada.lovelace"}})
	res, err := f.runInput(in)
	require.NoError(t, err)
	require.Equal(t, "2026-12-31", res.EndDate, "the end date did not move")
	var refused []string
	for _, d := range res.Approvals {
		if d.Refused != "" {
			refused = append(refused, d.Refused)
		}
	}
	require.Len(t, refused, 1)
	require.Contains(t, refused[0], "unsigned")
}

// The decide update's validator refuses an unsigned decision before it
// reaches history.
func TestDecideValidatorRefusesUnsigned(t *testing.T) {
	f := newFixture(t)
	f.happy()
	f.provisioning()
	f.env.RegisterDelayedCallback(func() {
		f.env.UpdateWorkflow(UpdateDecide, "forged", &testsuite.TestUpdateCallback{
			OnReject:   func(err error) { require.ErrorContains(t, err, "unsigned") },
			OnAccept:   func() { t.Fatal("accepted an unsigned decision") },
			OnComplete: func(any, error) {},
		}, ApprovalSignal{Approver: "ada.lovelace", Approve: true})
		require.Equal(t, 0, f.status().Refused, "a validator refusal leaves no trace in the joiner")
	}, provisionDelay()+time.Hour)
	res, err := f.run()
	require.NoError(t, err)
	require.Equal(t, OutcomeRejected, res.Outcome)
}

func envFlood(d int) int {
	var v int
	if _, err := fmt.Sscan(os.Getenv("JOINERY_TEST_FLOOD"), &v); err == nil && v > 0 {
		return v
	}
	return d
}

func envFlood2(d int) int {
	var v int
	if _, err := fmt.Sscan(os.Getenv("JOINERY_TEST_BATCH"), &v); err == nil && v > 0 {
		return v
	}
	return d
}
