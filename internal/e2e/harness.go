package e2e

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/joinery/joinery/activities"
	"github.com/joinery/joinery/connectors/directory"
	"github.com/joinery/joinery/connectors/hris"
	"github.com/joinery/joinery/connectors/secrets"
	"github.com/joinery/joinery/internal/config"
	"github.com/joinery/joinery/internal/decision"
	"github.com/joinery/joinery/internal/policy"
	"github.com/joinery/joinery/internal/run"
	"github.com/joinery/joinery/internal/stack"
	"github.com/joinery/joinery/internal/stack/stacktest"
	"github.com/joinery/joinery/workflows"
)

// Harness is a worker on a private task queue with the real connectors.
type Harness struct {
	t testing.TB
	// EP, Cfg and C reach the stack; Cfg.TaskQueue is the harness's own.
	EP  stack.Endpoints
	Cfg config.Config
	C   client.Client
	// Acts are the worker's activities with the real connectors.
	Acts *activities.Activities
	Dir  *directory.Client
	Sec  *secrets.Client
	HR   *hris.Client

	mu     sync.Mutex
	faults map[string]string // hrisID -> step that must fail
	// groups are every group the policy may grant, for cleanup.
	groups []string
}

func NewHarness(t testing.TB) *Harness {
	t.Helper()
	ep := stacktest.Ensure(t)
	repo, err := stack.FindRepoDir()
	require.NoError(t, err)
	cfg, err := Config(ep, repo)
	require.NoError(t, err)
	cfg.TaskQueue = fmt.Sprintf("it-%s-%d", strings.ToLower(t.Name()), rand.IntN(1e9))
	cfg.TaskQueue = strings.NewReplacer("/", "-", "_", "-").Replace(cfg.TaskQueue)
	cfg.InboxDir = t.TempDir()
	cfg.AuditLog = filepath.Join(t.TempDir(), "joiners.jsonl")
	return startHarness(t, ep, cfg)
}

// startHarness builds the real activities from cfg and runs them on a
// worker on cfg.TaskQueue: every harness (dev stack, private slapd, the
// cluster) is wired the same way, so none runs without what production
// sets (the Temporal client the order checks confirm callers with).
func startHarness(t testing.TB, ep stack.Endpoints, cfg config.Config) *Harness {
	t.Helper()
	ctx := context.Background()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	acts, err := run.Activities(ctx, cfg, logger)
	require.NoError(t, err)
	h := &Harness{t: t, EP: ep, Cfg: cfg, Acts: acts, faults: map[string]string{}, groups: acts.Policy.(*policy.Policy).Groups}
	acts.Faults = func(step, hrisID string) error {
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.faults[hrisID] == step {
			return fmt.Errorf("injected failure at %s", step)
		}
		return nil
	}
	h.Dir = acts.Directory.(*directory.Client)
	h.Sec = acts.Secrets.(*secrets.Client)
	h.HR = acts.HRIS.(*hris.Client)
	h.C, err = run.Dial(ctx, cfg, logger)
	require.NoError(t, err)
	acts.Runs = h.C // continued joiners check their previous run (activities/continued.go)
	elig, err := run.NewEligibility(cfg, acts.HRIS)
	require.NoError(t, err)
	w := worker.New(h.C, cfg.TaskQueue, worker.Options{})
	run.Register(w, acts, elig)
	require.NoError(t, w.Start())
	t.Cleanup(func() { w.Stop(); h.C.Close() })
	return h
}

// hire enters a new hire starting today (so provisioning starts at once).
func (h *Harness) Hire(first, last string) string {
	h.t.Helper()
	return h.HireOn(first, last, time.Now().Format(time.DateOnly))
}

// HireOn enters a new hire starting on hireDate (YYYY-MM-DD).
func (h *Harness) HireOn(first, last, hireDate string) string {
	h.t.Helper()
	id, err := AddEmployee(context.Background(), h.EP, map[string]string{
		"firstName": first, "lastName": last, "department": "Engineering", "jobTitle": "Engineer",
		"location": "DE-Berlin", "supervisorEId": "100", "hireDate": hireDate,
		"employmentHistoryStatus": "Full-Time", "status": "Active",
	})
	require.NoError(h.t, err)
	// Its worker dies with the test: end the joiner if it is still running,
	// then remove what it created (with the product's own idempotent
	// compensations) so repeated runs do not fill the dev directory.
	h.t.Cleanup(func() { h.cleanup(id, false) })
	return id
}

func (h *Harness) Start(id string) {
	h.t.Helper()
	res, err := run.StartJoiner(context.Background(), h.C, h.Cfg, workflows.JoinerInput{HRISID: id, Source: "test"})
	require.NoError(h.t, err)
	require.Equal(h.t, run.Started, res.Outcome)
}

// ApproveWhenAsked waits for AwaitingApproval and approves as the manager,
// signed with the dev stack's inbox key: the harness stands in for the
// approval inbox (internal/inbox has its own tests).
func (h *Harness) ApproveWhenAsked(id string) {
	h.t.Helper()
	st := h.WaitForApproval(id)
	h.Decide(id, st, st.Plan.Approval.Approver, decision.ActionApprove, "integration test")
}

// WaitForApproval waits until the joiner asks for approval.
func (h *Harness) WaitForApproval(id string) workflows.Status {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		st, _, _, err := run.Status(ctx, h.C, id)
		if err == nil && st.Stage == workflows.StageAwaitingApproval {
			return st
		}
		require.NoError(h.t, ctx.Err(), "joiner %s never asked for approval (last stage %s, err %v)", id, st.Stage, err)
		time.Sleep(100 * time.Millisecond)
	}
}

// Decide sends approver's signed decision as the approve/reject signal.
func (h *Harness) Decide(id string, st workflows.Status, approver string, action decision.Action, comment string) {
	h.t.Helper()
	signer, err := decision.LoadFileSigner(h.Cfg.DecisionKeyFile)
	require.NoError(h.t, err)
	nonce := make([]byte, 16)
	_, _ = crand.Read(nonce)
	desc, err := h.C.DescribeWorkflowExecution(context.Background(), run.ResolveID(id), "")
	require.NoError(h.t, err)
	s, err := signer.Sign(context.Background(), decision.Decision{
		WorkflowID: run.ResolveID(id), RunID: desc.GetWorkflowExecutionInfo().GetExecution().GetRunId(), PlanHash: st.PlanHash, PolicyVersion: st.PolicyVersion, Approver: approver,
		Action: action, Comment: comment, IssuedAt: time.Now(), Nonce: hex.EncodeToString(nonce), Via: "e2e-harness",
	})
	require.NoError(h.t, err)
	name := workflows.SignalApprove
	if action == decision.ActionReject {
		name = workflows.SignalReject
	}
	require.NoError(h.t, run.Signal(context.Background(), h.C, id, name, workflows.ApprovalSignal{Signed: &s}))
}

func (h *Harness) Result(id string) (*workflows.JoinerResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return run.Result(ctx, h.C, id)
}

// residue lists what the joiner left on the servers.
func (h *Harness) Residue(id string, groups []string, dn string) []string {
	h.t.Helper()
	ctx := context.Background()
	var left []string
	e, err := h.Dir.FindByEmployeeID(ctx, id, false)
	require.NoError(h.t, err)
	if e != nil {
		left = append(left, "ldap entry "+e.DN)
	}
	if dn != "" {
		for _, g := range groups {
			in, err := h.Dir.IsMember(ctx, h.Dir.GroupDN(g), dn)
			require.NoError(h.t, err)
			if in {
				left = append(left, "member of "+g)
			}
		}
	}
	_, found, err := h.Sec.Metadata(ctx, h.Sec.JoinerPath(id, "initial-credential"))
	require.NoError(h.t, err)
	if found {
		left = append(left, "vault secret")
	}
	w, err := h.HR.GetWorker(ctx, id)
	require.NoError(h.t, err)
	if w.WorkEmail != "" || w.Username != "" {
		left = append(left, fmt.Sprintf("hris fields workEmail=%q customUsername=%q", w.WorkEmail, w.Username))
	}
	return left
}

// cleanup ends a test's joiner and removes its entry, memberships, Vault
// objects and HR write-back.
func (h *Harness) cleanup(id string, nonHuman bool) {
	ctx := context.Background()
	_ = h.C.TerminateWorkflow(ctx, workflows.JoinerWorkflowID(id), "", "test ended")
	if e, err := h.Dir.FindByEmployeeID(ctx, id, nonHuman); err == nil && e != nil {
		for _, g := range h.groups {
			_ = h.Acts.RevokeGroup(ctx, activities.GroupInput{HRISID: id, Group: g, MemberDN: e.DN})
		}
	}
	_ = h.Acts.DeleteAccount(ctx, activities.AccountRef{HRISID: id, NonHuman: nonHuman})
	_ = h.Acts.RevokeCredential(ctx, activities.RevokeInput{HRISID: id})
	if nonHuman {
		_ = h.Acts.RevokeWorkload(ctx, activities.RevokeWorkloadInput{Key: id})
	}
}

// CleanupNonHuman removes a non-human joiner's traces when the test ends.
func (h *Harness) CleanupNonHuman(key string) {
	h.t.Cleanup(func() { h.cleanup(key, true) })
}

// FailAt makes the named step fail for one joiner.
func (h *Harness) FailAt(hrisID, step string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.faults[hrisID] = step
}
