package e2e

// A rehire end to end: Temporal, Vault and the reference HRIS of the dev
// stack, and a private slapd (the shared one keeps the access rules it was
// started with; a private one renders today's, which let the worker move a
// marker only on a disabled entry it created). The harness's own
// in-process worker runs the real activities on its own task queue.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/joinery/joinery/activities"
	"github.com/joinery/joinery/connectors/directory"
	"github.com/joinery/joinery/internal/decision"
	"github.com/joinery/joinery/internal/run"
	"github.com/joinery/joinery/internal/stack"
	"github.com/joinery/joinery/internal/stack/stacktest"
	"github.com/joinery/joinery/workflows"
)

// rehireHarness is NewHarness with a private slapd and the default policy
// plus a rehire section.
func rehireHarness(t *testing.T) *Harness {
	t.Helper()
	ep := stacktest.Ensure(t)
	repo, err := stack.FindRepoDir()
	require.NoError(t, err)
	cfg, err := Config(ep, repo)
	require.NoError(t, err)
	cfg.TaskQueue = fmt.Sprintf("it-rehire-%d", rand.IntN(1e9))
	cfg.InboxDir = t.TempDir()
	cfg.AuditLog = filepath.Join(t.TempDir(), "joiners.jsonl")
	cfg.LDAPURL = stacktest.PrivateSlapd(t)
	cfg.LDAPBindDN, cfg.LDAPBindPassword = stack.LDAPServiceDN, stack.LDAPServicePassword
	src, err := os.ReadFile(cfg.PolicyFile)
	require.NoError(t, err)
	cfg.PolicyFile = filepath.Join(t.TempDir(), "policy.yaml")
	require.NoError(t, os.WriteFile(cfg.PolicyFile, append(src, []byte("\nrehire: {mode: reenable, max_gap: 730d}\n")...), 0o600))

	return startHarness(t, ep, cfg)
}

func waitStage(t *testing.T, h *Harness, id string, want workflows.Stage) workflows.Status {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for {
		st, res, status, err := run.Status(ctx, h.C, id)
		if err == nil && st.Stage == want {
			return st
		}
		if err == nil && status != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
			t.Fatalf("joiner %s closed (%s) before reaching %s: %+v", id, status, want, res)
		}
		require.NoError(t, ctx.Err(), "joiner %s never reached %s (last stage %s, err %v)", id, want, st.Stage, err)
		time.Sleep(200 * time.Millisecond)
	}
}

// A leaver whose entry Joinery created and disabled is rehired: a plain
// start is refused and points to the rehire; the rehire asks for approval
// of re-enabling exactly that DN; once approved the same DN is enabled,
// carries the new generation's marker, has today's birthright groups and a
// new credential; a rescind rolls back to the disabled entry with the old
// marker, memberships and credential gone, the entry kept.
func TestIntegrationRehireReenablesTheLeaversEntry(t *testing.T) {
	h := rehireHarness(t)
	ctx := context.Background()
	// Starting in three days: provisioned now (the lead time is longer),
	// then held in Provisioned until the start, where a rescind rolls back.
	hire := time.Now().AddDate(0, 0, 3).Format(time.DateOnly)
	left := time.Now().AddDate(0, -6, 0).Format(time.DateOnly)
	id, err := AddEmployee(ctx, h.EP, map[string]string{
		"firstName": "Rehired", "lastName": "Person" + fmt.Sprint(rand.IntN(1e6)), "department": "Engineering", "jobTitle": "Engineer",
		"location": "DE-Berlin", "supervisorEId": "100", "hireDate": hire, "terminationDate": left,
		"employmentHistoryStatus": "Full-Time", "status": "Active",
	})
	require.NoError(t, err)

	// Generation 1's entry, as its claim made it (the worker's bind, its
	// marker) and its leaver left it (disabled).
	g1 := workflows.JoinerWorkflowID(id)
	acct, err := h.Dir.Claim(ctx, "rehired."+id, directory.Person{EmployeeID: id, Owner: g1, OwnerRun: "run-g1",
		GivenName: "Rehired", Surname: "Person", DisplayName: "Rehired Person"})
	require.NoError(t, err)
	require.NoError(t, h.Dir.Disable(ctx, acct.DN, g1))
	t.Cleanup(func() {
		if e, err := h.Dir.FindByEmployeeID(ctx, id, false); err == nil && e != nil {
			for _, g := range h.groups {
				_ = h.Dir.RemoveMember(ctx, h.Dir.GroupDN(g), e.DN, e.Owner)
			}
			_ = h.Dir.Delete(ctx, e.DN, e.Owner)
		}
		_ = h.Acts.RevokeCredential(ctx, activities.RevokeInput{HRISID: id})
	})

	// Never implicitly: a plain start is refused and says how.
	_, err = run.StartJoiner(ctx, h.C, h.Cfg, workflows.JoinerInput{HRISID: id, Source: "test"})
	require.ErrorIs(t, err, activities.ErrNotEligible)
	require.ErrorContains(t, err, "starter rehire "+id)

	// The generation comes from the entry's marker.
	e, err := h.Dir.FindByEmployeeID(ctx, id, false)
	require.NoError(t, err)
	g2, ok := activities.NextGeneration(id, e)
	require.True(t, ok)
	require.Equal(t, g1+"~g2", g2)
	_, err = h.C.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: g2, TaskQueue: h.Cfg.TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL},
		workflows.Joiner, workflows.JoinerInput{HRISID: id, Source: "test", Rehire: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = h.C.TerminateWorkflow(context.Background(), g2, "", "test ended") })

	st := h.WaitForApproval(g2)
	require.NotNil(t, st.Plan.Rehire, "the approver is asked about the rehire")
	require.Equal(t, acct.DN, st.Plan.Rehire.DN)
	require.Equal(t, g1, st.Plan.Rehire.PreviousJoiner)
	h.Decide(g2, st, st.Plan.Approval.Approver, decision.ActionApprove, "welcome back")

	st = waitStage(t, h, g2, workflows.StageProvisioned)
	require.True(t, strings.EqualFold(acct.DN, st.DN), "the same DN: %s", st.DN)
	e, err = h.Dir.FindByEmployeeID(ctx, id, false)
	require.NoError(t, err)
	require.Equal(t, g2, e.Owner, "the marker names the new generation")
	require.False(t, h.Dir.IsDisabled(e), "re-enabled")
	var groups []string
	for _, g := range st.Plan.Groups {
		in, err := h.Dir.IsMember(ctx, h.Dir.GroupDN(g.Group), e.DN)
		require.NoError(t, err)
		require.True(t, in, "member of %s", g.Group)
		groups = append(groups, g.Group)
	}
	require.NotEmpty(t, groups)
	_, found, err := h.Sec.Metadata(ctx, h.Sec.JoinerPath(id, "initial-credential"))
	require.NoError(t, err)
	require.True(t, found, "a new credential")

	// Rescind before the start: everything back, the entry kept.
	require.NoError(t, run.Signal(ctx, h.C, g2, workflows.SignalRescind, workflows.RescindSignal{By: "hr.partner", Reason: "test", Via: "test"}))
	res, err := h.Result(g2)
	require.NoError(t, err)
	require.Equal(t, workflows.OutcomeRescinded, res.Outcome, "%+v", res)
	e, err = h.Dir.FindByEmployeeID(ctx, id, false)
	require.NoError(t, err)
	require.NotNil(t, e, "the re-enabled entry is never deleted")
	require.Equal(t, g1, e.Owner, "the old marker is back")
	require.Equal(t, "run-g1", e.OwnerRun)
	require.True(t, h.Dir.IsDisabled(e), "disabled again")
	for _, g := range groups {
		in, err := h.Dir.IsMember(ctx, h.Dir.GroupDN(g), e.DN)
		require.NoError(t, err)
		require.False(t, in, "still a member of %s", g)
	}
	_, found, err = h.Sec.Metadata(ctx, h.Sec.JoinerPath(id, "initial-credential"))
	require.NoError(t, err)
	require.False(t, found, "the credential is destroyed")
}
