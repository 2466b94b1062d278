package workflows

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"

	"github.com/joinery/joinery/activities"
	"github.com/joinery/joinery/internal/decision"
	"github.com/joinery/joinery/internal/policy"
	"github.com/joinery/joinery/internal/stack/stacktest"
)

// stepFakes stand in for the connectors: each step is slow enough for a
// signal to land while the local steps run, and every side effect and undo
// is logged.
type stepFakes struct {
	mu      sync.Mutex
	log     []string
	running chan struct{} // closed at the first claim
	once    sync.Once
	plan    policy.Plan
	w       policy.Worker
	trust   activities.DecisionTrust
	// refuseRerun: the second grant of engineering (a re-run's) is
	// refused, as a re-plan changed since the lost run would.
	refuseRerun bool
	grants      int
}

func (f *stepFakes) note(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.log = append(f.log, s)
}

func (f *stepFakes) count(prefix string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, l := range f.log {
		if strings.HasPrefix(l, prefix) {
			n++
		}
	}
	return n
}

func (f *stepFakes) register(w worker.Worker) {
	const slow = 250 * time.Millisecond
	reg := func(name string, fn any) { w.RegisterActivityWithOptions(fn, activity.RegisterOptions{Name: name}) }
	reg("CheckEligible", func(context.Context, activities.CheckEligibleInput) (activities.EligibleResult, error) {
		return activities.EligibleResult{Kind: policy.KindEmployee}, nil
	})
	reg("FetchJoiner", func(context.Context, activities.FetchInput) (policy.Worker, error) { return f.w, nil })
	reg("PlanJoiner", func(context.Context, policy.Worker) (policy.Plan, error) { return f.plan, nil })
	reg("SnapshotHRIS", func(context.Context, activities.SnapshotInput) (map[string]string, error) {
		return map[string]string{"workEmail": "", "customUsername": ""}, nil
	})
	reg("SearchPseudonyms", func(context.Context, activities.PseudonymsInput) (map[string]string, error) {
		return map[string]string{}, nil
	})
	reg("TrustedDecisionKeys", func(context.Context) (activities.DecisionTrust, error) { return f.trust, nil })
	reg("CheckApprovers", func(_ context.Context, in activities.ApproversInput) ([]activities.ApproverStanding, error) {
		var out []activities.ApproverStanding
		for _, u := range in.Usernames {
			out = append(out, activities.ApproverStanding{Username: u, Active: true})
		}
		return out, nil
	})
	reg("Notify", func(context.Context, activities.Notification) error { return nil })
	reg("ExportAudit", func(context.Context, activities.ExportAuditInput) (activities.ExportAuditResult, error) {
		return activities.ExportAuditResult{}, nil
	})
	reg("ClaimAccount", func(context.Context, activities.ClaimInput) (activities.ClaimResult, error) {
		f.note("claim")
		f.once.Do(func() { close(f.running) })
		time.Sleep(slow)
		return activities.ClaimResult{Username: "jose.nunez", DN: "uid=jose.nunez,ou=people,dc=joinery,dc=test"}, nil
	})
	reg("GrantGroup", func(_ context.Context, in activities.GroupInput) (activities.GroupInput, error) {
		f.mu.Lock()
		if in.Group == "engineering" {
			f.grants++
		}
		refuse := f.refuseRerun && in.Group == "engineering" && f.grants > 1
		f.mu.Unlock()
		if refuse {
			f.note("refused grant " + in.Group)
			return activities.GroupInput{}, temporal.NewNonRetryableApplicationError("order refused: the plan changed", activities.ErrTypeOrderRefused, nil)
		}
		f.note("grant " + in.Group)
		time.Sleep(slow)
		return in, nil
	})
	reg("IssueCredential", func(_ context.Context, in activities.CredentialInput) (activities.CredentialResult, error) {
		f.note("credential")
		time.Sleep(slow)
		return activities.CredentialResult{Path: "joinery/joiners/200/initial-credential", Version: 1, WrapAccessor: "acc", DeliveredTo: in.Recipient}, nil
	})
	reg("WriteBack", func(context.Context, activities.WriteBackInput) (activities.WriteBackOutput, error) {
		f.note("writeback")
		time.Sleep(slow)
		return activities.WriteBackOutput{Written: []string{"customUsername", "workEmail"}}, nil
	})
	reg("DeleteAccount", func(context.Context, activities.AccountRef) error { f.note("undo account"); return nil })
	reg("RevokeGroup", func(_ context.Context, in activities.GroupInput) error { f.note("undo group " + in.Group); return nil })
	reg("RevokeCredential", func(context.Context, activities.RevokeInput) error { f.note("undo credential"); return nil })
	reg("UndoWriteBack", func(context.Context, activities.WriteBackInput) error { f.note("undo writeback"); return nil })
}

// A rescind or a cancel that comes while the local steps run (an adversary
// review's reproduction, on the dev stack's real Temporal server). When the
// steps end the joiner in the same workflow task (start date today), the
// server refuses that task's completion (UnhandledCommand) and its re-run
// starts with the rescind or cancel in hand; when they do not (tomorrow),
// the Provisioned hold meets it. Either way nothing the steps did may be
// left unrecorded or, after a rescind, not undone: before the fix a re-run
// stopped at the rescind after the claim and undid only the entry, and a
// cancel ended the joiner with nothing recorded (localsteps.go).
func TestIntegrationSignalDuringLocalSteps(t *testing.T) {
	// The dev stack, started if it is not running (as the connector tests
	// do), fails the test with the reason when it cannot be.
	ep := stacktest.Ensure(t)
	c, err := client.Dial(client.Options{HostPort: ep.TemporalAddress, Namespace: ep.TemporalNamespace})
	require.NoError(t, err)
	defer c.Close()
	for _, tc := range []struct {
		second, hire string
		byUpdate     bool
		refuseRerun  bool
	}{
		// The re-run's re-plan refuses a grant the lost run made (a policy
		// or HR change between them): the rollback still undoes the lost
		// run's credential and write-back, registered ahead.
		{"rescind", "today", false, true},
		{"rescind", "today", false, false}, {"rescind", "tomorrow", false, false},
		{"cancel", "today", false, false}, {"cancel", "tomorrow", false, false},
		// The approval inbox decides by update: a cancel must not make the
		// re-run drop that decision either.
		{"cancel", "today", true, false}, {"rescind", "today", true, false},
	} {
		name := tc.second + " " + tc.hire
		if tc.byUpdate {
			name += " (decision by update)"
		}
		if tc.refuseRerun {
			name += " (re-run refused)"
		}
		t.Run(name, func(t *testing.T) {
			hire := time.Now().UTC()
			if tc.hire == "tomorrow" {
				hire = hire.AddDate(0, 0, 1)
			}
			signer := testSigner(t)
			f := &stepFakes{running: make(chan struct{}), refuseRerun: tc.refuseRerun}
			f.w = policy.Worker{HRISID: "200", FirstName: "Jose", LastName: "Nunez", Department: "Engineering",
				Location: "DE-Berlin", ManagerUsername: "ada.lovelace", HireDate: hire.Format(time.DateOnly), Kind: policy.KindEmployee}
			f.plan = policy.Plan{PolicyVersion: "test@sha256:abc", Kind: policy.KindEmployee, HireDate: f.w.HireDate,
				Candidates: []string{"jose.nunez"}, Groups: []policy.Grant{{Group: "all-staff", Rule: "everyone"}, {Group: "engineering", Rule: "eng"}},
				Approval:  policy.ApprovalPlan{Approver: "ada.lovelace", Rule: "manager", Timeout: 7 * 24 * time.Hour},
				WriteBack: []string{"customUsername", "workEmail"}, WriteBackTemplates: map[string]string{"workEmail": "{username}@joinery.test", "customUsername": "{username}"},
				ProvisionLeadDays: 7, CredentialTTL: 72 * time.Hour}
			f.trust = activities.DecisionTrust{Keys: []decision.PublicKey{signer.PublicKey()}, MaxAge: 15 * time.Minute}
			q := fmt.Sprintf("it-localsteps-%d", time.Now().UnixNano())
			w := worker.New(c, q, worker.Options{})
			w.RegisterWorkflow(Joiner)
			f.register(w)
			require.NoError(t, w.Start())
			defer w.Stop()

			id := JoinerWorkflowID("200")
			ctx := context.Background()
			run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id + "-" + q, TaskQueue: q}, Joiner, JoinerInput{HRISID: "200", Source: "test"})
			require.NoError(t, err)
			wfID := run.GetID()
			require.Eventually(t, func() bool {
				v, err := c.QueryWorkflow(ctx, wfID, run.GetRunID(), QueryStatus)
				var st Status
				return err == nil && v.Get(&st) == nil && st.Stage == StageAwaitingApproval
			}, 30*time.Second, 100*time.Millisecond)
			h, err := decision.PlanHash(f.plan)
			require.NoError(t, err)
			s, err := signer.Sign(ctx, decision.Decision{WorkflowID: wfID, RunID: run.GetRunID(), PlanHash: h,
				PolicyVersion: f.plan.PolicyVersion, Approver: "ada.lovelace", Action: decision.ActionApprove, IssuedAt: time.Now(), Nonce: nonce()})
			require.NoError(t, err)
			if tc.byUpdate {
				go func() {
					h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: wfID, RunID: run.GetRunID(),
						UpdateName: UpdateDecide, Args: []any{ApprovalSignal{Signed: &s}}, WaitForStage: client.WorkflowUpdateStageAccepted})
					if err == nil {
						_ = h.Get(ctx, nil)
					}
				}()
			} else {
				require.NoError(t, c.SignalWorkflow(ctx, wfID, run.GetRunID(), SignalApprove, ApprovalSignal{Signed: &s}))
			}
			select {
			case <-f.running:
			case <-time.After(30 * time.Second):
				t.Fatal("the local steps never started")
			}
			if tc.second == "rescind" {
				require.NoError(t, c.SignalWorkflow(ctx, wfID, run.GetRunID(), SignalRescind, RescindSignal{By: "hr", Reason: "offer withdrawn"}))
			} else {
				require.NoError(t, c.CancelWorkflow(ctx, wfID, run.GetRunID()))
			}
			var res JoinerResult
			werr := run.Get(ctx, &res)
			var ae *temporal.ApplicationError
			if errors.As(werr, &ae) && ae.HasDetails() {
				require.NoError(t, ae.Details(&res)) // a failed joiner's result
			}
			lost := false
			it := c.GetWorkflowHistory(ctx, wfID, run.GetRunID(), false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
			for it.HasNext() {
				ev, err := it.Next()
				require.NoError(t, err)
				lost = lost || ev.GetWorkflowTaskFailedEventAttributes().GetCause() == enumspb.WORKFLOW_TASK_FAILED_CAUSE_UNHANDLED_COMMAND
			}
			f.mu.Lock()
			t.Logf("lost task: %v; outcome %s; side effects %v", lost, res.Outcome, f.log)
			f.mu.Unlock()
			if tc.hire == "today" {
				require.True(t, lost, "the signal landed while the closing task ran, so the server refused it")
			}
			require.Positive(t, f.count("claim"))
			switch tc.second {
			case "rescind":
				if tc.refuseRerun {
					require.Error(t, werr, "the refused step fails the joiner")
					require.Equal(t, OutcomeFailed, res.Outcome)
				} else {
					require.NoError(t, werr)
					require.Equal(t, OutcomeRescinded, res.Outcome)
				}
				for _, undo := range []string{"undo writeback", "undo credential", "undo group engineering", "undo group all-staff", "undo account"} {
					require.Positive(t, f.count(undo), "%s: everything any run made is undone", undo)
				}
				require.Len(t, res.Undone, 5, "%v", res.Undone)
			case "cancel":
				require.NoError(t, werr, "the cancel is acted on in the hold, which completes early")
				require.Equal(t, OutcomeCompleted, res.Outcome)
				kinds := []string{}
				for _, r := range res.Resources {
					kinds = append(kinds, r.Kind)
				}
				require.True(t, slices.Contains(kinds, "ldap-entry") && slices.Contains(kinds, "vault-secret") && slices.Contains(kinds, "hris-field"),
					"every step the chain ran is recorded: %v", kinds)
				groups := 0
				for _, k := range kinds {
					if k == "group-membership" {
						groups++
					}
				}
				require.Equal(t, 2, groups, "both grants recorded: %v", kinds)
			}
		})
	}
}
